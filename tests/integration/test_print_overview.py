"""The day's print overview (seed 2.3.4.1): the printing of a day, called up per institution (financial system).

The invoices are recorded by hand here (e-mail and no-channel ones, which have no file to print), so the test
reads only what the overview makes of the ``invoice`` table. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import csv
from datetime import date, datetime, timezone
from pathlib import Path

from include.finance.db import transaction
from include.finance.models import Invoice
from include.invoices.print_overview import write_print_overview
from tests.factories import make_institution, make_reference, make_user

DAY = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 2, 30, tzinfo=timezone.utc)


def _invoice(reference, document: str, channel: str, day: date = DAY) -> Invoice:  # type: ignore[no-untyped-def]
    return Invoice(
        payment_reference_id=reference.id, version=1, document_id=document, template="default.nl.typ", language="nl",
        channel=channel, amount=reference.open_amount, file_path=f"{day.isoformat()}/{document}.pdf", sha256="0" * 64,
        pages=1, print_day=day, made_at=NOW, made_by="test",
    )


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=";"))


def test_the_overview_names_the_financial_system_of_every_invoice(engine, var_dir: Path) -> None:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        bib, ska = make_institution(session, "BIB"), make_institution(session, "SKA")
        user = make_user(session)
        library = [make_reference(session, bib, user, (amount,), number=n) for n, amount in ((1, "10.00"), (2, "2.50"))]
        academy = make_reference(session, ska, user, ("40.00",), number=3)
        yesterday = make_reference(session, ska, user, ("7.00",), number=4)
        session.add_all([
            _invoice(library[0], "BIB-1", "email"), _invoice(library[1], "BIB-2", "email"),
            _invoice(academy, "SKA-1", "email"), _invoice(yesterday, "SKA-0", "none", date(2026, 11, 19)),
        ])

    with transaction(engine, readonly=True) as session:
        overview = write_print_overview(session, DAY)

    assert overview.invoices == 3 and overview.paper == 0 and overview.print_pdf is None
    summary = _rows(overview.folder / "overview.csv")
    assert [(r["financial_system"], r["reference_type"], r["channel"], r["invoices"], r["total"]) for r in summary] == [
        ("BIB", "DOM-BIB", "email", "2", "12.50"),
        ("SKA", "DOM-SKA", "email", "1", "40.00"),
    ]
    listed = _rows(overview.folder / "invoices.csv")
    assert [(r["financial_system"], r["document_id"], r["reference"]) for r in listed] == [
        ("BIB", "BIB-1", "fp:BIB:1"), ("BIB", "BIB-2", "fp:BIB:2"), ("SKA", "SKA-1", "fp:SKA:3"),
    ]
