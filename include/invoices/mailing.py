"""E-mailing invoices through POM (seed 003): journalled first, handed over once, never sent twice.

What goes: every current invoice (``withdrawn_at`` empty) whose channel is
``email`` or ``both`` and that has no ``sent_document`` row yet, while it
still asks for what its reference asks (sealed, same open amount; otherwise
the next invoice run withdraws or remakes it, and the new invoice goes under
its new document id). An invoice is e-mailed once.

Batches: one per sales journal (the journal of the reference's type) and
day, named ``<journal code>-<YYYY-MM-DD>-<n>``; a type without a journal
names its batches after the type code. ``n`` follows the batches of that
name already recorded, so a second mailing the same day makes ``-2`` and no
name is ever used twice. More than ``batch_size`` invoices of one journal
in one run fill several batches.

Two transactions around the call to POM, as for a payment request
(:mod:`include.pom.payment_requests`):

1. **journal**: the ``sent_document`` rows of the new batches, each with its
   invoice, document id, the PDF's SHA-256 and the recipients
   (``[[name, e-mail], …]`` by seed 003's rule,
   :func:`include.pom.delivery_store.intended_recipients`), ``accepted_at``
   empty, plus an audit row per batch; committed before POM is asked;
2. for every batch with rows not yet accepted (the new ones and those a
   crashed run left): the body is built from the journal alone (recipients
   from the row, the PDF read from the invoice's file and checked against the
   journalled SHA-256, the structured communication as printed), sent with the
   client of the reference type's POM account, and the rows are marked
   ``accepted_at`` in a second transaction, audited.

A batch sent again after a crash is byte-identical, and POM answers a batch
name it knows with the same body by ``200`` without sending anything; rows
already accepted are never sent again. A document without any recipient is
journalled (the delivery report's diagnosis then says "not attempted" and
which flag to set) but not handed to POM; a batch without any document to
hand over is accepted without calling POM.

Rows of ``sent_document`` without an invoice (batches recorded by other
means) are never sent from here, and an invoice whose document id such a
row already holds is not e-mailed (POM would answer "DocumentId already
used"): it is counted and logged.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from include.config import invoices_dir
from include.errors import ConfigError, InnenError
from include.files import sha256_bytes
from include.finance.audit import audit_row, record_many
from include.finance.db import transaction
from include.finance.models import (
    EndUser,
    Invoice,
    PaymentReference,
    PaymentReferenceType,
    SalesJournal,
    SentDocument,
)
from include.finance.reference_numbers import display_reference
from include.finance.statuses import ReferenceStatus
from include.pom.accounts import DEFAULT_ACCOUNT, PomClients
from include.pom.client import PomAuthError, PomDocument, PomRecipient, PomRejected, PomUnavailable
from include.pom.delivery_store import intended_recipients
from include.storage import Location

log = logging.getLogger(__name__)

MAILED_CHANNELS = ("email", "both")
BATCH_SIZE = 500  # documents per batch: a batch body carries every PDF, in base64


class MailingIncomplete(InnenError):
    """POM could not be reached for some batches: they stay journalled, a rerun (Airflow's retry) sends them."""

    def __init__(self, message: str, run: MailingRun) -> None:
        super().__init__(message)
        self.run = run


class MailingRefused(InnenError):
    """POM refused a batch, or an invoice could not be sent as made (its file changed, no POM account)."""

    def __init__(self, message: str, run: MailingRun) -> None:
        super().__init__(message)
        self.run = run


class InvoiceFileChanged(InnenError):
    """An invoice's PDF is missing or no longer has the SHA-256 it was made (and journalled) with."""


@dataclass
class MailingRun:
    """What one mailing did: counts, the batches it journalled and those POM accepted, and what went wrong."""

    day: str
    counts: Counter[str] = field(default_factory=Counter)
    journalled: list[str] = field(default_factory=list)  # batches written by this run
    accepted: list[str] = field(default_factory=list)  # batches POM took (or with nothing to hand over)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"day": self.day, "counts": dict(sorted(self.counts.items())), "journalled": self.journalled,
                "accepted": self.accepted, "problems": self.problems}


@dataclass(frozen=True, slots=True)
class _Pending:
    invoice_id: int
    document_id: str
    reference_id: int
    end_user_id: int
    file_path: str
    sha256: str
    type_code: str
    journal_id: int | None
    journal_code: str | None
    copy_per_address: bool

    @property
    def prefix(self) -> str:
        return batch_prefix(self.journal_code or self.type_code)


def batch_prefix(code: str) -> str:
    """The start of a batch name: the journal's (or type's) code, with no ``/`` (POM refuses one in a name).

    >>> batch_prefix("VERKOOP-BIB"), batch_prefix("A/B")
    ('VERKOOP-BIB', 'A-B')
    """
    return code.strip().replace("/", "-")


