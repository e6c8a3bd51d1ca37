"""include/finance/bulk.py's named rows and id sets, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from include.finance.bulk import in_ids, stream_records
from include.finance.db import transaction
from include.finance.models import EndUser, FinancialSystem


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
