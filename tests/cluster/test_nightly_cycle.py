"""The nightly cycle on the cluster of ``make cluster`` (Celery workers, PostgreSQL, Redis), through its scheduler.

Run by ``make cluster-check`` (``pytest -m cluster``), not by ``make test``: it needs the running cluster. The
cluster's Innen database is emptied and loaded with the demo institution; then, as in production, operators
run ``mandate_execution``, its asset starts ``pain_export``, finance approves both files, a statement is
imported, POM requests are made against the simulator (callbacks reach the api-server), payers pay, the
reconciliation books what no callback told, invoices are made and mailed through POM, and POM's delivery
reports are analysed. The assertions read the cluster's PostgreSQL and its shared storage; at the end the
cycle's figures must equal those ``make demo`` gives for the same day on one machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from include.finance.db import create_schema, get_engine, transaction
from include.finance.models import BankEntry, BankFileApproval, BankHub, Base, CollectionRun
from include.pom.accounts import PomClients, accounts_from_env
from include.runtime import LOCAL_ZONE
from sandbox import cluster
from sandbox.airflow_services import AirflowServices
from sandbox.demo_cycle import (
    cycle_figures,
    deliver_reports,
    fresh_pom_account,
    pay_some,
    pom_connection,
    script_mail_servers,
)
from sandbox.pom_simulator import run_in_thread

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1800)]
POM_DAGS = ("pom_payment_requests", "pom_reconciliation", "payment_reference_expiry", "invoice_run", "invoice_mailing",
            "pom_delivery_report")


def _last_nightly_day() -> date:
    """The business day of mandate_execution's latest due run (05:00 Brussels): the scheduler starts that one
    as soon as the DAG is unpaused."""
    now = datetime.now(LOCAL_ZONE)
    return now.date() if now.hour >= 5 else now.date() - timedelta(days=1)


def _latest_run(client, dag_id: str, run_type: str, timeout: float = 120) -> str:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = client.get(f"/api/v2/dags/{dag_id}/dagRuns", params={"order_by": "-run_after", "limit": 5}).json()
        found = [r for r in runs.get("dag_runs") or [] if r["run_type"] == run_type
                 and r["state"] in ("queued", "running")]
        if found:
            return found[0]["dag_run_id"]
        time.sleep(1)
    raise AssertionError(f"no {run_type} run of {dag_id} after {timeout} s")


def _run(services: AirflowServices, user: str, dag_id: str, conf: dict | None = None) -> None:
    with services.client(user) as client:
        started = services.trigger(client, dag_id, conf or {})
        assert started.status_code == 200, started.text
        assert services.finished(client, dag_id, started.json()["dag_run_id"]) == "success", dag_id


ASSET_SCHEDULED = {"pain_export", "invoice_mailing"}  # no run of their own on unpause: they wait for an asset
SCHEDULED_RUN_GRACE = 90  # seconds the scheduler gets to start the latest due run of a DAG just unpaused


def _step(services: AirflowServices, dag_id: str, conf: dict | None = None) -> None:
    """Unpause ``dag_id`` (the scheduler then starts its latest due run, as in production), run it by hand with
    ``conf``, and wait until none of its runs is left: all of them must have succeeded."""
    begun = datetime.now(LOCAL_ZONE)
    services.unpause(dag_id)
    _run(services, "operator", dag_id, conf)
    _settle(services, dag_id, begun, scheduled=dag_id not in ASSET_SCHEDULED)


def _settle(services: AirflowServices, dag_id: str, since: datetime, timeout: float = 300, *,
            scheduled: bool = False) -> None:
    """Wait until every run of ``dag_id`` queued since ``since`` has ended, successfully.

    ``scheduled``: also wait (a while) for the scheduler's own run to have been made. A busy scheduler can
    make it after the run by hand ended; it must not then run later, on what the next step puts in place
    (a delivery report analysed as of the wall clock rather than as of POM's)."""
    started = time.monotonic()
    deadline = started + timeout
    with services.client("admin") as admin:
        while time.monotonic() < deadline:
            runs = admin.get(f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 50, "order_by": "-run_after"}).json()
            recent = [r for r in runs.get("dag_runs") or []
                      if datetime.fromisoformat(r["queued_at"] or r["run_after"]) >= since]
            waiting_for_scheduler = (scheduled and not any(r.get("run_type") == "scheduled" for r in recent)
                                     and time.monotonic() - started < SCHEDULED_RUN_GRACE)
            if not waiting_for_scheduler and all(r["state"] in ("success", "failed") for r in recent):
                assert all(r["state"] == "success" for r in recent), [(r["dag_run_id"], r["state"]) for r in recent]
                return
            time.sleep(1)
    raise AssertionError(f"runs of {dag_id} still going after {timeout} s")


