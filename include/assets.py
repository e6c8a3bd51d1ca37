"""Names of the Airflow assets Innen's DAGs exchange (plain strings: no Airflow import here)."""

# Updated by mandate_execution when collection runs are ready; schedules pain_export.
COLLECTION_RUNS_READY = {"name": "innen_collection_runs_ready", "uri": "innen://collection-runs/ready"}

# Updated by invoice_run when the day's invoices are made; schedules invoice_mailing.
INVOICES_READY = {"name": "innen_invoices_ready", "uri": "innen://invoices/ready"}
