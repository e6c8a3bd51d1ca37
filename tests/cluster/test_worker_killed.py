"""A Celery worker killed (SIGKILL) in the middle of a task: Airflow's retry runs on the other worker and leaves the
same database as an undisturbed run of the same input.

Run by ``make cluster-check`` on the cluster of ``make cluster``. The worker is killed as a lost machine would take it:
the Celery worker with its pool, the task's supervisor and the task process itself
(:func:`sandbox.cluster.kill_worker`).
Nothing tells the scheduler: the task instance stays ``running`` until its heartbeat is missing for
``[scheduler] task_instance_heartbeat_timeout`` (60 s in ``deploy/airflow.env``), then it is failed and, having
retries left, tried again after its retry delay on the worker still alive. The killed worker is started again
afterwards (:func:`sandbox.cluster.restart_worker`), so the cluster is whole for the tests after this one.

* **Statement import**: a statement of a few thousand credit transfers against as many open references, killed while
  ``camt053_import``'s import holds its one transaction open with rows written (PostgreSQL shows the connection with
  a transaction id). The same file imported in-process into a fresh database is the undisturbed run.
* **POM create**: ``pom_payment_requests`` for the demo institution against the POM simulator, killed while one
  request is journalled ``creating`` and POM has made it but not yet answered (the simulator holds the answer). The
  same sync in-process into a fresh database, against a simulator of its own, is the undisturbed run.

The assertions compare the two databases' rows (and the two simulators' records), not log lines.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import time
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import Engine, func, select, text

from include.finance.bulk import insert_many
from include.finance.db import create_schema, get_engine, transaction
from include.finance.models import (
    AuditLog,
    BankEntry,
    BankStatement,
    Base,
    ControlListItem,
    DebtLine,
    EndUser,
    Payment,
    PaymentAllocation,
    PaymentReference,
    PaymentReferenceLine,
    PomPaymentRequest,
)
from include.finance.names import name_key
from include.finance.reference_numbers import ogm
from include.pom.accounts import PomClients, accounts_from_env
from include.pom.payment_requests import sync_payment_requests
from include.runtime import LOCAL_ZONE
from include.sepa.statement_files import import_statement_file
from sandbox import cluster
from sandbox.airflow_services import AirflowServices
from sandbox.camt_writer import Entry, Tx, write_camt053
from sandbox.demo_cycle import fresh_pom_account, pom_connection
from sandbox.demo_institution import FIRST_NAMES, LAST_NAMES, load_demo
from sandbox.pom_simulator import RunningSimulator, run_in_thread
from tests.factories import make_institution

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1800)]

STATEMENT_DAY = date(2026, 11, 24)
REFERENCES = 12_000  # the import's transaction then stays open for seconds: time to see it and kill the worker
# Heartbeat timeout (60 s) + the scheduler's check (10 s) + the retry delay (camt053_import 2 min, POM 1-2 min) + the
# task itself, on a busy machine.
RETRY_WITHIN = 600


# --- the cluster, as the test drives it --------------------------------------------------------------------------


def _trigger(services: AirflowServices, user: str, dag_id: str, conf: dict[str, Any]) -> str:
    with services.client(user) as client:
        started = services.trigger(client, dag_id, conf)
        assert started.status_code == 200, started.text
        return started.json()["dag_run_id"]


def _task_instance(client: httpx.Client, dag_id: str, run_id: str, task_id: str, map_index: int) -> dict[str, Any]:
    path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}"
    answer = client.get(path + (f"/{map_index}" if map_index >= 0 else ""))
    return answer.json() if answer.status_code == 200 else {}


def _tries(client: httpx.Client, dag_id: str, run_id: str, task_id: str, map_index: int) -> list[dict[str, Any]]:
    path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}"
    answer = client.get(path + (f"/{map_index}" if map_index >= 0 else "") + "/tries")
    answer.raise_for_status()
    return sorted(answer.json()["task_instances"], key=lambda t: t["try_number"])


def _running_worker(services: AirflowServices, dag_id: str, run_id: str, task_id: str, map_index: int,
                    try_number: int, timeout: float) -> str:
    """Wait until try ``try_number`` of the task runs; the worker it runs on (by the process its instance records)."""
    deadline = time.monotonic() + timeout
    seen: dict[str, Any] = {}
    with services.client("admin") as admin:
        while time.monotonic() < deadline:
            seen = _task_instance(admin, dag_id, run_id, task_id, map_index)
            if seen.get("state") == "running" and seen.get("try_number") == try_number and seen.get("pid"):
                # One machine: the hostname names it for both workers; the process id says which worker.
                assert seen["hostname"] in (socket.getfqdn(), socket.gethostname()), seen["hostname"]
                worker = cluster.worker_of(int(seen["pid"]))
                if worker is not None:
                    return worker
            if seen.get("state") in ("success", "failed") and seen.get("try_number", 0) >= try_number:
                raise AssertionError(f"{task_id} try {try_number} ended before it was seen running: {seen}")
            time.sleep(0.05)
    raise AssertionError(f"{dag_id} {run_id} {task_id}: try {try_number} not running after {timeout} s: {seen}")


def _wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"not {what} after {timeout} s")


def _quiet(services: AirflowServices, dag_id: str, timeout: float = 300) -> None:
    """Unpaused, with no run of ``dag_id`` queued or running (a scheduled run the unpause started is over)."""
    services.unpause(dag_id)
    time.sleep(3)  # the scheduler's next loops create the latest due run, if any
    deadline = time.monotonic() + timeout
    with services.client("admin") as admin:
        while time.monotonic() < deadline:
            busy = [run for state in ("queued", "running") for run in
                    admin.get(f"/api/v2/dags/{dag_id}/dagRuns", params={"state": state}).json().get("dag_runs") or []]
            if not busy:
                return
            time.sleep(1)
    raise AssertionError(f"runs of {dag_id} still going after {timeout} s")


def _kill_and_retry(services: AirflowServices, dag_id: str, run_id: str, task_id: str, map_index: int,
                    moment: Callable[[], bool], timeout: float) -> tuple[str, str]:
    """Kill the worker running ``task_id`` once ``moment()`` is true; wait for the run to succeed after a retry.

    Returns (worker killed, worker of the retry). The killed worker is started again in any case."""
    killed = _running_worker(services, dag_id, run_id, task_id, map_index, 1, timeout)
    try:
        _wait_for(moment, timeout, "at the moment to kill the worker")
        cluster.kill_worker(killed)
        retried_on = _running_worker(services, dag_id, run_id, task_id, map_index, 2, RETRY_WITHIN)
        with services.client("admin") as admin:
            assert services.finished(admin, dag_id, run_id, timeout=RETRY_WITHIN) == "success", \
                services.task_logs(dag_id, run_id)
            tries = _tries(admin, dag_id, run_id, task_id, map_index)
    finally:
        cluster.restart_worker(killed)
    assert [t["state"] for t in tries] == ["failed", "success"], tries  # the killed try, then Airflow's retry
    return killed, retried_on


# --- what the two databases must agree on -------------------------------------------------------------------------


def _digest(rows: Any) -> str:
    return hashlib.sha256(repr(sorted(rows)).encode()).hexdigest()[:16]


def _ledger(engine: Engine) -> dict[str, Any]:
    """Counts and sums per kind of row, and a digest of the rows themselves (no ids, times or actors)."""
    with transaction(engine, readonly=True) as session:
        def rows(*columns: Any, where: Any = None) -> list[tuple[Any, ...]]:
            query = select(*columns)
            return [tuple(row) for row in session.execute(query if where is None else query.where(where))]

        entries = rows(BankEntry.entry_key, BankEntry.amount, BankEntry.outcome, BankEntry.reference,
                       BankEntry.payment_reference_id)
        payments = rows(PaymentReference.loi, Payment.amount, Payment.source, BankEntry.entry_key,
                        where=(PaymentReference.id == Payment.payment_reference_id)
                        & (BankEntry.id == Payment.bank_entry_id))
        allocations = rows(PaymentAllocation.debt_line_id, PaymentAllocation.amount)
        references = rows(PaymentReference.loi, PaymentReference.status, PaymentReference.open_amount)
        debt = rows(DebtLine.id, DebtLine.open_amount)
        items = rows(ControlListItem.kind, ControlListItem.amount, ControlListItem.reason)
        audits = rows(AuditLog.entity, AuditLog.action)
        return {
            "statements": session.scalar(select(func.count()).select_from(BankStatement)),
            "entries": _per(entries, 2, 1), "entries_rows": _digest(entries),
            "payments": _per(payments, 2, 1), "payments_rows": _digest(payments),
            "allocations": (len(allocations), sum((a for _, a in allocations), Decimal(0))),
            "allocations_rows": _digest(allocations),
            "references": _per(references, 1, 2), "references_rows": _digest(references),
            "debt_open": sum((a for _, a in debt), Decimal(0)), "debt_rows": _digest(debt),
            "control_list": _per(items, 0, 1), "control_list_rows": _digest(
                (kind, amount, reason) for kind, amount, reason in items),
            "audit": dict(Counter(f"{entity}/{action}" for entity, action in audits)),
        }


def _per(rows: list[tuple[Any, ...]], key: int, amount: int) -> dict[str, tuple[int, Decimal]]:
    """(count, total of column ``amount``) per value of column ``key``."""
    totals: dict[str, tuple[int, Decimal]] = {}
    for row in rows:
        count, total = totals.get(str(row[key]), (0, Decimal(0)))
        totals[str(row[key])] = (count + 1, total + (row[amount] or Decimal(0)))
    return dict(sorted(totals.items()))


# --- (a) a statement import -------------------------------------------------------------------------------------


def _amount(n: int) -> Decimal:
    """Reference ``n``'s open amount (a multiplicative hash: varied, and the same in both databases)."""
    k = (n * 2654435761) % 4294967296
    return Decimal(150 + k % 4_850 if k % 10 else 2_000 + k % 16_000).scaleb(-2)


