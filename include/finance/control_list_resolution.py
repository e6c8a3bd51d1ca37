"""Resolving a control-list item, once: book its money onto a payment reference, or mark it handled with a note.

Seed 2.3.5.2 ("Verwerking externe betalingsgegevens – controlelijst"): the
control list gathers what the processing of external payments could not do
on its own, from every source — bank statements (``camt053_import``) and POM
(callbacks and the nightly reconciliation). Finance resolves each item by hand
(DAG ``control_list_resolve``):

* **book**: the item's money onto an open payment reference, named by its
  ``fp:SYS:n`` or its structured communication (OGM or RF, as written on the
  invoice). The money is the item's amount: a credit's whole amount when
  nothing of it was booked (``unmatched``, ``closed_reference``), the excess
  of an over-payment (``overpaid``, from a statement or from POM). It is booked
  as the import books a credit (:class:`~include.finance.payments.Ledger`):
  equal to the open amount → paid; less → partly paid; more → the open amount
  is booked and the rest stays on the control list as a new open item
  ("refund the rest"). The payment's source is ``manual``, booked by the
  person, and points at the bank entry when there is one. Refused: an item
  that is no money received (a debit, a return, a batch to split, a
  statement-level note), a reference that is paid, deleted or expired, a
  reference of another financial system than the account the money came in
  on, and an item already resolved.
* **handle**: refunded, paid at the cash desk, not ours …: a note says what
  was done (required); nothing is booked.

Booking changes the payment reference, so it needs the write lock
(``accwrite``) of the reference's type, or its admin lock, among the roles
of who resolves (:mod:`include.finance.access`); it is checked once the
reference is found, before the item is claimed, and refused with
:class:`~include.finance.access.AccessRefused` naming the lock. Handling
touches no reference and needs no lock (:func:`touches_reference`).

An item is resolved once, also when two people act on it at the same moment:
the claim is one conditional ``UPDATE … WHERE id = :id AND resolved_at IS
NULL`` whose row count is checked in the same transaction before anything is
booked. On PostgreSQL the second UPDATE waits for the first transaction and
then matches no row; on SQLite the second transaction only starts once the
first committed (``BEGIN IMMEDIATE``). Either way the loser books nothing and
hears who resolved the item and when. Every resolution is audited
(``audit_log`` entity ``control_list_item``: who, what, note, payment).

Everything runs in the caller's transaction; a refusal raises
:class:`~include.errors.InnenError` with a message for people and changes
nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from include.errors import InnenError, ReferenceNumberError
from include.finance.access import require_reference
from include.finance.audit import record
from include.finance.db import hold_ledger
from include.finance.models import (
    OPEN_REFERENCE_STATUSES,
    BankEntry,
    BankHub,
    BankStatement,
    ControlListItem,
    Payment,
    PaymentReference,
)
from include.finance.money import money
from include.finance.payments import Ledger
from include.finance.reference_numbers import display_reference, parse_ogm, parse_rf
from include.finance.statuses import BOOKABLE_ITEM, ControlListKind, Received
from include.sepa.identifiers import mask_iban

ACTIONS = ("book", "handle")
# Why an item that is not in BOOKABLE_ITEM cannot be booked, for the refusal.
_WHY_NOT_BOOKABLE = {
    ControlListKind.PARTIAL: "the credit is booked already; what is open is on the reference",
    ControlListKind.RETURNED: "it is money going back, already undone on its reference",
    ControlListKind.UNKNOWN_RETURN: "it is a return, not money received",
    ControlListKind.UNSPLIT: "a batch must be split first; book each payment of it by hand",
    ControlListKind.BATCH_MISMATCH: "a batch credit is booked by confirming its collection run (collection_confirm)",
    ControlListKind.SEQUENCE_GAP: "it is about the statement, not about money",
    ControlListKind.FOREIGN_CURRENCY: "the statement is not in euro",
    ControlListKind.UNKNOWN_ACCOUNT: "the account belongs to no bank hub",
}


@dataclass(frozen=True)
class Resolution:
    """What resolving one item did."""

    item_id: int
    resolution: str  # booked | handled
    resolved_by: str
    resolved_at: datetime
    note: str | None
    reference: str | None = None  # the payment reference booked on (loi)
    amount: Decimal | None = None  # the item's money
    booked: Decimal | None = None  # what was booked (at most the reference's open amount)
    outcome: str | None = None  # paid | partial | overpaid, as the import says it
    open_amount: Decimal | None = None  # left open on the reference
    payment_id: int | None = None
    rest_item_id: int | None = None  # the new open item holding an over-payment's rest

    @property
    def message(self) -> str:
        if self.resolution == "handled":
            return f"control-list item {self.item_id} handled: {self.note}"
        text = f"control-list item {self.item_id} booked: {self.booked} on {self.reference} ({self.outcome}"
        text += f", {self.open_amount} still open)" if self.outcome == "partial" else ")"
        if self.rest_item_id is not None:
            text += f"; the rest, {money(self.amount or 0) - money(self.booked or 0)}, is open item {self.rest_item_id}"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {key: str(value) if isinstance(value, (Decimal, datetime)) else value
                for key, value in asdict(self).items()}


def touches_reference(action: str) -> bool:
    """Whether resolving by ``action`` changes a payment reference, so that its type's access lock applies.

    >>> touches_reference("book"), touches_reference("handle")
    (True, False)
    """
    return action == "book"


def resolve_item(
    session: Session, item_id: int, *, action: str, reference: str | None = None, note: str | None = None,
    actor: str, now: datetime, roles: Iterable[str],
) -> Resolution:
    """Resolve control-list item ``item_id`` (``action`` ``book`` onto ``reference``, or ``handle`` with ``note``)
    for someone holding ``roles`` (only booking asks for any, see the module docstring)."""
    if action not in ACTIONS:
        raise InnenError(f"unknown action {action!r}: book (onto a payment reference) or handle (with a note)")
    note = (note or "").strip() or None
    reference = (reference or "").strip() or None
    item = session.get(ControlListItem, item_id)
    if item is None:
        raise InnenError(f"there is no control-list item {item_id}")
    if item.resolved_at is not None:
        raise _already_resolved(session, item_id)
    if action == "handle":
        if note is None:
            raise InnenError(f"control-list item {item_id}: say in a note how it was handled (refunded, cash desk, "
                             "not ours, …)")
        if reference is not None:
            raise InnenError(f"control-list item {item_id}: handling books nothing, so it takes no reference; "
                             f"to book onto {reference}, choose the action book")
        _claim_or_refuse(session, item_id, resolved_by=actor, resolved_at=now, resolution="handled",
                         resolution_note=note, resolution_payment_reference_id=None)
        record(session, "control_list_item", item_id, "handled", actor, before={"resolved_at": None},
               after={"resolution": "handled", "note": note, "kind": item.kind, "amount": item.amount}, at=now)
        return Resolution(item_id, "handled", actor, now, note)
    return _book(session, item, reference, note, actor, now, roles)


# -- booking -------------------------------------------------------------------------------------


def _book(session: Session, item: ControlListItem, reference: str | None, note: str | None, actor: str,
          now: datetime, roles: Iterable[str]) -> Resolution:
    # The ledger first, before the claim's and the reference's row locks: a statement's import holding it
    # may be updating that reference, and waits for no row of ours while it does.
    hold_ledger(session)
    entry = session.get(BankEntry, item.bank_entry_id) if item.bank_entry_id is not None else None
    _check_money_received(item, entry)
    amount = money(item.amount)
    if reference is None:
        raise InnenError(f"control-list item {item.id}: name the payment reference to book {amount} on "
                         "(fp:SYS:n or its structured communication)")
    target = _find_reference(session, reference, _system_of(session, item))
    # The lock first, as sealing checks it: the reference's state is no business of who may not write on it.
    # The reference is not locked yet, so that the claim below stays what two people resolving one item wait on.
    require_reference(session, target, "book", roles)
    if target.status not in OPEN_REFERENCE_STATUSES or target.open_amount <= 0:
        raise InnenError(_closed(target.loi, target.status))
    if entry is not None and session.scalar(select(Payment.id).where(
            Payment.bank_entry_id == entry.id, Payment.payment_reference_id == target.id)) is not None:
        raise InnenError(f"control-list item {item.id}: this credit was booked on {target.loi} before; "
                         "book the amount on another reference, or handle the item")
    _claim_or_refuse(session, item.id, resolved_by=actor, resolved_at=now, resolution="booked",
                     resolution_note=note, resolution_payment_reference_id=target.id)
    # The claim is ours: now the reference, locked against a booking beside ours (PostgreSQL; SQLite has
    # serialised the whole transaction), read again as it is now.
    session.execute(select(PaymentReference.id).where(PaymentReference.id == target.id).with_for_update())
    ledger = Ledger(session, actor, now)
    ref = ledger.load([target.id])[target.id]
    if not ref.is_open:  # paid meanwhile: the claim goes back with the rollback
        raise InnenError(_closed(ref.loi, ref.status))
    open_before = ref.open_amount
    what = f"control-list item {item.id}" + (f": {note}" if note else "")
    received, payment = ledger.receive(ref, amount, source="manual",
                                       bank_entry_id=entry.id if entry is not None else None, note=what[:250])
    assert payment is not None, "the reference was checked open above"
    ledger.flush()
    outcome, booked = received.outcome, received.booked
    rest_item_id = None
    if outcome is Received.OVERPAID:
        rest_item_id = _rest_item(session, item, entry, ref.loi, amount, open_before, now)
    record(session, "control_list_item", item.id, "booked", actor, before={"resolved_at": None},
           after={"resolution": "booked", "note": note, "kind": item.kind, "amount": amount,
                  "reference": ref.loi, "payment_id": payment["id"], "booked": booked, "outcome": outcome,
                  "rest_item_id": rest_item_id}, at=now)
    return Resolution(item.id, "booked", actor, now, note, ref.loi, amount, booked, outcome, ref.open_amount,
                      payment["id"], rest_item_id)


def _check_money_received(item: ControlListItem, entry: BankEntry | None) -> None:
    """Refuse booking an item that holds no money received and not yet booked."""
    if entry is not None and (not entry.credit or entry.reversal or entry.return_reason):
        what = "a return" if entry.return_reason or entry.reversal else "a debit"
        raise InnenError(f"control-list item {item.id} is {what} of {entry.amount}, not money received: it cannot be "
                         "booked onto a payment reference; handle it with a note")
    if item.kind not in BOOKABLE_ITEM:
        why = _WHY_NOT_BOOKABLE.get(item.kind, "it holds no money waiting to be booked")
        raise InnenError(f"control-list item {item.id} ({item.kind}) cannot be booked: {why}; handle it with a note")
    if item.amount is None or item.amount <= 0:
        raise InnenError(f"control-list item {item.id} holds no amount to book; handle it with a note")


def _system_of(session: Session, item: ControlListItem) -> int | None:
    """The financial system the money came in for: the statement account's hub, or the reference POM was paid for."""
    if item.statement_id is not None:
        return session.scalar(select(BankHub.financial_system_id)
                              .join(BankStatement, BankStatement.hub_id == BankHub.id)
                              .where(BankStatement.id == item.statement_id))
    loi = (item.details or {}).get("reference")
    if loi:
        return session.scalar(select(PaymentReference.financial_system_id).where(PaymentReference.loi == loi))
    return None


