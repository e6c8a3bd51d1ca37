"""Deleting payment references (seed 2.3.3.4): their debts become open again; payments stay.

Used when a bank file was lost or refused by the bank and the run must be made
again. A paid reference is refused with its reason; a partly paid one is
deleted and keeps its payments (the seed: "payments are not rolled back").
Its collections are cancelled, so the next mandate execution collects the
debt again (FRST again where that collection was the first). A run whose
references are all deleted is marked deleted. A dry run (the default) only
says what would happen.

Deleting breaks what may be sealed, so every reference the deletion would
touch needs its type's admin lock (``accadmin``, :mod:`include.finance.access`)
among the roles of who deletes; an empty admin lock lets nobody delete. The
locks are checked in the caller's transaction before anything changes, and
all or nothing: one reference refused refuses the whole deletion
(:class:`~include.finance.access.AccessRefused`, naming every reference and
its lock). A dry run refuses nothing for a lock: it reports each reference
the real run would be refused for, beside those it would delete.
References that are not deleted anyway (paid, already deleted or expired)
are not checked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from include.errors import InnenError
from include.finance.access import AccessRefused, refusals_by_reference
from include.finance.audit import audit_row, record_many
from include.finance.bulk import update_by_id
from include.finance.db import hold_ledger
from include.finance.models import Collection, CollectionRun, PaymentReference, in_cents
from include.finance.money import from_cents
from include.finance.payments import Ledger
from include.finance.statuses import (
    RELEASED_REFERENCE,
    SETTLED_COLLECTION,
    UNSENT_RUN,
    WAITING_COLLECTION,
    CollectionStatus,
    ReferenceStatus,
    RunStatus,
)


@dataclass
class Deletion:
    dry_run: bool
    deleted: list[str] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)
    runs_deleted: list[str] = field(default_factory=list)
    locked: list[str] = field(default_factory=list)  # a dry run's refusals by an access lock (also in refused)
    message: str = ""


def delete_references(
    session: Session, actor: str, *, roles: Iterable[str], run_loi: str | None = None,
    reference_lois: list[str] | None = None, dry_run: bool = True, now: datetime | None = None,
) -> Deletion:
    """Delete the references of collection run ``run_loi`` or the references ``reference_lois`` (see the module
    docstring) for someone holding ``roles``."""
    now = now or datetime.now(timezone.utc)
    if not run_loi and not reference_lois:
        raise InnenError("name a collection run or payment references to delete")
    if run_loi and reference_lois:  # which did the person mean? Deleting the run's would call the others unknown
        raise InnenError(f"give a collection run or payment references, not both (collection run {run_loi}, "
                         f"references {', '.join(reference_lois)})")
    hold_ledger(session)  # a reference paid meanwhile is then seen paid, and refused
    query = select(PaymentReference.id, PaymentReference.loi, PaymentReference.status)
    if run_loi:
        run = session.scalars(select(CollectionRun).where(CollectionRun.loi == run_loi)).one_or_none()
        if run is None:
            raise InnenError(f"collection run {run_loi} does not exist")
        query = query.join(Collection, Collection.payment_reference_id == PaymentReference.id).where(Collection.run_id == run.id)
    else:
        query = query.where(PaymentReference.loi.in_(reference_lois or []))
    targets = session.execute(query.order_by(PaymentReference.id)).all()
    result = Deletion(dry_run)
    if reference_lois:
        if not targets:  # every one a typo: a run that deletes nothing and succeeds would look done
            raise InnenError(f"none of the payment references named exists: {', '.join(reference_lois)}")
        missing = set(reference_lois) - {t.loi for t in targets}
        result.refused.extend({"reference": loi, "reason": "does not exist"} for loi in sorted(missing))
    deletable = []
    for ref_id, loi, status in targets:
        if status == ReferenceStatus.PAID:
            result.refused.append({"reference": loi, "reason": "paid: a paid reference cannot be deleted"})
        elif status in RELEASED_REFERENCE:
            result.refused.append({"reference": loi, "reason": f"already {status}"})
        else:
            deletable.append(ref_id)
            result.deleted.append(loi)
    locked = refusals_by_reference(session, deletable, "delete", roles)
    if locked and not dry_run:
        raise AccessRefused("delete", list(locked.values()))
    if locked:
        lois = {ref_id: loi for ref_id, loi, _ in targets}
        result.deleted = [lois[ref_id] for ref_id in deletable if ref_id not in locked]
        result.refused.extend({"reference": lois[ref_id], "reason": why} for ref_id, why in locked.items())
        result.locked = list(locked.values())
    if dry_run or not deletable:
        result.message = f"{'dry run: ' if dry_run else ''}{len(result.deleted)} to delete, {len(result.refused)} refused"
        if locked:
            result.message += (f"; {len(locked)} of them for an access lock, so the real run would delete nothing "
                               "(one reference refused by its lock refuses the whole deletion)")
        return result
    ledger = Ledger(session, actor, now)
    references = ledger.load(deletable)
    for ref_id in deletable:
        ledger.release(references[ref_id], ReferenceStatus.DELETED)
    ledger.flush()
    collections = session.execute(
        select(Collection.id, Collection.status, Collection.run_id).where(
            Collection.payment_reference_id.in_(deletable), Collection.status.in_(WAITING_COLLECTION)
        )
    ).all()
    cancelled = CollectionStatus.CANCELLED
    update_by_id(session, Collection.__table__, [{"id": c.id, "status": cancelled} for c in collections])
    audits: list[dict[str, Any]] = [
        audit_row("collection", c.id, "cancelled", actor, before={"status": c.status}, after={"status": cancelled},
                  at=now)
        for c in collections
    ]
    for run in session.scalars(select(CollectionRun).where(CollectionRun.id.in_({c.run_id for c in collections}))):
        left = session.scalar(
            select(Collection.id).where(Collection.run_id == run.id, Collection.status.not_in(SETTLED_COLLECTION)).limit(1)
        )
        if left is None and run.status != RunStatus.DELETED:
            audits.append(audit_row("collection_run", run.id, "deleted", actor, before={"status": run.status},
                                    after={"status": RunStatus.DELETED}, at=now))
            run.status = RunStatus.DELETED
            result.runs_deleted.append(run.loi)
        elif left is not None and run.status in UNSENT_RUN:
            # Its file is still to be written, without the cancelled collections: the run counts what it will hold.
            totals = session.execute(
                select(func.count().label("transactions"),
                       func.coalesce(func.sum(in_cents(Collection.amount)), 0).label("cents"))
                .where(Collection.run_id == run.id, Collection.status != CollectionStatus.CANCELLED)
            ).one()
            before = {"transactions": run.transaction_count, "total": run.total_amount}
            run.transaction_count, run.total_amount = totals.transactions, from_cents(int(totals.cents))
            audits.append(audit_row("collection_run", run.id, "collections_cancelled", actor, before=before,
                                    after={"transactions": run.transaction_count, "total": run.total_amount}, at=now))
    record_many(session, audits)
    result.message = f"{len(result.deleted)} deleted, {len(result.refused)} refused"
    return result
