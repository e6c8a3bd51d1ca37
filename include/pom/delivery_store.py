"""Delivery reports into the database: the lines as POM wrote them, and one diagnosis per invoice × recipient.

:func:`store_report` runs inside the caller's transaction and streams the
report once: every line goes to ``delivery_report_line`` (executemany, a chunk
at a time) and into a map of attempts per (document id, e-mail address).
Then, per batch, the invoices we sent in it (``sent_document``) are read with
their customer, invoice number, sales journal and e-mail contacts (and the
addresses those hang on), and every invoice × contact gets its diagnosis from
:mod:`include.pom.delivery_diagnosis`: from its attempts, or, without any, from
the flags in the customer data. Report lines left over (an address that is not
on the customer record, a document we did not send in that batch) get a
diagnosis too, with a note. A customer without any e-mail contact gives one
row for the invoice.

One ``delivery_report`` row per batch holds the latest analysis: analysing a
batch again (the same file, or a newer report with POM's later retries)
deletes that batch's lines and diagnoses and writes them anew, so nothing is
ever counted twice. An audit row records each analysis (file, checksum, "now"
of the 48-hour rule, counts before and after). A refused report raises
inside the transaction: nothing of it is stored.

:func:`record_sent_documents` writes the ``sent_document`` rows for a batch
handed to POM (what the sending side calls).
"""

from __future__ import annotations

import gc
import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import and_, case, delete, func, select
from sqlalchemy.orm import Session, aliased

from include.finance.audit import record
from include.finance.bulk import stream_chunks
from include.finance.models import (
    Address,
    Contact,
    DeliveryDiagnosis,
    DeliveryReport,
    DeliveryReportLine,
    EndUser,
    PaymentReference,
    SalesJournal,
    SentDocument,
)
from include.pom.delivery_action_list import DELIVERED_CHUNK, ActionListWriter, customer_name, folder_for
from include.pom.delivery_diagnosis import (
    DIAGNOSIS_CODES,
    Attempt,
    Diagnosis,
    RecipientSetup,
    diagnose_attempts,
    diagnose_not_attempted,
    missing_flags,
)
from include.pom.delivery_report import DeliveryReportFile, DeliveryReportRefused

LINE_COLUMNS = ("line_no", "document_id", "recipient_name", "email", "status", "message_kind", "description",
                "attempted_at")
DELIVERED_COLUMNS = ("sent_document_id", "document_id", "contact_id", "address_id", "email", "address_label", "note",
                     "attempts", "last_line_no")
DIAGNOSIS_COLUMNS = ("sent_document_id", "document_id", "contact_id", "address_id", "email", "address_label",
                     "diagnosis", "action", "detail", "note", "attempts", "last_line_no", "retry_until")
log = logging.getLogger(__name__)

CHUNK = 10_000
ROWS_PER_INSERT = 100


@dataclass
class StoredReport:
    """What one batch's analysis stored; ``action_list`` is written and made final once the transaction commits."""

    report_id: int
    batch: str
    lines: int
    recipients: int
    summary: dict[str, int]
    replaced: bool  # an earlier analysis of the batch was replaced
    report: DeliveryReport = field(repr=False)
    action_list: ActionListWriter | None = field(default=None, repr=False)


