"""Delivery reports into the database: the lines as POM wrote them, and one diagnosis per invoice × recipient.

:func:`store_report` runs inside the caller's transaction and streams the
report once: every line goes to ``delivery_report_line`` (a bulk insert of
the parsed lines) and, as an :class:`Attempt`, into a map of attempts per
invoice and e-mail address. Then, per batch, one query returns the invoices
we sent in it (``sent_document``) with the e-mail contacts of their
customer and the addresses those hang on, document by document, and every
invoice × contact gets its diagnosis from the rules of
:mod:`include.pom.delivery_diagnosis`: from its attempts, or, without any,
from the flags in the customer data. Report lines left over (an address that
is not on the customer record, a document we did not send in that batch) get
a diagnosis too, with a note. A customer without any e-mail contact gives
one row for the invoice. The diagnoses go in with a bulk insert, in the
order the action list shows them.

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

import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from itertools import chain, groupby
from operator import attrgetter, itemgetter
from typing import Any, NamedTuple

from sqlalchemy import and_, case, delete, func, select
from sqlalchemy.orm import Session, aliased

from include.finance.audit import record
from include.finance.bulk import insert_tuples, stream_chunks
from include.finance.models import (
    Address,
    Contact,
    DeliveryDiagnosis,
    DeliveryReport,
    DeliveryReportLine,
    PaymentReference,
    SalesJournal,
    SentDocument,
)
from include.pom.delivery_diagnosis import (
    DIAGNOSIS_CODES,
    Attempt,
    Diagnosis,
    RecipientSetup,
    diagnose_attempts,
    diagnose_not_attempted,
    missing_flags,
)
from include.pom.delivery_reader import DeliveryReportFile, DeliveryReportRefused, ReportLine

log = logging.getLogger(__name__)

# delivery_report_line's columns (but report_id), each with the field of ReportLine it holds
LINE_COLUMNS = {"line_no": "line_no", "document_id": "document_id", "recipient_name": "recipient_name",
                "email": "email", "status": "status", "message_kind": "kind", "description": "description",
                "attempted_at": "at"}
_line_values = itemgetter(*map(ReportLine._fields.index, LINE_COLUMNS.values()))
_attempt_values = attrgetter(*Attempt._fields)  # of a ReportLine, which has them all
_new_attempt = partial(tuple.__new__, Attempt)  # Attempt._make without a Python call per attempt


def email_key(email: str) -> str:
    """An e-mail address as compared between the report and the customer record."""
    return email.strip().lower()


@dataclass
class StoredReport:
    """What one batch's analysis stored."""

    report_id: int
    batch: str
    lines: int
    recipients: int
    summary: dict[str, int]
    replaced: bool  # an earlier analysis of the batch was replaced


class _DiagnosisRow(NamedTuple):
    """An invoice × recipient as ``delivery_diagnosis`` holds it (but its report)."""

    sent_document_id: int | None
    document_id: str
    contact_id: int | None
    address_id: int | None
    email: str | None
    address_label: str | None
    diagnosis: str
    action: str
    detail: str | None
    note: str | None
    attempts: int
    last_line_no: int | None
    retry_until: datetime | None


class _Reached(NamedTuple):
    """A row of :func:`_recipients_query`: an invoice sent in the batch × one e-mail contact of its customer (all
    None: the customer has none). Flags come as the driver gives them (SQLite: 0 or 1)."""

    sent_document_id: int
    document_id: str
    sales_journal_id: int | None
    type_id: int | None
    contact_id: int | None
    email: str | None
    email_recipient: Any
    address_id: int | None
    address_position: int | None
    address_copy_per_address: Any
    # The next five only for a contact on an address past position 1 (else None): the lowest position among the
    # customer's addresses, and the contact's own address.
    first_position: int | None
    street: str | None
    house_number: str | None
    postal_code: str | None
    city: str | None