def _find_reference(session: Session, text: str, system_id: int | None) -> PaymentReference:
    """The payment reference ``text`` names: its loi (``fp:SYS:n``), else its OGM or RF however written."""
    if ":" in text:
        found = list(session.scalars(select(PaymentReference).where(PaymentReference.loi == text)))
    else:
        number = None
        for parse in (parse_ogm, parse_rf):
            try:
                number = parse(text)
                break
            except ReferenceNumberError:
                continue
        if number is None:
            raise InnenError(f"{text!r} is neither a payment reference (fp:SYS:n) nor a valid structured "
                             "communication (OGM or RF)")
        query = select(PaymentReference).where(PaymentReference.reference_number == number)
        if system_id is not None:
            query = query.where(PaymentReference.financial_system_id == system_id)
        found = list(session.scalars(query))
        if len(found) > 1:
            raise InnenError(f"{display_reference(number)} is the communication of {len(found)} references "
                             f"({', '.join(ref.loi for ref in found)}): name one by its fp:SYS:n")
    if not found:
        raise InnenError(f"no payment reference {text}")
    (ref,) = found
    if system_id is not None and ref.financial_system_id != system_id:
        raise InnenError(f"{ref.loi} belongs to another financial system than the account the money came in on: "
                         "book it on a reference of that system")
    return ref