def _clear_of_the_quarter_hour(services: AirflowServices, dag_id: str, margin: float = 120,
                               timeout: float = 120) -> None:
    """Wait until the DAG's scheduled run of the latest quarter hour has been made and has ended, first waiting
    out a boundary less than ``margin`` seconds away.

    The delivery reports are analysed by hand as of POM's clock, two days on. A scheduled run that comes after
    they land would analyse them first, as of the wall clock (runs queue by their time, and a scheduled run's
    time is its boundary). Unpaused just after a boundary, the scheduler makes the run of the boundary before
    and then, seconds later, the run of the one just passed: the reports must wait for both."""
    now = datetime.now(LOCAL_ZONE)
    latest = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    if (latest + timedelta(minutes=15) - now).total_seconds() < margin:
        time.sleep((latest + timedelta(minutes=15) - now).total_seconds() + 5)
        latest += timedelta(minutes=15)
    deadline = time.monotonic() + timeout
    with services.client("admin") as admin:
        while time.monotonic() < deadline:
            runs = admin.get(f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 50, "order_by": "-run_after"}).json()
            ran = [r for r in runs.get("dag_runs") or [] if r.get("run_type") == "scheduled" and r.get("logical_date")
                   and datetime.fromisoformat(r["logical_date"].replace("Z", "+00:00")) >= latest]
            if ran and all(r["state"] in ("success", "failed") for r in ran):
                assert all(r["state"] == "success" for r in ran), [(r["dag_run_id"], r["state"]) for r in ran]
                return
            time.sleep(1)
    raise AssertionError(f"no scheduled run of {dag_id} for {latest.isoformat()} after {timeout} s")


def _set_connection(services: AirflowServices, conn_id: str, connection: dict) -> None:
    """The Connection every worker reads (Airflow's metadata database, encrypted with the shared Fernet key)."""
    body = {"connection_id": conn_id, **connection, "extra": json.dumps(connection["extra"])}
    with services.client("admin") as admin:
        admin.delete(f"/api/v2/connections/{conn_id}")
        created = admin.post("/api/v2/connections", json=body)
        assert created.status_code in (200, 201), created.text