class _Inserts:
    """Plain tuples into one table, a chunk at a time; ``fixed`` columns are written as literals.

    Like :func:`include.finance.bulk.insert_many` without a dict per row (the
    report path writes a million rows), and with :data:`ROWS_PER_INSERT` rows
    per INSERT statement: SQLite then runs a statement per hundred rows, not
    per row, which takes a third off the time.
    """

    def __init__(self, session: Session, table: Any, columns: Sequence[str], fixed: dict[str, Any]) -> None:
        self.connection = session.connection()
        dialect = self.connection.dialect
        marker = "?" if dialect.paramstyle == "qmark" else "%s"
        quote = dialect.identifier_preparer.quote
        names = [*fixed, *columns]
        one = "(" + ", ".join([_literal(v) for v in fixed.values()] + [marker] * len(columns)) + ")"
        head = f"INSERT INTO {table.name} ({', '.join(quote(c) for c in names)}) VALUES "
        self.sql = head + one
        self.many_sql = head + ", ".join([one] * ROWS_PER_INSERT)
        self.rows: list[tuple[Any, ...]] = []
        self.count = 0

    def flush(self) -> None:
        rows = self.rows
        if not rows:
            return
        whole = len(rows) - len(rows) % ROWS_PER_INSERT
        if whole:
            flat = chain.from_iterable
            self.connection.exec_driver_sql(
                self.many_sql, [tuple(flat(rows[i : i + ROWS_PER_INSERT])) for i in range(0, whole, ROWS_PER_INSERT)])
        if whole < len(rows):
            self.connection.exec_driver_sql(self.sql, rows[whole:])
        self.count += len(rows)
        self.rows = []


def _literal(value: Any) -> str:
    """Our own constants (ids, codes) as SQL literals."""
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, str) and value.replace("_", "").isalnum():
        return f"'{value}'"
    raise ValueError(f"not a literal we write: {value!r}")


def _processor(session: Session, column: Any) -> Any:
    """The column type's bind conversion for this database (SQLite: datetimes to text), or the identity."""
    dialect = session.connection().dialect
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    return process if process is not None else (lambda value: value)


@dataclass
class _Batch:
    report: DeliveryReport
    before: dict[str, Any] | None
    attempts: dict[tuple[str, str], Any] = field(default_factory=dict)  # (document id, email key) -> row or rows
    lines: _Inserts | None = None
    first_at: datetime | None = None
    last_at: datetime | None = None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def email_key(email: str) -> str:
    """An e-mail address as compared between the report and the customer record."""
    return email.strip().lower()


def _snapshot(report: DeliveryReport) -> dict[str, Any]:
    return {
        "batch": report.batch, "file": report.file_name, "sha256": report.file_sha256, "source": report.source,
        "lines": report.lines, "recipients": report.recipients, "as_of": report.as_of, "summary": report.summary,
    }


def _open_batch(session: Session, batch: str, source: DeliveryReportFile, source_kind: str, actor: str,
                now: datetime, analysed_at: datetime) -> _Batch:
    """The batch's delivery_report row, emptied of an earlier analysis, or a new one."""
    report = session.scalars(select(DeliveryReport).where(DeliveryReport.batch == batch)).one_or_none()
    before = None
    if report is not None:
        before = _snapshot(report)
        session.execute(delete(DeliveryDiagnosis).where(DeliveryDiagnosis.report_id == report.id))
        session.execute(delete(DeliveryReportLine).where(DeliveryReportLine.report_id == report.id))
    else:
        report = DeliveryReport(batch=batch)
        session.add(report)
    report.source = source_kind
    report.file_name = source.name[:255]
    report.file_sha256 = source.sha256
    report.encoding = source.encoding_label
    report.lines = report.recipients = 0
    report.first_attempt_at = report.last_attempt_at = None
    report.as_of = now
    report.analysed_at = analysed_at
    report.analysed_by = actor
    report.summary = {}
    session.flush()
    opened = _Batch(report, before)
    opened.lines = _Inserts(session, DeliveryReportLine.__table__, LINE_COLUMNS, {"report_id": report.id})
    return opened


def store_report(
    session: Session, source: DeliveryReportFile, actor: str, now: datetime | None = None, *,
    source_kind: str = "file", action_lists: bool = True,
) -> list[StoredReport]:
    """Store and diagnose every batch of a checked report (see the module text); one result per batch.

    Raises :class:`DeliveryReportRefused` (the caller's transaction then
    rolls back and nothing is stored). With ``action_lists``, each result
    carries its :class:`ActionListWriter`, filled in the same pass: call its
    ``finish`` after the commit (``abort`` if the commit fails).
    """
    collecting = gc.isenabled()
    gc.disable()  # a million tuples held: the cyclic collector would walk them again and again (none form cycles)
    try:
        return _store_report(session, source, actor, now, source_kind, action_lists)
    finally:
        if collecting:
            gc.enable()


