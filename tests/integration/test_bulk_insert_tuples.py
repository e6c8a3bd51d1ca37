"""include.finance.bulk.insert_tuples on SQLite and PostgreSQL: every tuple in, in order, each value as its type binds it."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import JSON, Column, DateTime, Integer, MetaData, String, Table, select
from sqlalchemy.engine import Engine

from include.finance import bulk
from include.finance.bulk import CHUNK, ROWS_PER_STATEMENT, insert_tuples
from include.finance.db import transaction
from include.finance.models import AuditLog, DebtLine, EndUser, FinancialSystem, Money

T0 = datetime(2026, 3, 16, 7, 0, tzinfo=timezone.utc)
ROWS = CHUNK + 3 * ROWS_PER_STATEMENT + 7  # a full chunk, then whole statements and a rest of single rows

table = Table(
    "bulk_insert_tuples_test", MetaData(),
    Column("id", Integer, primary_key=True, autoincrement=False), Column("batch", String(20)),
    Column("at", DateTime(timezone=True)), Column("amount", Money), Column("extra", JSON),
)


def _utc(moment: datetime | None) -> datetime | None:
    """SQLite gives timestamps back without their zone (they are stored in UTC)."""
    return None if moment is None else (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc))


def test_every_row_goes_in_as_its_types_bind_it(engine: Engine) -> None:
    table.create(engine)
    times = [T0 + timedelta(minutes=n) for n in range(5)]  # repeated down the rows: each converted once
    rows = [(n, times[n % 5] if n % 7 else None, Decimal(n).scaleb(-2), {"n": n} if n % 3 == 0 else None)
            for n in range(ROWS)]
    with transaction(engine) as session:
        # A generator, and a fixed value that needs quoting in SQL.
        written = insert_tuples(session, table, ("id", "at", "amount", "extra"), (row for row in rows),
                                fixed={"batch": "O'Brien"})
        insert_tuples(session, table, ("id", "at", "amount", "extra"), [(ROWS, T0, Decimal("1.50"), [1, 2])],
                      fixed={"batch": "B2"})
    with transaction(engine, readonly=True) as session:
        stored = session.execute(select(table.c.id, table.c.batch, table.c.at, table.c.amount, table.c.extra)
                                 .order_by(table.c.id)).all()
    table.drop(engine)

    assert written == ROWS
    assert [(n, batch, _utc(at), amount, extra) for n, batch, at, amount, extra in stored] == [
        (n, "O'Brien", at, amount, extra) for n, at, amount, extra in rows] + [(ROWS, "B2", T0, Decimal("1.50"), [1, 2])]


def test_nothing_to_insert(engine: Engine) -> None:
    table.create(engine)
    with transaction(engine) as session:
        assert insert_tuples(session, table, ("id",), iter(())) == 0
        count = session.execute(select(table.c.id)).all()
    table.drop(engine)
    assert count == []


def test_the_application_tables_types_bind_every_value(engine, monkeypatch) -> None:
    # Small chunks of a few two-row statements and a single row: one conversion memory across them.
    monkeypatch.setattr(bulk, "CHUNK", 5)
    monkeypatch.setattr(bulk, "ROWS_PER_STATEMENT", 2)
    with transaction(engine) as session:
        session.add(FinancialSystem(id=1, code="BIB", name="Bib"))
        session.add(EndUser(id=1, eloi="e:T:1", first_name="Zoë", last_name="Name 1"))
    amount = Decimal("12.50")
    with transaction(engine) as session:
        written = insert_tuples(
            session, DebtLine.__table__, ("id", "financial_system_id", "end_user_id", "transaction_code", "amount",
                                          "open_amount", "created_on", "reversed_at"),
            ((n, 1, 1, "LID", amount, Decimal(n), date(2026, 3, n), T0 if n == 4 else None) for n in range(1, 8)))
        insert_tuples(session, AuditLog.__table__, ("entity", "entity_id", "action", "after", "actor", "at"),
                      [("debt_line", n, "created", {"amount": amount, "ids": (n, n + 1)}, "test", T0) for n in (1, 2)])
    with transaction(engine, readonly=True) as session:
        lines = session.scalars(select(DebtLine).order_by(DebtLine.id)).all()
        audits = session.scalars(select(AuditLog).order_by(AuditLog.id)).all()
    assert written == 7
    assert [(line.id, line.amount, line.open_amount, line.created_on) for line in lines] == [
        (n, Decimal("12.50"), Decimal(f"{n}.00"), date(2026, 3, n)) for n in range(1, 8)]
    assert [_utc(line.reversed_at) for line in lines] == [None, None, None, T0, None, None, None]
    assert [audit.after for audit in audits] == [{"amount": "12.50", "ids": [1, 2]}, {"amount": "12.50", "ids": [2, 3]}]
    assert [_utc(audit.at) for audit in audits] == [T0, T0]