def _demo_figures(day: date, home: Path) -> dict:
    """``make demo`` for ``day`` on one machine (its own var/ and Airflow home): the cycle's figures it wrote."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AIRFLOW__", "INNEN_", "AIRFLOW_CONN_"))}
    root = Path(cluster.ROOT)
    env.update({"INNEN_ROOT": str(root), "PYTHONPATH": str(root), "AIRFLOW_HOME": str(home / "airflow"),
                "INNEN_VAR_DIR": str(home / "var"), "INNEN_DEMO_DATE": day.isoformat(),
                "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"), "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__AUTH_MANAGER": "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"})
    airflow = Path(sys.executable).parent / "airflow"
    for command in ([str(airflow), "db", "migrate"], [sys.executable, "-m", "sandbox.airflow_users"],
                    [sys.executable, str(root / "scripts" / "demo.py")]):
        done = subprocess.run(command, env=env, cwd=root, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((home / "var" / "demo" / "figures.json").read_text())


def test_the_nightly_direct_debit_cycle_runs_on_the_celery_workers(services: AirflowServices,
                                                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    from sandbox.demo_institution import load_demo, write_demo_statement

    engine = get_engine(services.env["INNEN_DB_URL"])
    Base.metadata.drop_all(engine)
    create_schema(engine)
    day = day_run = _last_nightly_day()
    with transaction(engine) as session:
        load_demo(session, day)
    shared = cluster.CLUSTER / "shared"
    for folder in ("outbox", "staging", "inbox", "archive", "reports", "invoices", "quarantine"):
        for path in (shared / folder).rglob("*") if (shared / folder).exists() else []:
            if path.is_file():
                path.unlink()
    logs_before = {worker: len(services.log(worker)) for worker in cluster.WORKERS}

    # Unpausing lets the scheduler start the latest nightly run of mandate_execution (the first time); the operator's
    # run for the same day finds nothing more to collect after it, or does the work itself.
    with services.client("admin") as admin:  # runs of an earlier check belong to the database emptied above
        for dag_id in ("mandate_execution", "pain_export", "camt053_import", *POM_DAGS):
            for state in ("queued", "running"):
                listed = admin.get(f"/api/v2/dags/{dag_id}/dagRuns", params={"state": state, "limit": 100}).json()
                for run in listed.get("dag_runs") or []:
                    admin.patch(f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}", json={"state": "failed"})
    with services.client("admin") as admin:  # unpaused one by one below, when their turn comes
        for dag_id in POM_DAGS:
            services.wait_for_dag(admin, dag_id)
            admin.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": True}).raise_for_status()
    services.unpause("pain_export", "camt053_import", "mandate_execution")
    with services.client("operator") as operator:
        started = services.trigger(operator, "mandate_execution", {"run_date": day.isoformat()})
        assert started.status_code == 200, started.text
        assert services.finished(operator, "mandate_execution", started.json()["dag_run_id"]) == "success"
    with services.client("finance") as finance:
        run_id = _latest_run(finance, "pain_export", "asset_triggered")  # started by mandate_execution's asset
        assert finance.get(f"/api/v2/dags/pain_export/dagRuns/{run_id}").json()["state"] in ("queued", "running")
        waiting = services.awaiting(finance, "pain_export", run_id, "bank_file.approve", count=2)
        for ti in waiting:  # nobody triggered the asset run: finance may approve both
            assert services.answer(finance, "pain_export", run_id, "bank_file.approve", ti["map_index"],
                                   "Approve", {"reason": None}).status_code == 200
        assert services.finished(finance, "pain_export", run_id) == "success"

    with transaction(engine, readonly=True) as session:
        runs = session.execute(select(CollectionRun, BankHub.code).join(BankHub, BankHub.id == CollectionRun.hub_id)).all()
        approvals = session.scalars(select(BankFileApproval)).all()
        assert sorted(hub for _run, hub in runs) == ["BELFIUS-SKA", "KBC-BIB"]
        assert all(run.status == "exported" and run.file_path.startswith(str(shared / "outbox")) for run, _ in runs)
        assert {a.status for a in approvals} == {"approved"} and {a.decided_by for a in approvals} == {"finance"}
        collected_on = next(run.collection_date for run, hub in runs if hub == "KBC-BIB")
        statement = write_demo_statement(session, shared / "inbox" / "camt053", collected_on)
    with services.client("operator") as operator:
        started = services.trigger(operator, "camt053_import", {})
        assert services.finished(operator, "camt053_import", started.json()["dag_run_id"]) == "success"
    with transaction(engine, readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(BankEntry)) > 40
    assert not statement.exists() and list((shared / "archive").rglob("*.xml"))

    # POM: requests, callbacks through the api-server, the reconciliation, expiry, invoices mailed, delivery reports.
    account = fresh_pom_account()
    with run_in_thread(accounts=[account]) as sim:
        connection = pom_connection(account, sim.base_url)
        _set_connection(services, "pom_default", connection)
        _step(services, "pom_payment_requests")
        by_callback, silent = pay_some(engine, sim.base_url)
        assert by_callback and silent
        _step(services, "pom_reconciliation")
        _step(services, "payment_reference_expiry")
        _step(services, "invoice_run", {"run_date": day_run.isoformat()})
        script_mail_servers(engine, sim.base_url)
        _step(services, "invoice_mailing", {"day": day_run.isoformat()})
        # The report's own schedule runs first on an empty inbox; then the reports land and are analysed as of
        # POM's clock, two days on (the demo's moment).
        _step(services, "pom_delivery_report", {})
        _clear_of_the_quarter_hour(services, "pom_delivery_report")
        os.environ["AIRFLOW_CONN_POM_DEFAULT"] = json.dumps(connection)  # this process fetches the reports
        try:
            with PomClients(accounts_from_env(["default"])) as clients:
                as_of = deliver_reports(engine, sim.base_url, clients.client("default"), shared / "inbox" / "pom_reports")
        finally:
            del os.environ["AIRFLOW_CONN_POM_DEFAULT"]
        _run(services, "operator", "pom_delivery_report", {"as_of": as_of})
    figures = cycle_figures(engine)
    assert figures["pom_events"].get("payment_request.paid") == by_callback, figures["pom_events"]
    assert figures["payments"]["pom"][0] == by_callback + silent, figures["payments"]
    assert figures["diagnoses"] and figures["invoices"]

    # the work was shared out: each worker ran tasks of this cycle
    for worker in cluster.WORKERS:
        assert "Task finished" in services.log(worker)[logs_before[worker]:] or \
            "succeeded" in services.log(worker)[logs_before[worker]:], worker

    # The same cycle on one machine (make demo, SQLite, in-process runs) leaves the same figures.
    expected = _demo_figures(day_run, tmp_path_factory.mktemp("demo"))
    differing = {key: {"cluster": figures.get(key), "demo": expected.get(key)}
                 for key in sorted(set(figures) | set(expected)) if figures.get(key) != expected.get(key)}
    assert not differing, json.dumps(differing, indent=1, sort_keys=True)
