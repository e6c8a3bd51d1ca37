"""The state the finance end-to-end tests start from: a real Airflow, the demo institution, and its two bank files
waiting for approval in ``pain_export``, triggered over REST by the demo user ``finance``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select

from include.finance.db import create_schema, get_engine, transaction
from include.finance.models import BankFileApproval, CollectionRun
from include.sepa.mandate_execution import execute_mandates
from sandbox.airflow_services import AirflowServices

RUN_DAY = date(2026, 11, 20)


@dataclass
class BankFilesWaiting:
    services: AirflowServices
    db_url: str
    var_dir: Path
    export_run: str  # pain_export's run, triggered by "finance"
    waiting: dict[str, dict[str, Any]]  # collection run → its bank_file.approve task instance (REST)


@contextmanager
def bank_files_waiting(home: Path, *, env: Mapping[str, str] | None = None,
                       unpause: tuple[str, ...] = ("pain_export",)) -> Iterator[BankFilesWaiting]:
    from sandbox.demo_institution import load_demo

    var_dir = home / "var"
    db_url = f"sqlite:///{home / 'innen.sqlite'}"
    engine = get_engine(db_url)
    create_schema(engine)
    with transaction(engine) as session:
        load_demo(session, RUN_DAY)
        execute_mandates(session, RUN_DAY, "test")  # the runs to export (mandate_execution is tested elsewhere)
    services = AirflowServices.prepare(home / "airflow", env={
        "INNEN_DB_URL": db_url, "INNEN_VAR_DIR": str(var_dir), **(env or {})})
    try:
        with services.running():
            services.unpause(*unpause)
            with services.client("finance") as finance:
                export = services.trigger(finance, "pain_export")
                assert export.status_code == 200, export.text
                run_id = export.json()["dag_run_id"]
                tis = services.awaiting(finance, "pain_export", run_id, "bank_file.approve", count=2)
            with transaction(engine, readonly=True) as session:
                by_task = {a.airflow_task: loi for a, loi in session.execute(
                    select(BankFileApproval, CollectionRun.loi).join(CollectionRun))}
            waiting = {by_task[f"pain_export/{run_id}/bank_file.approve/{ti['map_index']}"]: ti for ti in tis}
            yield BankFilesWaiting(services, db_url, var_dir, run_id, waiting)
    finally:
        engine.dispose()
