"""A partial payment pays the oldest debt first: by the day the debt arose, not by the order it was stored in.

The cash register may deliver a debt later than a newer one (a fine for a
loan returned weeks ago, a backlog keyed in afterwards): its row then has the
higher id but the older day. The invoice lists the lines by day
(include/invoices/facts.py); a partial payment must pay them in that order too,
whichever way the money comes in (a bank statement, POM, a control-list item
booked by hand: all through one ledger).
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from include.finance.db import transaction
from include.finance.models import DebtLine, PomPaymentRequest
from include.finance.reference_numbers import ogm
from include.finance.statuses import PomRequestStatus
from include.pom.booking import PaidAtPom, book_paid_requests
from include.sepa.statement_files import import_statement_file
from sandbox.camt_writer import Entry, Tx, write_camt053
from tests.factories import make_institution, make_reference, make_user

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)
DAY = date(2026, 11, 24)


@pytest.fixture
def books(engine):  # type: ignore[no-untyped-def]
    """A sealed reference of 30.00: a 10.00 line of 10 November stored first, a 20.00 line of 1 October after it."""
    with transaction(engine) as session:
        inst = make_institution(session)
        user = make_user(session)
        ref = make_reference(session, inst, user, ("10.00", "20.00"), number=1)
        newer, older = session.scalars(select(DebtLine).where(DebtLine.payment_reference_id == ref.id)
                                       .order_by(DebtLine.id)).all()
        newer.created_on, older.created_on = date(2026, 11, 10), date(2026, 10, 1)
        request = PomPaymentRequest(
            payment_reference_id=ref.id, account="default", pom_id="pom-1", idempotency_key="order-test-1",
            amount=ref.amount, communication=ref.reference_number, status=PomRequestStatus.OPEN,
            created_at=NOW, updated_at=NOW)
        session.add(request)
        session.flush()
        return {"ref": ref.id, "request": request.id, "account": inst.hub.creditor_iban,
                "newer": newer.id, "older": older.id}


def _open_amounts(engine, books) -> tuple[Decimal, Decimal]:  # type: ignore[no-untyped-def]
    with transaction(engine, readonly=True) as session:
        return session.get(DebtLine, books["older"]).open_amount, session.get(DebtLine, books["newer"]).open_amount


def test_a_partial_bank_payment_pays_the_oldest_debt_first(engine, books, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("INNEN_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("INNEN_STORAGE_URL", raising=False)
    path = tmp_path / "inbox" / "camt053" / "statement.xml"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_camt053(path, account_iban=books["account"], statement_id="2026-330", electronic_seq=330,
                  created_at=datetime(2026, 11, 25, 6, tzinfo=timezone.utc), from_date=DAY, to_date=DAY,
                  opening_balance=Decimal("1000.00"),
                  entries=[Entry(True, DAY, (Tx(Decimal("15.00"), structured_reference=ogm("062", 1),
                                                account_servicer_ref="L1"),))])
    assert import_statement_file(path, "test", engine=engine)["outcomes"] == {"partial": 1}
    assert _open_amounts(engine, books) == (Decimal("5.00"), Decimal("10.00"))


def test_a_partial_pom_payment_pays_the_oldest_debt_first(engine, books) -> None:
    with transaction(engine) as session:
        (booking,) = book_paid_requests(session, {books["request"]: PaidAtPom(Decimal("25.00"), NOW, "bancontact")},
                                        "pom", NOW, via="callback")
    assert booking.outcome == "partial"
    assert _open_amounts(engine, books) == (Decimal("0.00"), Decimal("5.00"))