def _closed(loi: str, status: str) -> str:
    return (f"{loi} is {status}, not open: book on an open reference of the payer, or handle the item "
            "(e.g. refunded)")


# What names a POM payer on an item (include/pom/booking.py, include/pom/callbacks.py): kept on its rest.
_POM_DETAILS = ("pom_payment_request_id", "pom_id", "account", "channel", "via", "communication", "paid_at")


def _rest_item(session: Session, item: ControlListItem, entry: BankEntry | None, loi: str, amount: Decimal,
               open_before: Decimal, now: datetime) -> int:
    """What an over-payment leaves: a new open item on the same list, for the same money."""
    rest = amount - open_before
    details = item.details or {}
    # The payer's trace goes with the rest: the bank entry (kept below), or POM's request (its details).
    kept = {key: details[key] for key in _POM_DETAILS if details.get(key) is not None}
    if entry is not None and entry.counterparty_iban:
        payer = mask_iban(entry.counterparty_iban)
    elif kept.get("pom_id"):
        payer = f"the payer of POM {kept['pom_id']} ({kept.get('channel') or 'unknown channel'})"
    else:
        payer = "the payer"
    new = ControlListItem(
        statement_id=item.statement_id, bank_entry_id=item.bank_entry_id, source=item.source,
        pom_event_id=item.pom_event_id, kind=ControlListKind.OVERPAID,
        reason=f"{amount} of control-list item {item.id} booked by hand on {loi} whose open amount was {open_before}: "
               f"{rest} too much",
        action=f"refund the rest: {rest} to {payer}, or book it on another open reference",
        amount=rest, details={**kept, "reference": loi, "from_item": item.id}, created_at=now,
    )
    session.add(new)
    session.flush()
    return new.id


