"""What one line of a bank statement does: :func:`decide`, from the facts it needs, without a database.

:func:`decide` reads a line and the :class:`Facts` known before it and
returns a :class:`Decision`: the line's outcome, the payments it books or
undoes, the collection and mandate it changes, and the control-list item a
person must handle. It reads nothing else and changes nothing.

Lines of one file interact (two credits on one reference, a credit returned
later in the same file): :meth:`Facts.record` applies each decision to the
facts before the next line is decided, in file order (:func:`decide_all`).
The importer (:mod:`include.sepa.camt_import`) gathers the facts in bulk and
writes the decisions in bulk.

What a line is, in this order:

1. a statement in another currency than the euro, a line not booked
   (pending, information only) or of no amount: ``not_booked``; an account
   of no bank hub: ``unknown_account``;
2. a batch credit naming one of our payment blocks or runs, without a
   transaction of one of our collections: all or nothing, as a run is
   confirmed by hand (:func:`_batch_credit`); ``not_booked`` when every collection of the block was paid
   already (the run confirmed by hand before the statement came) and the credit is their amount;
3. a batch whose transactions carry no amounts: ``unsplit``;
4. a credit with a return reason (our own money coming back): ``unknown_return``;
5. any other credit: money received against a reference (:func:`_credit`),
   judged by :func:`include.finance.payments.receipt`;
6. a reversal of a debit (a credit with ``RvslInd``): money back in, neither
   booked nor undoing anything, for a person (``unknown_return``);
7. a debit, or a reversal of a credit: a returned collection, the undoing of a
   credit we booked, or another debit (:func:`_debit`).

A credit is matched on the end-to-end id of one of our collections (the bank
crediting a direct debit), else on the first reference number it carries
(:func:`references_in`): the structured communication (``Strd/CdtrRefInf/Ref``:
OGM or RF), an OGM in the free text, an RF reference in the free text. The
free text is ``RmtInf/Ustrd``, or without it the bank's ``AddtlTxInf``,
``Strd/AddtlRmtInf`` or ``AddtlNtryInf``; an OGM there is ``+++…+++``,
``***…***``, twelve digits, or three groups as payers type them
(``123/4567/89002``, or with ``-``, ``.`` or spaces), always with a valid
check; an RF is compact or in groups of four as printed.

A batch credit names its block in ``NtryDtls/Btch`` (``PmtInfId``, the payment
block ``fj:SYS:n/FRST``, else ``MsgId``, the whole run) and carries no
transaction of one of our collections, which is how banks report a
batch-booked collection. A credit for one of our collections already paid, of
its amount, is the detail of what was booked (a bank's "detail of a collective
credit" after the batch line, or a statement after a confirmation by hand):
stored, not booked again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from include.errors import ReferenceNumberError
from include.finance.money import ZERO
from include.finance.payments import OpenLine, allocate, receipt
from include.finance.reference_numbers import display_reference, parse_ogm, parse_rf
from include.finance.statuses import (
    OPEN_REFERENCE,
    SETTLED_COLLECTION,
    CollectionStatus,
    ControlListKind,
    EntryOutcome,
    Received,
    ReferenceStatus,
)
from include.sepa.camt import EntryLine
from include.sepa.identifiers import mask_iban

# --- the communications a line carries ------------------------------------------------------------

# +++123/4567/89002+++ (or ***…***), 12 digits, or 123/4567/89002 as payers type it (/, -, . or a space between).
_OGM_IN_TEXT = re.compile(
    r"[+*]{3}\s*(\d{3})\s*/?\s*(\d{4})\s*/?\s*(\d{5})\s*[+*]{3}|(?<!\d)(\d{12})(?!\d)"
    r"|(?<!\d)(?<!\d[/.-])(\d{3})[/.\- ](\d{4})[/.\- ](\d{5})(?!\d)(?![/.-]\d)"
)
# RF18539007547034, or printed in groups of four: RF18 5390 0754 7034 (the longest valid prefix is taken).
_RF_IN_TEXT = re.compile(r"\bRF\d{2}(?: ?[A-Z0-9]{1,4}){1,6}\b", re.IGNORECASE)


def references_in(line: EntryLine) -> list[str]:
    """The payment reference numbers a line may carry, most reliable first (stored form: OGM digits or RF).

    >>> credit = EntryLine(1, 1, ZERO, True, False, "BOOK", None, None, ZERO, unstructured="factuur 062/0000/00258")
    >>> references_in(credit)
    ['062000000258']
    """
    found: list[str] = []
    for value in line.structured_refs:
        for parse in (parse_ogm, parse_rf):
            try:
                found.append(parse(value))
                break
            except ReferenceNumberError:
                continue
    text = line.free_text or ""
    for match in _OGM_IN_TEXT.finditer(text):
        digits = match.group(4) or "".join(match.group(1, 2, 3) if match.group(1) else match.group(5, 6, 7))
        try:
            found.append(parse_ogm(digits))
        except ReferenceNumberError:
            continue
    for match in _RF_IN_TEXT.finditer(text):
        reference = _rf_at_start(match.group(0))
        if reference is not None:
            found.append(reference)
    return list(dict.fromkeys(found))


def _rf_at_start(text: str) -> str | None:
    """The longest valid RF reference ``text`` starts with, taking whole space-separated groups (words after it
    in the free text are not part of it)."""
    groups = text.split(" ")
    for end in range(len(groups), 0, -1):
        candidate = "".join(groups[:end])
        if len(candidate) > 25:
            continue
        try:
            return parse_rf(candidate)
        except ReferenceNumberError:
            continue
    return None


DIRECT_DEBIT_FAMILIES = ("PMNT/IDDT/", "PMNT/RDDT/")  # bank transaction codes of direct debits (ISO 20022)


def is_direct_debit(bank_tx_code: str | None) -> bool:
    """Whether an entry's bank transaction code says it is a direct debit: a credit of one of our collections
    even when the bank names it only by its communication, not its end-to-end id.

    >>> is_direct_debit("PMNT/IDDT/ESDD"), is_direct_debit("PMNT/RCDT/ESCT"), is_direct_debit(None)
    (True, False, False)
    """
    return bank_tx_code is not None and bank_tx_code.startswith(DIRECT_DEBIT_FAMILIES)


def books_a_batch(line: EntryLine) -> bool:
    """Whether ``line`` is a whole batch credit naming the creditor's block or message, without the
    transaction of one of our collections (an entry with such details is booked per transaction)."""
    return (line.credit and not line.reversal and not line.return_reason
            and bool(line.batch_payment_id or line.batch_message_id) and line.amount == line.entry_amount
            and (line.end_to_end_id is None or line.unsplit_batch))


def batch_key(line: EntryLine) -> str:
    """The name a batch credit gives its block: ``PmtInfId``, else ``MsgId``."""
    return line.batch_payment_id or line.batch_message_id or ""


# --- the facts --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Reference:
    """A payment reference as the file's lines have left it so far."""

    id: int
    loi: str
    number: str | None
    status: str
    open_amount: Decimal
    strategy: str  # how a partial payment is spread over the lines (:func:`include.finance.payments.allocate`)
    lines: list[OpenLine] = field(default_factory=list)
    stored: list[StoredPayment] = field(default_factory=list)  # standing payments booked before this file


