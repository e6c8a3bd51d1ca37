"""Resolving control-list items by hand: booked onto a reference or handled, once, from statements and from POM.

Each test runs on SQLite and on PostgreSQL (the ``engine`` fixture); the items
come from a real statement imported by ``camt053_import``'s code, or from POM
payments booked by a callback or the reconciliation.
"""

from __future__ import annotations

import threading
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from include.errors import InnenError
from include.finance.control_list_resolution import open_items, resolve_item, write_open_list
from include.finance.db import transaction
from include.finance.models import (
    AuditLog,
    BankEntry,
    ControlListItem,
    DebtLine,
    Payment,
    PaymentReference,
    PomEvent,
    PomPaymentRequest,
)
from include.finance.payments import Ledger
from include.finance.reference_numbers import format_ogm, ogm
from include.pom.booking import PaidAtPom, book_paid_requests
from include.pom.callbacks import take_event
from include.sepa.statement_files import import_statement_file
from sandbox.camt_writer import Entry, Tx, write_camt053
from tests.dag_bag import parsed_dag
from tests.factories import make_institution, make_reference, make_user

pytestmark = pytest.mark.usefixtures("known_control_list_kinds")  # every item's kind is a ControlListKind
DAY = date(2026, 11, 24)
NOW = datetime(2026, 12, 5, 9, 30, tzinfo=timezone.utc)
PAYER_IBAN = "BE68539007547034"
ANNA, BRAM = "finance:anna", "finance:bram"
FINANCE = frozenset({"finance"})  # the factory's types have no locks; test_access_locks_dags.py books on locked ones


def _credit(amount: str, asr: str, ref: str | None = None, text: str | None = None, **tx: Any) -> Entry:
    return Entry(True, DAY, (Tx(Decimal(amount), structured_reference=ref, unstructured=text, account_servicer_ref=asr,
                                **tx),))