class _Attempts:
    """A batch's report lines as :class:`Attempt` per document and e-mail address: what the rules need of a
    million lines, and no more (the lines themselves are in the database).

    Held as plain tuples in :class:`Attempt`'s field order, made Attempts when
    taken out: the cyclic garbage collector stops looking at a plain tuple of
    plain values, but would walk a million named tuples at every full collection.
    """

    def __init__(self) -> None:
        # "document id NUL e-mail key" -> the values of its one attempt, or a list of them (a NUL cannot be in a
        # report: the reader refuses it)
        self._by_recipient: dict[str, tuple[Any, ...] | list[tuple[Any, ...]]] = {}

    def remember(self, lines: Iterable[ReportLine]) -> Iterator[ReportLine]:
        """Take in every line passing by."""
        found = self._by_recipient
        for line in lines:
            key = f"{line.document_id}\0{line.email.lower()}"  # email_key() of an address the reader stripped
            attempt = _attempt_values(line)
            known = found.get(key)
            if known is None:
                found[key] = attempt
            elif type(known) is list:
                known.append(attempt)
            else:
                found[key] = [known, attempt]
            yield line

    def pop(self, document_id: str, email: str) -> list[Attempt]:
        """The attempts for an invoice and address (stripped), taken out (an empty list: none)."""
        return self._attempts(self._by_recipient.pop(f"{document_id}\0{email.lower()}", None))

    def left(self) -> list[tuple[str, list[Attempt]]]:
        """The attempts nobody took, per document and address in that order: (document id, attempts)."""
        return [(key.partition("\0")[0], self._attempts(known)) for key, known in sorted(self._by_recipient.items())]

    @staticmethod
    def _attempts(known: tuple[Any, ...] | list[tuple[Any, ...]] | None) -> list[Attempt]:
        if known is None:
            return []
        return list(map(_new_attempt, known)) if type(known) is list else [_new_attempt(known)]


@dataclass
class _Batch:
    report: DeliveryReport
    before: dict[str, Any] | None
    attempts: _Attempts = field(default_factory=_Attempts)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


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
    return _Batch(report, before)


class _Batches(dict[str, _Batch]):
    """The report's batches by name, each opened (see :func:`_open_batch`) when its first line comes."""

    def __init__(self, open_batch: Any) -> None:
        super().__init__()
        self._open = open_batch

    def __missing__(self, name: str) -> _Batch:
        opened = self[name] = self._open(name)
        return opened


def store_report(
    session: Session, source: DeliveryReportFile, actor: str, now: datetime | None = None, *,
    source_kind: str = "file",
) -> list[StoredReport]:
    """Store and diagnose every batch of a checked report (see the module text); one result per batch.

    Raises :class:`DeliveryReportRefused` (the caller's transaction then
    rolls back and nothing is stored).
    """
    now = _utc(now or datetime.now(timezone.utc))
    analysed_at = datetime.now(timezone.utc)
    started = time.perf_counter()
    batches = _Batches(lambda name: _open_batch(session, name, source, source_kind, actor, now, analysed_at))
    lines = 0
    for name, same_batch in groupby(source.lines(), attrgetter("batch")):
        batch = batches[name]
        lines += insert_tuples(session, DeliveryReportLine.__table__, list(LINE_COLUMNS),
                               map(_line_values, batch.attempts.remember(same_batch)),
                               fixed={"report_id": batch.report.id})
    if not batches:
        if source.batch is None:
            raise DeliveryReportRefused(source.name, "no attempt lines, only a header, and no batch given")
        batches[source.batch]  # opened: an empty report says POM tried nobody
    log.info("%s: %d lines read and stored in %.1f s", source.name, lines, time.perf_counter() - started)
    results = []
    for batch in batches.values():
        started = time.perf_counter()
        report = batch.report
        report.lines, report.first_attempt_at, report.last_attempt_at = _line_facts(session, report.id)
        summary = _diagnose_batch(session, batch, now)
        log.info("batch %s: %d invoice × recipient diagnosed and stored in %.1f s", report.batch,
                 sum(summary.values()), time.perf_counter() - started)
        report.recipients = sum(summary.values())
        report.summary = summary
        session.flush()
        record(session, "delivery_report", report.id, "reanalysed" if batch.before else "analysed", actor,
               before=batch.before, after=_snapshot(report), at=analysed_at)
        results.append(StoredReport(report.id, report.batch, report.lines, report.recipients, summary,
                                    batch.before is not None))
    return results


def _line_facts(session: Session, report_id: int) -> tuple[int, datetime | None, datetime | None]:
    """How many lines a batch's report has, and its first and last attempt."""
    line = DeliveryReportLine
    count, first, last = session.execute(
        select(func.count(), func.min(line.attempted_at), func.max(line.attempted_at)).where(line.report_id == report_id)
    ).one()
    return count, first and _utc(first), last and _utc(last)


# -- the join with what we sent ---------------------------------------------------------------------