@dataclass(slots=True)
class StoredPayment:
    """A standing payment booked before this file, and how it was spread over the debt lines."""

    id: int
    reference_id: int
    amount: Decimal
    shares: tuple[tuple[int, Decimal], ...]
    # Booked by the reference's collection (its credit, its batch credit, the run's confirmation), not paid
    # another way (at the counter, a transfer, POM): only such a payment is undone when the collection comes back.
    of_collection: bool = False


@dataclass(slots=True)
class Collection:
    id: int
    end_to_end_id: str
    reference_id: int
    mandate_id: int | None
    run_id: int
    amount: Decimal
    status: str


@dataclass(slots=True)
class Block:
    """The collections a batch credit books: one payment block of a run, or the whole run."""

    name: str  # as the credit gives it: PmtInfId, else MsgId
    run: str
    collections: tuple[int, ...]  # collection ids, in their order


@dataclass(slots=True)
class Hub:
    id: int
    financial_system_id: int
    fatal_return_reasons: frozenset[str]  # a return with one of these blocks the mandate


@dataclass(slots=True)
class Credit:
    """A credit booked on this account, which a return or reversal of the same amount may take back."""

    payment: Booking | StoredPayment
    booked_on: date | None


@dataclass(slots=True)
class StatementFacts:
    account: str
    label: str  # "<file> <statement id>": the note of the payments it books
    hub: Hub | None  # None: the account belongs to no hub
    foreign_currency: bool  # references are in euro: a statement in another currency books nothing


