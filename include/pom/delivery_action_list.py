"""The action list of a delivery report, for finance: every invoice × recipient, grouped by what to do.

Written to ``var/reports/pom_delivery/<batch>/``:

* ``action-list.csv`` (``;``, UTF-8 with BOM): every diagnosis that asks
  something of finance, grouped by action in the order finance works
  through them (fix the customer record, correct the address, send another
  way, contact POM support, wait), with customer, invoice, document id,
  recipient, e-mail address, postal address (for a contact on a later
  address), attempts, POM's last status and message, and what to do;
* ``delivered.csv``: every delivered invoice × recipient (customer, invoice,
  document id, recipient, e-mail and postal address, attempts, when), most
  of a report: apart, so that the action list stays short enough for a
  spreadsheet, and so that a parent's "it never arrived" can be looked up
  (then: a spam filter, see the safe senders in ``index.html``);
* ``summary.csv``: the count per diagnosis;
* ``index.html``: the summary, one table per action (the first rows; the
  CSV has them all), and seed 003's steps for putting POM on a mail
  program's safe senders (for a delivered invoice the recipient cannot find).

:func:`write_action_list` writes them from the database alone
(``delivery_diagnosis`` with its sent document, customer, payment reference
and decisive report line): once the analysis has committed, and again
whenever asked (e.g. after a crash between the commit and the files).
"""

from __future__ import annotations

import csv
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from typing import Any, NamedTuple

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from include.config import reports_dir
from include.files import atomic_writer, put_in_place, scratch_folder
from include.finance.bulk import stream_chunks
from include.finance.models import (
    DeliveryDiagnosis,
    DeliveryReport,
    DeliveryReportLine,
    EndUser,
    PaymentReference,
    SentDocument,
)
from include.pom.delivery_diagnosis import ACTIONS, DIAGNOSES, SAFE_SENDERS, local_time, what_to_do
from include.reports import Table, write_csv, write_html
from include.storage import Location

HEADER = ("action", "diagnosis", "customer", "invoice", "document_id", "recipient", "email_address", "postal_address",
          "attempts", "last_attempt", "last_status", "pom_message", "note", "what_to_do")
HTML_HEADER = ("customer", "invoice", "recipient", "e-mail address", "diagnosis", "last attempt", "POM's message",
               "what to do")
ACTION_CSV = "action-list.csv"
DELIVERED_CSV = "delivered.csv"
HTML_ROWS = {"none": 200}  # per action in index.html; the others show up to 2 000 (the CSV has every row)
HTML_DEFAULT_ROWS = 2_000


class ActionListRow(NamedTuple):
    """One invoice × recipient as the action list shows it (``last_at`` and ``retry_until``: as stored)."""

    action: str
    diagnosis: str
    customer: str | None
    invoice: str | None
    document_id: str
    recipient: str | None  # the name on POM's decisive line
    email: str | None
    address: str | None  # the postal address of a contact on a later address
    attempts: int
    last_at: Any  # the decisive attempt's time: aware, or SQLite's text in UTC; None without attempts
    status: str | None
    message: str | None
    note: str | None
    detail: str | None
    retry_until: Any


class DeliveredRow(NamedTuple):
    """A row of ``delivered.csv`` (its header: the field names)."""

    customer: str | None
    invoice: str | None
    document_id: str
    recipient: str | None
    email_address: str | None
    postal_address: str | None
    attempts: int
    delivered_at: str  # Brussels wall-clock time
    note: str | None


DELIVERED_HEADER = DeliveredRow._fields


@dataclass
class ActionList:
    folder: str
    rows: int
    summary: dict[str, int]

    @property
    def html(self) -> str:
        return f"{self.folder}/index.html"

    @property
    def csv(self) -> str:
        return f"{self.folder}/{ACTION_CSV}"

    @property
    def delivered_csv(self) -> str:
        return f"{self.folder}/{DELIVERED_CSV}"


def folder_for(batch: str) -> Location:
    return reports_dir() / "pom_delivery" / (re.sub(r"[^A-Za-z0-9._-]+", "-", batch).strip("-.") or "batch")


def customer_name(first: str | None, last: str | None) -> str | None:
    return (f"{first} {last}" if first and last else (last or first or None))


class _Times:
    """Stored times (aware datetimes, or SQLite's text in UTC) as aware datetimes and as Brussels wall-clock text,
    each distinct value converted once."""

    def __init__(self) -> None:
        self.cache: dict[Any, tuple[datetime, str]] = {}

    def _convert(self, value: Any) -> tuple[datetime, str]:
        found = self.cache.get(value)
        if found is None:
            moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
            if len(self.cache) > 100_000:
                self.cache.clear()
            found = self.cache[value] = (moment, local_time(moment))
        return found

    def moment(self, value: Any) -> datetime | None:
        return None if value is None else self._convert(value)[0]

    def local(self, value: Any) -> str:
        found = self.cache.get(value)
        if found is None:
            return "" if value is None else self._convert(value)[1]
        return found[1]


