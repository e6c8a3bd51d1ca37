"""What a statement line does, decided without a database: one row per outcome, then lines of one file together."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from include.finance.payments import OpenLine
from include.finance.statuses import EntryOutcome
from include.sepa.camt import EntryLine
from include.sepa.camt_decision import (
    Block,
    Collection,
    Credit,
    Facts,
    Hub,
    Reference,
    StatementFacts,
    StoredPayment,
    decide,
    decide_all,
    references_in,
)

DAY = date(2026, 11, 24)
ACCOUNT = "BE71096123456769"
PAID_BEFORE = StoredPayment(501, 4, Decimal("25.00"), ((41, Decimal("25.00")),), True)  # fp:BIB:4, collected earlier


def d(value: str) -> Decimal:
    return Decimal(value)


def line(amount: str, *, credit: bool = True, index: int = 1, **fields: Any) -> EntryLine:
    return EntryLine(entry_index=index, tx_index=1, amount=d(amount), credit=credit,
                     reversal=fields.pop("reversal", False), status=fields.pop("status", "BOOK"), booking_date=DAY, value_date=DAY,
                     entry_amount=fields.pop("entry_amount", d(amount)), **fields)


def facts(*, hub: bool = True, foreign: bool = False, undoable: bool = True) -> Facts:
    """Four references of the BIB system and a run of two collections (fp:BIB:4 already collected, fp:BIB:5 not).

    fp:BIB:1 30.00 open (lines 10.00 + 20.00), fp:BIB:2 15.50 open, fp:BIB:3 paid, fp:BIB:4 paid by its
    collection E2E-4 (stored payment 501), fp:BIB:5 17.50 open, collected by E2E-5.
    """
    known = Facts(StatementFacts(ACCOUNT, "stmt.xml 2026-330", Hub(7, 1, frozenset({"MD01", "AC04"})) if hub else None,
                                 foreign), undoable=undoable)
    references = [
        Reference(1, "fp:BIB:1", "062000000157", "sealed", d("30.00"), "first_transaction",
                  [OpenLine(11, d("10.00")), OpenLine(12, d("20.00"))]),
        Reference(2, "fp:BIB:2", "062000000258", "sealed", d("15.50"), "first_transaction", [OpenLine(21, d("15.50"))]),
        Reference(3, "fp:BIB:3", "062000000359", "paid", d("0.00"), "first_transaction", [OpenLine(31, d("0.00"))]),
        Reference(4, "fp:BIB:4", "062000000460", "paid", d("0.00"), "first_transaction", [OpenLine(41, d("0.00"))],
                  [PAID_BEFORE]),
        Reference(5, "fp:BIB:5", "062000000561", "sealed", d("17.50"), "matching_amount", [OpenLine(51, d("17.50"))]),
    ]
    for reference in references:
        known.references[reference.id] = reference
        known.by_number[reference.number] = reference.id  # type: ignore[index]
    for collection in (Collection(40, "E2E-4", 4, 400, 9, d("25.00"), "paid"),
                       Collection(50, "E2E-5", 5, 500, 9, d("17.50"), "exported")):
        known.collections[collection.id] = collection
        known.by_end_to_end_id[collection.end_to_end_id] = collection.id
    known.blocks["fj:BIB:9/FRST"] = Block("fj:BIB:9/FRST", "fj:BIB:9", (40, 50))
    return known


def with_numbers(known: Facts, *lines: EntryLine) -> Facts:
    """The reference numbers each line carries, as the importer finds them."""
    for each in lines:
        known.numbers[each.entry_index, each.tx_index] = references_in(each)
    return known


def summary(decision: Any) -> dict[str, Any]:
    """The decision in plain values, for comparing with what a row expects."""
    item = decision.item
    return {
        "outcome": decision.outcome, "reference": decision.reference_id, "collection": decision.collection_id,
        "booked": decision.booked, "communication": decision.communication,
        "bookings": [(b.reference_id, b.amount, b.shares) for b in decision.bookings],
        "reversals": [(r.reference_id, r.amount) for r in decision.reversals],
        "references": [(c.id, c.status, c.open_amount, c.released) for c in decision.references],
        "collections": [(c.id, c.before, c.status, c.reason) for c in decision.collections],
        "mandate": decision.mandate_block and (decision.mandate_block.mandate_id, decision.mandate_block.reason),
        "item": (item.kind, item.amount) if item else None,
    }


def expect(outcome: EntryOutcome, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"outcome": outcome, "reference": None, "collection": None, "booked": None,
                            "communication": None, "bookings": [], "reversals": [], "references": [],
                            "collections": [], "mandate": None, "item": None}
    return {**base, **fields}


ROWS = [
    pytest.param(
        {}, line("30.00", structured_refs=("062000000157",)),
        expect(EntryOutcome.PAID, reference=1, booked=d("30.00"), communication="062000000157",
               bookings=[(1, d("30.00"), ((11, d("10.00")), (12, d("20.00"))))],
               references=[(1, "paid", d("0.00"), False)]),
        id="paid: the open amount, spread over the lines oldest first"),
    pytest.param(
        {}, line("5.50", unstructured="betaling +++062/0000/00258+++"),
        expect(EntryOutcome.PARTIAL, reference=2, booked=d("5.50"), communication="062000000258",
               bookings=[(2, d("5.50"), ((21, d("5.50")),))], references=[(2, "sealed", d("10.00"), False)],
               item=("partial", d("5.50"))),
        id="partial: less than the open amount, the rest stays open"),
    pytest.param(
        {}, line("45.00", unstructured="062000000157", counterparty_iban="BE68539007547034"),
        expect(EntryOutcome.OVERPAID, reference=1, booked=d("30.00"), communication="062000000157",
               bookings=[(1, d("30.00"), ((11, d("10.00")), (12, d("20.00"))))],
               references=[(1, "paid", d("0.00"), False)], item=("overpaid", d("15.00"))),
        id="overpaid: the open amount booked, the excess on the control list"),
    pytest.param(
        {}, line("12.00", structured_refs=("062000000359",)),
        expect(EntryOutcome.CLOSED_REFERENCE, reference=3, communication="062000000359",
               item=("closed_reference", d("12.00"))),
        id="closed_reference: a paid reference takes nothing"),
    pytest.param(
        {}, line("12.34", unstructured="lidgeld", counterparty_name="Renée Lefèvre"),
        expect(EntryOutcome.UNMATCHED, item=("unmatched", d("12.34"))),
        id="unmatched: no reference found"),
    pytest.param(
        {}, line("17.50", end_to_end_id="E2E-5"),
        expect(EntryOutcome.PAID, reference=5, collection=50, booked=d("17.50"),
               bookings=[(5, d("17.50"), ((51, d("17.50")),))], references=[(5, "paid", d("0.00"), False)],
               collections=[(50, "exported", "paid", None)]),
        id="paid: a collection credited by its end-to-end id"),
    pytest.param(
        {}, line("25.00", end_to_end_id="E2E-4"),
        expect(EntryOutcome.NOT_BOOKED, reference=4, collection=40),
        id="not_booked: the detail of a collection already paid"),
    pytest.param(
        {}, line("25.00", credit=False, end_to_end_id="E2E-4", return_reason="AM04"),
        expect(EntryOutcome.RETURNED, reference=4, collection=40, reversals=[(4, d("25.00"))],
               references=[(4, "deleted", d("25.00"), True)], collections=[(40, "paid", "returned", "AM04")],
               item=("returned", d("25.00"))),
        id="returned: a collection's payment undone, its reference closed and its debt free"),
    pytest.param(
        {}, line("25.00", credit=False, end_to_end_id="E2E-4", return_reason="MD01"),
        expect(EntryOutcome.RETURNED, reference=4, collection=40, reversals=[(4, d("25.00"))],
               references=[(4, "deleted", d("25.00"), True)], collections=[(40, "paid", "returned", "MD01")],
               mandate=(400, "collection E2E-4 returned with MD01 on 2026-11-24"), item=("returned", d("25.00"))),
        id="returned with a fatal reason: the mandate is blocked"),
    pytest.param(
        {}, line("9.99", credit=False, end_to_end_id="SOMEONE-ELSE", return_reason="AC04"),
        expect(EntryOutcome.UNKNOWN_RETURN, item=("unknown_return", d("9.99"))),
        id="unknown_return: a return tied to nothing of ours"),
    pytest.param(
        {}, line("30.00", return_reason="AC04", unstructured="terugbetaling 062000000157"),
        expect(EntryOutcome.UNKNOWN_RETURN, communication="062000000157", item=("unknown_return", d("30.00"))),
        id="unknown_return: our own money coming back is never a payment"),
    pytest.param(
        {}, line("25.00", reversal=True, end_to_end_id="E2E-4"),
        expect(EntryOutcome.UNKNOWN_RETURN, item=("unknown_return", d("25.00"))),
        id="unknown_return: a reversal of a debit brings money in, it never returns our collection"),
    pytest.param(
        {}, line("17.50", reversal=True, end_to_end_id="E2E-5", return_reason="MS02"),
        expect(EntryOutcome.UNKNOWN_RETURN, item=("unknown_return", d("17.50"))),
        id="unknown_return: a reversal of a return, with the return's reason, is money back in"),
    pytest.param(
        {}, line("6.00", unsplit_batch=True, entry_amount=d("6.00")),
        expect(EntryOutcome.UNSPLIT, item=("unsplit", d("6.00"))),
        id="unsplit: a batch whose transactions carry no amounts"),
    pytest.param(
        {}, line("30.00", structured_refs=("062000000157",), status="PDNG"),
        expect(EntryOutcome.NOT_BOOKED, communication="062000000157"),
        id="not_booked: a pending entry"),
    pytest.param(
        {}, line("0.00", structured_refs=("062000000258",)),
        expect(EntryOutcome.NOT_BOOKED, communication="062000000258"),
        id="not_booked: a credit of no amount (it was a 'partial' item saying 0.00 was paid)"),
    pytest.param(
        {}, line("0.00", end_to_end_id="E2E-5", credit=False),
        expect(EntryOutcome.NOT_BOOKED),
        id="not_booked: a debit of no amount undoes nothing"),
    pytest.param(
        {"foreign": True}, line("30.00", structured_refs=("062000000157",)),
        expect(EntryOutcome.NOT_BOOKED),
        id="not_booked: a statement in another currency"),
    pytest.param(
        {"hub": False}, line("30.00", structured_refs=("062000000157",)),
        expect(EntryOutcome.UNKNOWN_ACCOUNT, item=("unknown_account", d("30.00"))),
        id="unknown_account: the account belongs to no hub"),
    pytest.param(
        {}, line("7.50", credit=False, unstructured="Kosten SEPA-incasso"),
        expect(EntryOutcome.OTHER_DEBIT),
        id="other_debit: a fee"),
    pytest.param(
        {}, line("17.50", batch_payment_id="fj:BIB:9/FRST"),
        expect(EntryOutcome.PAID, booked=d("17.50"), bookings=[(5, d("17.50"), ((51, d("17.50")),))],
               references=[(5, "paid", d("0.00"), False)], collections=[(50, "exported", "paid", None)]),
        id="batch credit paid: the open collections of the block, all of them"),
    pytest.param(
        {}, line("42.50", batch_payment_id="fj:BIB:9/FRST"),
        expect(EntryOutcome.UNMATCHED, item=("batch_mismatch", d("42.50"))),
        id="batch credit refused: not the block's open total, nothing booked"),
]


@pytest.mark.parametrize(("setting", "entry", "expected"), ROWS)
def test_one_line(setting: dict[str, Any], entry: EntryLine, expected: dict[str, Any]) -> None:
    known = with_numbers(facts(**setting), entry)
    assert summary(decide(entry, known)) == expected


def test_deciding_changes_nothing() -> None:
    known = with_numbers(facts(), entry := line("30.00", structured_refs=("062000000157",)))
    decide(entry, known)
    assert (known.references[1].status, known.references[1].open_amount) == ("sealed", d("30.00"))
    assert [line.open_amount for line in known.references[1].lines] == [d("10.00"), d("20.00")]


def test_what_the_control_list_says() -> None:
    known = facts()
    partial = line("5.50", structured_refs=("062000000258",))
    over = line("45.00", structured_refs=("062000000157",), counterparty_iban="BE68539007547034", index=2)
    unmatched = line("12.34", structured_refs=("062000099985",), counterparty_name="Renée Lefèvre", index=3)
    batch = line("42.50", batch_payment_id="fj:BIB:9/FRST", index=4)
    with_numbers(known, partial, over, unmatched, batch)
    texts = [(item.reason, item.action, item.details, item.candidates)
             for item in (decide(each, known).item for each in (partial, over, unmatched, batch)) if item]
    assert texts == [
        ("5.50 paid on fp:BIB:2 whose open amount was 15.50; 10.00 remains open",
         "remind the payer of the rest, or write it off", {"reference": "fp:BIB:2"}, False),
        ("45.00 paid on fp:BIB:1 whose open amount was 30.00: 15.00 too much",
         "refund 15.00 to BE68 **** **** 7034 or keep it as a credit", {"reference": "fp:BIB:1"}, False),
        ("credit of 12.34 from Renée Lefèvre: communication +++062/0000/99985+++, no open payment reference found",
         "identify the payer (see the candidates), book by hand or refund", None, True),
        ("batch credit of 42.50 for fj:BIB:9/FRST (2 collections of run fj:BIB:9), whose open total is 17.50 "
         "(difference 25.00): nothing was booked",
         "find the collections returned or paid some other way (returns on this or a later statement), "
         "then confirm fj:BIB:9 by hand (collection_confirm)", {"run": "fj:BIB:9"}, False),
    ]


def test_a_matching_amount_strategy_pays_the_line_of_that_amount() -> None:
    known = facts()
    known.references[5].lines = [OpenLine(51, d("10.00")), OpenLine(52, d("7.50"))]
    entry = line("7.50", structured_refs=("062000000561",))
    assert decide(entry, with_numbers(known, entry)).bookings[0].shares == ((52, d("7.50")),)


# -- lines of one file, each seeing the ones before --------------------------------------------------------------


def outcomes(known: Facts, *lines: EntryLine) -> list[Any]:
    with_numbers(known, *lines)
    return list(decide_all(lines, known))


def test_two_credits_on_one_reference_then_a_third_too_many() -> None:
    known = facts()
    decisions = outcomes(known, line("10.00", structured_refs=("062000000157",)),
                         line("20.00", unstructured="+++062/0000/00157+++", index=2),
                         line("30.00", structured_refs=("062000000157",), index=3))
    assert [decision.outcome for decision in decisions] == ["partial", "paid", "closed_reference"]
    assert [b.shares for decision in decisions for b in decision.bookings] == [
        ((11, d("10.00")),), ((12, d("20.00")),)]
    assert (known.references[1].status, known.references[1].open_amount) == ("paid", d("0.00"))
    assert [line.open_amount for line in known.references[1].lines] == [d("0.00"), d("0.00")]


def test_a_credit_returned_later_in_the_file_undoes_its_own_payment_once() -> None:
    known = facts()
    credit = line("30.00", structured_refs=("062000000157",))
    back = line("30.00", credit=False, return_reason="AC04", unstructured="terugbetaling 062000000157", index=2)
    again = line("30.00", credit=False, return_reason="AC04", structured_refs=("062000000157",), index=3)
    first, second, third = outcomes(known, credit, back, again)
    assert (second.outcome, second.reference_id, second.communication) == ("returned", 1, "062000000157")
    (reversal,) = second.reversals
    assert reversal.reverses is first.bookings[0] and reversal.amount == d("30.00")
    assert second.references[0].status == "sealed" and second.references[0].open_amount == d("30.00")
    assert second.item is not None and second.item.reason == (
        "the bank took back the credit of 30.00 of 2026-11-24 (return (AC04)): the payment of 30.00 on fp:BIB:1 "
        "is undone and 30.00 is open again")
    assert third.outcome == "unknown_return"  # nothing left to undo
    assert [line.open_amount for line in known.references[1].lines] == [d("10.00"), d("20.00")]


def test_a_stored_credit_reversed_by_the_bank() -> None:
    known = facts()
    stored = StoredPayment(601, 2, d("15.50"), ((21, d("15.50")),))
    known.references[2] = replace(known.references[2], status="paid", open_amount=d("0.00"), stored=[stored])
    known.credits_by_end_to_end_id[(ACCOUNT, d("15.50"), "PAYER-1")] = [Credit(stored, date(2026, 11, 2))]
    decision = decide(line("15.50", credit=False, reversal=True, end_to_end_id="PAYER-1"), known)
    assert summary(decision) == expect(
        EntryOutcome.RETURNED, reference=2, communication="062000000258", reversals=[(2, d("15.50"))],
        references=[(2, "sealed", d("15.50"), False)], item=("returned", d("15.50")))
    assert decision.reversals[0].reverses is stored


def test_a_reversal_that_two_credits_fit_is_for_a_person() -> None:
    known = facts()
    booked = outcomes(known, *(line("15.00", structured_refs=("062000000157",), end_to_end_id="TWICE", index=n)
                               for n in (1, 2)))
    assert [decision.outcome for decision in booked] == ["partial", "paid"]
    back = line("15.00", credit=False, reversal=True, end_to_end_id="TWICE", index=3)
    assert decide(back, known).outcome == "unknown_return"


def test_a_batch_paid_then_its_details_in_the_same_file() -> None:
    known = facts()
    batch, detail = outcomes(known, line("17.50", batch_payment_id="fj:BIB:9/FRST"),
                             line("17.50", end_to_end_id="E2E-5", index=2))
    assert (batch.outcome, detail.outcome, detail.bookings) == ("paid", "not_booked", ())
    assert known.paid_runs == {9}


def test_a_return_after_the_batch_in_the_same_file_undoes_the_batch_payment() -> None:
    known = facts()
    batch, returned = outcomes(known, line("17.50", batch_payment_id="fj:BIB:9/FRST"),
                               line("17.50", credit=False, end_to_end_id="E2E-5", return_reason="AM04", index=2))
    assert returned.reversals[0].reverses is batch.bookings[0]
    assert summary(returned)["references"] == [(5, "deleted", d("17.50"), True)]
    assert summary(returned)["collections"] == [(50, "paid", "returned", "AM04")]


def test_a_second_return_of_a_returned_collection_changes_nothing() -> None:
    known = facts()
    first, second = outcomes(known, line("25.00", credit=False, end_to_end_id="E2E-4", return_reason="AM04"),
                             line("25.00", credit=False, end_to_end_id="E2E-4", return_reason="AM04", index=2))
    assert first.reversals and summary(second) == expect(EntryOutcome.RETURNED, reference=4, collection=40)


def test_a_mandate_is_blocked_once() -> None:
    known = facts()
    known.collections[60] = Collection(60, "E2E-6", 2, 400, 9, d("15.50"), "exported")
    known.by_end_to_end_id["E2E-6"] = 60
    first, second = outcomes(known, line("25.00", credit=False, end_to_end_id="E2E-4", return_reason="MD01"),
                             line("15.50", credit=False, end_to_end_id="E2E-6", return_reason="MD01", index=2))
    assert first.mandate_block is not None and second.mandate_block is None
    assert second.item is not None and second.item.action.startswith("the mandate is blocked")


def test_without_returns_ahead_the_file_keeps_no_payment_for_them() -> None:
    known = facts(undoable=False)
    outcomes(known, line("30.00", structured_refs=("062000000157",), end_to_end_id="PAYER-9"))
    assert known.bookings == {} and known.credits_by_end_to_end_id == {} and known.credits_by_number == {}


@pytest.mark.parametrize("reason", ["AM04", "MD01"])
def test_a_return_of_a_collection_paid_another_way_undoes_nothing(reason: str) -> None:
    # fp:BIB:4 was paid at the counter, not by its collection E2E-4: the return leaves that payment and the
    # reference paid (a fatal reason still blocks the mandate).
    known = facts()
    known.references[4].stored = [StoredPayment(502, 4, d("25.00"), ((41, d("25.00")),))]
    decision = decide(line("25.00", credit=False, end_to_end_id="E2E-4", return_reason=reason), known)
    assert (decision.outcome, decision.reversals, decision.references) == (EntryOutcome.RETURNED, (), ())
    assert summary(decision)["collections"] == [(40, "paid", "returned", reason)]
    assert decision.item is not None and "paid another way" in decision.item.action
    assert (decision.mandate_block is not None) == (reason == "MD01")
