"""Confirming a collection run against the amount received (seed 2.3.3.3): all or nothing.

Finance enters what the bank credited for a run. It is compared with the
run's open total: the open amounts of the references of its collections that
are neither returned nor cancelled. Equal: every one of them is booked as paid,
the collections become ``paid`` and the run ``confirmed``. Different: nothing
is booked, and the report gives the difference and the collections whose
reference was already (partly) paid some other way, the usual cause. A dry run
(the default) only reports, whatever the amount.

The DAG ``collection_confirm`` shows finance the dry run and waits for an
answer (Airflow's human-in-the-loop task); what that answer means, what it
shows and how it is audited are the pure functions below
(:func:`confirmation_summary`, :func:`read_decision`, :func:`decided_actor`)
and :func:`record_abort`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from include.errors import InnenError
from include.finance.audit import audit_row, record_many
from include.finance.bulk import update_by_id
from include.finance.db import hold_ledger
from include.finance.models import Collection, CollectionRun, PaymentReference
from include.finance.money import ZERO, money
from include.finance.payments import Ledger
from include.finance.statuses import OPEN_REFERENCE, SENT_RUN, SETTLED_COLLECTION, CollectionStatus, RunStatus
from include.param_patterns import AMOUNT

SETTLED = SETTLED_COLLECTION
PAID_OTHERWISE = "already paid some other way"
# The pattern of the amount fields of the DAG's forms (dags/collection_confirm.py cannot import it at parse time).
AMOUNT_PATTERN = AMOUNT
CONFIRM, ABORT = "Confirm", "Abort"
SUMMARY_LIMIT = 20  # collections listed in the question; the report has them all
ACTOR_LENGTH = 250  # audit_log.actor


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
    now: datetime | None = None, approval: Mapping[str, Any] | None = None,
) -> Confirmation:
    """``approval``: who approved, when, and what they were shown; kept in the run's ``confirmed`` audit row."""
    now = now or datetime.now(timezone.utc)
    received = money(received)
    hold_ledger(session)  # a statement's import may be confirming this run now: its status is read after it
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
        counted = collection.status not in SETTLED and ref_status in OPEN_REFERENCE
        note = ""
        if collection.status in SETTLED:
            note = f"{collection.status} ({collection.return_reason or '-'}): not counted"
        elif ref_status not in OPEN_REFERENCE:
            note = f"reference {ref_status}: not counted"
        elif open_amount < collection.amount:
            note = f"{PAID_OTHERWISE}: {collection.amount - open_amount} of {collection.amount}"
        if counted:
            open_total += open_amount
        listed.append({"end_to_end_id": collection.end_to_end_id, "reference": loi, "amount": str(collection.amount),
                       "open_amount": str(open_amount), "status": collection.status, "note": note,
                       "counted": counted})
    difference = received - open_total
    result = Confirmation(run.loi, str(received), str(open_total), str(difference), dry_run, False, "", listed)
    if run.status not in SENT_RUN:
        result.message = f"{run.loi} is {run.status}: only an exported run can be confirmed"
        if not dry_run:
            raise InnenError(result.message)
        return result
    if run.status == RunStatus.CONFIRMED:
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
        if collection.status in SETTLED:
            continue
        # The run's total matched, so each counted collection receives exactly its reference's open amount.
        _, payment = ledger.receive(ref, ref.open_amount, source="collection_confirm", note=f"confirmed with {run.loi}")
        if payment is not None:
            paid.append(collection)
    ledger.flush()
    update_by_id(session, Collection.__table__, [{"id": c.id, "status": CollectionStatus.PAID} for c in paid])
    audits = [audit_row("collection", c.id, "paid", actor, before={"status": c.status},
                        after={"status": CollectionStatus.PAID}, at=now) for c in paid]
    audits.append(audit_row("collection_run", run.id, "confirmed", actor, before={"status": run.status},
                            after={"status": RunStatus.CONFIRMED, "received": received, **(approval or {})}, at=now))
    run.status = RunStatus.CONFIRMED
    record_many(session, audits)
    result.booked = True
    result.message = f"{len(paid)} collections booked as paid for {received}; {run.loi} confirmed"
    return result


# -- the question finance answers, and what the answer means ------------------------------------------------------


def _code(value: Any) -> str:
    """A value as Markdown code: LOIs and end-to-end ids hold ``_`` and ``*`` that would turn into emphasis."""
    return f"`{str(value).replace('`', '')}`"