class ActionListWriter:
    """The files of one batch's action list, written row by row, each action group to its own part.

    :meth:`finish` joins the parts in action order into ``action-list.csv``
    (atomically), puts ``delivered.csv`` in place and writes the summary and
    the HTML; :meth:`abort` leaves nothing behind. Rows must come in the
    order they were stored.
    """

    def __init__(self, folder: Location) -> None:
        self.folder = folder
        self._tmp = scratch_folder(folder)
        self._files = {action: (self._tmp / f"{action}.csv").open("w", encoding="utf-8", newline="")
                       for action in ACTIONS}
        # Delivered rows are a file of their own, written in place (they are most of a report).
        self._files["none"].write("\ufeff")
        self._writers = {action: csv.writer(handle, delimiter=";", lineterminator="\r\n")
                         for action, handle in self._files.items()}
        self._writers["none"].writerow(DELIVERED_HEADER)
        self.tables = {action: Table(title, HTML_HEADER, csv_name=DELIVERED_CSV if action == "none" else ACTION_CSV)
                       for action, title in ACTIONS.items()}
        self._limits = {action: HTML_ROWS.get(action, HTML_DEFAULT_ROWS) for action in ACTIONS}
        self._labels = {code: label for code, (_, label, _) in DIAGNOSES.items()}
        self._todo: dict[tuple[str, str | None, Any], str] = {}
        self._delivered_todo = what_to_do("delivered")
        self.times = _Times()
        self.rows = 0

    def add(self, row: ActionListRow) -> None:
        """One invoice × recipient, in the order it was stored."""
        if row.action == "none":
            self.add_delivered([DeliveredRow(row.customer, row.invoice, row.document_id, row.recipient, row.email,
                                             row.address, row.attempts, self.times.local(row.last_at), row.note)])
            return
        last = self.times.local(row.last_at)
        label = self._labels[row.diagnosis]
        todo = self._what_to_do(row)
        self._writers[row.action].writerow((
            ACTIONS[row.action], label, row.customer, row.invoice, row.document_id, row.recipient, row.email,
            row.address, row.attempts, last, row.status, row.message, row.note, todo))
        if self._room(row.action, 1):
            self._show(row.action, row.customer, row.invoice, row.recipient, row.email, label, last, row.message,
                       todo, row.note)

    def add_delivered(self, rows: list[DeliveredRow]) -> None:
        """Delivered rows (most of a report), in the order they were stored."""
        self._writers["none"].writerows(rows)
        label = self._labels["delivered"]
        for row in rows[:self._room("none", len(rows))]:
            self._show("none", row.customer, row.invoice, row.recipient, row.email_address, label, row.delivered_at,
                       None, self._delivered_todo, row.note)

    def _room(self, action: str, rows: int) -> int:
        """How many of ``rows`` more rows of an action go into index.html; all of them are counted."""
        table = self.tables[action]
        self.rows += rows
        table.total_rows += rows
        return max(self._limits[action] - len(table.rows), 0)

    def _show(self, action: str, customer: str | None, invoice: str | None, recipient: str | None,
              email: str | None, label: str, last: str, message: str | None, todo: str, note: str | None) -> None:
        self.tables[action].rows.append([customer or "", invoice or "", recipient or "", email or "", label, last,
                                         message or "", todo + (f" ({note})" if note else "")])

    def _what_to_do(self, row: ActionListRow) -> str:
        until = self.times.moment(row.retry_until)
        key = (row.diagnosis, row.detail, until)
        text = self._todo.get(key)
        if text is None:
            if len(self._todo) > 100_000:
                self._todo.clear()
            text = self._todo[key] = what_to_do(row.diagnosis, row.detail, until)
        return text

    def finish(self, report: DeliveryReport) -> ActionList:
        for handle in self._files.values():
            handle.close()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with atomic_writer(self.folder / ACTION_CSV) as out:
                out.write(("\ufeff" + ";".join(HEADER) + "\r\n").encode("utf-8"))
                for action in ACTIONS:
                    if action != "none":
                        with (self._tmp / f"{action}.csv").open("rb") as part:
                            shutil.copyfileobj(part, out, 1 << 20)
            put_in_place(self._tmp / "none.csv", self.folder / DELIVERED_CSV)
            summary = dict(report.summary or {})
            write_csv(self.folder / "summary.csv", ("diagnosis", "label", "action", "count"),
                      [(code, label, action, summary.get(code, 0)) for code, (action, label, _) in DIAGNOSES.items()])
            help_table = Table("Delivered but not found: put POM on the recipient's safe senders",
                               ("mail program", "steps"))
            for program, steps in SAFE_SENDERS:
                help_table.add((program, steps))
            facts: list[tuple[str, Any]] = [
                ("batch", report.batch), ("file", report.file_name), ("source", report.source),
                ("encoding", report.encoding), ("report lines (attempts)", report.lines),
                ("invoice × recipient", report.recipients),
                ("attempts from", self.times.local(report.first_attempt_at) or "-"),
                ("attempts until", self.times.local(report.last_attempt_at) or "-"),
                ("48-hour rule as of", self.times.local(report.as_of)), ("analysed by", report.analysed_by),
            ]
            facts += [(label, summary[code]) for code, (_, label, _) in DIAGNOSES.items() if summary.get(code)]
            write_html(self.folder / "index.html", f"POM delivery report — batch {report.batch}",
                       [*self.tables.values(), help_table], summary=facts)
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)
        return ActionList(str(self.folder), self.rows, dict(report.summary or {}))

    def abort(self) -> None:
        for handle in self._files.values():
            handle.close()
        shutil.rmtree(self._tmp, ignore_errors=True)


