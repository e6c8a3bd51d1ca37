"""Four eyes on bank files: a run's file waits in staging until finance approves it; only then the outbox.

A hub with ``approval_required`` (the default) gets its file written to
``var/staging/`` (validated exactly as an outbox file) and a waiting
:class:`~include.finance.models.BankFileApproval` holding what the approver is
shown (:func:`summarise`). The answer (:func:`judge`):

* **approve** → :func:`release`: the staged file, checked against the SHA-256
  that was shown, is moved into the outbox in one rename, its ``.sha256``
  beside it, and the run becomes ``exported``, recorded with the approver;
* **reject** → :func:`reject`: the staged file is removed, nothing reaches the
  outbox, the run keeps status ``ready`` and says who rejected it and why; it
  is not picked up again automatically, but can be exported again by hand;
* **refused**: on a ``four_eyes`` hub the person who triggered the export
  answered; the answer is recorded as refused and the file keeps waiting for
  someone else.

A hub without approval keeps the direct path of :mod:`include.sepa.export`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from schwifty import IBAN
from sqlalchemy import func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from include.config import outbox_dir, staging_dir
from include.errors import ExportRejected, InnenError
from include.files import replace, sha256_of, write_checksum
from include.finance.audit import audit_row, record_many
from include.finance.db import transaction
from include.finance.models import BankFileApproval, BankHub, Collection, CollectionRun
from include.finance.money import format_amount
from include.finance.statuses import ApprovalStatus, RunStatus
from include.sepa.export import (
    SEQUENCE_ORDER,
    ExportResult,
    WrittenFile,
    WrittenRun,
    export_collection_run,
    mark_failed,
    record_export,
    write_run_file,
)
from include.storage import Location, location, name_of

APPROVE, REJECT = "Approve", "Reject"  # the options of Airflow's ApprovalOperator
REASON_MAX = 1000


class Verdict(enum.Enum):
    RELEASE = "release"
    REJECT = "reject"
    REFUSED = "refused"  # four eyes: the person who asked for the file may not approve it


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    by: str | None
    reason: str
    message: str


def judge(answer: Mapping[str, Any], *, requested_by: str | None, four_eyes: bool) -> Judgement:
    """What an answer of the approval task means (pure).

    ``answer`` is the HITL result: ``chosen_options``, ``params_input`` (``reason``), ``responded_by_user``.

    >>> judge({"chosen_options": ["Approve"], "responded_by_user": {"name": "an"}}, requested_by="bo",
    ...       four_eyes=True).verdict
    <Verdict.RELEASE: 'release'>
    >>> judge({"chosen_options": ["Approve"], "responded_by_user": {"name": "bo"}}, requested_by="bo",
    ...       four_eyes=True).message
    'bo triggered this export and may not approve it (four eyes): someone else of finance must answer'
    """
    chosen = list(answer.get("chosen_options") or [])
    by = (answer.get("responded_by_user") or {}).get("name") or None
    reason = str((answer.get("params_input") or {}).get("reason") or "").strip()[:REASON_MAX]
    if chosen == [REJECT]:
        return Judgement(Verdict.REJECT, by, reason, f"rejected by {by or 'unknown'}" + (f": {reason}" if reason else ""))
    if chosen != [APPROVE]:
        raise InnenError(f"an approval answers {APPROVE} or {REJECT}, not {chosen}")
    if four_eyes and by is not None and by == requested_by:
        return Judgement(Verdict.REFUSED, by, reason,
                         f"{by} triggered this export and may not approve it (four eyes): someone else of finance "
                         "must answer")
    return Judgement(Verdict.RELEASE, by, reason, f"approved by {by or 'unknown'}")


# -- what the approver sees --------------------------------------------------------------------------------------


def summarise(session: Session, run: CollectionRun, hub: BankHub, written: WrittenFile, export_format: str) -> dict:
    """What a treasurer checks before a file goes to the bank, as plain values (kept with the approval)."""
    per_type = {
        sequence: (count, total)
        for sequence, count, total in session.execute(
            select(Collection.sequence_type, func.count(), func.sum(Collection.amount))
            .where(Collection.run_id == run.id).group_by(Collection.sequence_type)
        )
    }
    amended = session.scalar(
        select(func.count()).select_from(Collection).where(
            Collection.run_id == run.id,
            or_(Collection.original_mandate_reference.is_not(None), Collection.original_creditor_id.is_not(None),
                Collection.original_debtor_iban.is_not(None), Collection.debtor_agent_changed.is_(True)),
        )
    ) or 0
    iban = hub.creditor_iban or ""
    try:
        shown_iban = IBAN(iban).formatted
    except ValueError:
        shown_iban = iban
    return {
        "run": run.loi,
        "hub": hub.code,
        "hub_name": hub.name,
        "creditor_name": hub.creditor_name or "",
        "creditor_iban": shown_iban,
        "creditor_id": hub.creditor_id or "",
        "collection_date": run.collection_date.isoformat(),
        "export_format": export_format,
        "file_name": name_of(written.path),
        "file_bytes": written.size,
        "sha256": written.sha256,
        "transactions": written.transactions,
        "control_sum": format_amount(written.total),
        "currency": hub.currency,
        "per_sequence_type": [
            {"sequence_type": seq, "transactions": per_type[seq][0], "total": format_amount(Decimal(per_type[seq][1]))}
            for seq in SEQUENCE_ORDER if seq in per_type
        ],
        "amendments": int(amended),
    }


def summary_markdown(summary: Mapping[str, Any], *, view_url: str | None = None, requested_by: str | None = None,
                     four_eyes: bool = True) -> str:
    """The approval's body (Markdown, as Airflow's "Required actions" shows it); pure."""
    cur = summary.get("currency", "EUR")
    lines = [
        f"**{summary['file_name']}** ({summary['export_format']}) for collection run **{summary['run']}**",
        "",
        "| | |", "|---|---|",
        f"| Bank hub | {summary['hub']} — {summary['hub_name']} |",
        f"| Creditor | {summary['creditor_name']} |",
        f"| Creditor account | {summary['creditor_iban']} |",
        f"| Creditor identifier | {summary['creditor_id']} |",
        f"| Collection date | {summary['collection_date']} |",
        f"| Transactions | {summary['transactions']} |",
        f"| Control sum | {cur} {summary['control_sum']} |",
        f"| Amended mandates | {summary['amendments']} |",
        f"| SHA-256 | `{summary['sha256']}` |",
        "",
        "| Sequence type | Transactions | Total |", "|---|---:|---:|",
    ]
    lines += [f"| {row['sequence_type']} | {row['transactions']} | {cur} {row['total']} |"
              for row in summary.get("per_sequence_type") or []]
    lines.append("")
    if view_url:
        lines.append(f"[View the file]({view_url})")
        lines.append("")
    if four_eyes and requested_by:
        lines.append(f"Four eyes: {requested_by} triggered this export and cannot approve it.")
        lines.append("")
    lines.append("Approve releases the file to the outbox for the bank; Reject (give a reason) keeps it out.")
    return "\n".join(lines)


# -- staging --------------------------------------------------------------------------------------------------------


def approval_needed(run_loi: str, *, engine: Engine | None = None) -> tuple[bool, bool]:
    """``(approval_required, four_eyes)`` of the run's hub."""
    with transaction(engine, readonly=True) as session:
        row = session.execute(
            select(BankHub.approval_required, BankHub.four_eyes)
            .join(CollectionRun, CollectionRun.hub_id == BankHub.id).where(CollectionRun.loi == run_loi)
        ).one_or_none()
    if row is None:
        raise InnenError(f"collection run {run_loi} does not exist")
    return bool(row.approval_required), bool(row.four_eyes)


