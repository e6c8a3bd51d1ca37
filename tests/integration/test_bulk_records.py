"""include/finance/bulk.py's named rows, id sets and tuple inserts, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from include.finance.bulk import in_ids, insert_tuples, stream_records
from include.finance.db import transaction
from include.finance.models import DebtLine, EndUser, FinancialSystem

AT = datetime(2026, 3, 2, 4, 0, tzinfo=timezone.utc)


def _users(engine, count: int) -> None:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        session.add(FinancialSystem(id=1, code="BIB", name="Bib"))
        session.add_all(EndUser(id=n, eloi=f"e:T:{n}", first_name=None if n % 3 else "Zoë", last_name=f"Name {n}")
                        for n in range(1, count + 1))


def test_stream_records_names_each_field_after_its_column_or_label(engine) -> None:
    _users(engine, 3)
    with transaction(engine, readonly=True) as session:
        rows = list(stream_records(session, select(EndUser.id, EndUser.first_name, EndUser.eloi.label("owner"))
                                   .order_by(EndUser.id.desc()), batch=2))
    assert [(row.id, row.first_name, row.owner) for row in rows] == [
        (3, "Zoë", "e:T:3"), (2, None, "e:T:2"), (1, None, "e:T:1")]
    assert rows[0]._fields == ("id", "first_name", "owner")


@pytest.mark.parametrize("wanted", [[], [7], [5, 2, 5, 9_999], list(range(2, 20_001, 3))],
                         ids=["none", "one", "repeated and unknown", "thousands"])
def test_in_ids_selects_exactly_the_given_ids(engine, wanted) -> None:
    _users(engine, 20_000)
    with transaction(engine, readonly=True) as session:
        found = [row.id for row in stream_records(
            session, select(EndUser.id).where(in_ids(session, EndUser.id, iter(wanted)), EndUser.id > 1).order_by(EndUser.id))]
    assert found == sorted({n for n in wanted if 1 < n <= 20_000})


TRICKY_TEXTS = [
    "fp:BIB:1", "Zoë D'Hondt", 'quote " and back\\slash', "tab\tline\nfeed\rreturn\x08\x0c", "\x01\x1f\x7f",
    "\u2028\u2029 «»—€ 😀", "", None,
]


def test_json_object_sql_writes_the_text_the_serializer_writes(engine) -> None:
    """JSON made by the database (audit rows written with INSERT … SELECT) is byte for byte what
    include.finance.db's serializer writes for the same values, on both databases."""
    from sqlalchemy import String, literal

    from include.finance.bulk import json_object_sql
    from include.finance.db import _json

    _users(engine, 1)
    amounts = ["0.01", "0.10", "1.00", "25.00", "126.35", "1234567.89", "99999999.99"]
    with transaction(engine) as session:
        insert_tuples(session, DebtLine.__table__, ("id", "financial_system_id", "end_user_id", "transaction_code",
                                                    "description", "amount", "open_amount", "created_on"),
                      [(n, 1, 1, "LID", TRICKY_TEXTS[n % len(TRICKY_TEXTS)], Decimal(amount), Decimal(amount),
                        date(2026, 1 + n % 12, 1 + n)) for n, amount in enumerate(amounts, start=1)])
    with transaction(engine, readonly=True) as session:
        made = session.execute(select(json_object_sql(
            session, ("id", DebtLine.id, "integer"), ("code", DebtLine.transaction_code, "text"),
            ("description", DebtLine.description, "text"), ("amount", DebtLine.amount, "amount"),
            ("on", DebtLine.created_on, "date"), ("reference", DebtLine.payment_reference_id, "integer"),
            ("reversed", DebtLine.reversed_at, "date"),
            ("ids", literal("[1, 2]", String), "json"), ("even", (DebtLine.id % 2) == 0, "boolean"),
            ("odd", literal("yes", String), "text", (DebtLine.id % 2) == 1),
        )).order_by(DebtLine.id)).scalars().all()
        lines = session.scalars(select(DebtLine).order_by(DebtLine.id)).all()
        expected = [_json({"id": line.id, "code": line.transaction_code, "description": line.description,
                           "amount": line.amount, "on": line.created_on, "reference": None, "reversed": None,
                           "ids": [1, 2], "even": line.id % 2 == 0} | ({"odd": "yes"} if line.id % 2 else {}))
                    for line in lines]
        texts = [_json({"text": value}) for value in TRICKY_TEXTS]
        made_texts = [session.scalar(select(json_object_sql(session, ("text", literal(value, String), "text"))))
                      for value in TRICKY_TEXTS]
    assert made == expected
    assert made_texts == texts


def test_ids_json_sql_lists_ids_ascending_whatever_order_they_were_written(engine) -> None:
    from sqlalchemy import func as sql_func

    from include.finance.bulk import ids_json_sql
    from include.finance.db import _json
    from include.finance.models import PaymentReference, PaymentReferenceLine
    from tests.factories import add_debt, make_institution, make_reference, make_user

    with transaction(engine) as session:
        inst = make_institution(session)
        user = make_user(session)
        references = [make_reference(session, inst, user, ("1.00",), number=n) for n in (1, 2, 3)]
        extra = [add_debt(session, inst, user, "LID", "2.00") for _ in range(5)]
        # the second reference's further lines written highest id first, the third has none of its own
        for line in reversed(extra):
            session.add(PaymentReferenceLine(payment_reference_id=references[1].id, debt_line_id=line.id,
                                             transaction_code="LID", amount=line.amount))
        session.execute(PaymentReferenceLine.__table__.delete().where(
            PaymentReferenceLine.payment_reference_id == references[2].id))
    with transaction(engine, readonly=True) as session:
        lines = PaymentReferenceLine.__table__.c
        made = session.execute(select(PaymentReference.id, ids_json_sql(
            session, lines.debt_line_id, lines.payment_reference_id == PaymentReference.id)).order_by(PaymentReference.id)).all()
        expected = [(reference_id, _json(sorted(session.scalars(select(lines.debt_line_id).where(
            lines.payment_reference_id == reference_id))))) for reference_id, _ in made]
        assert session.scalar(select(sql_func.count()).select_from(PaymentReferenceLine)) == 7
    assert made == expected
    assert [text for _, text in made][2] == "[]" and made[1][1].count(", ") == 5