def _store_report(session: Session, source: DeliveryReportFile, actor: str, now: datetime | None, source_kind: str,
                  action_lists: bool) -> list[StoredReport]:
    now = _utc(now or datetime.now(timezone.utc))
    analysed_at = datetime.now(timezone.utc)
    started = time.perf_counter()
    process = _processor(session, DeliveryReportLine.__table__.c.attempted_at)
    converted: dict[datetime, Any] = {}  # each distinct time converted once
    batches: dict[str, _Batch] = {}
    name: str | None = None
    current: _Batch | None = None
    attempts: dict[tuple[str, str], Any] = {}
    rows: list[tuple[Any, ...]] = []
    first_at = last_at = None
    for row in source.rows():
        # row: line_no, batch, document_id, recipient_name, email, status, description, at, kind
        if row[1] != name:
            if current is not None:
                current.first_at, current.last_at = first_at, last_at
                current.lines.flush()  # type: ignore[union-attr]
            name = row[1]
            current = batches.get(name)
            if current is None:
                current = batches[name] = _open_batch(session, name, source, source_kind, actor, now, analysed_at)
            attempts = current.attempts
            rows = current.lines.rows  # type: ignore[union-attr]
            first_at, last_at = current.first_at, current.last_at
        line_no, _, document_id, recipient, email, status, description, at, kind = row
        stored_at = converted.get(at)
        if stored_at is None:
            if len(converted) > 100_000:
                converted.clear()
            stored_at = converted[at] = process(at)
        rows.append((line_no, document_id, recipient, email, status, kind, description, stored_at))
        if len(rows) >= CHUNK:
            current.lines.flush()  # type: ignore[union-attr]
            rows = current.lines.rows  # type: ignore[union-attr]
        low = email.lower()
        key = (document_id, email if low == email else low)
        known = attempts.get(key)
        if known is None:
            attempts[key] = row
        elif type(known) is list:
            known.append(row)
        else:
            attempts[key] = [known, row]
        if last_at is None or at > last_at:
            last_at = at
            if first_at is None:
                first_at = at
        elif at < first_at:  # type: ignore[operator]
            first_at = at
    if current is not None:
        current.first_at, current.last_at = first_at, last_at
        current.lines.flush()  # type: ignore[union-attr]
    if not batches:
        if source.batch is None:
            raise DeliveryReportRefused(source.name, "no attempt lines, only a header, and no batch given")
        batches[source.batch] = _open_batch(session, source.batch, source, source_kind, actor, now, analysed_at)
    log.info("%s: %d lines read and stored in %.1f s", source.name,
             sum(b.lines.count for b in batches.values() if b.lines is not None), time.perf_counter() - started)
    results: list[StoredReport] = []
    writers: list[ActionListWriter] = []
    try:
        for batch in batches.values():
            writer = ActionListWriter(folder_for(batch.report.batch)) if action_lists else None
            if writer is not None:
                writers.append(writer)
            started = time.perf_counter()
            summary = _diagnose_batch(session, batch, now, writer)
            log.info("batch %s: %d invoice × recipient diagnosed and stored in %.1f s", batch.report.batch,
                     sum(summary.values()), time.perf_counter() - started)
            report = batch.report
            report.lines = batch.lines.count  # type: ignore[union-attr]
            report.recipients = sum(summary.values())
            report.first_attempt_at, report.last_attempt_at = batch.first_at, batch.last_at
            report.summary = summary
            session.flush()
            record(session, "delivery_report", report.id, "reanalysed" if batch.before else "analysed", actor,
                   before=batch.before, after=_snapshot(report), at=analysed_at)
            results.append(StoredReport(report.id, report.batch, report.lines, report.recipients, summary,
                                        batch.before is not None, report, writer))
            batch.attempts = {}
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    return results


# -- the join with what we sent ---------------------------------------------------------------------