def _staged(approval: BankFileApproval, run: CollectionRun) -> dict[str, Any]:
    """What the export task returns (Airflow logs it): no account; the approval's body is built from its id."""
    return {
        "run": run.loi, "approval_id": approval.id, "attempt": approval.attempt, "approval_required": True,
        "status": approval.status, "four_eyes": approval.four_eyes, "requested_by": approval.requested_by,
        "file_name": name_of(approval.staged_path), "sha256": approval.file_sha256,
        "transactions": approval.transaction_count, "total": format_amount(approval.total_amount),
    }


def stage_run(
    run_loi: str, actor: str, *, requested_by: str | None = None, airflow_task: str | None = None,
    export_format: str | None = None, engine: Engine | None = None, now: datetime | None = None,
) -> dict[str, Any]:
    """Write the run's file to staging and let it wait for approval; a hub without approval exports directly.

    Idempotent: the same file already waiting is the same approval (a retried task asks nobody twice).
    The result names no account (the task returns it, and Airflow logs that): the approver's screen gets
    the creditor account from :func:`approval_body`.
    """
    required, four_eyes = approval_needed(run_loi, engine=engine)
    if not required:
        return {**export_collection_run(run_loi, actor, engine=engine, export_format=export_format),
                "approval_required": False}
    now = now or datetime.now(timezone.utc)
    try:
        with transaction(engine, readonly=True) as session:
            written = write_run_file(session, run_loi, export_format=export_format, outbox=staging_dir())
            if isinstance(written, ExportResult):
                return {**written.__dict__, "approval_required": False}
            run = session.get(CollectionRun, written.run_id)
            hub = session.get(BankHub, run.hub_id)
            summary = summarise(session, run, hub, written.file, written.export_format)
    except ExportRejected as exc:
        with transaction(engine) as session:
            mark_failed(session, run_loi, str(exc), actor)
        raise
    for _ in range(2):  # a second export of the same run at once: its waiting row wins, ours re-reads it
        try:
            with transaction(engine) as session:
                return _wait_for_approval(session, written, summary, four_eyes, requested_by, airflow_task, actor, now)
        except IntegrityError:
            continue
    raise InnenError(f"{run_loi}: could not record the approval of its bank file")