# --- the decisions ----------------------------------------------------------------------------------
#
# Plain records, read-only once made (not frozen: a frozen dataclass costs several times as much to make, and a
# statement makes a hundred thousand of them).


@dataclass(slots=True, eq=False)
class Booking:
    """A payment of ``amount`` on a reference, spread over its debt lines as ``shares`` (line id, amount)."""

    reference_id: int
    amount: Decimal
    note: str
    shares: tuple[tuple[int, Decimal], ...]
    of_collection: bool = False  # booked by the reference's collection (see StoredPayment)


@dataclass(slots=True)
class Reversal:
    """A standing payment undone: a negative payment of ``amount``, its shares given back to the lines."""

    reference_id: int
    reverses: Booking | StoredPayment
    amount: Decimal
    note: str


@dataclass(slots=True)
class ReferenceChange:
    """A reference's status and open amount after the line; ``released``: its debt lines are free again."""

    id: int
    status: str
    open_amount: Decimal
    released: bool = False


@dataclass(slots=True)
class CollectionChange:
    id: int
    before: str
    status: str
    reason: str | None = None  # a return's reason code


@dataclass(slots=True)
class MandateBlock:
    mandate_id: int
    reason: str


@dataclass(slots=True)
class Item:
    """A control-list item: what is irregular, what a person should do, about which amount."""

    kind: ControlListKind
    reason: str
    action: str
    amount: Decimal | None
    details: dict[str, Any] | None = None
    candidates: bool = False  # the importer adds the references the payer may have meant


@dataclass(slots=True)
class Decision:
    """What one line does. ``communication`` is the reference number the entry shows; ``remittance`` what it
    shows when the bank gave no remittance information."""

    outcome: EntryOutcome
    communication: str | None = None
    reference_id: int | None = None
    collection_id: int | None = None
    booked: Decimal | None = None
    remittance: str | None = None
    bookings: tuple[Booking, ...] = ()
    reversals: tuple[Reversal, ...] = ()
    references: tuple[ReferenceChange, ...] = ()
    collections: tuple[CollectionChange, ...] = ()
    mandate_block: MandateBlock | None = None
    item: Item | None = None
    returnable: bool = False  # a credit transfer's payment, which a return or reversal may take back (a batch's not)


# --- the facts, kept up to date -------------------------------------------------------------------------


