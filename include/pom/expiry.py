"""Expiry of unpaid payment references after their type's lifetime (seed 2.5.2, ``dies``).

A reference (draft or sealed, not fully paid) whose type has a lifetime and
whose creation + lifetime has passed is expired: its debt lines are open
again (they can be invoiced or collected anew), payments already booked on
it stay. POM is asked first: a payment that came in is booked, and a
reference paid that way is not expired. Then the reference's open request is
cancelled at POM, and only then the reference is marked ``expired`` — a
reference whose request POM could not confirm (unreachable, or answering a
status Innen does not know) stays as it is until the next run (a payer must never pay an expired reference).

A reference being collected — a collection of it (not returned or
cancelled) is in a run, ready or sent — is not expired: the run's file
carries it, or the bank holds it, and its debt set free would be collected
again. It expires once its collection comes back or is cancelled.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine, select

from include.errors import ConfigError
from include.finance.db import transaction
from include.finance.models import (
    LIVE_POM_REQUEST_STATUSES,
    OPEN_REFERENCE_STATUSES,
    Collection,
    PaymentReference,
    PaymentReferenceType,
    PomPaymentRequest,
)
from include.finance.payments import Ledger
from include.finance.statuses import ENDED_UNPAID_POM_REQUEST, SETTLED_COLLECTION, PomRequestStatus, ReferenceStatus
from include.pom.accounts import PomClients
from include.pom.client import PomAuthError, PomError
from include.pom.payment_requests import PomSyncIncomplete, RequestSteps, SyncSummary, paid_with_payment, unknown_status

log = logging.getLogger(__name__)

BATCH = 1_000


@dataclass
class ExpirySummary:
    counts: Counter[str] = field(default_factory=Counter)
    expired: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"counts": dict(sorted(self.counts.items())), "expired": self.expired[:50], "problems": self.problems}


def due_for_expiry(engine: Engine, now: datetime) -> list[tuple[int, str]]:
    """(id, loi) of the unpaid references whose lifetime has passed at ``now``, but for those being collected."""
    being_collected = select(Collection.id).where(Collection.payment_reference_id == PaymentReference.id,
                                                  Collection.status.not_in(SETTLED_COLLECTION))
    with transaction(engine, readonly=True) as session:
        rows = session.execute(
            select(PaymentReference.id, PaymentReference.loi, PaymentReference.created_at,
                   PaymentReferenceType.lifetime_seconds)
            .join(PaymentReferenceType, PaymentReferenceType.id == PaymentReference.type_id)
            .where(PaymentReference.status.in_(OPEN_REFERENCE_STATUSES), PaymentReferenceType.lifetime_seconds.is_not(None),
                   ~being_collected.exists())
            .order_by(PaymentReference.id)
        ).all()
    due = []
    for ref_id, loi, created_at, lifetime in rows:
        created = created_at if created_at.tzinfo else created_at.replace(tzinfo=timezone.utc)
        if created + timedelta(seconds=lifetime) <= now:
            due.append((ref_id, loi))
    return due


def expire_references(engine: Engine, clients: PomClients, actor: str, now: datetime) -> ExpirySummary:
    """Expire every reference :func:`due_for_expiry` names, asking POM first (see the module docstring)."""
    summary = ExpirySummary()
    due = due_for_expiry(engine, now)
    summary.counts["past_lifetime"] = len(due)
    with transaction(engine, readonly=True) as session:
        live = {row.payment_reference_id: row for row in session.scalars(
            select(PomPaymentRequest).where(PomPaymentRequest.status.in_(LIVE_POM_REQUEST_STATUSES),
                                            PomPaymentRequest.payment_reference_id.in_([ref_id for ref_id, _ in due] or [0])))}
        session.expunge_all()
    sync = RequestSteps(engine, clients, actor, now, SyncSummary())
    ready: list[int] = []
    broken = sync.broken_accounts  # accounts POM refused, or without a Connection: not asked again in this run
    for ref_id, loi in due:
        request = live.get(ref_id)
        if request is not None:
            try:
                if request.account in broken:
                    raise PomError(f"account {request.account}: {broken[request.account]}")
                if request.status == PomRequestStatus.CREATING:
                    sync.resume(request)
                    with transaction(engine, readonly=True) as session:
                        request = session.get(PomPaymentRequest, request.id)
                        assert request is not None
                        session.expunge(request)
                if request.status == PomRequestStatus.OPEN:
                    answer = clients.client(request.account).get_request(request.pom_id or "")
                    if answer.status == PomRequestStatus.OPEN:
                        sync.cancel(request, "reference expired")
                    elif answer.status in ENDED_UNPAID_POM_REQUEST or paid_with_payment(answer):
                        sync.follow(request.id, answer)
                    else:  # a payment may be under way: not confirmed, so the reference stays as it is
                        raise PomError(f"POM reports {unknown_status(answer)}")
            except (PomError, ConfigError) as exc:
                if isinstance(exc, (PomAuthError, ConfigError)):
                    broken.setdefault(request.account, str(exc))
                summary.counts["pom_unavailable"] += 1
                summary.problems.append(f"{loi}: not expired, POM could not confirm its request: {exc}")
                log.warning("%s not expired: POM could not confirm its request: %s", loi, exc)
                continue
        ready.append(ref_id)
    summary.problems.extend(sync.summary.problems)
    for outcome, count in sync.summary.counts.items():
        summary.counts[outcome] += count
    for start in range(0, len(ready), BATCH):
        with transaction(engine) as session:
            ledger = Ledger(session, actor, now)
            references = ledger.load(ready[start : start + BATCH])
            for ref in references.values():
                if ref.status in OPEN_REFERENCE_STATUSES and ref.open_amount > 0:
                    ledger.release(ref, ReferenceStatus.EXPIRED)
                    summary.expired.append(ref.loi)
                else:
                    summary.counts["paid_before_expiry"] += 1
            ledger.flush()
    summary.counts["expired"] = len(summary.expired)
    if summary.counts.get("pom_unavailable"):
        raise PomSyncIncomplete(f"{summary.counts['pom_unavailable']} reference(s) not expired yet: {summary.as_dict()}")
    return summary