def _wait_for_approval(session: Session, written: WrittenRun, summary: dict, four_eyes: bool,
                       requested_by: str | None, airflow_task: str | None, actor: str,
                       now: datetime) -> dict[str, Any]:
    run = session.get(CollectionRun, written.run_id)
    # Locked: an answer (release, reject) being acted on at this moment finishes first, and is seen.
    waiting = session.scalars(select(BankFileApproval).where(
        BankFileApproval.run_id == run.id, BankFileApproval.status == ApprovalStatus.WAITING)
        .with_for_update().execution_options(populate_existing=True)).one_or_none()
    if waiting is not None and waiting.file_sha256 == written.file.sha256 and waiting.requested_by == requested_by:
        if airflow_task and waiting.airflow_task != airflow_task:
            waiting.airflow_task = airflow_task  # the retried or new task is where the answer is expected now
        return _staged(waiting, run)
    audits = []
    if waiting is not None:  # another file (format, data) or another requester: that question is void
        waiting.status, waiting.decided_by, waiting.decided_at = ApprovalStatus.REJECTED, actor, now
        waiting.reason = f"superseded by a new export of {run.loi}"
        audits.append(audit_row("bank_file_approval", waiting.id, "superseded", actor,
                                before={"status": ApprovalStatus.WAITING},
                                after={"status": ApprovalStatus.REJECTED, "reason": waiting.reason}, at=now))
        session.flush()
    attempt = (session.scalar(select(func.max(BankFileApproval.attempt)).where(
        BankFileApproval.run_id == run.id)) or 0) + 1
    approval = BankFileApproval(
        run_id=run.id, attempt=attempt, status=ApprovalStatus.WAITING, export_format=written.export_format,
        staged_path=written.file.path, file_sha256=written.file.sha256, transaction_count=written.file.transactions,
        total_amount=written.file.total, summary=summary, four_eyes=four_eyes, requested_by=requested_by,
        requested_at=now, airflow_task=airflow_task,
    )
    session.add(approval)
    session.flush()
    audits.append(audit_row("bank_file_approval", approval.id, "staged", actor, after={
        "run": run.loi, "attempt": attempt, "sha256": approval.file_sha256, "file": name_of(approval.staged_path),
        "transactions": approval.transaction_count, "total": format_amount(approval.total_amount),
        "requested_by": requested_by, "four_eyes": four_eyes}, at=now))
    record_many(session, audits)
    return _staged(approval, run)


