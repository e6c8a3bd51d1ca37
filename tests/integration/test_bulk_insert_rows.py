"""include.finance.bulk.insert_rows on SQLite and PostgreSQL: every tuple in, in order, each value as its type binds it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import JSON, Column, DateTime, Integer, MetaData, String, Table, select
from sqlalchemy.engine import Engine

from include.finance.bulk import CHUNK, ROWS_PER_STATEMENT, insert_rows
from include.finance.db import transaction
from include.finance.models import Money

T0 = datetime(2026, 3, 16, 7, 0, tzinfo=timezone.utc)
ROWS = CHUNK + 3 * ROWS_PER_STATEMENT + 7  # a full chunk, then whole statements and a rest of single rows

table = Table(
    "bulk_insert_rows_test", MetaData(),
    Column("id", Integer, primary_key=True, autoincrement=False), Column("batch", String(20)),
    Column("at", DateTime(timezone=True)), Column("amount", Money), Column("extra", JSON),
)


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc))


def test_every_row_goes_in_as_its_types_bind_it(engine: Engine) -> None:
    table.create(engine)
    times = [T0 + timedelta(minutes=n) for n in range(5)]  # repeated down the rows: each converted once
    rows = [(n, times[n % 5] if n % 7 else None, Decimal(n).scaleb(-2), {"n": n} if n % 3 == 0 else None)
            for n in range(ROWS)]
    with transaction(engine) as session:
        # A generator, and a fixed value that needs quoting in SQL.
        written = insert_rows(session, table, ("id", "at", "amount", "extra"), (row for row in rows),
                              fixed={"batch": "O'Brien"})
        insert_rows(session, table, ("id", "at", "amount", "extra"), [(ROWS, T0, Decimal("1.50"), [1, 2])],
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
        assert insert_rows(session, table, ("id",), iter(())) == 0
        count = session.execute(select(table.c.id)).all()
    table.drop(engine)
    assert count == []
