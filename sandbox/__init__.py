"""Tools that are not the product: demo users, the Airflow processes the demo and tests start."""