class _Stored(NamedTuple):
    """A row of :func:`_stored_query`: a stored diagnosis with what the action list shows of it."""

    diagnosis: str
    first_name: str | None
    last_name: str | None
    invoice_number: str | None
    loi: str | None
    document_id: str
    recipient_name: str | None
    email: str | None
    address_label: str | None
    attempts: int
    attempted_at: Any
    status: str | None
    description: str | None
    note: str | None
    detail: str | None
    retry_until: Any


class _StoredDelivered(NamedTuple):
    """:class:`_Stored` of a delivered row: what delivered.csv shows."""

    first_name: str | None
    last_name: str | None
    invoice_number: str | None
    loi: str | None
    document_id: str
    recipient_name: str | None
    email: str | None
    address_label: str | None
    attempts: int
    attempted_at: Any
    note: str | None


def _stored_query(report_id: int, action: str, fields: tuple[str, ...]) -> Any:
    """A report's diagnoses of one action, in the order they were stored, with their customer, invoice and
    decisive line: the columns named in ``fields``."""
    d, line = DeliveryDiagnosis, DeliveryReportLine
    columns: dict[str, Any] = {
        "diagnosis": d.diagnosis, "first_name": EndUser.first_name, "last_name": EndUser.last_name,
        "invoice_number": PaymentReference.invoice_number, "loi": PaymentReference.loi,
        "document_id": d.document_id, "recipient_name": line.recipient_name, "email": d.email,
        "address_label": d.address_label, "attempts": d.attempts, "attempted_at": line.attempted_at,
        "status": line.status, "description": line.description, "note": d.note, "detail": d.detail,
        "retry_until": d.retry_until,
    }
    return (
        select(*(columns[name].label(name) for name in fields))
        .select_from(d)
        .outerjoin(SentDocument, SentDocument.id == d.sent_document_id)
        .outerjoin(EndUser, EndUser.id == SentDocument.end_user_id)
        .outerjoin(PaymentReference, PaymentReference.id == SentDocument.payment_reference_id)
        .outerjoin(line, and_(line.report_id == d.report_id, line.line_no == d.last_line_no))
        .where(d.report_id == report_id, d.action == action)
        .order_by(d.id)
    )


# NamedTuple._make without a Python call per row
_new_stored = partial(tuple.__new__, _Stored)
_new_stored_delivered = partial(tuple.__new__, _StoredDelivered)
_new_delivered = partial(tuple.__new__, DeliveredRow)


def write_action_list(session: Session, report_id: int, folder: Location | None = None) -> ActionList:
    """The action list of a stored report, from the database alone (``folder``: default its batch's)."""
    report = session.get(DeliveryReport, report_id)
    if report is None:
        raise ValueError(f"no delivery report {report_id}")
    writer = ActionListWriter(folder or folder_for(report.batch))
    local = writer.times.local
    try:
        for action in ACTIONS:
            if action == "none":
                for chunk in stream_chunks(session, _stored_query(report_id, action, _StoredDelivered._fields)):
                    writer.add_delivered([_new_delivered((
                        customer_name(row.first_name, row.last_name), row.invoice_number or row.loi, row.document_id,
                        row.recipient_name, row.email, row.address_label, row.attempts, local(row.attempted_at),
                        row.note)) for row in map(_new_stored_delivered, chunk)])
                continue
            for chunk in stream_chunks(session, _stored_query(report_id, action, _Stored._fields)):
                for row in map(_new_stored, chunk):
                    writer.add(ActionListRow(
                        action, row.diagnosis, customer_name(row.first_name, row.last_name),
                        row.invoice_number or row.loi, row.document_id, row.recipient_name, row.email,
                        row.address_label, row.attempts, row.attempted_at, row.status, row.description, row.note,
                        row.detail, row.retry_until))
    except BaseException:
        writer.abort()
        raise
    return writer.finish(report)