def batch_name(prefix: str, day: date, n: int) -> str:
    """The ``n``-th batch of a journal (or type) on ``day``.

    >>> batch_name("VERKOOP-BIB", date(2026, 12, 4), 2)
    'VERKOOP-BIB-2026-12-04-2'
    """
    return f"{prefix}-{day.isoformat()}-{n}"


def _not_journalled() -> Any:
    """No sent_document row for the invoice yet (through the unique, indexed ``invoice_id``)."""
    sent = aliased(SentDocument)
    return ~select(sent.id).where(sent.invoice_id == Invoice.id).exists()


def _pending(session: Session) -> tuple[list[_Pending], Counter[str]]:
    """The invoices to journal, in the order they are batched, and how many were left out and why."""
    rows = session.execute(
        select(Invoice.id, Invoice.document_id, Invoice.payment_reference_id, PaymentReference.end_user_id,
               Invoice.file_path, Invoice.sha256, PaymentReferenceType.code, SalesJournal.id, SalesJournal.code,
               SalesJournal.copy_per_address, PaymentReference.status, PaymentReference.open_amount, Invoice.amount)
        .join(PaymentReference, PaymentReference.id == Invoice.payment_reference_id)
        .join(PaymentReferenceType, PaymentReferenceType.id == PaymentReference.type_id)
        .outerjoin(SalesJournal, SalesJournal.payment_reference_type_id == PaymentReferenceType.id)
        .where(Invoice.withdrawn_at.is_(None), Invoice.channel.in_(MAILED_CHANNELS), _not_journalled())
        .order_by(Invoice.id)
    ).all()
    left_out: Counter[str] = Counter()
    pending = []
    for (invoice_id, document_id, ref_id, user_id, path, sha, type_code, journal_id, journal_code, copy, status,
         open_amount, amount) in rows:
        if status != ReferenceStatus.SEALED or open_amount != amount:
            left_out["stale"] += 1  # paid, unsealed or changed since made: the invoice run withdraws or remakes it
            continue
        pending.append(_Pending(invoice_id, document_id, ref_id, user_id, path, sha, type_code, journal_id,
                                journal_code, bool(copy)))
    # A document id recorded without an invoice (a batch sent by other means): POM would call it already used.
    used: set[str] = set()
    for start in range(0, len(pending), 5000):
        used.update(session.scalars(select(SentDocument.document_id).where(
            SentDocument.document_id.in_([item.document_id for item in pending[start : start + 5000]]))))
    if used:
        log.warning("not e-mailed, their document ids were sent before: %s", sorted(used))
        left_out["document_id_sent_before"] += len(used)
        pending = [item for item in pending if item.document_id not in used]
    return pending, left_out


def mailing_accounts(engine: Engine) -> set[str]:
    """The POM accounts of the invoices waiting to be e-mailed or to be accepted (their reference types')."""
    with transaction(engine, readonly=True) as session:
        waiting = session.scalars(
            select(PaymentReferenceType.pom_account).distinct()
            .join(PaymentReference, PaymentReference.type_id == PaymentReferenceType.id)
            .join(Invoice, Invoice.payment_reference_id == PaymentReference.id)
            .where(Invoice.withdrawn_at.is_(None), Invoice.channel.in_(MAILED_CHANNELS), _not_journalled())).all()
        unaccepted = session.scalars(
            select(PaymentReferenceType.pom_account).distinct()
            .join(PaymentReference, PaymentReference.type_id == PaymentReferenceType.id)
            .join(Invoice, Invoice.payment_reference_id == PaymentReference.id)
            .join(SentDocument, SentDocument.invoice_id == Invoice.id)
            .where(SentDocument.accepted_at.is_(None))).all()
    return {name or DEFAULT_ACCOUNT for name in (*waiting, *unaccepted)}


def read_invoice_pdf(path: Location, sha256: str) -> bytes:
    """The PDF at ``path``, refused with :class:`InvoiceFileChanged` unless it has the SHA-256 it was made with."""
    try:
        pdf = path.read_bytes()
    except OSError as exc:
        raise InvoiceFileChanged(f"invoice file {path} cannot be read ({exc.strerror or type(exc).__name__}): "
                                 "restore it, or withdraw the invoice so that the invoice run makes it again") from None
    found = sha256_bytes(pdf)
    if found != sha256:
        raise InvoiceFileChanged(f"invoice file {path} no longer matches the SHA-256 it was made with "
                                 f"(made {sha256}, now {found}): restore it, or withdraw the invoice so that "
                                 "the invoice run makes it again")
    return pdf


