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

Two ways to the same files: the analysis writes the list from the very rows
it stores, in the same pass (:class:`ActionListWriter`, made final only once
the transaction has committed), and :func:`write_action_list` writes it again
from the database alone (``delivery_diagnosis`` with its sent document,
customer, payment reference and decisive report line), e.g. after a crash
between the commit and the files.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from include.config import reports_dir
from include.files import atomic_writer
from include.finance.bulk import stream_rows
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

HEADER = ("action", "diagnosis", "customer", "invoice", "document_id", "recipient", "email_address", "postal_address",
          "attempts", "last_attempt", "last_status", "pom_message", "note", "what_to_do")
DELIVERED_HEADER = ("customer", "invoice", "document_id", "recipient", "email_address", "postal_address", "attempts",
                    "delivered_at", "note")
HTML_HEADER = ("customer", "invoice", "recipient", "e-mail address", "diagnosis", "last attempt", "POM's message",
               "what to do")
ACTION_CSV = "action-list.csv"
DELIVERED_CSV = "delivered.csv"
DELIVERED_CHUNK = 10_000
HTML_ROWS = {"none": 200}  # per action in index.html; the others show up to 2 000 (the CSV has every row)
HTML_DEFAULT_ROWS = 2_000
_SPECIAL = re.compile('[;"\r\n]')


@dataclass
class ActionList:
    folder: str
    rows: int
    summary: dict[str, int]

    @property
    def html(self) -> str:
        return str(Path(self.folder) / "index.html")

    @property
    def csv(self) -> str:
        return str(Path(self.folder) / ACTION_CSV)

    @property
    def delivered_csv(self) -> str:
        return str(Path(self.folder) / DELIVERED_CSV)


def folder_for(batch: str) -> Path:
    return reports_dir() / "pom_delivery" / (re.sub(r"[^A-Za-z0-9._-]+", "-", batch).strip("-.") or "batch")


def customer_name(first: str | None, last: str | None) -> str | None:
    return (f"{first} {last}" if first and last else (last or first or None))


class _Times:
    """Times (aware datetimes, or SQLite's text in UTC) as (datetime, Brussels wall-clock text), each value once."""

    def __init__(self) -> None:
        self.cache: dict[Any, tuple[datetime, str]] = {}

    def __call__(self, value: Any) -> tuple[datetime | None, str]:
        if value is None:
            return None, ""
        found = self.cache.get(value)
        if found is None:
            moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
            if len(self.cache) > 100_000:
                self.cache.clear()
            found = self.cache[value] = (moment, local_time(moment))
        return found


