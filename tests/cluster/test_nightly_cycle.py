"""The nightly cycle on the cluster of ``make cluster`` (Celery workers, PostgreSQL, Redis), through its scheduler.

Run by ``make cluster-check`` (``pytest -m cluster``), not by ``make test``: it needs the running cluster. The
cluster's Innen database is emptied and loaded with the demo institution; then, as in production, operators
run ``mandate_execution``, its asset starts ``pain_export``, finance approves both files, and a statement is
imported. The assertions read the cluster's PostgreSQL and its shared storage.
"""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from include.finance.db import create_schema, get_engine, transaction
from include.finance.models import Base, BankEntry, BankFileApproval, BankHub, CollectionRun
from include.runtime import LOCAL_ZONE
from sandbox import cluster
from sandbox.airflow_services import AirflowServices

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]


def _last_nightly_day() -> date:
    """The business day of mandate_execution's latest due run (05:00 Brussels): the scheduler starts that one
    as soon as the DAG is unpaused."""
    now = datetime.now(LOCAL_ZONE)
    return now.date() if now.hour >= 5 else now.date() - timedelta(days=1)


@pytest.fixture(scope="module")
def services() -> AirflowServices:
    state = cluster.CLUSTER / "state.json"
    if not state.exists():
        pytest.fail("no cluster is running: make cluster (make cluster-check starts it)")
    home = cluster.CLUSTER / "airflow"
    env = cluster.deploy_env(cluster.cluster_values())
    return AirflowServices(home, cluster.API_PORT, env, json.loads((home / "innen-demo-users.json").read_text()))


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


def test_the_nightly_direct_debit_cycle_runs_on_the_celery_workers(services: AirflowServices) -> None:
    from sandbox.demo_institution import load_demo, write_demo_statement

    engine = get_engine(services.env["INNEN_DB_URL"])
    Base.metadata.drop_all(engine)
    create_schema(engine)
    day = _last_nightly_day()
    with transaction(engine) as session:
        load_demo(session, day)
    shared = cluster.CLUSTER / "shared"
    for folder in ("outbox", "staging", "inbox", "archive"):
        for path in (shared / folder).rglob("*") if (shared / folder).exists() else []:
            if path.is_file():
                path.unlink()
    logs_before = {worker: len(services.log(worker)) for worker in cluster.WORKERS}

    # Unpausing lets the scheduler start the latest nightly run of mandate_execution (the first time); the operator's
    # run for the same day finds nothing more to collect after it, or does the work itself.
    with services.client("admin") as admin:  # runs of an earlier check belong to the database emptied above
        for dag_id in ("mandate_execution", "pain_export", "camt053_import"):
            for state in ("queued", "running"):
                listed = admin.get(f"/api/v2/dags/{dag_id}/dagRuns", params={"state": state, "limit": 100}).json()
                for run in listed.get("dag_runs") or []:
                    admin.patch(f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}", json={"state": "failed"})
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
        day = next(run.collection_date for run, hub in runs if hub == "KBC-BIB")
        statement = write_demo_statement(session, shared / "inbox" / "camt053", day)
    with services.client("operator") as operator:
        started = services.trigger(operator, "camt053_import", {})
        assert services.finished(operator, "camt053_import", started.json()["dag_run_id"]) == "success"
    with transaction(engine, readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(BankEntry)) > 40
    assert not statement.exists() and list((shared / "archive").rglob("*.xml"))
    # the work was shared out: each worker ran tasks of this cycle
    for worker in cluster.WORKERS:
        assert "Task finished" in services.log(worker)[logs_before[worker]:] or \
            "succeeded" in services.log(worker)[logs_before[worker]:], worker
