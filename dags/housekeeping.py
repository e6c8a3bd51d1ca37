"""
### Housekeeping (daily): retention of files and personal data

Seed 2.5.3 `keepdays`: a bank hub keeps its lists and bank files for
`keep_days` days (empty: 365). Past that, per hub:

* **files** go: the hub's bank files in `var/outbox/` (with their `.sha256`),
  archived and quarantined statements, control lists, confirmation and
  deletion reports; report folders of no single hub (mandate check, POM,
  invoice run, housekeeping) and quarantined or archived POM reports go after
  the smallest `keep_days` of all hubs. Invoices and the inbox are never touched;
* **personal data** goes from the database: bank entries lose the payer's
  name, IBAN, BIC and message; collections of old runs lose the debtor's IBAN
  and BIC; control-list items lose the payer's name in their reason.
  Amounts, dates, references and statuses stay (the accounting record).
  Mandates, each mandate's latest collection, and a bank entry whose
  control-list item is still open keep their data.

Every removal writes an audit row. Leave `dry_run` on to see what would go:
the report `var/reports/housekeeping/<date>/dry-run.html` (and `.csv`) lists
it and nothing changes; a run with `dry_run` off writes `removed.html`.
Scheduled runs use the default (dry run). A rerun finds nothing more.

**Run date**: the logical date in Europe/Brussels, or the `run_date` param.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from include.airflow_roles import access_control

log = logging.getLogger(__name__)


@dag(
    dag_id="housekeeping",
    schedule="30 4 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Brussels"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=5), "owner": "finance"},
    tags=["innen", "finance", "retention"],
    params={
        "dry_run": Param(
            True, type="boolean", title="Dry run", description="Only report what would go; remove nothing.",
        ),
        "run_date": Param(
            None, type=["null", "string"], format="date", title="Run date",
            description="The day to count keep_days back from (YYYY-MM-DD). Empty: the run's logical date.",
        ),
    },
    access_control=access_control("housekeeping"),
    doc_md=__doc__,
)
def housekeeping() -> None:
    @task
    def remove_expired() -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from include.errors import InnenError
        from include.housekeeping import housekeep, run_date_refusal
        from include.runtime import LOCAL_ZONE, actor, run_date

        context = get_current_context()
        day, dry_run = run_date(context), bool(context["params"]["dry_run"])
        if why := run_date_refusal(day, datetime.now(LOCAL_ZONE).date(), dry_run=dry_run):
            raise AirflowFailException(f"refused: {why}")  # a person's parameter: no retry cures it
        result = housekeep(day, actor(context, with_user=True), dry_run=dry_run)
        summary = result.summary()
        log.info("housekeeping %s: %s (report %s)", summary["day"], summary, result.report)
        if result.errors:
            raise InnenError(f"{len(result.errors)} paths could not be removed: " + "; ".join(result.errors[:5]))
        return summary

    remove_expired()


housekeeping()