def approval_body(approval_id: int, *, view_url: str | None = None, engine: Engine | None = None) -> str:
    """The approval's body for the approver (the creditor account in full), from what the approval keeps.

    Read here rather than passed on by the export task: what a task returns is logged. ``view_url`` may
    hold ``{approval_id}``.
    """
    with transaction(engine, readonly=True) as session:
        approval = session.get(BankFileApproval, approval_id)
        if approval is None:
            raise InnenError(f"bank file approval {approval_id} does not exist")
        url = view_url.format(approval_id=approval.id) if view_url else None
        return summary_markdown(approval.summary, view_url=url, requested_by=approval.requested_by,
                                four_eyes=approval.four_eyes)


# -- the answer -----------------------------------------------------------------------------------------------------


def _approval(session: Session, approval_id: int) -> tuple[BankFileApproval, CollectionRun]:
    """The approval, its row locked until the transaction ends (``SELECT ... FOR UPDATE`` on PostgreSQL).

    A release and a reject of one approval at once: the second waits for the first, then reads its
    status afresh (``populate_existing``) and finds it decided. SQLite serialises writers anyway.
    """
    approval = session.get(BankFileApproval, approval_id, with_for_update=True, populate_existing=True)
    if approval is None:
        raise InnenError(f"bank file approval {approval_id} does not exist")
    run = session.get(CollectionRun, approval.run_id)
    return approval, run