def _recipients_query(batch: str) -> Any:
    """Every e-mail contact of the customer of every document sent in the batch (one row with none for a customer
    without any), in document order.

    Only a contact on an address past position 1 asks which address is the
    customer's first (the lowest position) and where its own one is: those
    columns are NULL on every other row, and SQLite evaluates them only there.
    """
    other = aliased(Address)
    later = Address.position > 1
    first_position = (
        select(func.min(other.position)).where(other.end_user_id == SentDocument.end_user_id).scalar_subquery()
    )
    return (
        select(
            SentDocument.id, SentDocument.document_id, SentDocument.end_user_id, SentDocument.sales_journal_id,
            PaymentReference.type_id, PaymentReference.invoice_number, PaymentReference.loi,
            EndUser.first_name, EndUser.last_name,
            Contact.id, Contact.value, Contact.email_recipient, Address.id, Address.position, Address.copy_per_address,
            case((later, first_position), else_=None), case((later, Address.street), else_=None),
            case((later, Address.house_number), else_=None), case((later, Address.postal_code), else_=None),
            case((later, Address.city), else_=None),
        )
        .join(EndUser, EndUser.id == SentDocument.end_user_id)
        .outerjoin(PaymentReference, PaymentReference.id == SentDocument.payment_reference_id)
        .outerjoin(Contact, and_(Contact.end_user_id == SentDocument.end_user_id, Contact.kind == "email"))
        .outerjoin(Address, Address.id == Contact.address_id)
        .where(SentDocument.batch == batch)
        .order_by(SentDocument.document_id, Contact.id)
    )


class _Journals:
    """The sales journals (a handful): a document's own, else its payment reference type's."""

    def __init__(self, session: Session) -> None:
        self.by_id: dict[int, tuple[str, bool]] = {}
        self.by_type: dict[int, tuple[str, bool]] = {}
        for journal_id, code, name, copy, type_id in session.execute(select(
                SalesJournal.id, SalesJournal.code, SalesJournal.name, SalesJournal.copy_per_address,
                SalesJournal.payment_reference_type_id)):
            entry = (f"{code} ({name})" if name else code, bool(copy))
            self.by_id[journal_id] = entry
            if type_id is not None:
                self.by_type[type_id] = entry

    def of(self, journal_id: int | None, type_id: int | None) -> tuple[str | None, bool]:
        """(label, copy per address) of a document's sales journal."""
        if journal_id is not None:
            return self.by_id.get(journal_id, (None, False))
        return self.by_type.get(type_id, (None, False)) if type_id is not None else (None, False)


def _is_later(row: tuple[Any, ...]) -> bool:
    """Whether a recipients-query row's contact hangs on an address after the customer's first."""
    return row[15] is not None and row[13] > row[15]


def _setup(row: tuple[Any, ...], journals: _Journals) -> RecipientSetup:
    """What the customer data says about the contact of a recipients-query row."""
    address_id, position = row[12], row[13]
    label, copy = journals.of(row[3], row[4])
    return RecipientSetup(
        email=(row[10] or "").strip(), email_recipient=bool(row[11]),
        address_position=position if address_id is not None else None, first_position=row[15],
        address_copy_per_address=bool(row[14]), journal_copy_per_address=copy, journal=label,
        address_label=_street_line(*row[16:20]) if _is_later(row) else None,
    )


def _label(row: tuple[Any, ...]) -> str | None:
    """The address_label of a contact on a later address ("address 2: Dorp 2, 3001 Heverlee"), else None."""
    if not _is_later(row):
        return None
    line = _street_line(*row[16:20])
    return (f"address {row[13]}" + (f": {line}" if line else ""))[:200]


def _street_line(street: str | None, number: str | None, postal: str | None, city: str | None) -> str | None:
    place = " ".join(p for p in (postal, city) if p)
    return ", ".join(p for p in (" ".join(q for q in (street, number) if q), place) if p) or None