def _recipients_query(batch: str) -> Any:
    """Every e-mail contact of the customer of every document sent in the batch (one row with none for a customer
    without any), in document order, then contact order.

    Only a contact on an address past position 1 asks which address is the
    customer's first (the lowest position) and where its own one is: those
    columns are NULL on every other row, and SQLite evaluates them only there.
    """
    other = aliased(Address)
    later = Address.position > 1
    first_position = (
        select(func.min(other.position)).where(other.end_user_id == SentDocument.end_user_id).scalar_subquery()
    )
    columns: dict[str, Any] = {
        "sent_document_id": SentDocument.id, "document_id": SentDocument.document_id,
        "sales_journal_id": SentDocument.sales_journal_id, "type_id": PaymentReference.type_id,
        "contact_id": Contact.id, "email": Contact.value, "email_recipient": Contact.email_recipient,
        "address_id": Address.id, "address_position": Address.position,
        "address_copy_per_address": Address.copy_per_address,
        "first_position": case((later, first_position)), "street": case((later, Address.street)),
        "house_number": case((later, Address.house_number)), "postal_code": case((later, Address.postal_code)),
        "city": case((later, Address.city)),
    }
    return (
        select(*(columns[name].label(name) for name in _Reached._fields))
        .select_from(SentDocument)
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


def _is_later(row: _Reached) -> bool:
    """Whether a contact hangs on an address after the customer's first."""
    return row.first_position is not None and row.address_position > row.first_position


def _setup(row: _Reached, journals: _Journals) -> RecipientSetup:
    """What the customer data says about a contact."""
    label, copy = journals.of(row.sales_journal_id, row.type_id)
    return RecipientSetup(
        email=(row.email or "").strip(), email_recipient=bool(row.email_recipient),
        address_position=row.address_position if row.address_id is not None else None,
        first_position=row.first_position, address_copy_per_address=bool(row.address_copy_per_address),
        journal_copy_per_address=copy, journal=label,
        address_label=_street_line(row) if _is_later(row) else None,
    )


def _label(row: _Reached) -> str | None:
    """The address_label of a contact on a later address ("address 2: Dorp 2, 3001 Heverlee"), else None."""
    if not _is_later(row):
        return None
    line = _street_line(row)
    return (f"address {row.address_position}" + (f": {line}" if line else ""))[:200]


def _street_line(row: _Reached) -> str | None:
    place = " ".join(p for p in (row.postal_code, row.city) if p)
    return ", ".join(p for p in (" ".join(q for q in (row.street, row.house_number) if q), place) if p) or None


def _intended(contacts: list[_Reached], journals: _Journals) -> list[_Reached]:
    """An invoice's contacts, one per e-mail address, in their order: of two with the same address, the one POM
    should reach counts (the fewest flags missing; the first of equals), in the place of the first."""
    if len(contacts) == 1:
        return contacts
    chosen: dict[str, _Reached] = {}
    for contact in contacts:
        key = email_key(contact.email or "")
        if key not in chosen or len(missing_flags(_setup(contact, journals))) < len(
                missing_flags(_setup(chosen[key], journals))):
            chosen[key] = contact
    return list(chosen.values())


_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)
# A single delivered attempt is delivered whenever it was (the rule, asked once for the most common recipient).
ONE_DELIVERED = diagnose_attempts([Attempt(_EPOCH, 1, "delivered", "DELIVERED", "")], _EPOCH)
# NamedTuple._make without a Python call per row
_new_reached = partial(tuple.__new__, _Reached)
_new_diagnosis_row = partial(tuple.__new__, _DiagnosisRow)