def release(approval_id: int, approver: str | None, actor: str, *, outbox: Location | None = None,
            engine: Engine | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Move the approved file into the outbox and mark the run exported (idempotent: a rerun finds it done)."""
    now = now or datetime.now(timezone.utc)
    with transaction(engine) as session:
        approval, run = _approval(session, approval_id)
        if approval.status == ApprovalStatus.APPROVED:
            done = ExportResult(run.loi, run.status, approval.export_format, run.file_path, run.file_sha256,
                                approval.transaction_count, format_amount(approval.total_amount))
            return {**done.__dict__, "approved_by": approval.decided_by, "already": True}
        if approval.status != ApprovalStatus.WAITING:
            raise InnenError(f"{run.loi}: its bank file (attempt {approval.attempt}) was {approval.status}: "
                             f"{approval.reason or ''}".rstrip(": "))
        if run.status == RunStatus.DELETED or (run.transaction_count, run.total_amount) != (
                approval.transaction_count, approval.total_amount):
            # References of the run were deleted while its file waited: the file would still collect them.
            raise ExportRejected(
                f"{run.loi} changed while its file waited for approval: the file holds {approval.transaction_count} "
                f"collections for {format_amount(approval.total_amount)}, the run now {run.transaction_count} for "
                f"{format_amount(run.total_amount)} ({run.status}); nothing released, export the run again")
        staged = location(approval.staged_path)
        target = (outbox or outbox_dir()) / staged.name
        if staged.exists():
            if sha256_of(staged) != approval.file_sha256:
                raise ExportRejected(f"{staged.name}: the staged file is not the one shown for approval "
                                     f"(SHA-256 {approval.file_sha256}); nothing released")
            replace(staged, target)  # the outbox never holds part of a file
        elif not (target.exists() and sha256_of(target) == approval.file_sha256):
            raise ExportRejected(f"{staged.name}: the staged file is gone and the outbox does not hold it; "
                                 "export the run again")
        write_checksum(target, approval.file_sha256)
        written = WrittenRun(run.id, run.status, approval.export_format, WrittenFile(
            str(target), approval.file_sha256, approval.transaction_count, approval.total_amount,
            target.stat().st_size))
        decided = f"{actor} approved by {approver}" if approver else actor
        result = record_export(session, written, decided[:250], now)
        approval.status, approval.decided_by, approval.decided_at = ApprovalStatus.APPROVED, approver or actor, now
        record_many(session, [audit_row("bank_file_approval", approval.id, "approved", decided[:250],
                                        before={"status": ApprovalStatus.WAITING},
                                        after={"status": ApprovalStatus.APPROVED, "approved_by": approver,
                                               "sha256": approval.file_sha256, "shown": approval.summary}, at=now)])
        return {**result.__dict__, "approved_by": approver, "already": False}


def reject(approval_id: int, by: str | None, reason: str, actor: str, *, engine: Engine | None = None,
           now: datetime | None = None) -> dict[str, Any]:
    """Keep the file out of the outbox: remove it from staging, and let the run say who rejected it and why."""
    now = now or datetime.now(timezone.utc)
    reason = (reason or "").strip()[:REASON_MAX] or "no reason given"
    with transaction(engine) as session:
        approval, run = _approval(session, approval_id)
        if approval.status == ApprovalStatus.REJECTED:
            return {"run": run.loi, "status": run.status, "rejected_by": approval.decided_by, "reason": approval.reason,
                    "already": True}
        if approval.status != ApprovalStatus.WAITING:
            raise InnenError(f"{run.loi}: its bank file (attempt {approval.attempt}) was already {approval.status}")
        approval.status, approval.decided_by, approval.decided_at = ApprovalStatus.REJECTED, by or actor, now
        approval.reason = reason
        before = {"error": run.error}
        run.error = f"bank file rejected by {by or 'unknown'} on {now:%Y-%m-%d %H:%M} UTC: {reason}"
        who = f"{actor} rejected by {by}" if by else actor
        record_many(session, [
            audit_row("bank_file_approval", approval.id, "rejected", who[:250], before={"status": ApprovalStatus.WAITING},
                      after={"status": ApprovalStatus.REJECTED, "rejected_by": by, "reason": reason,
                             "shown": approval.summary}, at=now),
            audit_row("collection_run", run.id, "export_rejected", who[:250], before=before,
                      after={"error": run.error}, at=now),
        ])
        location(approval.staged_path).unlink(missing_ok=True)
        return {"run": run.loi, "status": run.status, "rejected_by": by, "reason": reason, "already": False}


def refuse(approval_id: int, by: str, message: str, actor: str, *, engine: Engine | None = None,
           now: datetime | None = None) -> None:
    """Record an answer that was not allowed (four eyes); the approval keeps waiting."""
    with transaction(engine) as session:
        record_many(session, [audit_row("bank_file_approval", approval_id, "answer_refused", f"{actor} by {by}"[:250],
                                        after={"refused": by, "why": message}, at=now)])


def decision(approval_id: int, *, engine: Engine | None = None) -> dict[str, Any] | None:
    """The answer acted on for approval ``approval_id`` (verdict, by, reason), or None while it waits."""
    with transaction(engine, readonly=True) as session:
        approval = session.get(BankFileApproval, approval_id)
        if approval is None or approval.status == ApprovalStatus.WAITING:
            return None
        verdict = Verdict.RELEASE if approval.status == ApprovalStatus.APPROVED else Verdict.REJECT
        return {"verdict": verdict.value, "by": approval.decided_by, "reason": approval.reason or "",
                "chosen_options": [APPROVE if verdict is Verdict.RELEASE else REJECT]}


def waiting(session: Session) -> list[dict[str, Any]]:
    """Bank files waiting for approval, oldest first (the Finance page)."""
    rows = session.execute(
        select(BankFileApproval, CollectionRun.loi).join(CollectionRun, CollectionRun.id == BankFileApproval.run_id)
        .where(BankFileApproval.status == ApprovalStatus.WAITING)
        .order_by(BankFileApproval.requested_at, BankFileApproval.id)
    )
    return [{"approval_id": a.id, "run": loi, "file_name": name_of(a.staged_path), "transactions": a.transaction_count,
             "total": format_amount(a.total_amount), "requested_by": a.requested_by, "requested_at": a.requested_at,
             "airflow_task": a.airflow_task, "sha256": a.file_sha256} for a, loi in rows]


def file_to_view(approval_id: int, *, engine: Engine | None = None) -> Location:
    """The file approval ``approval_id`` is about: staged while it waits, released once approved.

    Raises :class:`LookupError` when there is none (rejected files are removed).
    """
    with transaction(engine, readonly=True) as session:
        approval = session.get(BankFileApproval, approval_id)
        if approval is None:
            raise LookupError(f"no bank file approval {approval_id}")
        run = session.get(CollectionRun, approval.run_id)
        if approval.status == ApprovalStatus.WAITING:
            path = location(approval.staged_path)
        elif approval.status == ApprovalStatus.APPROVED and run.file_sha256 == approval.file_sha256 and run.file_path:
            path = location(run.file_path)
        else:
            raise LookupError(f"the file of approval {approval_id} was {approval.status}: nothing to show")
    if not path.is_file():
        raise LookupError(f"{path.name} is no longer there")
    return path
