"""The overview of a day's printing (seed 004, 2.3.4.1 "Overzicht van het drukwerk").

For one print day: per financial system, payment reference type and sales
journal, how many invoices were made and for what total, split by channel
(e-mail, paper, both, none); every invoice with its file and financial
system; and one PDF holding every paper invoice of the day (paper and both)
for the print room, in document order. The seed calls the day's printing up
"binnen een bepaalde basisinstelling": institutions sharing Innen keep their
own financial system, so both lists name it (in their last column) and an
institution filters on it.
That PDF is laid out for printing on both sides, as mailings are printed: an
invoice of an odd number of pages is followed by a blank page, so that the
next patron's invoice starts on a sheet of its own and never on the back of
someone else's.
Everything comes from the ``invoice`` table, so running it again gives the
same files; invoices withdrawn since are left out.
"""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import pypdf
from sqlalchemy import select
from sqlalchemy.orm import Session

from include.config import invoices_dir, reports_dir
from include.files import atomic_write
from include.finance.models import (
    EndUser,
    FinancialSystem,
    Invoice,
    PaymentReference,
    PaymentReferenceType,
    SalesJournal,
)
from include.finance.money import ZERO
from include.reports import Table, write_csv, write_html
from include.storage import Location

PAPER = ("paper", "both")


@dataclass(frozen=True)
class Overview:
    folder: Path
    invoices: int
    paper: int
    print_pdf: Path | None


def folder_for(day: date) -> Path:
    return reports_dir() / "invoice_run" / day.isoformat()


def write_print_overview(session: Session, day: date) -> Overview:
    rows = session.execute(
        select(Invoice.document_id, Invoice.channel, Invoice.amount, Invoice.pages, Invoice.file_path,
               PaymentReference.loi, PaymentReferenceType.code.label("type_code"), SalesJournal.code.label("journal"),
               EndUser.first_name, EndUser.last_name, FinancialSystem.code.label("system"))
        .join(PaymentReference, PaymentReference.id == Invoice.payment_reference_id)
        .join(FinancialSystem, FinancialSystem.id == PaymentReference.financial_system_id)
        .join(PaymentReferenceType, PaymentReferenceType.id == PaymentReference.type_id)
        .join(EndUser, EndUser.id == PaymentReference.end_user_id)
        .outerjoin(SalesJournal, SalesJournal.payment_reference_type_id == PaymentReferenceType.id)
        .where(Invoice.print_day == day, Invoice.withdrawn_at.is_(None))
        .order_by(Invoice.document_id)
    ).all()
    folder = folder_for(day)
    groups: dict[tuple[str, str, str], dict[str, list[Decimal]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        groups[(row.system, row.type_code, row.journal or "")][row.channel].append(row.amount)
    # the financial system comes last: the columns before it keep the places they had before it was added
    header = ("reference_type", "sales_journal", "channel", "invoices", "total", "financial_system")
    summary_rows = [
        [type_code, journal, channel, len(amounts), sum(amounts, ZERO), system]
        for (system, type_code, journal), by_channel in sorted(groups.items())
        for channel, amounts in sorted(by_channel.items())
    ]
    write_csv(folder / "overview.csv", header, summary_rows)
    detail_header = ("document_id", "reference", "customer", "reference_type", "sales_journal", "channel", "amount",
                     "pages", "file", "financial_system")
    details = [[document, loi, " ".join(p for p in (first, last) if p), type_code, journal or "", channel, amount,
                pages, path, system]
               for document, channel, amount, pages, path, loi, type_code, journal, first, last, system in rows]
    write_csv(folder / "invoices.csv", detail_header, details)
    paper = [invoices_dir() / row.file_path for row in rows if row.channel in PAPER]
    print_pdf = folder / "print.pdf" if paper else None
    if print_pdf is not None:
        atomic_write(print_pdf, combined_pdf(paper))
    else:
        (folder / "print.pdf").unlink(missing_ok=True)
    per_type = Table("Per financial system, type, sales journal and channel", header, csv_name="overview.csv")
    for row in summary_rows:
        per_type.add(row)
    listing = Table("Invoices", detail_header, csv_name="invoices.csv")
    for row in details:
        listing.add(row)
    write_html(folder / "index.html", f"Printing of {day.isoformat()}", [per_type, listing], summary=[
        ("invoices", len(rows)), ("total", sum((row.amount for row in rows), ZERO)),
        ("paper invoices (print.pdf)", len(paper)), ("e-mailed only", sum(1 for row in rows if row.channel == "email")),
        ("no channel (no address, no e-mail)", sum(1 for row in rows if row.channel == "none")),
    ])
    return Overview(folder, len(rows), len(paper), print_pdf)


def blank_page_after(pages: list[int]) -> list[bool]:
    """For documents of ``pages`` pages printed one after the other on both sides of the paper: whether each needs a
    blank page after it, so that the next one starts on the front of a new sheet (none after the last).

    >>> blank_page_after([1, 2, 3, 1])
    [True, False, True, False]
    >>> blank_page_after([])
    []
    """
    return [count % 2 == 1 and index < len(pages) - 1 for index, count in enumerate(pages)]


def combined_pdf(files: list[Location]) -> bytes:
    """One PDF of ``files`` in order, for two-sided printing (:func:`blank_page_after`); pypdf writes no random
    document id, so the bytes repeat."""
    writer = pypdf.PdfWriter()
    counts: list[int] = []
    for path in files:
        before = len(writer.pages)
        writer.append(io.BytesIO(path.read_bytes()))
        counts.append(len(writer.pages) - before)
    pads = blank_page_after(counts)
    for index in sorted((i for i, pad in enumerate(pads) if pad), reverse=True):
        # the blank back takes the size of the page it is the back of
        end = sum(counts[: index + 1])
        box = writer.pages[end - 1].mediabox
        writer.insert_blank_page(width=box.width, height=box.height, index=end)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