@dataclass
class Facts:
    """What deciding the lines of a file needs to know, as the lines decided so far have left it."""

    statement: StatementFacts
    numbers: dict[tuple[int, int], list[str]] = field(default_factory=dict)  # (entry, tx) -> numbers in the line
    by_number: dict[str, int] = field(default_factory=dict)  # reference number in the hub's system -> reference id
    references: dict[int, Reference] = field(default_factory=dict)
    collections: dict[int, Collection] = field(default_factory=dict)
    by_end_to_end_id: dict[str, int] = field(default_factory=dict)  # -> collection id
    blocks: dict[str, Block] = field(default_factory=dict)  # by the name the batch credit gives
    blocked_mandates: set[int] = field(default_factory=set)
    # Credits a return may take back, by (account, amount, end-to-end id) and (account, amount, communication).
    credits_by_end_to_end_id: dict[tuple[str, Decimal, str], list[Credit]] = field(default_factory=dict)
    credits_by_number: dict[tuple[str, Decimal, str], list[Credit]] = field(default_factory=dict)
    # Whether a later line of the file may undo a payment of this file (it has debits or reversals): only then
    # are this file's payments kept, per reference and as credits a return may take back.
    undoable: bool = True
    bookings: dict[int, list[Booking]] = field(default_factory=dict)  # this file's, per reference
    reversed: set[Booking | int] = field(default_factory=set)  # this file's bookings and stored ids undone
    paid_runs: set[int] = field(default_factory=set)  # runs of the collections this file paid

    def numbers_in(self, line: EntryLine) -> list[str]:
        return self.numbers.get((line.entry_index, line.tx_index), [])

    def collection(self, end_to_end_id: str | None) -> Collection | None:
        found = self.by_end_to_end_id.get(end_to_end_id or "")
        return self.collections[found] if found is not None else None

    def standing(self, reference_id: int) -> list[Booking | StoredPayment]:
        """The payments on a reference not undone: this file's first, then the stored ones."""
        ours = [b for b in self.bookings.get(reference_id, ()) if b not in self.reversed]
        reference = self.references[reference_id]
        return [*ours, *(p for p in reference.stored if p.id not in self.reversed)]

    def credits_taken_back(self, amount: Decimal, end_to_end_id: str | None, numbers: Iterable[str]) -> list[Credit]:
        """Credits of ``amount`` on this account with ``end_to_end_id`` or, without one, a communication among
        ``numbers``: this file's not undone, then the stored ones."""
        account = self.statement.account
        if end_to_end_id:
            found = self.credits_by_end_to_end_id.get((account, amount, end_to_end_id), [])
        else:
            found = [c for n in numbers for c in self.credits_by_number.get((account, amount, n), [])]
        return [c for c in found if not (isinstance(c.payment, Booking) and c.payment in self.reversed)]

    def record(self, line: EntryLine, decision: Decision) -> None:
        """Apply ``decision`` to the facts, so that the next line sees it."""
        for booking in decision.bookings:
            _shift_lines(self.references[booking.reference_id], booking.shares, -1)
            if self.undoable:
                self.bookings.setdefault(booking.reference_id, []).append(booking)
        if self.undoable and decision.returnable:
            self._credit_booked(line, decision.bookings[0], decision.communication)
        for reversal in decision.reversals:
            undone = reversal.reverses
            self.reversed.add(undone if isinstance(undone, Booking) else undone.id)
            _shift_lines(self.references[reversal.reference_id], undone.shares, +1)
        for change in decision.references:
            reference = self.references[change.id]
            reference.status, reference.open_amount = change.status, change.open_amount
        for change in decision.collections:
            collection = self.collections[change.id]
            collection.status = change.status
            if change.status == CollectionStatus.PAID:
                self.paid_runs.add(collection.run_id)
        if decision.mandate_block is not None:
            self.blocked_mandates.add(decision.mandate_block.mandate_id)

    def _credit_booked(self, line: EntryLine, booking: Booking, communication: str | None) -> None:
        """A credit's payment, for a return of it later in the file: by end-to-end id and by communication."""
        credit = Credit(booking, line.booking_date)
        account = self.statement.account
        if line.end_to_end_id:
            self.credits_by_end_to_end_id.setdefault((account, line.amount, line.end_to_end_id), []).append(credit)
        if communication:
            self.credits_by_number.setdefault((account, line.amount, communication), []).append(credit)


def _shift_lines(reference: Reference, shares: Iterable[tuple[int, Decimal]], sign: int) -> None:
    """Lower (a payment) or raise (a reversal) the open amounts of the reference's lines by their shares."""
    for line_id, share in shares:
        for line in reference.lines:
            if line.id == line_id:
                line.open_amount += sign * share
                break


def decide_all(lines: Iterable[EntryLine], facts: Facts) -> Iterator[Decision]:
    """:func:`decide` each line in order, each seeing what the ones before it did."""
    for line in lines:
        decision = decide(line, facts)
        facts.record(line, decision)
        yield decision


# --- deciding -------------------------------------------------------------------------------------


