"""Booking payments on payment references, and undoing them.

A reference released as deleted or expired (deleted by hand, a returned
collection, past its lifetime) also gives back the open part of the
transaction cost its sealing added (:func:`reverse_transaction_costs`), and
its current invoice is withdrawn at once, as unsealing withdraws it.

A payment lowers its reference's open amount and, through allocations, the
open amounts of the reference's debt lines. How a partial payment is spread
over the lines is the financial system's choice (seed 2.4.9):

* ``first_transaction``: the oldest line first (by the day the debt arose, then
  by id, the order the invoice lists them in), then the next;
* ``matching_amount``: a line whose open amount equals the payment, if there
  is one; otherwise as ``first_transaction``.

Money received against a reference is judged by one rule, :func:`receipt`,
whoever received it (a statement's credit, a POM payment, a control-list item
booked by hand); :meth:`Ledger.receive` books what it decides.

:class:`Ledger` keeps the references it touches in memory while a whole
statement (or run) is booked, so that two payments on one reference in one
file see each other, and writes everything in bulk at the end, audited.
Amounts are Decimals throughout.

>>> lines = [OpenLine(1, Decimal("5.00")), OpenLine(2, Decimal("7.50")), OpenLine(3, Decimal("2.00"))]
>>> allocate(lines, Decimal("7.50"), "first_transaction")
[(1, Decimal('5.00')), (2, Decimal('2.50'))]
>>> allocate(lines, Decimal("7.50"), "matching_amount")
[(2, Decimal('7.50'))]
>>> receipt("sealed", Decimal("20.00"), Decimal("25.00"))
Receipt(outcome=<Received.OVERPAID: 'overpaid'>, received=Decimal('25.00'), open_before=Decimal('20.00'), booked=Decimal('20.00'))
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from include.finance.audit import audit_row, record_many
from include.finance.bulk import insert_many, reserve_ids, update_by_id
from include.finance.db import hold_ledger
from include.finance.models import (
    DebtLine,
    FinancialSystem,
    Payment,
    PaymentAllocation,
    PaymentReference,
    PaymentReferenceLine,
)
from include.finance.money import ZERO
from include.finance.statuses import OPEN_REFERENCE, RELEASED_REFERENCE, Received, ReferenceStatus
from include.invoices.withdrawal import withdraw_current

ID_BATCH = 5_000


@dataclass(slots=True)
class OpenLine:
    id: int
    open_amount: Decimal


@dataclass(slots=True)
class OpenReference:
    """A payment reference as a booking sees it, with the changes made so far."""

    id: int
    loi: str
    status: str
    amount: Decimal
    open_amount: Decimal
    financial_system_id: int
    mandate_id: int | None
    end_user_id: int
    reference_number: str | None
    strategy: str = "first_transaction"
    lines: list[OpenLine] = field(default_factory=list)
    original: tuple[str, Decimal] | None = None  # (status, open amount) before this booking

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_REFERENCE and self.open_amount > 0


@dataclass(frozen=True, slots=True)
class Receipt:
    """What money received against a reference does: its outcome and what is booked of it."""

    outcome: Received
    received: Decimal
    open_before: Decimal
    booked: Decimal

    @property
    def excess(self) -> Decimal:
        """What came in beyond the open amount (all of it on a closed reference): to refund or keep as a credit."""
        return self.received - self.booked

    @property
    def left(self) -> Decimal:
        """What stays open on the reference after the booking."""
        return self.open_before - self.booked if self.outcome is not Received.CLOSED_REFERENCE else self.open_before


def receipt(status: str, open_amount: Decimal, amount: Decimal) -> Receipt:
    """The one rule for ``amount`` received on a reference of ``status`` with ``open_amount`` open.

    A reference that is no longer open (paid, deleted, expired, or nothing left
    open) takes nothing; otherwise the open amount at most is booked.
    """
    if status not in OPEN_REFERENCE or open_amount <= 0:
        return Receipt(Received.CLOSED_REFERENCE, amount, open_amount, ZERO)
    if amount == open_amount:
        outcome = Received.PAID
    elif amount < open_amount:
        outcome = Received.PARTIAL
    else:
        outcome = Received.OVERPAID
    return Receipt(outcome, amount, open_amount, min(amount, open_amount))


def allocate(lines: Sequence[OpenLine], amount: Decimal, strategy: str) -> list[tuple[int, Decimal]]:
    """How ``amount`` (at most the lines' open total) is spread over ``lines``."""
    if strategy == "matching_amount":
        for line in lines:
            if line.open_amount == amount:
                return [(line.id, amount)]
    allocations = []
    left = amount
    for line in lines:
        if left <= 0:
            break
        share = min(line.open_amount, left)
        if share > 0:
            allocations.append((line.id, share))
            left -= share
    return allocations


class Ledger:
    """Payments, reversals and deletions of one unit of work, written together by :meth:`flush`."""

    def __init__(self, session: Session, actor: str, now: datetime) -> None:
        hold_ledger(session)  # what load() reads is then committed money no other transaction is changing
        self.session, self.actor, self.now = session, actor, now
        self.references: dict[int, OpenReference] = {}
        self._line_open: dict[int, Decimal] = {}
        self._line_before: dict[int, Decimal] = {}
        self._released: set[int] = set()
        self._payments: list[dict[str, Any]] = []
        self._allocations: list[dict[str, Any]] = []
        self._audits: list[dict[str, Any]] = []

    # -- loading ---------------------------------------------------------------------------

    def load(self, reference_ids: Iterable[int]) -> dict[int, OpenReference]:
        """Read the references (and their debt lines) not yet held; returns all held ones."""
        wanted = sorted(set(reference_ids) - self.references.keys())
        strategies = dict(self.session.execute(select(FinancialSystem.id, FinancialSystem.partial_payment_strategy)).all())
        for start in range(0, len(wanted), ID_BATCH):
            chunk = wanted[start : start + ID_BATCH]
            for row in self.session.execute(
                select(
                    PaymentReference.id, PaymentReference.loi, PaymentReference.status, PaymentReference.amount,
                    PaymentReference.open_amount, PaymentReference.financial_system_id, PaymentReference.mandate_id,
                    PaymentReference.end_user_id, PaymentReference.reference_number,
                ).where(PaymentReference.id.in_(chunk))
            ):
                self.references[row.id] = OpenReference(
                    row.id, row.loi, row.status, row.amount, row.open_amount, row.financial_system_id,
                    row.mandate_id, row.end_user_id, row.reference_number, strategies.get(row.financial_system_id, "first_transaction"),
                )
            for ref_id, line_id, open_amount in self.session.execute(
                select(PaymentReferenceLine.payment_reference_id, DebtLine.id, DebtLine.open_amount)
                .join(DebtLine, DebtLine.id == PaymentReferenceLine.debt_line_id)
                .where(PaymentReferenceLine.payment_reference_id.in_(chunk))
                .order_by(PaymentReferenceLine.payment_reference_id, DebtLine.created_on, DebtLine.id)  # oldest first
            ):
                self._line_open.setdefault(line_id, open_amount)
                self.references[ref_id].lines.append(OpenLine(line_id, self._line_open[line_id]))
        return self.references

    # -- changes ---------------------------------------------------------------------------

    def _touch(self, ref: OpenReference) -> None:
        if ref.original is None:
            ref.original = (ref.status, ref.open_amount)

    def _set_line(self, line: OpenLine, open_amount: Decimal) -> None:
        self._line_before.setdefault(line.id, line.open_amount)
        line.open_amount = open_amount
        self._line_open[line.id] = open_amount

    def pay(
        self, ref: OpenReference, amount: Decimal, *, source: str, bank_entry_id: int | None = None,
        note: str | None = None, pom_payment_request_id: int | None = None,
    ) -> dict[str, Any]:
        """Book ``amount`` (at most the open amount) on ``ref``; returns the payment row."""
        if not 0 < amount <= ref.open_amount:
            raise ValueError(f"{ref.loi}: cannot book {amount} on an open amount of {ref.open_amount}")
        self._touch(ref)
        payment = {
            "id": None, "payment_reference_id": ref.id, "amount": amount, "source": source,
            "bank_entry_id": bank_entry_id, "reverses_payment_id": None, "booked_at": self.now,
            "booked_by": self.actor, "note": note, "pom_payment_request_id": pom_payment_request_id,
        }
        allocations = allocate(ref.lines, amount, ref.strategy)
        lines = {line.id: line for line in ref.lines}
        for line_id, share in allocations:
            self._set_line(lines[line_id], lines[line_id].open_amount - share)
            self._allocations.append({"payment_id": None, "debt_line_id": line_id, "amount": share, "_payment": payment})
        # Lines may hold less than the reference (debt paid elsewhere meanwhile): the reference follows the payment.
        ref.open_amount -= amount
        if ref.open_amount == 0:
            ref.status = ReferenceStatus.PAID
        self._payments.append(payment)
        return payment

    def receive(
        self, ref: OpenReference, amount: Decimal, *, source: str, bank_entry_id: int | None = None,
        note: str | None = None, pom_payment_request_id: int | None = None,
    ) -> tuple[Receipt, dict[str, Any] | None]:
        """``amount`` received on ``ref``: judged by :func:`receipt`, and what it books is paid.

        Returns the receipt and the payment row (``None`` when nothing was booked)."""
        decided = receipt(ref.status, ref.open_amount, amount)
        if decided.booked <= 0:
            return decided, None
        payment = self.pay(ref, decided.booked, source=source, bank_entry_id=bank_entry_id, note=note,
                           pom_payment_request_id=pom_payment_request_id)
        return decided, payment

    def reverse(
        self, ref: OpenReference, note: str, source: str = "bank_statement", *,
        only: dict[str, Any] | int | None = None, bank_entry_id: int | None = None,
    ) -> Decimal:
        """Undo every payment still standing on ``ref`` (booked before, or earlier in this unit of work), or
        ``only`` that one (a payment row of this unit of work, or a stored payment's id); returns the total undone.

        ``bank_entry_id``: the bank entry that undoes it, kept on the reversing payment."""
        self._touch(ref)
        standing: list[tuple[dict[str, Any] | int, Decimal, list[tuple[int, Decimal]]]] = []
        for payment in self._payments:
            if (payment["payment_reference_id"] == ref.id and payment["amount"] > 0 and not payment.get("_reversed")
                    and (only is None or payment is only)):
                payment["_reversed"] = True
                shares = [(a["debt_line_id"], a["amount"]) for a in self._allocations if a["_payment"] is payment]
                standing.append((payment, payment["amount"], shares))
        stored = (
            select(Payment.id, Payment.amount)
            .where(
                Payment.payment_reference_id == ref.id,
                Payment.amount > 0,
                ~Payment.id.in_(select(Payment.reverses_payment_id).where(Payment.reverses_payment_id.is_not(None))),
            )
            .order_by(Payment.id)
        )
        if isinstance(only, int):
            stored = stored.where(Payment.id == only)
        rows = [] if isinstance(only, dict) else self.session.execute(stored).all()
        # Stored payments reversed earlier in this unit of work (only looked for when there are stored ones).
        undone_here = {p["reverses_payment_id"] for p in self._payments if p["reverses_payment_id"]} if rows else set()
        for payment_id, amount in rows:
            if payment_id in undone_here:
                continue
            shares = self.session.execute(
                select(PaymentAllocation.debt_line_id, PaymentAllocation.amount).where(PaymentAllocation.payment_id == payment_id)
            ).all()
            standing.append((payment_id, amount, list(shares)))
        total = ZERO
        lines = {line.id: line for line in ref.lines}
        for original, amount, shares in standing:
            reversal = {
                "id": None, "payment_reference_id": ref.id, "amount": -amount, "source": source,
                "bank_entry_id": bank_entry_id, "reverses_payment_id": original if isinstance(original, int) else None,
                "booked_at": self.now, "booked_by": self.actor, "note": note, "pom_payment_request_id": None,
                "_reverses": original if isinstance(original, dict) else None,
            }
            for line_id, share in shares:
                line = lines.get(line_id)
                if line is not None:
                    self._set_line(line, line.open_amount + share)
                self._allocations.append({"payment_id": None, "debt_line_id": line_id, "amount": -share, "_payment": reversal})
            self._payments.append(reversal)
            total += amount
        ref.open_amount += total
        if total and ref.status == ReferenceStatus.PAID:
            ref.status = ReferenceStatus.SEALED
        return total

    def release(self, ref: OpenReference, status: str) -> None:
        """Close ``ref`` as ``deleted`` or ``expired``: its debt lines are free (open debt) again."""
        self._touch(ref)
        ref.status = status
        self._released.add(ref.id)

    # -- writing ---------------------------------------------------------------------------

    def flush(self) -> None:
        """Write payments, allocations, reference and debt-line changes and their audit rows."""
        session = self.session
        if self._payments:
            ids = reserve_ids(session, Payment.__table__, len(self._payments))
            for payment, payment_id in zip(self._payments, ids, strict=True):
                payment["id"] = payment_id
            for payment in self._payments:
                reverses = payment.pop("_reverses", None)
                payment.pop("_reversed", None)
                if reverses is not None:
                    payment["reverses_payment_id"] = reverses["id"]
            insert_many(session, Payment.__table__, self._payments)
            for allocation in self._allocations:
                allocation["payment_id"] = allocation.pop("_payment")["id"]
            insert_many(session, PaymentAllocation.__table__, self._allocations)
            record_many(session, (
                audit_row("payment", payment["id"], "reversed" if payment["amount"] < 0 else "booked", self.actor,
                          after={k: payment[k] for k in ("payment_reference_id", "amount", "source", "bank_entry_id",
                                                         "reverses_payment_id", "note")}, at=self.now)
                for payment in self._payments
            ))
            self._payments, self._allocations = [], []
        changed = [ref for ref in self.references.values() if ref.original is not None and ref.original != (ref.status, ref.open_amount)]
        update_by_id(session, PaymentReference.__table__,
                     [{"id": ref.id, "status": ref.status, "open_amount": ref.open_amount} for ref in changed])
        record_many(session, (
            audit_row("payment_reference", ref.id, ref.status if ref.status != ref.original[0] else "open_amount_changed",  # type: ignore[index]
                      self.actor, before={"status": ref.original[0], "open_amount": ref.original[1]},  # type: ignore[index]
                      after={"status": ref.status, "open_amount": ref.open_amount}, at=self.now)
            for ref in changed
        ))
        lines = [{"id": line_id, "open_amount": self._line_open[line_id]} for line_id in self._line_before
                 if self._line_before[line_id] != self._line_open[line_id]]
        update_by_id(session, DebtLine.__table__, lines)
        released = sorted(self._released)
        freed = defaultdict(list)
        for start in range(0, len(released), ID_BATCH):
            for line_id, ref_id in session.execute(
                select(DebtLine.id, DebtLine.payment_reference_id).where(DebtLine.payment_reference_id.in_(released[start : start + ID_BATCH]))
            ):
                freed[ref_id].append(line_id)
        update_by_id(session, DebtLine.__table__,
                     [{"id": line_id, "payment_reference_id": None} for ids in freed.values() for line_id in ids])
        for ref_id, line_ids in freed.items():
            self._audits.append(audit_row("payment_reference", ref_id, "debt_released", self.actor,
                                          after={"debt_line_ids": line_ids}, at=self.now))
        record_many(session, self._audits)
        if released:
            reverse_transaction_costs(session, released, self.actor, self.now)
            # Seed 2.3.1/2.3.3.4: what is no longer made up has no document; the payer's download and the print
            # overview must not hand out an invoice of a deleted or expired reference until the nightly run.
            by_status: defaultdict[str, list[int]] = defaultdict(list)
            for ref_id in released:
                by_status[self.references[ref_id].status].append(ref_id)
            for status, ids in sorted(by_status.items()):
                withdraw_current(session, ids, self.actor, self.now, reason=f"reference {status}")
        self._payments, self._allocations, self._audits = [], [], []
        self._line_before.clear()
        self._released.clear()
        for ref in self.references.values():
            ref.original = None


def reverse_transaction_costs(session: Session, reference_ids: Iterable[int], actor: str, now: datetime) -> list[int]:
    """Take back the open part of the transaction cost of each deleted or expired reference of ``reference_ids``.

    The cost line's open amount goes to zero, ``reversed_at`` is set and it leaves the reference; what was
    paid on it stays. References still open (or paid) are not touched, nor a cost taken back before.
    Returns the ids of the cost lines taken back.
    """
    ids = sorted(set(reference_ids))
    reversed_ids: list[int] = []
    audits: list[dict[str, Any]] = []
    for start in range(0, len(ids), ID_BATCH):
        rows = session.execute(
            select(DebtLine, PaymentReference.loi)
            .join(PaymentReference, PaymentReference.id == DebtLine.cost_of_reference_id)
            .where(DebtLine.cost_of_reference_id.in_(ids[start : start + ID_BATCH]), DebtLine.reversed_at.is_(None),
                   DebtLine.open_amount > 0, PaymentReference.status.in_(RELEASED_REFERENCE))
            .order_by(DebtLine.id).with_for_update(of=DebtLine).execution_options(populate_existing=True)
        ).all()
        for line, loi in rows:
            taken_back: Decimal = line.open_amount
            audits.append(audit_row(
                "payment_reference", line.cost_of_reference_id, "transaction_cost_reversed", actor,
                before={"debt_line_id": line.id, "open_amount": taken_back},
                after={"debt_line_id": line.id, "open_amount": ZERO, "reversed_at": now, "reference": loi}, at=now,
            ))
            line.open_amount, line.reversed_at, line.payment_reference_id = ZERO, now, None
            reversed_ids.append(line.id)
    session.flush()
    record_many(session, audits)
    return reversed_ids
