"""Confirming a collection run against the amount received (seed 2.3.3.3): all or nothing.

Finance enters what the bank credited for a run. It is compared with the
run's open total: the open amounts of the references of its collections that
are neither returned nor cancelled. Equal: every one of them is booked as paid,
the collections become ``paid`` and the run ``confirmed``. Different: nothing
is booked, and the report gives the difference and the collections whose
reference was already (partly) paid some other way, the usual cause. A dry run
(the default) only reports, whatever the amount.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from include.errors import InnenError
from include.finance.audit import audit_row, record_many
from include.finance.bulk import update_by_id
from include.finance.models import Collection, CollectionRun, PaymentReference
from include.finance.money import ZERO, money
from include.finance.payments import Ledger

SETTLED = ("returned", "cancelled")


@dataclass
class Confirmation:
    run: str
    received: str
    open_total: str
    difference: str
    dry_run: bool
    booked: bool
    message: str
    collections: list[dict[str, Any]] = field(default_factory=list)


def confirm_collection_run(
    session: Session, run_loi: str, received: Decimal | str, actor: str, *, dry_run: bool = True,
    now: datetime | None = None,
) -> Confirmation:
    now = now or datetime.now(timezone.utc)
    received = money(received)
    run = session.scalars(select(CollectionRun).where(CollectionRun.loi == run_loi)).one_or_none()
    if run is None:
        raise InnenError(f"collection run {run_loi} does not exist")
    rows = session.execute(
        select(Collection, PaymentReference.loi, PaymentReference.status, PaymentReference.open_amount)
        .join(PaymentReference, PaymentReference.id == Collection.payment_reference_id)
        .where(Collection.run_id == run.id)
        .order_by(Collection.id)
    ).all()
    listed, open_total = [], ZERO
    for collection, loi, ref_status, open_amount in rows:
        counted = collection.status not in SETTLED and ref_status in ("draft", "sealed")
        note = ""
        if collection.status in SETTLED:
            note = f"{collection.status} ({collection.return_reason or '-'}): not counted"
        elif ref_status not in ("draft", "sealed"):
            note = f"reference {ref_status}: not counted"
        elif open_amount < collection.amount:
            note = f"already paid some other way: {collection.amount - open_amount} of {collection.amount}"
        if counted:
            open_total += open_amount
        listed.append({"end_to_end_id": collection.end_to_end_id, "reference": loi, "amount": str(collection.amount),
                       "open_amount": str(open_amount), "status": collection.status, "note": note})
    difference = received - open_total
    result = Confirmation(run.loi, str(received), str(open_total), str(difference), dry_run, False, "", listed)
    if run.status not in ("exported", "confirmed"):
        result.message = f"{run.loi} is {run.status}: only an exported run can be confirmed"
        if not dry_run:
            raise InnenError(result.message)
        return result
    if run.status == "confirmed":
        result.message = f"{run.loi} was confirmed before: nothing to book"
        return result
    if dry_run:
        result.message = f"dry run: open total {open_total}; received {received}; difference {difference}"
        return result
    if difference != 0:
        result.message = (
            f"nothing booked: received {received} but the run's open total is {open_total} (difference {difference}); "
            "find the collections that did not go through (returns on the statement) or were paid some other way"
        )
        return result
    ledger = Ledger(session, actor, now)
    references = ledger.load(c.payment_reference_id for c, *_ in rows)
    paid = []
    for collection, *_ in rows:
        ref = references[collection.payment_reference_id]
        if collection.status in SETTLED or not ref.is_open:
            continue
        ledger.pay(ref, ref.open_amount, source="collection_confirm", note=f"confirmed with {run.loi}")
        paid.append(collection)
    ledger.flush()
    update_by_id(session, Collection.__table__, [{"id": c.id, "status": "paid"} for c in paid])
    audits = [audit_row("collection", c.id, "paid", actor, before={"status": c.status}, after={"status": "paid"}, at=now)
              for c in paid]
    audits.append(audit_row("collection_run", run.id, "confirmed", actor, before={"status": run.status},
                            after={"status": "confirmed", "received": received}, at=now))
    run.status = "confirmed"
    record_many(session, audits)
    result.booked = True
    result.message = f"{len(paid)} collections booked as paid for {received}; {run.loi} confirmed"
    return result