def decide(line: EntryLine, facts: Facts) -> Decision:
    """What ``line`` does, given ``facts`` (pure: no database, no I/O, ``facts`` unchanged)."""
    statement = facts.statement
    if statement.foreign_currency:
        return Decision(EntryOutcome.NOT_BOOKED)
    if statement.hub is None:
        return Decision(EntryOutcome.UNKNOWN_ACCOUNT, item=Item(
            ControlListKind.UNKNOWN_ACCOUNT, f"account {statement.account} belongs to no bank hub: nothing was booked",
            "link the account to a bank hub, or remove the statement", line.amount))
    numbers = facts.numbers_in(line) if line.credit else []
    communication = numbers[0] if numbers else None
    if line.status != "BOOK" or line.amount == ZERO:  # a zero amount moves no money: nothing for finance to do
        return Decision(EntryOutcome.NOT_BOOKED, communication)
    if books_a_batch(line) and (block := facts.blocks.get(batch_key(line))) is not None:
        return _batch_credit(line, block, facts, communication)
    if line.unsplit_batch:
        return Decision(EntryOutcome.UNSPLIT, communication, item=Item(
            ControlListKind.UNSPLIT, f"batch entry of {line.entry_amount} whose transactions carry no amounts",
            "split the batch by hand and book each payment", line.amount))
    if line.credit and not line.reversal and line.return_reason:
        # Money of ours coming back (a refund or payment we sent, returned by the payee's bank): never a payment.
        return Decision(EntryOutcome.UNKNOWN_RETURN, communication, item=Item(
            ControlListKind.UNKNOWN_RETURN,
            f"{line.amount} of ours came back (return reason {line.return_reason}) from "
            f"{line.counterparty_name or 'an unknown party'}: nothing was booked",
            "find the refund or payment this returns and ask for a correct account", line.amount))
    if line.credit and not line.reversal:
        return _credit(line, facts, numbers, communication)
    if line.credit:
        # A reversal of a debit (RvslInd with CRDT): money back in, e.g. the bank taking back its return of one
        # of our collections. Neither a return (that would undo payments for money that came in) nor a payment.
        return Decision(EntryOutcome.UNKNOWN_RETURN, communication, item=Item(
            ControlListKind.UNKNOWN_RETURN,
            f"reversal of a debit: {line.amount} came back in (end-to-end id {line.end_to_end_id or '-'}, "
            f"from {line.counterparty_name or 'an unknown party'}): nothing was booked or undone",
            "find the debit this reversal undoes (a return of one of our collections taken back?) and book the "
            "amount by hand", line.amount))
    return _debit(line, facts, communication)


def _batch_credit(line: EntryLine, block: Block, facts: Facts, communication: str | None) -> Decision:
    """A batch credit for one of our payment blocks (or runs): all or nothing, as a run is confirmed by hand.

    Counted, as in :mod:`include.sepa.collection_confirm`: the collections neither returned nor cancelled
    whose reference is still open. The credit must equal their open total; then each is paid.
    """
    counted = []
    for collection_id in block.collections:
        collection = facts.collections[collection_id]
        reference = facts.references[collection.reference_id]
        if collection.status not in SETTLED_COLLECTION and _is_open(reference):
            counted.append((collection, reference))
    open_total = sum((reference.open_amount for _, reference in counted), ZERO)
    remittance = f"batch {block.name}"
    if not counted and _booked_before(line, block, facts):
        # The credit of a block whose collections were all paid (the run confirmed by hand, or its transactions
        # credited one by one): the money booked then, not money received again.
        return Decision(EntryOutcome.NOT_BOOKED, communication, remittance=remittance)
    if not counted or line.amount != open_total:
        return Decision(EntryOutcome.UNMATCHED, communication, remittance=remittance, item=Item(
            ControlListKind.BATCH_MISMATCH,
            f"batch credit of {line.amount} for {block.name} ({len(block.collections)} collections of run "
            f"{block.run}), whose open total is {open_total} (difference {line.amount - open_total}): "
            "nothing was booked",
            "find the collections returned or paid some other way (returns on this or a later statement), "
            f"then confirm {block.run} by hand (collection_confirm)", line.amount, {"run": block.run}))
    note = f"{facts.statement.label}: batch {block.name}"
    return Decision(
        EntryOutcome.PAID, communication, booked=line.amount, remittance=remittance,
        bookings=tuple(_booking(reference, reference.open_amount, note, of_collection=True) for _, reference in counted),
        references=tuple(ReferenceChange(reference.id, ReferenceStatus.PAID, ZERO) for _, reference in counted),
        collections=tuple(CollectionChange(collection.id, collection.status, CollectionStatus.PAID)
                          for collection, _ in counted),
    )


def _booked_before(line: EntryLine, block: Block, facts: Facts) -> bool:
    """Whether ``line`` is the credit of ``block`` as already booked: none of its collections waiting, some paid,
    and the credit their amount."""
    collections = [facts.collections[collection_id] for collection_id in block.collections]
    paid = [collection for collection in collections if collection.status == CollectionStatus.PAID]
    return (bool(paid) and all(c.status == CollectionStatus.PAID or c.status in SETTLED_COLLECTION for c in collections)
            and line.amount == sum((collection.amount for collection in paid), ZERO))


