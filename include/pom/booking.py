"""Booking what POM says was paid: once, whoever sees it first (callback or reconciliation).

A POM payment lands on the payment reference its request was made for. The
request row is the lock: it turns ``paid`` in the same transaction as the
payment is written, and a unique index allows one positive payment per
request, so a second sighting books nothing.

What a finance officer needs to hear about is told by the outcome:

* the outcomes of money received on a reference, as for a statement's credit
  (:func:`include.finance.payments.receipt`): ``paid`` (the open amount),
  ``partial`` (less; the reference stays open), ``overpaid`` (more: the open
  amount is booked, the rest must be refunded), ``closed_reference`` (the
  reference was already paid, deleted or expired, e.g. paid by transfer and
  by app: nothing booked, refund the payer);
* ``already_booked``: seen before; nothing to do.

An over-payment's excess and a payment on a closed reference also land on the
control list (``control_list_item``, source ``pom``, no statement) in the
same transaction, where finance refunds or books them
(:mod:`include.finance.control_list_resolution`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from include.finance.audit import audit_row, record_many
from include.finance.bulk import insert_many
from include.finance.db import hold_ledger
from include.finance.models import ControlListItem, Payment, PomPaymentRequest
from include.finance.money import ZERO, money
from include.finance.payments import Ledger, OpenReference, Receipt
from include.finance.statuses import ControlListKind, PomRequestStatus, Received, ReconciliationOutcome


@dataclass(frozen=True, slots=True)
class PaidAtPom:
    """What POM reports of a paid request, from its status or a signed callback."""

    amount: Decimal
    paid_at: datetime | None
    channel: str | None


@dataclass(frozen=True, slots=True)
class Booking:
    request_id: int
    reference_loi: str
    outcome: Received | ReconciliationOutcome  # ALREADY_BOOKED, or what the payment did to the reference
    paid: Decimal
    booked: Decimal

    @property
    def excess(self) -> Decimal:
        return self.paid - self.booked


def book_paid_requests(
    session: Session, paid: dict[int, PaidAtPom], actor: str, now: datetime, *, via: str,
    pom_event_id: int | None = None,
) -> list[Booking]:
    """Book every request id in ``paid`` (our ``pom_payment_request.id``) in the caller's transaction.

    ``pom_event_id``: the callback (``pom_event``) that reported the payment, when it is stored already; kept on
    the control-list items this booking writes."""
    if not paid:
        return []
    hold_ledger(session)
    rows = {  # read again under the lock: the caller may hold these rows from before it
        row.id: row
        for row in session.scalars(select(PomPaymentRequest).where(PomPaymentRequest.id.in_(list(paid)))
                                   .with_for_update().execution_options(populate_existing=True))
    }
    booked_before = set(session.scalars(
        select(Payment.pom_payment_request_id).where(Payment.pom_payment_request_id.in_(list(paid)), Payment.amount > 0)
    ))
    ledger = Ledger(session, actor, now)
    references = ledger.load({row.payment_reference_id for row in rows.values()})
    bookings: list[Booking] = []
    audits = []
    items: list[dict[str, Any]] = []
    for request_id in sorted(paid):
        row = rows.get(request_id)
        if row is None:
            continue
        info = paid[request_id]
        ref = references[row.payment_reference_id]
        amount = money(info.amount)
        if row.status == PomRequestStatus.PAID or request_id in booked_before:
            bookings.append(Booking(request_id, ref.loi, ReconciliationOutcome.ALREADY_BOOKED, amount, ZERO))
            continue
        before = {"status": row.status}
        received, _ = ledger.receive(ref, amount, source="pom", pom_payment_request_id=row.id,
                                     note=f"POM {row.pom_id} ({info.channel or 'unknown channel'}, via {via})"[:250])
        outcome, booked = received.outcome, received.booked
        row.status, row.paid_amount = PomRequestStatus.PAID, amount
        row.paid_at, row.channel = info.paid_at, info.channel
        row.updated_at = now
        audits.append(audit_row("pom_payment_request", row.id, "paid", actor, before=before,
                                after={"status": PomRequestStatus.PAID, "paid_amount": amount, "booked": booked,
                                       "outcome": outcome, "channel": info.channel, "via": via}, at=now))
        bookings.append(Booking(request_id, ref.loi, outcome, amount, booked))
        if outcome in (Received.CLOSED_REFERENCE, Received.OVERPAID):
            items.append(_control_item(row, ref, info, received, via, pom_event_id, now))
    ledger.flush()
    session.flush()
    record_many(session, audits)
    insert_many(session, ControlListItem.__table__, items)
    return bookings


def _control_item(row: PomPaymentRequest, ref: OpenReference, info: PaidAtPom, received: Receipt, via: str,
                  pom_event_id: int | None, now: datetime) -> dict[str, Any]:
    """The control-list item of a POM payment not booked in full, in the words of a statement's control list."""
    paid_how = f"POM {row.pom_id} ({info.channel or 'unknown channel'}, via {via})"
    amount, excess = received.received, received.excess
    if received.outcome is Received.OVERPAID:
        kind = ControlListKind.OVERPAID
        reason = (f"{amount} paid through {paid_how} on {ref.loi} whose open amount was {received.open_before}: "
                  f"{excess} too much")
        action = f"refund {excess} to the payer or keep it as a credit"
    else:
        kind = ControlListKind.CLOSED_REFERENCE
        reason = f"{amount} paid through {paid_how} for {ref.loi}, which is {ref.status}"
        action = "refund the payer, or book the amount on another open reference of the payer"
    return {
        "statement_id": None, "bank_entry_id": None, "kind": kind, "reason": reason, "action": action, "amount": excess,
        "details": {"reference": ref.loi, "pom_payment_request_id": row.id, "pom_id": row.pom_id,
                    "account": row.account, "channel": info.channel, "via": via},
        "source": "pom", "pom_event_id": pom_event_id, "created_at": now,
    }