def _open_references(engine: Engine, count: int, account: str | None = None) -> str:
    """One library (its hub's account ``account``, else a new one) with ``count`` end users each owing one line on
    one sealed OGM reference; the account."""
    with transaction(engine) as session:
        inst = make_institution(session, **({"creditor_iban": account} if account else {}))
        sealed = datetime(2026, 11, 2, 9, tzinfo=timezone.utc)
        common = {"financial_system_id": inst.system.id}
        first = 1000  # above what make_institution took
        ids = range(first, first + count)
        names = [(FIRST_NAMES[n % len(FIRST_NAMES)], LAST_NAMES[(n // 7) % len(LAST_NAMES)]) for n in ids]
        insert_many(session, EndUser.__table__, (
            {"id": n, "eloi": f"e:K:{n}", "first_name": first_name, "last_name": last_name,
             "name_key": name_key(f"{first_name} {last_name}"), "language": "nl"}
            for n, (first_name, last_name) in zip(ids, names, strict=True)))
        insert_many(session, PaymentReference.__table__, (
            {**common, "id": n, "loi": f"fp:BIB:{n}", "type_id": inst.recurring.id, "end_user_id": n,
             "status": "sealed", "amount": _amount(n), "open_amount": _amount(n), "reference_number": ogm("062", n),
             "created_at": sealed, "sealed_at": sealed} for n in ids))
        insert_many(session, DebtLine.__table__, (
            {**common, "id": n, "end_user_id": n, "transaction_code": "LID", "description": "Lidgeld",
             "amount": _amount(n), "open_amount": _amount(n), "created_on": date(2026, 11, 1),
             "payment_reference_id": n} for n in ids))
        insert_many(session, PaymentReferenceLine.__table__, (
            {"id": n, "payment_reference_id": n, "debt_line_id": n, "transaction_code": "LID", "amount": _amount(n)}
            for n in ids))
        return inst.hub.creditor_iban


def _statement(path: Path, account: str, count: int) -> dict[str, int]:
    """Credit transfers for the references: most pay in full, some in part, some too much, some name no reference of
    ours, and a few pay a reference a second time (closed by then); the mix it should give."""
    entries, mix = [], Counter()
    for i, n in enumerate(range(1000, 1000 + count)):
        amount, kind = _amount(n), "paid"
        if i % 25 == 3:
            amount, kind = (amount / 2).quantize(Decimal("0.01")), "partial"
        elif i % 30 == 7:
            amount, kind = amount + Decimal("5.00"), "overpaid"
        reference = ogm("062", n) if i % 40 != 11 else ogm("099", n)
        entries.append(Entry(True, STATEMENT_DAY, (Tx(amount, structured_reference=reference,
                                                      counterparty_name=f"Payer {n}", account_servicer_ref=f"K{n}"),)))
        mix["unknown" if i % 40 == 11 else kind] += 1
        if i % 500 == 9:  # paid again
            entries.append(Entry(True, STATEMENT_DAY, (Tx(_amount(n), structured_reference=ogm("062", n),
                                                          account_servicer_ref=f"K{n}-again"),)))
            mix["again"] += 1
    write_camt053(path, account_iban=account.replace(" ", ""), statement_id="2026-330", electronic_seq=330,
                  created_at=datetime(2026, 11, 25, 6, tzinfo=timezone.utc), from_date=STATEMENT_DAY,
                  to_date=STATEMENT_DAY, opening_balance=Decimal("1000.00"), entries=entries)
    return dict(mix)


def _import_transaction_open(engine: Engine) -> Callable[[], bool]:
    """True while another connection to Innen's database holds a transaction that has written (has a transaction id)."""
    def open_with_writes() -> bool:
        with engine.connect() as connection:
            return bool(connection.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL")).scalar())
    return open_with_writes


def test_a_worker_killed_during_a_statement_import_leaves_what_an_undisturbed_import_leaves(
        services: AirflowServices, undisturbed: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = get_engine(services.env["INNEN_DB_URL"])
    Base.metadata.drop_all(engine)
    create_schema(engine)
    account = _open_references(engine, REFERENCES)
    _open_references(undisturbed, REFERENCES, account)
    shared = cluster.CLUSTER / "shared"
    folder = shared / "inbox" / "camt053" / "killed"  # a subfolder: the scheduled imports take the inbox's own files
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    statement = folder / "KILLED_2026-330.xml"
    mix = _statement(tmp_path / statement.name, account, REFERENCES)
    shutil.copyfile(tmp_path / statement.name, statement)

    # Undisturbed: the same file imported in-process into the fresh database.
    monkeypatch.setenv("INNEN_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("INNEN_STORAGE_URL", raising=False)
    started = time.monotonic()
    alone = import_statement_file(tmp_path / statement.name, "undisturbed", engine=undisturbed)
    seconds_alone = time.monotonic() - started
    assert alone["status"] == "imported"
    expected = _ledger(undisturbed)
    assert expected["entries"]["paid"][0] == mix["paid"] and expected["statements"] == 1, (expected, mix)

    _quiet(services, "camt053_import")
    run_id = _trigger(services, "operator", "camt053_import", {"path": str(statement)})
    killed, retried_on = _kill_and_retry(services, "camt053_import", run_id, "import_file", 0,
                                         _import_transaction_open(engine), timeout=300)
    assert retried_on != killed
    assert not statement.exists() and list((shared / "archive").rglob(statement.name))  # archived once, by the retry
    got = _ledger(engine)
    print(f"import alone {seconds_alone:.1f} s; killed {killed}, retried on {retried_on}; {got['entries']}")
    assert got == expected


# --- (b) a POM create -------------------------------------------------------------------------------------------


def _pom_rows(engine: Engine, sim: RunningSimulator) -> dict[str, Any]:
    """Innen's POM requests per reference (the simulator's address taken out of what it hands back)."""
    with transaction(engine, readonly=True) as session:
        rows = session.execute(
            select(PaymentReference.loi, PomPaymentRequest.account, PomPaymentRequest.pom_id,
                   PomPaymentRequest.idempotency_key, PomPaymentRequest.amount, PomPaymentRequest.communication,
                   PomPaymentRequest.due_date, PomPaymentRequest.status, PomPaymentRequest.qr_id,
                   PomPaymentRequest.qr_payload, PomPaymentRequest.pay_url, PomPaymentRequest.qr_svg.is_not(None),
                   PomPaymentRequest.qr_created_at.is_not(None), PomPaymentRequest.created_at,
                   PomPaymentRequest.updated_at, PomPaymentRequest.cancelled_reason)
            .join(PaymentReference, PaymentReference.id == PomPaymentRequest.payment_reference_id)
            .order_by(PaymentReference.loi)).all()
        audits = session.execute(select(AuditLog.action, func.count()).where(AuditLog.entity == "pom_payment_request")
                                 .group_by(AuditLog.action)).all()
    return {loi: tuple(str(v).replace(sim.base_url, "<pom>") if isinstance(v, str) else v for v in rest)
            for loi, *rest in rows} | {"per_reference": dict(Counter(Counter(r[0] for r in rows).values())),
                                       "audit": dict(audits)}


def _simulator_record(sim: RunningSimulator) -> dict[str, Any]:
    """What the simulator made: requests per reference, and each request's amount, communication and status."""
    with sim.state.lock:
        made = [(r.reference, r.id, r.amount, r.communication, r.due_date, r.description, r.auto_cancel,
                 r.return_url, r.callback_url, r.status) for r in sim.state.requests.values()]
    return {"requests": len(made), "per_reference": dict(Counter(Counter(m[0] for m in made).values())),
            "rows": sorted(made)}


def test_a_worker_killed_during_a_pom_create_leaves_what_an_undisturbed_sync_leaves(
        services: AirflowServices, undisturbed: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = get_engine(services.env["INNEN_DB_URL"])
    Base.metadata.drop_all(engine)
    create_schema(engine)
    _quiet(services, "pom_payment_requests")  # an empty database: a scheduled run the unpause starts does nothing
    day = datetime.now(LOCAL_ZONE).date()
    for target in (engine, undisturbed):
        with transaction(target) as session:
            load_demo(session, day)
    as_of = datetime.now(timezone.utc).replace(microsecond=0)  # both syncs act as of the same moment
    monkeypatch.setenv("INNEN_PUBLIC_URL", services.env["INNEN_PUBLIC_URL"])  # the same callback and return URLs
    account = fresh_pom_account()

    with run_in_thread(accounts=[account]) as alone_sim:
        environ = {"AIRFLOW_CONN_POM_DEFAULT": json.dumps(pom_connection(account, alone_sim.base_url))}
        with PomClients(accounts_from_env(["default"], environ)) as clients:
            summary = sync_payment_requests(undisturbed, clients, "undisturbed", as_of)
        expected, expected_sim = _pom_rows(undisturbed, alone_sim), _simulator_record(alone_sim)
    made = summary.counts["created"]
    assert made > 20 and expected["per_reference"] == {1: made} and expected_sim["requests"] == made, summary

    with run_in_thread(accounts=[account]) as sim:
        connection = pom_connection(account, sim.base_url)
        body = {"connection_id": "pom_default", **connection, "extra": json.dumps(connection["extra"])}
        with services.client("admin") as admin:
            admin.delete("/api/v2/connections/pom_default")
            assert admin.post("/api/v2/connections", json=body).status_code in (200, 201)
        run_id = _trigger(services, "operator", "pom_payment_requests", {"as_of": as_of.isoformat()})
        hold_after = made // 3

        def held_while_creating() -> bool:
            """Once a third of the requests are made, POM holds its answer to the next create (made at POM, the
            client not yet told; the task waits for it): the moment to kill, while Innen's row is still ``creating``."""
            with sim.state.lock:
                created = len(sim.state.requests)
                latest = sim.state.requests[f"pr_{created:06d}"].reference if created else None
                holding = bool(sim.state.faults)
            if not held:
                if created >= hold_after:
                    httpx.post(f"{sim.base_url}/_sim/faults", json={
                        "path_contains": "/payment-requests", "method": "POST", "kind": "timeout", "times": 1,
                        "seconds": 30}).raise_for_status()  # beyond the client's 10 s: the answer never reaches it
                    held.append(created)
                return False
            if holding or created <= held[0]:
                return False
            with transaction(engine, readonly=True) as session:  # journalled before POM was asked, not yet answered
                return session.scalar(select(PomPaymentRequest.status).join(
                    PaymentReference, PaymentReference.id == PomPaymentRequest.payment_reference_id)
                    .where(PaymentReference.loi == latest)) == "creating"

        held: list[int] = []
        killed, retried_on = _kill_and_retry(services, "pom_payment_requests", run_id, "sync_requests", -1,
                                             held_while_creating, timeout=300)
        got, got_sim = _pom_rows(engine, sim), _simulator_record(sim)
        creates = httpx.get(f"{sim.base_url}/_sim/hits", params={"path_contains": "/payment-requests",
                                                                 "method": "POST"}).json()
    assert retried_on != killed and held
    # POM made each request once; the retry asked again for the one whose answer was lost, with its key, and got it
    assert creates["statuses"] == {"201": made, "200": 1}, creates
    assert got_sim == expected_sim
    assert got == expected