class _Diagnoses:
    """One batch's diagnoses in the order they are stored (and listed): every invoice × recipient in document
    order, then the lines for nobody we meant."""

    def __init__(self, session: Session, batch: _Batch, now: datetime) -> None:
        self.session = session
        self.report_id = batch.report.id
        self.batch = batch.report.batch
        self.attempts = batch.attempts
        self.now = now
        self.journals = _Journals(session)
        self.counts: Counter[str] = Counter()

    def of_recipients(self, rows: Iterable[_Reached]) -> Iterator[_DiagnosisRow]:
        journals, pop = self.journals, self.attempts.pop
        for _, same_document in groupby(rows, attrgetter("sent_document_id")):
            for contact in _intended(list(same_document), journals):
                if contact.contact_id is None:  # the customer has no e-mail contact at all
                    yield self.emit(diagnose_not_attempted(None), contact, None, [])
                    continue
                email = contact.email.strip()
                attempts = pop(contact.document_id, email)
                if len(attempts) == 1 and attempts[0].kind == "delivered" and contact.first_position is None:
                    yield self.delivered_at_once(contact, email, attempts[0])
                elif attempts:
                    yield self.emit(diagnose_attempts(attempts, self.now), contact, email or None, attempts)
                else:
                    yield self.emit(diagnose_not_attempted(_setup(contact, journals)), contact, email or None, [])

    def delivered_at_once(self, contact: _Reached, email: str, attempt: Attempt) -> _DiagnosisRow:
        """:meth:`emit` for most of a report: a contact on the customer's first address, delivered at the first
        attempt."""
        self.counts[ONE_DELIVERED.diagnosis] += 1
        return _new_diagnosis_row((
            contact.sent_document_id, contact.document_id, contact.contact_id, contact.address_id, email, None,
            ONE_DELIVERED.diagnosis, ONE_DELIVERED.action, ONE_DELIVERED.detail, None, 1, attempt.line_no,
            ONE_DELIVERED.retry_until))

    def emit(self, diagnosis: Diagnosis, contact: _Reached, email: str | None,
             attempts: list[Attempt]) -> _DiagnosisRow:
        self.counts[diagnosis.diagnosis] += 1
        return _DiagnosisRow(
            sent_document_id=contact.sent_document_id, document_id=contact.document_id,
            contact_id=contact.contact_id, address_id=contact.address_id, email=email,
            address_label=_label(contact) if contact.first_position is not None else None,
            diagnosis=diagnosis.diagnosis, action=diagnosis.action, detail=diagnosis.detail, note=None,
            attempts=_count(attempts), last_line_no=_decisive(attempts), retry_until=diagnosis.retry_until)

    def of_lines_left(self) -> Iterator[_DiagnosisRow]:
        """The lines for nobody we meant: one diagnosis per document and address, with a note."""
        left = self.attempts.left()
        sent = _sent_documents(self.session, self.batch, {document_id for document_id, _ in left})
        # Each with the address as written on the last of its lines in the file.
        written_last = [max(attempts, key=attrgetter("line_no")).line_no for _, attempts in left]
        emails = _line_emails(self.session, self.report_id, written_last)
        for (document_id, attempts), line_no in zip(left, written_last):
            sent_id = sent.get(document_id)
            if sent_id is None:
                note = f"document id not among the documents we sent in batch {self.batch}"
            else:
                note = "e-mail address not (or no longer) on the customer record"
            diagnosis = diagnose_attempts(attempts, self.now)
            self.counts[diagnosis.diagnosis] += 1
            yield _DiagnosisRow(
                sent_document_id=sent_id, document_id=document_id, contact_id=None, address_id=None,
                email=emails[line_no], address_label=None, diagnosis=diagnosis.diagnosis, action=diagnosis.action,
                detail=diagnosis.detail, note=note, attempts=_count(attempts), last_line_no=_decisive(attempts),
                retry_until=diagnosis.retry_until)


def _count(attempts: list[Attempt]) -> int:
    """How many attempts the lines are: a line repeated word for word (the same time, status and message, as when
    a report was saved twice into one file) is one attempt, not two."""
    return len(attempts) if len(attempts) < 2 else len({(a.at, a.status, a.description) for a in attempts})


def _decisive(attempts: list[Attempt]) -> int | None:
    """The line of the latest attempt (the one that decides), if any."""
    return max(attempts, key=attrgetter("at", "line_no")).line_no if attempts else None


def _diagnose_batch(session: Session, batch: _Batch, now: datetime) -> dict[str, int]:
    diagnoses = _Diagnoses(session, batch, now)
    table, fixed = DeliveryDiagnosis.__table__, {"report_id": batch.report.id}
    rows = map(_new_reached, chain.from_iterable(stream_chunks(session, _recipients_query(batch.report.batch))))
    insert_tuples(session, table, _DiagnosisRow._fields, diagnoses.of_recipients(rows), fixed=fixed)
    insert_tuples(session, table, _DiagnosisRow._fields, diagnoses.of_lines_left(), fixed=fixed)
    return {code: diagnoses.counts[code] for code in DIAGNOSIS_CODES if diagnoses.counts[code]}


def _sent_documents(session: Session, batch: str, document_ids: Iterable[str]) -> dict[str, int]:
    """Document id → sent_document id, of the given documents of a batch."""
    found: dict[str, int] = {}
    wanted = sorted(document_ids)
    for start in range(0, len(wanted), 500):
        found.update(session.execute(select(SentDocument.document_id, SentDocument.id).where(
            SentDocument.batch == batch, SentDocument.document_id.in_(wanted[start : start + 500]))).all())
    return found


def _line_emails(session: Session, report_id: int, line_numbers: list[int]) -> dict[int, str]:
    """Line number → the e-mail address written on it, of the given lines of a batch's report."""
    line = DeliveryReportLine
    found: dict[int, str] = {}
    for start in range(0, len(line_numbers), 500):
        found.update(session.execute(select(line.line_no, line.email).where(
            line.report_id == report_id, line.line_no.in_(line_numbers[start : start + 500]))).all())
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
        """The addresses POM gets for an invoice in a journal with (or without) "copy per address": each once
        (the same address on two contacts is one mailbox: one e-mail), without the spaces around it."""
        found: dict[str, str] = {}
        for value, flag, position, copy in self.contacts:
            if not missing_flags(RecipientSetup(
                    email=value, email_recipient=flag, address_position=position, first_position=self.first_position,
                    address_copy_per_address=copy, journal_copy_per_address=journal_copy_per_address)):
                found.setdefault(email_key(value), value.strip())
        return list(found.values())


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
