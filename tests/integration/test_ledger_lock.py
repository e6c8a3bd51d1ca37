"""Money on a reference changed by two transactions at once, on PostgreSQL: each books from committed money.

Under READ COMMITTED a booking that read a reference's open amount before
another booking committed would decide from the old amount and then write it
back, undoing the other (a lost update). Every money-changing transaction
holds the ledger (:func:`include.finance.db.hold_ledger`) before it reads, so
the second waits and then sees the first. SQLite needs no test of its own
here: its writers queue from their first statement (``BEGIN IMMEDIATE``).

Here one transaction books 30.00 of a 100.00 reference and stays open; a
second, in another thread, books 50.00 through a production path (a bank
statement, a POM payment, a control-list item booked by hand). Once the first
commits, the reference must be open for 20.00 with both payments on it.
"""

from __future__ import annotations

import threading
import time
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Callable

import pytest
from sqlalchemy import select

from include.finance.db import get_engine, transaction
from include.finance.models import ControlListItem, DebtLine, Payment, PaymentReference, PomPaymentRequest
from include.finance.payments import Ledger
from include.finance.reference_numbers import format_ogm, ogm
from include.finance.statuses import ControlListKind, PomRequestStatus
from include.pom.booking import PaidAtPom, book_paid_requests
from include.sepa.statement_files import import_statement_file
from sandbox.camt_writer import Entry, Tx, write_camt053
from tests.conftest import _postgres_database
from tests.factories import make_institution, make_reference, make_user

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)
DAY = date(2026, 11, 24)


@pytest.fixture
def engine(postgres):  # type: ignore[no-untyped-def]
    engine = get_engine(_postgres_database(postgres))
    yield engine
    engine.dispose()


@pytest.fixture
def books(engine):  # type: ignore[no-untyped-def]
    """One institution and a sealed reference of 100.00 over two debt lines (60 + 40), with an open POM request."""
    with transaction(engine) as session:
        inst = make_institution(session)
        user = make_user(session, "Renée", "Lefèvre")
        ref = make_reference(session, inst, user, ("60.00", "40.00"), number=1)
        request = PomPaymentRequest(
            payment_reference_id=ref.id, account="default", pom_id="pom-1", idempotency_key="ledger-test-1",
            amount=ref.amount, communication=ref.reference_number, status=PomRequestStatus.OPEN,
            created_at=NOW, updated_at=NOW)
        session.add(request)
        session.flush()
        return {"ref": ref.id, "loi": ref.loi, "request": request.id, "account": inst.hub.creditor_iban}


def _by_statement(engine, books, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "inbox" / "camt053" / "statement.xml"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_camt053(path, account_iban=books["account"], statement_id="2026-330", electronic_seq=330,
                  created_at=datetime(2026, 11, 25, 6, tzinfo=timezone.utc), from_date=DAY, to_date=DAY,
                  opening_balance=Decimal("1000.00"),
                  entries=[Entry(True, DAY, (Tx(Decimal("50.00"), structured_reference=ogm("062", 1),
                                                account_servicer_ref="L1"),))])
    outcome = import_statement_file(path, "statement", engine=engine)
    assert outcome["outcomes"] == {"partial": 1}, outcome


def _by_pom(engine, books, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        (booking,) = book_paid_requests(session, {books["request"]: PaidAtPom(Decimal("50.00"), NOW, "bancontact")},
                                        "pom", NOW, via="callback")
    assert booking.outcome == "partial", booking


def _by_hand(engine, books, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from include.finance.control_list_resolution import resolve_item

    with transaction(engine) as session:  # money received without a reference, on the control list
        item = ControlListItem(source="pom", kind=ControlListKind.UNMATCHED, amount=Decimal("50.00"),
                               reason="received without a reference", action="book it", created_at=NOW)
        session.add(item)
        session.flush()
        item_id = item.id
    with transaction(engine) as session:
        resolution = resolve_item(session, item_id, action="book", reference=format_ogm(ogm("062", 1)),
                                  actor="finance:anna", now=NOW, roles={"finance", "finance-admin"})
    assert resolution.resolution == "booked", resolution


@pytest.mark.parametrize("second", [_by_statement, _by_pom, _by_hand], ids=["statement", "pom", "by hand"])
def test_a_booking_waits_for_the_one_in_progress_and_books_on_what_it_left(
    engine, books, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, second: Callable[..., None]
) -> None:
    monkeypatch.setenv("INNEN_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("INNEN_STORAGE_URL", raising=False)
    booked, go = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with transaction(engine) as session:
                ledger = Ledger(session, "first", NOW)
                ref = ledger.load([books["ref"]])[books["ref"]]
                ledger.receive(ref, Decimal("30.00"), source="manual", note="first booking")
                ledger.flush()
                booked.set()
                assert go.wait(timeout=60)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            booked.set()

    def then() -> None:
        try:
            second(engine, books, tmp_path)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    holder = threading.Thread(target=first)
    holder.start()
    assert booked.wait(timeout=60)
    contender = threading.Thread(target=then)
    contender.start()
    time.sleep(1.5)  # long enough for the contender to have read, had it not waited
    assert contender.is_alive(), errors  # it waits for the first booking to end
    go.set()
    holder.join(timeout=60)
    contender.join(timeout=120)
    assert not holder.is_alive() and not contender.is_alive()
    assert not errors, errors
    with transaction(engine, readonly=True) as session:
        ref = session.get(PaymentReference, books["ref"])
        payments = sorted(session.scalars(select(Payment.amount).where(Payment.payment_reference_id == ref.id)))
        lines = sorted(session.scalars(select(DebtLine.open_amount).where(DebtLine.payment_reference_id == ref.id)))
    assert payments == [Decimal("30.00"), Decimal("50.00")]
    assert (ref.status, ref.open_amount) == ("sealed", Decimal("20.00"))
    assert sum(lines, Decimal("0.00")) == Decimal("20.00")
