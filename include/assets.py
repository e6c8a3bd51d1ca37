"""Names of the Airflow assets Innen's DAGs exchange (plain strings: no Airflow import here)."""

# Updated by mandate_execution when collection runs are ready; schedules pain_export.
COLLECTION_RUNS_READY = {"name": "innen_collection_runs_ready", "uri": "innen://collection-runs/ready"}
