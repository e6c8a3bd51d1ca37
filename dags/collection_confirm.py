"""
### Confirm a collection run against the amount received (by hand)

Seed 2.3.3.3, all or nothing. Give the run (`fj:SYS:n`), the amount the bank
credited for it (from the statement), and leave `dry_run` on first:

* **dry run**: the run's open total (references of its collections that are
  not returned or cancelled), the difference with the amount given, and each
  collection with what was already paid on it some other way;
* **real run**: if the amount equals the open total, every collection is
  booked as paid and the run is confirmed; otherwise nothing is booked and the
  report says why.

The report lands in `var/reports/collection_confirm/<run>/` (CSV and HTML).
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

log = logging.getLogger(__name__)


@dag(
    dag_id="collection_confirm",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Brussels"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=1), "owner": "finance"},
    tags=["innen", "sepa", "direct-debit", "finance"],
    params={
        "collection_run": Param("", type="string", minLength=1, title="Collection run", description="e.g. fj:BIB:12"),
        "received_amount": Param(
            "0.00", type="string", pattern=r"^\d+(\.\d{1,2})?$", title="Amount received",
            description="What the bank credited for the run, e.g. 1234.56",
        ),
        "dry_run": Param(True, type="boolean", title="Dry run", description="Only report; book nothing."),
    },
    doc_md=__doc__,
)
def collection_confirm() -> None:
    @task
    def confirm() -> dict:
        from dataclasses import asdict

        from include.finance.db import transaction
        from include.runtime import actor
        from include.sepa.manual_reports import write_confirmation
        from include.sepa.collection_confirm import confirm_collection_run

        context = get_current_context()
        params = context["params"]
        with transaction() as session:
            result = confirm_collection_run(
                session, params["collection_run"].strip(), params["received_amount"], actor(context),
                dry_run=bool(params["dry_run"]),
            )
        report = write_confirmation(result)
        log.info("%s (report %s)", result.message, report)
        return {**asdict(result), "report": report}

    confirm()


collection_confirm()
