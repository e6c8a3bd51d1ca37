"""Staging for set-based writes (include/finance/bulk.py, the camt.053 import's block), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, literal, select
from sqlalchemy.exc import SQLAlchemyError

from include.finance import bulk
from include.finance.bulk import as_json, copy_tuples, id_reserver, restage, staged, update_from
from include.finance.db import transaction
from include.finance.models import AuditLog, Money

TARGET = Table("bulk_target", MetaData(), Column("id", Integer, primary_key=True),
               Column("amount", Money), Column("note", String(40)))


@pytest.fixture
def target(engine):  # type: ignore[no-untyped-def]
    TARGET.create(engine)
    yield TARGET
    TARGET.drop(engine)


def test_a_staged_table_holds_its_rows_for_joins_and_is_gone_afterwards(engine) -> None:
    columns = {"number": String(40), "amount": Money()}
    with transaction(engine) as session:
        first = [("062000000157", Decimal("30.00")), ("062000000258", None)]
        with staged(session, "camt_test", columns, first) as table:
            copy_tuples(session, table, list(columns), [("RF18539007547034", Decimal("0.5"))])
            rows = session.execute(select(table.c.number, table.c.amount).order_by(table.c.number)).all()
        assert rows == [*first, ("RF18539007547034", Decimal("0.50"))]
        with staged(session, "camt_test", columns) as again:  # the name is free again
            assert session.execute(select(again.c.number)).all() == []


def test_a_staged_tables_key_refuses_a_value_twice(engine) -> None:
    with pytest.raises(SQLAlchemyError):
        with transaction(engine) as session:
            with staged(session, "camt_test", {"number": String(40)}, [("A",), ("A",)]):
                pass


def test_restaging_replaces_what_was_staged(engine) -> None:
    with transaction(engine) as session:
        with staged(session, "camt_test", {"entry_key": String(200)}, [("tx:1",), ("tx:2",)]) as table:
            restage(session, table, [("tx:3",)])
            assert session.scalars(select(table.c.entry_key)).all() == ["tx:3"]


@pytest.mark.parametrize("rows_per_update", [bulk.UPDATE_ROWS, 2])
def test_update_from_changes_exactly_the_staged_rows(engine, target, monkeypatch, rows_per_update) -> None:
    monkeypatch.setattr(bulk, "UPDATE_ROWS", rows_per_update)
    with transaction(engine) as session:
        copy_tuples(session, target, ["id", "amount", "note"], [(n, Decimal(n), f"row {n}") for n in range(1, 8)])
        changes = [(2, Decimal("0.00"), "paid"), (3, Decimal("1.50"), "partly"), (5, Decimal("9.99"), "more"),
                   (7, Decimal("0.01"), "last")]
        with staged(session, "camt_change", {"id": Integer(), "amount": Money(), "note": String()}, changes) as changed:
            update_from(session, target, changed, ["amount", "note"])
        rows = session.execute(select(target.c.id, target.c.amount, target.c.note).order_by(target.c.id)).all()
    assert rows == [
        (1, Decimal("1.00"), "row 1"), (2, Decimal("0.00"), "paid"), (3, Decimal("1.50"), "partly"),
        (4, Decimal("4.00"), "row 4"), (5, Decimal("9.99"), "more"), (6, Decimal("6.00"), "row 6"),
        (7, Decimal("0.01"), "last"),
    ]


def test_ids_reserved_in_turns_are_fresh_and_ascending(engine, target) -> None:
    with transaction(engine) as session:
        session.execute(insert(target).values(amount=Decimal("1.00"), note="there before"))
        before = session.scalar(select(target.c.id))
        reserve = id_reserver(session, target)
        first, second = reserve(3), reserve(2)
        ids = first + second
        assert ids == sorted(ids) and len(set(ids)) == 5 and before not in ids
        copy_tuples(session, target, ["id", "amount", "note"], [(n, Decimal("2.00"), "new") for n in ids])
        assert session.scalar(select(target.c.id).order_by(target.c.id.desc()).limit(1)) == ids[-1]


def test_json_written_as_text_by_the_database_reads_back(engine) -> None:
    now = datetime(2026, 11, 24, 6, 0, tzinfo=timezone.utc)
    with transaction(engine) as session:
        with staged(session, "camt_note", {"id": Integer(), "note": String()}, [(7, '"stmt.xml 2026-330"')]) as notes:
            after = literal('{"entry": ') + notes.c.note + literal("}")
            session.execute(insert(AuditLog).from_select(
                ["entity", "entity_id", "action", "after", "actor", "at"],
                select(literal("payment"), notes.c.id, literal("booked"), as_json(session, after), literal("test"),
                       literal(now, AuditLog.at.type)),
            ))
        (row,) = session.execute(select(AuditLog.entity_id, AuditLog.after)).all()
    assert row == (7, {"entry": "stmt.xml 2026-330"})