class ActionListWriter:
    """The files of one batch's action list, written row by row, each action group to its own part.

    :meth:`finish` joins the parts in action order into ``action-list.csv``
    (atomically), puts ``delivered.csv`` in place and writes the summary and
    the HTML; :meth:`abort` leaves nothing behind. Rows must come in the
    order they were stored.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".part"))
        self._files = {action: (self._tmp / f"{action}.csv").open("w", encoding="utf-8", newline="")
                       for action in ACTIONS}
        # Delivered rows are a file of their own, written in place (they are most of a report).
        self._files["none"].write("\ufeff" + ";".join(DELIVERED_HEADER) + "\r\n")
        self._writers = {action: csv.writer(handle, delimiter=";", lineterminator="\r\n").writerow
                         for action, handle in self._files.items()}
        self.tables = {action: Table(title, HTML_HEADER, csv_name=DELIVERED_CSV if action == "none" else ACTION_CSV)
                       for action, title in ACTIONS.items()}
        self._limits = {action: HTML_ROWS.get(action, HTML_DEFAULT_ROWS) for action in ACTIONS}
        self._titles = dict(ACTIONS)
        self._labels = {code: label for code, (_, label, _) in DIAGNOSES.items()}
        self._todo: dict[tuple[str, str | None, Any], str] = {}
        self.times = _Times()
        self.rows = 0
        self._delivered_todo = what_to_do("delivered")
        # Delivered rows waiting to be written: (customer, invoice, document id, recipient, email, address,
        # attempts, delivered at, note).
        self.delivered: list[tuple[Any, ...]] = []

    def add(self, action: str, diagnosis: str, customer: str | None, invoice: str | None, document_id: str,
            recipient: str | None, email: str | None, address: str | None, attempts: int, last_at: Any,
            status: str | None, message: str | None, note: str | None, detail: str | None, retry_until: Any) -> None:
        if action == "none":
            self._delivered(customer, invoice, document_id, recipient, email, address, attempts, last_at, note)
            return
        until = self.times(retry_until)[0] if retry_until is not None else None
        key = (diagnosis, detail, until)
        text = self._todo.get(key)
        if text is None:
            if len(self._todo) > 100_000:
                self._todo.clear()
            text = self._todo[key] = what_to_do(diagnosis, detail, until)
        last = self.times(last_at)[1] if last_at is not None else ""
        label = self._labels[diagnosis]
        fields = (self._titles[action], label, customer or "", invoice or "", document_id, recipient or "",
                  email or "", address or "", str(attempts), last, status or "", message or "", note or "", text)
        self._write(action, fields)
        self.rows += 1
        table = self.tables[action]
        table.total_rows += 1
        if len(table.rows) < self._limits[action]:
            table.rows.append([customer or "", invoice or "", recipient or "", email or "", label, last, message or "",
                               text + (f" ({note})" if note else "")])

    def add_delivered(self, customer: str | None, invoice: str | None, document_id: str, recipient: str | None,
                      email: str | None, address: str | None, last_at: Any, note: str | None = None) -> None:
        """:meth:`add` for the bulk of a report: delivered, nothing to do (see :attr:`delivered`)."""
        self.delivered.append((customer, invoice, document_id, recipient, email, address, 1, last_at, note))
        if len(self.delivered) >= DELIVERED_CHUNK:
            self.flush_delivered()

    def _delivered(self, customer: str | None, invoice: str | None, document_id: str, recipient: str | None,
                   email: str | None, address: str | None, attempts: int, last_at: Any, note: str | None) -> None:
        self.delivered.append((customer, invoice, document_id, recipient, email, address, attempts, last_at, note))
        if len(self.delivered) >= DELIVERED_CHUNK:
            self.flush_delivered()

    def flush_delivered(self) -> None:
        """Write the delivered rows gathered so far (a caller on the million-row path appends to
        :attr:`delivered` itself and calls this every :data:`DELIVERED_CHUNK` rows)."""
        rows = self.delivered  # emptied in place at the end: a caller may hold on to the list
        if not rows:
            return
        times = self.times
        write = self._files["none"].write
        special = _SPECIAL.search
        table = self.tables["none"]
        room = self._limits["none"] - len(table.rows)
        shown = {last_at: times(last_at)[1] for last_at in {row[7] for row in rows}}  # Brussels time, each once
        # Fields joined with \x1f, rows with \x1e: one search over the whole chunk tells whether any field needs
        # csv's quoting (or holds a separator of ours); then the chunk is written as it is, else row by row.
        joined = [f"{customer or ''}\x1f{invoice or ''}\x1f{document_id}\x1f{recipient or ''}\x1f{email or ''}"
                  f"\x1f{address or ''}\x1f{attempts}\x1f{shown[last_at]}"
                  f"\x1f{note or ''}"
                  for customer, invoice, document_id, recipient, email, address, attempts, last_at, note in rows]
        body = "\x1e".join(joined)
        if not special(body) and body.count("\x1f") == 8 * len(rows) and body.count("\x1e") == len(rows) - 1:
            write(body.replace("\x1f", ";").replace("\x1e", "\r\n") + "\r\n")
        else:
            lines = []
            for row, text in zip(rows, joined):
                if special(text) or text.count("\x1f") != 8 or "\x1e" in text:
                    write("".join(lines))
                    lines = []
                    customer, invoice, document_id, recipient, email, address, attempts, last_at, note = row
                    self._writers["none"]((customer or "", invoice or "", document_id, recipient or "", email or "",
                                           address or "", str(attempts), shown[last_at], note or ""))
                else:
                    lines.append(text.replace("\x1f", ";") + "\r\n")
            write("".join(lines))
        for customer, invoice, document_id, recipient, email, address, attempts, last_at, note in rows[:max(room, 0)]:
            table.rows.append([customer or "", invoice or "", recipient or "", email or "",
                               self._labels["delivered"], shown[last_at], "",
                               self._delivered_todo + (f" ({note})" if note else "")])
        self.rows += len(rows)
        table.total_rows += len(rows)
        rows.clear()

    def _write(self, action: str, fields: tuple[str, ...]) -> None:
        # csv's writer looks at every character; most rows need no quoting, which one search tells.
        joined = "\x1f".join(fields)
        if _SPECIAL.search(joined) or joined.count("\x1f") != len(fields) - 1:
            self._writers[action](fields)
        else:
            self._files[action].write(joined.replace("\x1f", ";") + "\r\n")

    def finish(self, report: DeliveryReport) -> ActionList:
        self.flush_delivered()
        self._files["none"].flush()
        os.fsync(self._files["none"].fileno())
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
            delivered = self._tmp / "none.csv"
            delivered.chmod(0o644)
            os.replace(delivered, self.folder / DELIVERED_CSV)
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
                ("attempts from", self.times(report.first_attempt_at)[1] or "-"),
                ("attempts until", self.times(report.last_attempt_at)[1] or "-"),
                ("48-hour rule as of", self.times(report.as_of)[1]), ("analysed by", report.analysed_by),
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


def write_action_list(session: Session, report_id: int, folder: Path | None = None) -> ActionList:
    """The action list of a stored report, from the database alone (the same files as the analysis wrote)."""
    report = session.get(DeliveryReport, report_id)
    if report is None:
        raise ValueError(f"no delivery report {report_id}")
    writer = ActionListWriter(folder or folder_for(report.batch))
    d, line = DeliveryDiagnosis, DeliveryReportLine
    try:
        for action in ACTIONS:
            query = (
                select(d.diagnosis, EndUser.first_name, EndUser.last_name, PaymentReference.invoice_number,
                       PaymentReference.loi, d.document_id, line.recipient_name, d.email, d.address_label, d.attempts,
                       line.attempted_at, line.status, line.description, d.note, d.detail, d.retry_until)
                .outerjoin(SentDocument, SentDocument.id == d.sent_document_id)
                .outerjoin(EndUser, EndUser.id == SentDocument.end_user_id)
                .outerjoin(PaymentReference, PaymentReference.id == SentDocument.payment_reference_id)
                .outerjoin(line, and_(line.report_id == d.report_id, line.line_no == d.last_line_no))
                .where(d.report_id == report_id, d.action == action)
                .order_by(d.id)
            )
            for (diagnosis, first, last, invoice, loi, document_id, recipient, email, address, attempts, last_at,
                 status, message, note, detail, retry_until) in stream_rows(session, query):
                writer.add(action, diagnosis, customer_name(first, last), invoice or loi, document_id, recipient, email,
                           address, attempts, last_at, status, message, note, detail, retry_until)
    except BaseException:
        writer.abort()
        raise
    return writer.finish(report)