def _attempts(found: Any) -> list[Attempt]:
    """A recipient's report rows as :class:`Attempt`, in time order (then line order)."""
    rows = found if type(found) is list else [found]
    return sorted(Attempt(row[7], row[0], row[8], row[5], row[6]) for row in rows)


_DELIVERED = diagnose_attempts([Attempt(datetime(2000, 1, 1, tzinfo=timezone.utc), 1, "delivered", "DELIVERED", "")],
                               datetime(2000, 1, 1, tzinfo=timezone.utc))


def _diagnose_batch(session: Session, batch: _Batch, now: datetime, writer: ActionListWriter | None) -> dict[str, int]:
    report_id = batch.report.id
    batch_name = batch.report.batch
    attempts = batch.attempts
    journals = _Journals(session)
    inserts = _Inserts(session, DeliveryDiagnosis.__table__, DIAGNOSIS_COLUMNS, {"report_id": report_id})
    # Most rows: one attempt, delivered. Their constants are written into the statement, not bound row by row
    # (ids still follow the order of each action group, which is what the action list reads back).
    delivered_inserts = _Inserts(session, DeliveryDiagnosis.__table__, DELIVERED_COLUMNS, {
        "report_id": report_id, "diagnosis": _DELIVERED.diagnosis, "action": _DELIVERED.action})
    process = _processor(session, DeliveryDiagnosis.__table__.c.retry_until)
    counts: Counter[str] = Counter()
    add_row = writer.add if writer is not None else None
    delivered = _DELIVERED.diagnosis
    n_delivered = 0

    def emit(diagnosis: Diagnosis, found: Any, sent_id: int | None, document_id: str, customer: str | None,
             invoice: str | None, contact_id: int | None, address_id: int | None, email: str | None,
             label: str | None, note: str | None) -> None:
        code, action = diagnosis.diagnosis, diagnosis.action
        if found is None:
            last, count = None, 0
        elif type(found) is list:
            last, count = max(found, key=lambda row: (row[7], row[0])), len(found)
        else:
            last, count = found, 1
        until = diagnosis.retry_until
        if code == delivered:  # with the other delivered rows, so that ids keep the order of the action list
            delivered_inserts.rows.append((sent_id, document_id, contact_id, address_id, email, label, note, count,
                                           last[0] if last else None))
            if len(delivered_inserts.rows) >= CHUNK:
                delivered_inserts.flush()
        else:
            inserts.rows.append((sent_id, document_id, contact_id, address_id, email, label, code, action,
                                 diagnosis.detail, note, count, last[0] if last else None,
                                 process(until) if until is not None else None))
            if len(inserts.rows) >= CHUNK:
                inserts.flush()
        counts[code] += 1
        if add_row is not None:
            if last is None:
                add_row(action, code, customer, invoice, document_id, None, email, label, 0, None, None, None, note,
                        diagnosis.detail, until)
            else:
                add_row(action, code, customer, invoice, document_id, last[3], email, label, count, last[7], last[5],
                        last[6], note, diagnosis.detail, until)

    listed = writer.delivered if writer is not None else None

    def one_delivered(sent_id: int, document_id: str, contact_id: int, address_id: int | None, email: str,
                      label: str | None, found: tuple[Any, ...], customer: str | None, invoice: str | None) -> None:
        """The common case: one attempt, delivered."""
        nonlocal n_delivered
        rows = delivered_inserts.rows
        rows.append((sent_id, document_id, contact_id, address_id, email, label, None, 1, found[0]))
        if len(rows) >= CHUNK:
            delivered_inserts.flush()
        n_delivered += 1
        if listed is not None:
            listed.append((customer, invoice, document_id, found[3], email, label, 1, found[7], None))
            if len(listed) >= DELIVERED_CHUNK:
                writer.flush_delivered()  # type: ignore[union-attr]

    def finish(group: list[tuple[Any, ...]]) -> None:
        head = group[0]
        sent_id, document_id = head[0], head[1]
        customer = customer_name(head[7], head[8])
        invoice = head[5] or head[6]
        if head[9] is None:  # no e-mail contact at all
            emit(diagnose_not_attempted(None), None, sent_id, document_id, customer, invoice, None, None, None, None,
                 None)
            return
        if len(group) > 1:
            # One diagnosis per address: of two contacts with the same address, the one POM should reach counts.
            chosen: dict[str, tuple[Any, ...]] = {}
            for row in group:
                key = email_key(row[10] or "")
                if key not in chosen or len(missing_flags(_setup(row, journals))) < len(
                        missing_flags(_setup(chosen[key], journals))):
                    chosen[key] = row
            group = list(chosen.values())
        for row in group:
            email = (row[10] or "").strip()
            found = attempts.pop((document_id, email.lower()), None)
            label = _label(row) if row[15] is not None else None
            if found is not None and type(found) is not list and found[8] == "delivered":
                one_delivered(sent_id, document_id, row[9], row[12], email, label, found, customer, invoice)
                continue
            if found is None:
                diagnosis = diagnose_not_attempted(_setup(row, journals))
            else:
                diagnosis = diagnose_attempts(_attempts(found), now)
            emit(diagnosis, found, sent_id, document_id, customer, invoice, row[9], row[12], email or None, label, None)

    # Rows come grouped by document. A document with one contact, not on a later address, whose one attempt
    # was delivered (most of a report) is handled right here; everything else goes through finish().
    # (one_delivered() written out in the loop: it runs for most of a million rows.)
    group: list[tuple[Any, ...]] = []
    pop = attempts.pop
    for row in chain.from_iterable(stream_chunks(session, _recipients_query(batch_name))):
        if group and row[0] == group[0][0]:
            group.append(row)
            continue
        if len(group) == 1 and group[0][9] is not None and group[0][15] is None:
            head = group[0]
            email = (head[10] or "").strip()
            key = (head[1], email.lower())
            found = pop(key, None)
            if found is not None and type(found) is not list and found[8] == "delivered":
                delivered_rows = delivered_inserts.rows  # a new list after each flush (finish() flushes too)
                delivered_rows.append((head[0], head[1], head[9], head[12], email, None, None, 1, found[0]))
                if len(delivered_rows) >= CHUNK:
                    delivered_inserts.flush()
                n_delivered += 1
                if listed is not None:
                    first, last = head[7], head[8]
                    listed.append((f"{first} {last}" if first and last else (last or first or None),
                                   head[5] or head[6], head[1], found[3], email, None, 1, found[7], None))
                    if len(listed) >= DELIVERED_CHUNK:
                        writer.flush_delivered()  # type: ignore[union-attr]
                group = [row]
                continue
            if found is not None:
                attempts[key] = found  # back, for finish()
        if group:
            finish(group)
        group = [row]
    if group:
        finish(group)
    counts[delivered] += n_delivered

    # Lines for nobody we meant: an address not on the customer record, or a document not sent in this batch.
    if attempts:
        documents = _documents(session, batch_name, {document_id for document_id, _ in attempts})
        for document_id, key in sorted(attempts):
            found = attempts[(document_id, key)]
            ordered = _attempts(found)
            known = documents.get(document_id)
            if known is None:
                sent_id, customer, invoice = None, None, None
                note = f"document id not among the documents we sent in batch {batch_name}"
            else:
                sent_id, customer, invoice = known
                note = "e-mail address not (or no longer) on the customer record"
            last = found[-1] if type(found) is list else found
            emit(diagnose_attempts(ordered, now), found, sent_id, document_id, customer, invoice, None, None,
                 last[4], None, note)
    inserts.flush()
    delivered_inserts.flush()
    return {code: counts[code] for code in DIAGNOSIS_CODES if counts[code]}