def _credit(line: EntryLine, facts: Facts, numbers: list[str], communication: str | None) -> Decision:
    """Money received: on the reference of our collection (end-to-end id), else the first reference number
    the line carries; judged by :func:`include.finance.payments.receipt`."""
    collection = facts.collection(line.end_to_end_id)
    reference: Reference | None = None
    if collection is not None:
        if collection.status == CollectionStatus.PAID and line.amount == collection.amount:
            # Already booked, by the block's batch credit or a confirmation: these are its details (a bank's
            # camt.054 "detail of a collective credit"), not money received again.
            return Decision(EntryOutcome.NOT_BOOKED, communication, collection.reference_id, collection.id)
        reference = facts.references[collection.reference_id]
    else:
        for number in numbers:
            found = facts.by_number.get(number)
            if found is not None:
                reference = facts.references[found]
                break
    collection_id = collection.id if collection is not None else None
    if reference is None:
        text = f"communication {display_reference(communication)}" if communication else "no usable communication"
        return Decision(EntryOutcome.UNMATCHED, communication, item=Item(
            ControlListKind.UNMATCHED,
            f"credit of {line.amount} from {line.counterparty_name or 'an unknown payer'}: {text}, "
            "no open payment reference found",
            "identify the payer (see the candidates), book by hand or refund", line.amount, candidates=True))
    received = receipt(reference.status, reference.open_amount, line.amount)
    if received.outcome is Received.CLOSED_REFERENCE:
        return Decision(EntryOutcome.CLOSED_REFERENCE, communication, reference.id, collection_id, item=Item(
            ControlListKind.CLOSED_REFERENCE,
            f"credit of {line.amount} for {reference.loi}, which is {reference.status}",
            "refund the payer, or book the amount on another open reference of the payer", line.amount,
            {"reference": reference.loi}))
    paid = received.left == 0
    item = None
    if received.outcome is Received.PARTIAL:
        item = Item(ControlListKind.PARTIAL,
                    f"{line.amount} paid on {reference.loi} whose open amount was {received.open_before}; "
                    f"{received.left} remains open", "remind the payer of the rest, or write it off", line.amount,
                    {"reference": reference.loi})
    elif received.outcome is Received.OVERPAID:
        item = Item(ControlListKind.OVERPAID,
                    f"{line.amount} paid on {reference.loi} whose open amount was {received.open_before}: "
                    f"{received.excess} too much",
                    f"refund {received.excess} to {mask_iban(line.counterparty_iban) or 'the payer'} "
                    "or keep it as a credit",
                    received.excess, {"reference": reference.loi})
    return Decision(
        _OUTCOMES[received.outcome], communication, reference.id, collection_id, booked=received.booked,
        bookings=(_booking(reference, received.booked, facts.statement.label,
                           of_collection=collection is not None or is_direct_debit(line.bank_tx_code)),)
        if received.booked else (),
        references=(ReferenceChange(reference.id, ReferenceStatus.PAID if paid else reference.status, received.left),),
        collections=(CollectionChange(collection.id, collection.status, CollectionStatus.PAID),)
        if collection is not None and paid else (),
        item=item, returnable=bool(received.booked),
    )


