"""Innen domain code: no Airflow imports below this package."""