def _documents(session: Session, batch: str, document_ids: Iterable[str]) -> dict[str, tuple[Any, ...]]:
    """(sent id, customer, invoice) of the given documents of a batch."""
    found: dict[str, tuple[Any, ...]] = {}
    wanted = sorted(document_ids)
    for start in range(0, len(wanted), 500):
        query = (
            select(SentDocument.id, SentDocument.document_id, EndUser.first_name, EndUser.last_name,
                   PaymentReference.invoice_number, PaymentReference.loi)
            .join(EndUser, EndUser.id == SentDocument.end_user_id)
            .outerjoin(PaymentReference, PaymentReference.id == SentDocument.payment_reference_id)
            .where(SentDocument.batch == batch, SentDocument.document_id.in_(wanted[start : start + 500]))
        )
        for sent_id, document_id, first, last, invoice, loi in session.execute(query):
            customer = customer_name(first, last)
            found[document_id] = (sent_id, customer[:210] if customer else None, invoice or loi or None)
    return found


# -- what we sent ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DocumentToSend:
    """One invoice handed to POM: its document id, the customer, the payment reference, the sales journal."""

    document_id: str
    end_user_id: int
    payment_reference_id: int | None = None
    sales_journal_id: int | None = None


def record_sent_documents(
    session: Session, batch: str, documents: Iterable[DocumentToSend], actor: str, sent_at: datetime | None = None
) -> int:
    """Write the ``sent_document`` rows of a batch (a document id already in the batch is refused by the database)."""
    sent_at = _utc(sent_at or datetime.now(timezone.utc))
    rows = [
        {"batch": batch, "document_id": d.document_id, "end_user_id": d.end_user_id,
         "payment_reference_id": d.payment_reference_id, "sales_journal_id": d.sales_journal_id, "sent_at": sent_at}
        for d in documents
    ]
    if rows:
        session.execute(SentDocument.__table__.insert(), rows)
        first = session.scalar(select(func.min(SentDocument.id)).where(SentDocument.batch == batch))
        record(session, "sent_document", first or 0, "batch_sent", actor,
               after={"batch": batch, "documents": len(rows), "sent_at": sent_at}, at=datetime.now(timezone.utc))
    return len(rows)


