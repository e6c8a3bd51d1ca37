"""
### Bank files for collection runs (pain.008, SAFESEPA, CSV, BXML)

Scheduled by the asset `innen_collection_runs_ready` (set by
`mandate_execution`), and by hand.

* **runs_to_export**: the run named in the `collection_run` param, or every
  run still `ready` whose hub has an export format.
* **export_run** (one mapped task per run): writes the hub's format to
  `var/outbox/<hub>_<run>.<suffix>` with a `.sha256` beside it. SEPA and
  SAFESEPA files are validated against the official pain.008 XSD while they
  are written; a file that fails never reaches the outbox, the run is marked
  `failed` with the first error and the task fails without retrying. The same
  run exported twice gives byte-identical files.

Params (manual run): `collection_run` (e.g. `fj:BIB:12`; re-exports an
exported or failed run) and `export_format` (override the hub's format).
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task

from include.assets import COLLECTION_RUNS_READY as READY

log = logging.getLogger(__name__)
COLLECTION_RUNS_READY = Asset(**READY)


@dag(
    dag_id="pain_export",
    schedule=[COLLECTION_RUNS_READY],
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Brussels"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=2), "owner": "finance"},
    tags=["innen", "sepa", "direct-debit", "bank-file"],
    params={
        "collection_run": Param(
            None, type=["null", "string"], title="Collection run",
            description="Identifier of one run to export (fj:SYS:n). Empty: every ready run.",
        ),
        "export_format": Param(
            None, type=["null", "string"], enum=[None, "SEPA", "SAFESEPA", "CSV", "BXML"], title="Export format",
            description="Override the hub's export format for this run.",
        ),
    },
    doc_md=__doc__,
)
def pain_export() -> None:
    @task
    def runs_to_export() -> list[str]:
        from include.finance.db import transaction
        from include.sepa.export import runs_to_export as ready_runs

        requested = get_current_context()["params"].get("collection_run")
        if requested:
            return [requested.strip()]
        with transaction(readonly=True) as session:
            runs = ready_runs(session)
        log.info("runs to export: %s", runs or "none")
        return runs

    @task(max_active_tis_per_dagrun=2)
    def export_run(run_loi: str) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from include.errors import ExportRejected
        from include.runtime import actor
        from include.sepa.export import export_collection_run

        context = get_current_context()
        try:
            result = export_collection_run(
                run_loi, actor(context), export_format=context["params"].get("export_format")
            )
        except ExportRejected as exc:
            raise AirflowFailException(str(exc)) from None
        log.info(
            "%s: %s %s %s sha256=%s, %d transactions, EUR %s", result["run"], result["status"],
            result["export_format"] or "", result["file_path"] or result["message"], result["sha256"],
            result["transactions"], result["total"],
        )
        return result

    export_run.expand(run_loi=runs_to_export())


pain_export()
