"""PostgreSQL restarted while a statement is being booked: the task fails cleanly, and its retry books it all once.

A server of its own (the session's is shared with other tests). The import is held inside its transaction
(after its statement is decided and written, before the commit) while the server restarts as after a crash.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from include.finance.db import create_schema, get_engine, transaction
from include.finance.models import BankEntry, BankStatement, Payment, PaymentReference
from include.finance.reference_numbers import ogm
from include.sepa import camt_import
from include.sepa.statement_files import import_statement_file
from sandbox.camt_writer import Entry, Tx, write_camt053
from sandbox.throwaway_postgres import PostgresCluster
from tests.factories import make_institution, make_reference, make_user

DAY = date(2026, 11, 24)
REFERENCES = 200


@pytest.fixture
def server() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    cluster.start()
    admin = create_engine(cluster.url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("CREATE DATABASE innen"))
    admin.dispose()
    yield cluster
    cluster.stop()


def _import_held_in_its_transaction(url: str, path: str, holding, restarted, results) -> None:  # type: ignore[no-untyped-def]
    decide_and_write = camt_import._Import._statement

    def then_wait(self, statement):  # type: ignore[no-untyped-def]
        result = decide_and_write(self, statement)
        holding.set()
        restarted.wait(60)  # the server restarts under this open transaction
        return result

    camt_import._Import._statement = then_wait
    try:
        import_statement_file(Path(path), "worker-1", engine=get_engine(url))
        results.put(("imported", ""))
    except Exception as error:  # noqa: BLE001 - what the task would fail with
        results.put((type(error).__name__, str(error)[:200]))


def test_a_restart_during_an_import_fails_the_task_and_the_retry_books_each_entry_once(
        server: PostgresCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INNEN_VAR_DIR", str(tmp_path / "var"))
    url = server.url("innen")
    engine = get_engine(url)
    create_schema(engine)
    with transaction(engine) as session:
        inst = make_institution(session)
        user = make_user(session)
        for n in range(1, REFERENCES + 1):
            make_reference(session, inst, user, ("12.50",), number=n)
        account = inst.hub.creditor_iban
    inbox = tmp_path / "var" / "inbox" / "camt053"
    inbox.mkdir(parents=True)
    path = inbox / "statement.xml"
    entries = [Entry(True, DAY, (Tx(Decimal("12.50"), structured_reference=ogm("062", n), account_servicer_ref=f"R{n}"),))
               for n in range(1, REFERENCES + 1)]
    write_camt053(path, account_iban=account, statement_id="2026-330", electronic_seq=330,
                  created_at=datetime(2026, 11, 25, 6, tzinfo=timezone.utc), from_date=DAY, to_date=DAY,
                  opening_balance=Decimal("1000.00"), entries=entries)
    engine.dispose()

    context = multiprocessing.get_context("fork")
    holding, restarted, results = context.Event(), context.Event(), context.Queue()
    worker = context.Process(target=_import_held_in_its_transaction, args=(url, str(path), holding, restarted, results))
    worker.start()
    assert holding.wait(60), "the import never reached its commit"
    server.restart()
    restarted.set()
    worker.join(60)
    failure, message = results.get(timeout=5)
    assert failure == "OperationalError", (failure, message)  # the task fails, with the database's own error
    assert path.exists() and not list((tmp_path / "var").rglob("quarantine/*"))  # not refused: left for the retry
    with transaction(engine, readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(BankStatement)) == 0  # nothing of it was kept

    retried = import_statement_file(path, "worker-2", engine=engine)  # Airflow's retry, on the other worker
    assert retried["status"] == "imported" and retried["outcomes"] == {"paid": REFERENCES}
    with transaction(engine, readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(BankEntry)) == REFERENCES
        assert session.scalar(select(func.count()).select_from(Payment)) == REFERENCES
        assert set(session.scalars(select(PaymentReference.status))) == {"paid"}
    assert not path.exists()  # archived
    engine.dispose()