@pytest.fixture
def books(engine, var_dir: Path) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Six references and an imported statement whose credits put every kind of item on the control list.

    r1 30.00, r2 15.50, r3 40.00, r4 12.00 (deleted), r5 20.00, r6 12.00; the statement: three unmatched credits
    (U1 30.00, U2 5.50, U3 45.00), C4 12.00 for the deleted r4, P5 5.00 partly paying r5, and R6 a return of
    9.99 we cannot place.
    """
    with transaction(engine) as session:
        inst = make_institution(session)
        user = make_user(session, "Jan", "Peeters")
        refs = {}
        for n, amounts, status in ((1, ("10.00", "20.00"), "sealed"), (2, ("15.50",), "sealed"),
                                   (3, ("25.00", "15.00"), "sealed"), (4, ("12.00",), "deleted"),
                                   (5, ("20.00",), "sealed"), (6, ("12.00",), "sealed")):
            refs[f"r{n}"] = make_reference(session, inst, user, amounts, number=n, status=status).loi
        other = make_institution(session, "ACA")
        refs["other"] = make_reference(session, other, make_user(session), ("30.00",), number=1).loi
        account = inst.hub.creditor_iban
    path = var_dir / "inbox" / "camt053" / "statement.xml"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_camt053(path, account_iban=account, statement_id="2026-330", electronic_seq=330,
                  created_at=datetime(2026, 11, 25, 6, tzinfo=timezone.utc), from_date=DAY, to_date=DAY,
                  opening_balance=Decimal("1000.00"), entries=[
                      _credit("30.00", "U1", text="lidgeld november", counterparty_name="Jan Peeters",
                              counterparty_iban=PAYER_IBAN),
                      _credit("5.50", "U2", text="eerste deel"),
                      _credit("45.00", "U3", text="factuur", counterparty_iban=PAYER_IBAN),
                      _credit("12.00", "C4", ref=ogm("062", 4)),
                      _credit("5.00", "P5", ref=ogm("062", 5)),
                      Entry(False, DAY, (Tx(Decimal("9.99"), end_to_end_id="SOMEONE-ELSE", return_reason="AC04",
                                            account_servicer_ref="R6"),)),
                  ])
    result = import_statement_file(path, "test", engine=engine)
    assert result["outcomes"] == {"unmatched": 3, "closed_reference": 1, "partial": 1, "unknown_return": 1}
    with transaction(engine, readonly=True) as session:
        items = dict(session.execute(
            select(BankEntry.account_servicer_ref, ControlListItem.id)
            .join(BankEntry, BankEntry.id == ControlListItem.bank_entry_id)).all())
    return {"refs": refs, "items": items}


def _item(engine, item_id: int) -> ControlListItem:  # type: ignore[no-untyped-def]
    with transaction(engine, readonly=True) as session:
        item = session.get(ControlListItem, item_id)
        assert item is not None
        return item


def _ref(engine, loi: str) -> PaymentReference:  # type: ignore[no-untyped-def]
    with transaction(engine, readonly=True) as session:
        return session.scalars(select(PaymentReference).where(PaymentReference.loi == loi)).one()


def _manual_payments(engine) -> list[Payment]:  # type: ignore[no-untyped-def]
    with transaction(engine, readonly=True) as session:
        return list(session.scalars(select(Payment).where(Payment.source == "manual").order_by(Payment.id)))


def _audits(engine, item_id: int) -> list[AuditLog]:  # type: ignore[no-untyped-def]
    with transaction(engine, readonly=True) as session:
        return list(session.scalars(select(AuditLog).where(AuditLog.entity == "control_list_item",
                                                           AuditLog.entity_id == item_id)))


def _resolve(engine, item_id: int, **kwargs: Any):  # type: ignore[no-untyped-def]
    kwargs.setdefault("actor", ANNA)
    kwargs.setdefault("now", NOW)
    kwargs.setdefault("roles", FINANCE)
    with transaction(engine) as session:
        return resolve_item(session, item_id, **kwargs)


# -- booking ---------------------------------------------------------------------------------------


def test_unmatched_credits_booked_in_full_in_part_and_too_much(engine, books, var_dir: Path) -> None:
    refs, items = books["refs"], books["items"]

    full = _resolve(engine, items["U1"], action="book", reference=refs["r1"], note="payer phoned")
    assert (full.outcome, full.booked, full.open_amount, full.rest_item_id) == (
        "paid", Decimal("30.00"), Decimal("0.00"), None)
    assert (_ref(engine, refs["r1"]).status, _ref(engine, refs["r1"]).open_amount) == ("paid", Decimal("0.00"))
    (payment,) = _manual_payments(engine)
    with transaction(engine, readonly=True) as session:
        u1_entry = session.scalars(select(BankEntry).where(BankEntry.account_servicer_ref == "U1")).one()
        r1_id = _ref(engine, refs["r1"]).id
        lines = session.scalars(select(DebtLine.open_amount).where(DebtLine.payment_reference_id == r1_id))
        assert set(lines) == {Decimal("0.00")}  # the debt lines follow, as for an imported credit
    assert (payment.amount, payment.source, payment.booked_by, payment.bank_entry_id) == (
        Decimal("30.00"), "manual", ANNA, u1_entry.id)
    assert payment.id == full.payment_id and "payer phoned" in payment.note
    item = _item(engine, items["U1"])
    assert (item.resolution, item.resolved_by, item.resolution_note) == ("booked", ANNA, "payer phoned")
    assert item.resolved_at is not None and item.resolution_payment_reference_id == _ref(engine, refs["r1"]).id
    (audit,) = _audits(engine, items["U1"])
    assert (audit.action, audit.actor) == ("booked", ANNA)
    assert audit.after["payment_id"] == payment.id and audit.after["note"] == "payer phoned"
    assert audit.after["reference"] == refs["r1"] and audit.after["outcome"] == "paid"

    # By its structured communication, as printed on the invoice: partly paid.
    part = _resolve(engine, items["U2"], action="book", reference=format_ogm(ogm("062", 2)), actor=BRAM)
    assert (part.outcome, part.booked, part.open_amount) == ("partial", Decimal("5.50"), Decimal("10.00"))
    assert (_ref(engine, refs["r2"]).status, _ref(engine, refs["r2"]).open_amount) == ("sealed", Decimal("10.00"))
    assert _item(engine, items["U2"]).resolution_note is None

    # Too much (the communication as the bank stores it): the open amount booked, the rest a new open item.
    over = _resolve(engine, items["U3"], action="book", reference=ogm("062", 3))
    assert (over.outcome, over.booked, over.open_amount) == ("overpaid", Decimal("40.00"), Decimal("0.00"))
    assert _ref(engine, refs["r3"]).status == "paid"
    rest = _item(engine, over.rest_item_id)
    assert (rest.kind, rest.amount, rest.source, rest.resolved_at) == (
        "overpaid", Decimal("5.00"), "bank_statement", None)
    original = _item(engine, items["U3"])
    assert (rest.statement_id, rest.bank_entry_id) == (original.statement_id, original.bank_entry_id)
    assert "refund the rest" in rest.action and "BE68 **** **** 7034" in rest.action
    assert f"5.00, is open item {rest.id}" in over.message

    # A credit on a closed reference, booked on the payer's open one.
    closed = _resolve(engine, items["C4"], action="book", reference=refs["r6"])
    assert (closed.outcome, closed.booked) == ("paid", Decimal("12.00"))

    # The rest of the over-payment booked in turn: partly pays r5 (20.00, 5.00 paid by the statement).
    again = _resolve(engine, over.rest_item_id, action="book", reference=refs["r5"])
    assert (again.outcome, again.booked, again.open_amount) == ("partial", Decimal("5.00"), Decimal("10.00"))
    payments = _manual_payments(engine)
    assert [p.amount for p in payments] == [Decimal(a) for a in ("30.00", "5.50", "40.00", "12.00", "5.00")]
    assert payments[-1].bank_entry_id == payments[2].bank_entry_id  # both halves of U3 point at its entry

    with transaction(engine, readonly=True) as session:
        still_open = {row[0]: row for row in open_items(session)}
        report, count = write_open_list(session)
    assert set(still_open) == {items["P5"], items["R6"]}
    assert count == 2 and Path(report).is_file()
    text = (var_dir / "reports" / "control_list" / "open.csv").read_text(encoding="utf-8-sig")
    assert "unknown_return" in text and "partial" in text and "lidgeld" not in text


def test_refusals_change_nothing(engine, books) -> None:
    refs, items = books["refs"], books["items"]
    refusals = [
        (items["R6"], {"action": "book", "reference": refs["r1"]}, "is a return of 9.99, not money received"),
        (items["P5"], {"action": "book", "reference": refs["r1"]}, "(partial) cannot be booked"),
        (items["U1"], {"action": "book", "reference": refs["r4"]}, f"{refs['r4']} is deleted, not open"),
        (items["U1"], {"action": "book", "reference": "fp:BIB:999"}, "no payment reference fp:BIB:999"),
        (items["U1"], {"action": "book", "reference": "hello"}, "nor a valid structured communication"),
        (items["U1"], {"action": "book", "reference": refs["other"]}, "another financial system"),
        (items["U1"], {"action": "book"}, "name the payment reference to book 30.00 on"),
        (items["U1"], {"action": "handle", "note": "  "}, "say in a note how it was handled"),
        (items["U1"], {"action": "handle", "note": "refunded", "reference": refs["r1"]}, "takes no reference"),
        (items["U1"], {"action": "delete"}, "unknown action"),
        (999_999, {"action": "handle", "note": "x"}, "there is no control-list item 999999"),
    ]
    for item_id, kwargs, message in refusals:
        with pytest.raises(InnenError, match=message.replace("(", r"\(").replace(")", r"\)")):
            _resolve(engine, item_id, **kwargs)
    assert _manual_payments(engine) == []
    with transaction(engine, readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(ControlListItem)
                              .where(ControlListItem.resolved_at.is_not(None))) == 0
        assert session.scalar(select(func.count()).select_from(AuditLog)
                              .where(AuditLog.entity == "control_list_item")) == 0
        assert session.scalar(select(func.count()).select_from(ControlListItem)) == 6

    # Handled with a note; after that the item is resolved, whatever anyone asks.
    done = _resolve(engine, items["U1"], action="handle", note="refunded to the payer", actor=BRAM)
    assert done.message == f"control-list item {items['U1']} handled: refunded to the payer"
    item = _item(engine, items["U1"])
    assert (item.resolution, item.resolved_by, item.resolution_note, item.resolution_payment_reference_id) == (
        "handled", BRAM, "refunded to the payer", None)
    (audit,) = _audits(engine, items["U1"])
    assert (audit.action, audit.after["note"]) == ("handled", "refunded to the payer")
    for kwargs in ({"action": "book", "reference": refs["r1"]}, {"action": "handle", "note": "cash desk"}):
        with pytest.raises(InnenError, match=f"already resolved \\(handled\\) by {BRAM} at 2026-12-05 09:30:00"):
            _resolve(engine, items["U1"], **kwargs)
    assert _manual_payments(engine) == [] and len(_audits(engine, items["U1"])) == 1
    # Debits and statement notes can be handled all the same.
    _resolve(engine, items["R6"], action="handle", note="not ours: the bank's own correction")
    assert _item(engine, items["R6"]).resolution == "handled"


# -- POM -------------------------------------------------------------------------------------------


def _pom_request(session, loi: str, pom_id: str) -> PomPaymentRequest:  # type: ignore[no-untyped-def]
    ref = session.scalars(select(PaymentReference).where(PaymentReference.loi == loi)).one()
    row = PomPaymentRequest(payment_reference_id=ref.id, account="default", pom_id=pom_id,
                            idempotency_key=f"k-{pom_id}", amount=ref.open_amount,
                            communication=ref.reference_number, status="open", created_at=NOW, updated_at=NOW)
    session.add(row)
    session.flush()
    return row


def test_pom_over_payments_and_payments_on_closed_references_are_open_items(engine, books) -> None:
    refs = books["refs"]
    with transaction(engine) as session:
        _pom_request(session, refs["r2"], "pr_over")
        closed = _pom_request(session, refs["r6"], "pr_closed")
        event = PomEvent(account="default", event_id="ev-0", event_type="payment_request.paid", pom_id="pr_closed",
                         received_at=NOW, outcome="pending", body={})
        session.add(event)
        session.flush()
        closed_id, event_id = closed.id, event.id
        ledger = Ledger(session, "test", NOW)  # r6 paid by transfer meanwhile
        r6 = session.scalars(select(PaymentReference.id).where(PaymentReference.loi == refs["r6"])).one()
        ledger.pay(ledger.load([r6])[r6], Decimal("12.00"), source="manual")
        ledger.flush()

    # The payer pays 20.00 in the app on r2, whose open amount is 15.50: the callback books 15.50.
    outcome = take_event(engine, "default", {"event_id": "ev-1", "type": "payment_request.paid",
                                             "request_id": "pr_over", "amount": "20.00", "channel": "bancontact"}, NOW)
    assert outcome == "overpaid"
    assert _ref(engine, refs["r2"]).status == "paid"
    # The reconciliation finds r6's request paid too (the event already stored: kept on the item).
    with transaction(engine) as session:
        (booking,) = book_paid_requests(session, {closed_id: PaidAtPom(Decimal("12.00"), NOW, "payconiq")}, "test", NOW,
                                        via="pom_reconciliation", pom_event_id=event_id)
    assert booking.outcome == "closed_reference"

    with transaction(engine, readonly=True) as session:
        pom_items = list(session.scalars(select(ControlListItem).where(ControlListItem.source == "pom")
                                         .order_by(ControlListItem.id)))
        listed = {row[0]: row for row in open_items(session)}
    over, on_closed = pom_items
    assert (over.kind, over.amount, over.statement_id, over.bank_entry_id, over.resolved_at) == (
        "overpaid", Decimal("4.50"), None, None, None)
    assert "POM pr_over (bancontact, via callback)" in over.reason and "refund 4.50" in over.action
    assert over.details["reference"] == refs["r2"] and over.created_at is not None
    assert (on_closed.kind, on_closed.amount, on_closed.pom_event_id) == (
        "closed_reference", Decimal("12.00"), event_id)
    assert f"for {refs['r6']}, which is paid" in on_closed.reason
    assert {over.id, on_closed.id} <= set(listed) and listed[over.id][1] == "pom"

    handled = _resolve(engine, over.id, action="handle", note="refunded 4.50 by transfer")
    assert handled.resolution == "handled" and _item(engine, over.id).resolved_by == ANNA
    # The payment on a closed reference booked on the payer's other open reference (no bank entry behind it).
    booked = _resolve(engine, on_closed.id, action="book", reference=refs["r3"], note="same family")
    assert (booked.outcome, booked.booked, booked.open_amount) == ("partial", Decimal("12.00"), Decimal("28.00"))
    (payment,) = [p for p in _manual_payments(engine) if p.id == booked.payment_id]
    assert (payment.bank_entry_id, payment.pom_payment_request_id, payment.booked_by) == (None, None, ANNA)
    with pytest.raises(InnenError, match="already resolved"):
        _resolve(engine, over.id, action="book", reference=refs["r3"])


def test_the_rest_of_a_pom_over_payment_booked_by_hand_still_names_the_pom_payer(engine, books) -> None:
    from include.finance_page import refunds

    refs = books["refs"]
    with transaction(engine) as session:
        _pom_request(session, refs["r2"], "pr_over")
    # 30.00 paid in the app on r2 (15.50 open): 14.50 too much, booked by hand on r6 (12.00 open): 2.50 left.
    take_event(engine, "default", {"event_id": "ev-1", "type": "payment_request.paid", "request_id": "pr_over",
                                   "amount": "30.00", "channel": "bancontact"}, NOW)
    with transaction(engine, readonly=True) as session:
        over = session.scalars(select(ControlListItem).where(ControlListItem.source == "pom")).one()
    booked = _resolve(engine, over.id, action="book", reference=refs["r6"])
    rest = _item(engine, booked.rest_item_id)
    assert (rest.source, rest.kind, rest.amount) == ("pom", "overpaid", Decimal("2.50"))
    assert (rest.details["pom_id"], rest.details["channel"], rest.details["reference"]) == (
        "pr_over", "bancontact", refs["r6"])
    assert "2.50 to the payer of POM pr_over (bancontact)" in rest.action
    with transaction(engine, readonly=True) as session:
        (row,) = [row for row in refunds(session).rows if row[0] == str(rest.id)]
    assert (row[5], row[6]) == ("2.50", "POM pr_over (bancontact)")


# -- resolved once, also when two people act at the same moment ----------------------------------------


@pytest.mark.parametrize("entry", ["U1", "U3", "C4"])
def test_two_people_resolving_one_item_at_once_resolve_it_once(engine, books, entry: str) -> None:
    refs, item_id = books["refs"], books["items"][entry]
    barrier = threading.Barrier(2, timeout=30)
    # Both start at once. On SQLite the second writer's transaction waits for the first (BEGIN IMMEDIATE); on
    # PostgreSQL both read the item as open, then the second waits for the ledger the first holds, and its
    # claim then finds the item taken.
    results: dict[str, Any] = {}

    def attempt(actor: str, reference: str) -> None:
        try:
            barrier.wait()
            results[actor] = _resolve(engine, item_id, action="book", reference=reference, actor=actor)
        except Exception as exc:  # noqa: BLE001 - reported below
            results[actor] = exc

    threads = [threading.Thread(target=attempt, args=(ANNA, refs["r1"])),
               threading.Thread(target=attempt, args=(BRAM, refs["r3"]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    won = [actor for actor, result in results.items() if not isinstance(result, Exception)]
    lost = [result for result in results.values() if isinstance(result, Exception)]
    assert len(won) == 1 and len(lost) == 1, results
    assert isinstance(lost[0], InnenError), repr(lost[0])
    assert "already resolved (booked on " in str(lost[0]) and f"by {won[0]} at" in str(lost[0])
    item = _item(engine, item_id)
    assert item.resolved_by == won[0] and item.resolution == "booked"
    payments = _manual_payments(engine)
    assert len(payments) == 1 and payments[0].booked_by == won[0]
    assert len(_audits(engine, item_id)) == 1
    with transaction(engine, readonly=True) as session:  # no rest item twice either
        assert session.scalar(select(func.count()).select_from(ControlListItem)) == 6 + (entry == "U3")


# -- the DAG -----------------------------------------------------------------------------------------


def _dag():  # type: ignore[no-untyped-def]
    return parsed_dag("control_list_resolve")


def test_the_dag_resolves_an_item_from_its_form(engine, books, db_url: str, var_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch, airflow_db: None) -> None:
    from include import airflow_roles

    monkeypatch.setenv("INNEN_DB_URL", db_url)
    # dag.test() runs hold no roles of their own: these are triggered by anna of finance.
    monkeypatch.setattr(airflow_roles, "run_roles", lambda context: ("anna", FINANCE))
    refs, items = books["refs"], books["items"]
    run = _dag().test(run_conf={"item": items["U1"], "action": "book", "reference": refs["r1"],
                                "note": "payer confirmed by phone"})
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state).endswith("success"), states
    item = _item(engine, items["U1"])
    assert item.resolution == "booked" and item.resolution_note == "payer confirmed by phone"
    # The audit names the run, the task and who triggered it (dag.test() triggers as "dag_test").
    assert item.resolved_by.startswith("airflow:control_list_resolve/")
    assert item.resolved_by.endswith("/resolve by dag_test")
    (payment,) = _manual_payments(engine)
    assert payment.booked_by == item.resolved_by and _ref(engine, refs["r1"]).status == "paid"
    assert (var_dir / "reports" / "control_list" / "index.html").is_file()

    # To handle, a note is required: the run fails and nothing changes.
    refused = _dag().test(run_conf={"item": items["U2"], "action": "handle"})
    assert str(refused.state).endswith("failed")
    assert _item(engine, items["U2"]).resolved_at is None
    # The same item a second time: refused, nothing booked twice.
    twice = _dag().test(run_conf={"item": items["U1"], "action": "book", "reference": refs["r3"]})
    assert str(twice.state).endswith("failed")
    assert len(_manual_payments(engine)) == 1

    handled = _dag().test(run_conf={"item": items["R6"], "action": "handle", "note": "not ours"})
    assert str(handled.state).endswith("success")
    assert _item(engine, items["R6"]).resolution == "handled"
