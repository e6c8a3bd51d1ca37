"""Booking what POM says was paid: once, whoever sees it first (callback or reconciliation).

A POM payment lands on the payment reference its request was made for. The
request row is the lock: it turns ``paid`` in the same transaction as the
payment is written, and a unique index allows one positive payment per
request, so a second sighting books nothing.

What a finance officer needs to hear about is told by the outcome:

* ``booked``: the open amount was paid;
* ``partial``: less than the open amount came in (the reference stays open);
* ``overpaid``: more came in than was open; the open amount is booked, the
  rest must be refunded;
* ``reference_closed``: the reference was already paid, deleted or expired
  (paid twice, e.g. by transfer and by app): nothing booked, refund the payer;
* ``already_booked``: seen before; nothing to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from include.finance.audit import audit_row, record_many
from include.finance.models import OPEN_REFERENCE_STATUSES, Payment, PomPaymentRequest
from include.finance.money import ZERO, money
from include.finance.payments import Ledger


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
    outcome: str
    paid: Decimal
    booked: Decimal

    @property
    def excess(self) -> Decimal:
        return self.paid - self.booked


def book_paid_requests(
    session: Session, paid: dict[int, PaidAtPom], actor: str, now: datetime, *, via: str
) -> list[Booking]:
    """Book every request id in ``paid`` (our ``pom_payment_request.id``) in the caller's transaction."""
    if not paid:
        return []
    rows = {
        row.id: row
        for row in session.scalars(select(PomPaymentRequest).where(PomPaymentRequest.id.in_(list(paid))).with_for_update())
    }
    booked_before = set(session.scalars(
        select(Payment.pom_payment_request_id).where(Payment.pom_payment_request_id.in_(list(paid)), Payment.amount > 0)
    ))
    ledger = Ledger(session, actor, now)
    references = ledger.load({row.payment_reference_id for row in rows.values()})
    bookings: list[Booking] = []
    audits = []
    for request_id in sorted(paid):
        row = rows.get(request_id)
        if row is None:
            continue
        info = paid[request_id]
        ref = references[row.payment_reference_id]
        amount = money(info.amount)
        if row.status == "paid" or request_id in booked_before:
            bookings.append(Booking(request_id, ref.loi, "already_booked", amount, ZERO))
            continue
        before = {"status": row.status}
        if ref.status not in OPEN_REFERENCE_STATUSES or ref.open_amount <= 0:
            outcome, booked = "reference_closed", ZERO
        else:
            booked = min(amount, ref.open_amount)
            outcome = "booked" if amount == ref.open_amount else "partial" if amount < ref.open_amount else "overpaid"
            ledger.pay(ref, booked, source="pom", pom_payment_request_id=row.id,
                       note=f"POM {row.pom_id} ({info.channel or 'unknown channel'}, via {via})"[:250])
        row.status, row.paid_amount, row.paid_at, row.channel = "paid", amount, info.paid_at, info.channel
        row.updated_at = now
        audits.append(audit_row("pom_payment_request", row.id, "paid", actor, before=before,
                                after={"status": "paid", "paid_amount": amount, "booked": booked, "outcome": outcome,
                                       "channel": info.channel, "via": via}, at=now))
        bookings.append(Booking(request_id, ref.loi, outcome, amount, booked))
    ledger.flush()
    session.flush()
    record_many(session, audits)
    return bookings