def confirmation_summary(result: Mapping[str, Any], *, limit: int = SUMMARY_LIMIT) -> str:
    """The Markdown finance reads before choosing Confirm or Abort, from the dry run's task result.

    ``result`` is :class:`Confirmation` as a dict, plus ``report`` (the dry-run report's path) and
    ``amount_given`` (the amount the run was triggered with, or None).
    """
    collections = list(result.get("collections") or [])
    counted = sum(1 for c in collections if c.get("counted", True))
    paid_otherwise = [c for c in collections if str(c.get("note", "")).startswith(PAID_OTHERWISE)]
    given = result.get("amount_given")
    amount = f"{result['received']}" if given else f"none given ({result['received']} assumed): enter it below"
    lines = [
        f"**Collection run {_code(result['run'])}** (dry run)",
        "",
        f"- Open total: **{result['open_total']}**",
        f"- Amount given: **{amount}**",
        f"- Difference (given - open total): **{result['difference']}**",
        f"- Collections: {len(collections)}, of which {counted} counted in the open total",
        "",
        f"Outcome of the dry run: {result.get('message') or '-'}",
    ]
    if paid_otherwise:
        lines += ["", f"**Already (partly) paid some other way** ({len(paid_otherwise)}):", ""]
        lines += [f"- {_code(c['reference'])} ({_code(c['end_to_end_id'])}): {c['note']}"
                  for c in paid_otherwise[:limit]]
        if len(paid_otherwise) > limit:
            lines.append(f"- and {len(paid_otherwise) - limit} more (see the report)")
    if result.get("report"):
        lines += ["", f"Dry-run report: {_code(result['report'])} (also on this run's **Reports** tab)."]
    lines += [
        "",
        f"**{CONFIRM}** books every counted collection as paid, only if the amount entered below equals the "
        f"open total; otherwise nothing is booked. **{ABORT}** books nothing.",
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class Decision:
    """What finance's answer means: ``confirm`` with ``amount`` by ``user``, ``abort`` by ``user``, or ``invalid``."""

    action: Literal["confirm", "abort", "invalid"]
    user: str = ""
    amount: str | None = None  # confirm: the amount entered, two places
    entered: str | None = None  # the amount field as sent, for the audit of an abort
    at: str | None = None  # when they answered, ISO
    reason: str = ""  # invalid: why, for people


def _moment(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def read_decision(answer: Mapping[str, Any] | None) -> Decision:
    """The meaning of the human-in-the-loop task's result (``chosen_options``, ``params_input``,
    ``responded_by_user``, ``responded_at``). Anything unclear is ``invalid``: money is only booked on a
    plain Confirm with a well-formed amount by a named person."""
    if not isinstance(answer, Mapping):
        return Decision("invalid", reason="no answer was recorded")
    chosen = list(answer.get("chosen_options") or [])
    responder = answer.get("responded_by_user") or {}
    user = str(responder.get("name") or responder.get("id") or "") if isinstance(responder, Mapping) else ""
    at = _moment(answer.get("responded_at"))
    raw = (answer.get("params_input") or {}).get("received_amount")
    entered = None if raw is None else str(raw).strip()
    if not user:
        return Decision("invalid", entered=entered, at=at, reason="the answer does not say who gave it")
    if len(chosen) != 1 or chosen[0] not in (CONFIRM, ABORT):
        return Decision("invalid", user, entered=entered, at=at,
                        reason=f"expected one of {CONFIRM} or {ABORT}, got {chosen}")
    if chosen[0] == ABORT:
        return Decision("abort", user, entered=entered, at=at)
    if not entered:
        return Decision("invalid", user, entered=entered, at=at, reason=f"{CONFIRM} needs the amount received")
    if not isinstance(raw, str) or not re.fullmatch(AMOUNT_PATTERN, entered, re.ASCII):
        return Decision("invalid", user, entered=entered, at=at,
                        reason=f"the amount received {raw!r} is not an amount like 1234.56")
    return Decision("confirm", user, amount=str(money(entered)), entered=entered, at=at)


def decided_actor(base: str, verb: str, user: str, *, limit: int = ACTOR_LENGTH) -> str:
    """``<base> <verb> by <user>`` within the audit log's ``limit``: the base is cut, never who decided
    (unless the name alone is longer than half the limit)."""
    suffix = f" {verb} by {user}"[: limit // 2]
    return base[: limit - len(suffix)] + suffix


def approval_facts(decision: Decision, shown: Mapping[str, Any]) -> dict[str, Any]:
    """Who answered, when, and the dry run they were shown: for the audit row of the decision."""
    return {
        "decided_by": decision.user,
        "decided_at": decision.at,
        "shown": {key: shown.get(key) for key in ("received", "open_total", "difference", "report")},
    }


def record_abort(
    session: Session, run_loi: str, decision: Decision, actor: str, shown: Mapping[str, Any],
    *, now: datetime | None = None,
) -> None:
    """One ``confirmation_aborted`` audit row on the run: nothing is booked, but the decision is on record."""
    run_id = session.scalars(select(CollectionRun.id).where(CollectionRun.loi == run_loi)).one_or_none()
    if run_id is None:
        raise InnenError(f"collection run {run_loi} does not exist")
    facts = approval_facts(decision, shown)
    after = {"received": decision.entered, "aborted_by": decision.user, "decided_at": facts["decided_at"],
             "shown": facts["shown"]}
    record_many(session, [audit_row("collection_run", run_id, "confirmation_aborted", actor, after=after, at=now)])