# -- resolved once -------------------------------------------------------------------------------


def _claim(session: Session, item_id: int, values: dict[str, Any]) -> bool:
    """Mark the item resolved if nobody did: one conditional UPDATE; True when it was ours to resolve."""
    table = ControlListItem.__table__
    result = session.execute(
        table.update().where(table.c.id == item_id, table.c.resolved_at.is_(None)).values(**values)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def _claim_or_refuse(session: Session, item_id: int, **values: Any) -> None:
    if not _claim(session, item_id, values):
        raise _already_resolved(session, item_id)


def _already_resolved(session: Session, item_id: int) -> InnenError:
    row = session.execute(
        select(ControlListItem.resolved_by, ControlListItem.resolved_at, ControlListItem.resolution,
               PaymentReference.loi)
        .outerjoin(PaymentReference, PaymentReference.id == ControlListItem.resolution_payment_reference_id)
        .where(ControlListItem.id == item_id)
    ).one()
    how = f"booked on {row.loi}" if row.resolution == "booked" else row.resolution
    moment = row.resolved_at
    if moment is not None and moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    at = moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment is not None else "?"
    return InnenError(f"control-list item {item_id} was already resolved ({how}) by {row.resolved_by} at {at}: "
                      "nothing was done")


# -- what is still open ----------------------------------------------------------------------------

OPEN_HEADER = ("item", "source", "kind", "since", "amount", "statement", "counterparty", "counterparty_iban",
               "reference", "reason", "action")


def open_item_query() -> Any:
    """Open items of every source with their entry's payer, statement and reference:
    ``(item, counterparty name, counterparty IBAN, account, statement id, reference loi)``, unordered."""
    return (
        select(ControlListItem, BankEntry.counterparty_name, BankEntry.counterparty_iban, BankStatement.account,
               BankStatement.statement_id, PaymentReference.loi)
        .outerjoin(BankEntry, BankEntry.id == ControlListItem.bank_entry_id)
        .outerjoin(BankStatement, BankStatement.id == ControlListItem.statement_id)
        .outerjoin(PaymentReference, PaymentReference.id == BankEntry.payment_reference_id)
        .where(ControlListItem.resolved_at.is_(None))
    )


def open_items(session: Session, limit: int | None = None) -> list[list[Any]]:
    """The open items of every source, oldest first, as rows of :data:`OPEN_HEADER` (the report of what is open)."""
    query = open_item_query().order_by(ControlListItem.created_at, ControlListItem.id)
    if limit is not None:
        query = query.limit(limit)
    rows = []
    for item, name, iban, account, statement, loi in session.execute(query):
        rows.append([
            item.id, item.source, item.kind, item.created_at, item.amount if item.amount is not None else "",
            f"{account} {statement}" if account else "", name or "", mask_iban(iban),
            (item.details or {}).get("reference") or loi or "", item.reason, item.action,
        ])
    return rows


def write_open_list(session: Session, folder: Path | None = None) -> tuple[str, int]:
    """``control_list/open.csv`` and ``index.html`` under the reports folder: every item still open."""
    from include.config import reports_dir
    from include.reports import Table, write_csv, write_html

    folder = folder or reports_dir() / "control_list"
    rows = open_items(session)
    write_csv(folder / "open.csv", OPEN_HEADER, rows)
    table = Table("Still open", OPEN_HEADER, csv_name="open.csv")
    for row in rows:
        table.add(row)
    write_html(folder / "index.html", "Control list — still open, every source", [table],
               summary=[("open items", len(rows))])
    return str(folder / "index.html"), len(rows)