def mail_invoices(
    engine: Engine, clients: PomClients, actor: str, now: datetime, *, day: date, batch_size: int = BATCH_SIZE,
) -> MailingRun:
    """E-mail every invoice waiting for it (see the module text); returns what was done.

    Raises :class:`MailingIncomplete` when POM could not be reached for some
    batch (the journal keeps it; a rerun sends it) and :class:`MailingRefused`
    when POM refused a batch or an invoice's file changed; in both cases the
    other batches are done first, and the exception carries the run.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    run = MailingRun(day.isoformat())
    _journal(engine, actor, now, day, batch_size, run)
    for batch in unaccepted_batches(engine):
        try:
            _deliver(engine, clients, actor, now, batch, run)
        except PomUnavailable as exc:
            run.counts["unavailable"] += 1
            run.problems.append(f"batch {batch}: POM unavailable, kept for the next run: {exc}")
            log.warning("batch %s: POM unavailable: %s", batch, exc)
        except PomRejected as exc:
            run.counts["refused"] += 1
            run.problems.append(f"batch {batch}: refused by POM: {exc}")
            log.error("batch %s: refused by POM: %s", batch, exc)
        except (InvoiceFileChanged, ConfigError, PomAuthError) as exc:  # this batch only; the others go on
            run.counts["refused"] += 1
            run.problems.append(f"batch {batch}: not sent: {exc}")
            log.error("batch %s: not sent: %s", batch, exc)
    log.info("invoice mailing %s: %s", run.day, run.as_dict())
    if run.counts["unavailable"]:
        raise MailingIncomplete(f"{run.counts['unavailable']} batch(es) not handed to POM yet; the rest is done: "
                                + "; ".join(run.problems), run)
    if run.problems:
        raise MailingRefused("; ".join(run.problems), run)
    return run


# -- 1. journal ---------------------------------------------------------------------------------


def _journal(engine: Engine, actor: str, now: datetime, day: date, batch_size: int, run: MailingRun) -> None:
    """Write (and commit) the sent_document rows of the invoices waiting, in new batches."""
    with transaction(engine, readonly=True) as session:
        pending, _ = _pending(session)
    checked = set()
    for item in pending:  # outside any transaction: a file that changed stays out of the journal
        try:
            read_invoice_pdf(invoices_dir() / item.file_path, item.sha256)
        except InvoiceFileChanged as exc:
            run.counts["refused_file"] += 1
            run.problems.append(f"invoice {item.document_id}: {exc}")
            log.error("invoice %s not e-mailed: %s", item.document_id, exc)
        else:
            checked.add(item.invoice_id)
    try:
        with transaction(engine) as session:
            pending, left_out = _pending(session)  # again, under the write lock: what is still waiting now
            run.counts.update(left_out)
            _write_batches(session, [item for item in pending if item.invoice_id in checked], actor, now, day,
                           batch_size, run)
    except IntegrityError:  # another mailing journalled some of them meanwhile: it (or our next step) sends them
        log.warning("invoices journalled by another run meanwhile; sending what is journalled")
        run.counts["skipped_concurrent"] += 1
        run.journalled.clear()
        for key in ("journalled", "no_recipient"):
            run.counts.pop(key, None)


def _write_batches(session: Session, pending: list[_Pending], actor: str, now: datetime, day: date,
                   batch_size: int, run: MailingRun) -> None:
    if not pending:
        return
    groups: dict[tuple[str, int | None, str], list[_Pending]] = {}
    for item in pending:
        groups.setdefault((item.prefix, item.journal_id, item.type_code if item.journal_id is None else ""),
                          []).append(item)
    names = dict(session.execute(select(EndUser.id, EndUser)
                                 .where(EndUser.id.in_({item.end_user_id for item in pending}))).all())
    recipients_of: dict[tuple[int, bool], list[list[str]]] = {}
    numbers: dict[str, int] = {}
    for (prefix, journal_id, _), items in groups.items():
        for start in range(0, len(items), batch_size):
            if prefix not in numbers:
                numbers[prefix] = _last_number(session, prefix, day)
            numbers[prefix] += 1
            batch = batch_name(prefix, day, numbers[prefix])
            rows = []
            for item in items[start : start + batch_size]:
                key = (item.end_user_id, item.copy_per_address)
                if key not in recipients_of:
                    name = names[item.end_user_id].name
                    recipients_of[key] = [[name, email] for email in intended_recipients(
                        session, item.end_user_id, item.copy_per_address)]
                recipients = recipients_of[key]
                rows.append(SentDocument(
                    batch=batch, document_id=item.document_id, payment_reference_id=item.reference_id,
                    end_user_id=item.end_user_id, sales_journal_id=journal_id, sent_at=now,
                    invoice_id=item.invoice_id, pdf_sha256=item.sha256, recipients=recipients, accepted_at=None,
                ))
                if not recipients:
                    run.counts["no_recipient"] += 1
            session.add_all(rows)
            session.flush()
            record_many(session, [audit_row("sent_document", rows[0].id, "batch_journalled", actor, after={
                "batch": batch, "documents": len(rows), "without_recipient": sum(not r.recipients for r in rows),
                "sales_journal_id": journal_id, "first_document": rows[0].document_id,
                "last_document": rows[-1].document_id}, at=now)])
            run.counts["journalled"] += len(rows)
            run.journalled.append(batch)
            log.info("batch %s journalled: %d invoice(s)", batch, len(rows))


def _last_number(session: Session, prefix: str, day: date) -> int:
    """The highest ``n`` of the batches ``<prefix>-<day>-<n>`` recorded so far (0: none)."""
    start = f"{prefix}-{day.isoformat()}-"
    names = session.scalars(select(SentDocument.batch).distinct()
                            .where(SentDocument.batch.startswith(start, autoescape=True))).all()
    numbers = [int(name[len(start):]) for name in names if name[len(start):].isdigit()]
    return max(numbers, default=0)


# -- 2. hand over -------------------------------------------------------------------------------


def unaccepted_batches(engine: Engine) -> list[str]:
    """Batches of invoices journalled and not yet accepted by POM, oldest first."""
    with transaction(engine, readonly=True) as session:
        return list(session.scalars(
            select(SentDocument.batch)
            .where(SentDocument.accepted_at.is_(None), SentDocument.invoice_id.is_not(None))
            .group_by(SentDocument.batch).order_by(func.min(SentDocument.id))))


def _deliver(engine: Engine, clients: PomClients, actor: str, now: datetime, batch: str, run: MailingRun) -> None:
    """Send one journalled batch, exactly as journalled, and mark it accepted."""
    with transaction(engine, readonly=True) as session:
        rows = session.execute(
            select(SentDocument.document_id, SentDocument.recipients, SentDocument.pdf_sha256,
                   SentDocument.accepted_at, Invoice.file_path, PaymentReference.reference_number,
                   PaymentReferenceType.pom_account)
            .join(Invoice, Invoice.id == SentDocument.invoice_id)
            .join(PaymentReference, PaymentReference.id == Invoice.payment_reference_id)
            .join(PaymentReferenceType, PaymentReferenceType.id == PaymentReference.type_id)
            .where(SentDocument.batch == batch)
            .order_by(SentDocument.id)
        ).all()
    if not rows:
        return
    accounts = {row.pom_account or DEFAULT_ACCOUNT for row in rows}
    if len(accounts) != 1:
        raise ConfigError(f"batch {batch} holds invoices of several POM accounts ({', '.join(sorted(accounts))})")
    (account,) = accounts
    documents = []
    for row in rows:  # every row of the batch, accepted or not: the body must be the one first sent
        if not row.recipients:
            continue
        documents.append(PomDocument(
            row.document_id, tuple(PomRecipient(str(name), str(email)) for name, email in row.recipients),
            read_invoice_pdf(invoices_dir() / row.file_path, row.pdf_sha256 or ""),
            display_reference(row.reference_number) if row.reference_number else None,
        ))
    answered = None
    if documents:
        answered = clients.client(account).send_batch(batch, documents)
        log.info("batch %s: POM took %s document(s) (account %s)", batch, answered, account)
    _accept(engine, actor, now, batch, len(rows), len(documents), answered, run)


def _accept(engine: Engine, actor: str, now: datetime, batch: str, journalled: int, handed: int,
            answered: int | None, run: MailingRun) -> None:
    with transaction(engine) as session:
        ids = session.scalars(select(SentDocument.id).where(
            SentDocument.batch == batch, SentDocument.invoice_id.is_not(None), SentDocument.accepted_at.is_(None))
            .order_by(SentDocument.id)).all()
        if not ids:  # another run accepted it meanwhile
            return
        session.execute(update(SentDocument).where(SentDocument.id.in_(ids)).values(accepted_at=now))
        record_many(session, [audit_row("sent_document", ids[0], "batch_accepted", actor, after={
            "batch": batch, "documents": journalled, "handed_to_pom": handed, "pom_documents": answered,
            "accepted": len(ids)}, at=now)])
    marked = len(ids)
    run.counts["accepted_documents"] += marked
    run.counts["handed_to_pom"] += handed
    run.counts["batches_accepted"] += 1
    if batch not in run.journalled:
        run.counts["batches_resumed"] += 1
    run.accepted.append(batch)