def intended_recipients(session: Session, end_user_id: int, sales_journal_copy_per_address: bool) -> Iterator[str]:
    """The e-mail addresses POM should get for an invoice of this customer (seed 003's rule), for the sending side."""
    yield from email_contacts(session, [end_user_id]).get(end_user_id, EmailContacts()).recipients(
        sales_journal_copy_per_address)


@dataclass
class EmailContacts:
    """A customer's e-mail contacts as seed 003's rule needs them, read once for many invoices."""

    first_position: int | None = None
    contacts: list[tuple[str, bool, int | None, bool]] = field(default_factory=list)  # value, flag, position, copy

    def recipients(self, journal_copy_per_address: bool) -> list[str]:
        """The addresses POM gets for an invoice in a journal with (or without) "copy per address"."""
        return [value for value, flag, position, copy in self.contacts if not missing_flags(RecipientSetup(
            email=value, email_recipient=flag, address_position=position, first_position=self.first_position,
            address_copy_per_address=copy, journal_copy_per_address=journal_copy_per_address))]


def email_contacts(session: Session, end_user_ids: Iterable[int]) -> dict[int, EmailContacts]:
    """Customer id → :class:`EmailContacts`, in two queries for all of ``end_user_ids``."""
    ids = list(set(end_user_ids))
    found: dict[int, EmailContacts] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for user_id, first in session.execute(select(Address.end_user_id, func.min(Address.position))
                                              .where(Address.end_user_id.in_(chunk)).group_by(Address.end_user_id)):
            found.setdefault(user_id, EmailContacts()).first_position = first
        for user_id, value, flag, address_id, position, copy in session.execute(
            select(Contact.end_user_id, Contact.value, Contact.email_recipient, Address.id, Address.position,
                   Address.copy_per_address)
            .outerjoin(Address, Address.id == Contact.address_id)
            .where(Contact.end_user_id.in_(chunk), Contact.kind == "email")
            .order_by(Contact.end_user_id, Contact.id)
        ):
            found.setdefault(user_id, EmailContacts()).contacts.append(
                (value, bool(flag), position if address_id is not None else None, bool(copy)))
    return found