def _debit(line: EntryLine, facts: Facts, communication: str | None) -> Decision:
    """A debit (or a reversal): the return of one of our collections, the undoing of a credit we booked,
    a return we cannot place, or another debit (fees, transfers out)."""
    collection = facts.collection(line.end_to_end_id)
    is_return = line.return_reason is not None or line.reversal
    if collection is None:
        if not is_return:
            return Decision(EntryOutcome.OTHER_DEBIT, communication)
        undone = _undo_credit(line, facts)
        if undone is not None:
            return undone
        return Decision(EntryOutcome.UNKNOWN_RETURN, communication, item=Item(
            ControlListKind.UNKNOWN_RETURN, f"{'reversal' if line.reversal else 'return'} of {line.amount} "
            f"(reason {line.return_reason or '-'}, end-to-end id {line.end_to_end_id or '-'}) "
            "that matches none of our collections", "check with the bank which payment this undoes", line.amount))
    returned = Decision(EntryOutcome.RETURNED, communication, collection.reference_id, collection.id)
    if collection.status == CollectionStatus.RETURNED:
        return returned
    reason = line.return_reason or ("reversal" if line.reversal else "returned")
    reference = facts.references[collection.reference_id]
    note = f"collection {line.end_to_end_id} returned ({reason})"
    # Only what the collection itself booked is undone: a payment at the counter, by transfer or through POM
    # stands (the debtor paid that; the bank gave back only the collection).
    reversals = tuple(Reversal(reference.id, payment, payment.amount, note)
                      for payment in facts.standing(reference.id) if payment.of_collection)
    undone_total = sum((reversal.amount for reversal in reversals), ZERO)
    open_after = reference.open_amount + undone_total
    hub = facts.statement.hub
    assert hub is not None
    block = None
    if open_after > 0:
        action = "the debt is open again and will be collected with the next run (FRST again if this was the first)"
        # The reference is closed: its debt is free, to be collected again by the next run.
        changes: tuple[ReferenceChange, ...] = (
            ReferenceChange(reference.id, ReferenceStatus.DELETED, open_after, released=True),)
    else:
        action = (f"{reference.loi} was paid another way, so nothing is open again; the collection's money went back "
                  "to the debtor: do not refund its credit as well")
        changes = ()
    if reason in hub.fatal_return_reasons:
        action = ("the mandate is blocked (it lists on active-err): ask the debtor for a new mandate "
                  "or another way to pay" + ("" if changes else f"; {action}"))
        if collection.mandate_id is not None and collection.mandate_id not in facts.blocked_mandates:
            block = MandateBlock(collection.mandate_id,
                                 f"collection {line.end_to_end_id} returned with {reason} on {line.booking_date}"[:200])
    return Decision(
        returned.outcome, communication, collection.reference_id, collection.id, reversals=reversals,
        references=changes,
        collections=(CollectionChange(collection.id, collection.status, CollectionStatus.RETURNED, reason[:10]),),
        mandate_block=block,
        item=Item(ControlListKind.RETURNED,
                  f"collection {line.end_to_end_id} of {collection.amount} returned ({reason}); "
                  f"{undone_total} of payments reversed", action, line.amount,
                  {"reason": reason, "reference": reference.loi}),
    )


def _undo_credit(line: EntryLine, facts: Facts) -> Decision | None:
    """A return or reversal of a credit transfer we booked: its payment is undone and the reference is open
    again. Only when exactly one standing payment fits: a credit on the same account, of the same amount,
    with the same end-to-end id (or, when none has it, the same payment reference), on a reference that is
    sealed or paid; otherwise ``None`` (the line goes to the control list)."""
    if line.credit:  # a reversal of a debit brings money in: there is no credit of ours to undo
        return None
    numbers = facts.numbers.get((line.entry_index, line.tx_index), [])
    found = facts.credits_taken_back(line.amount, line.end_to_end_id, ()) if line.end_to_end_id else []
    if not found and numbers:
        found = facts.credits_taken_back(line.amount, None, numbers)
    if len(found) != 1:
        return None
    credit = found[0]
    payment = credit.payment
    reference = facts.references[payment.reference_id]
    if reference.status not in (ReferenceStatus.SEALED, ReferenceStatus.PAID):
        return None
    if (payment if isinstance(payment, Booking) else payment.id) in facts.reversed:
        return None  # undone earlier in this file
    what = "reversal" if line.reversal else f"return ({line.return_reason})"
    open_after = reference.open_amount + payment.amount
    return Decision(
        EntryOutcome.RETURNED, reference.number, reference.id,
        reversals=(Reversal(reference.id, payment, payment.amount,
                            f"{what} of the credit of {line.amount} booked on {credit.booked_on}"),),
        references=(ReferenceChange(reference.id, ReferenceStatus.SEALED, open_after),),
        item=Item(ControlListKind.RETURNED,
                  f"the bank took back the credit of {line.amount} of {credit.booked_on} ({what}): the payment of "
                  f"{payment.amount} on {reference.loi} is undone and {open_after} is open again",
                  "check with the payer why the transfer came back; the debt is open again and will be asked again",
                  line.amount, {"reason": line.return_reason or "reversal", "reference": reference.loi}),
    )


_OUTCOMES = {received: EntryOutcome(received.value) for received in Received}


def _is_open(reference: Reference) -> bool:
    return reference.status in OPEN_REFERENCE and reference.open_amount > 0


def _booking(reference: Reference, amount: Decimal, note: str, *, of_collection: bool = False) -> Booking:
    return Booking(reference.id, amount, note, tuple(allocate(reference.lines, amount, reference.strategy)),
                   of_collection)
