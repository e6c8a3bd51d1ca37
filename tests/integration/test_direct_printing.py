"""Invoices of ``direct`` types (seed 004, 2.5.2: "bij opmaak van het betalingskenmerk er onmiddellijk een bestand
wordt aangemaakt, dat bij een volgende run van stylist tot drukwerk wordt omgezet") reach the print room.

They are made at once, when the reference is sealed, during a day whose nightly ``invoice_run`` (02:30) has run
already: they belong to the next day's printing, and the next night's run prints them, once. Everything goes
through the DAGs with ``dag.test()`` on SQLite; the print runs are asked for their day as a person would ask.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pypdf
import pytest
from sqlalchemy import select

from include import airflow_roles
from include.finance.db import get_engine, transaction
from include.finance.models import Address, Invoice, PaymentReference, PaymentReferenceType
from include.runtime import LOCAL_ZONE
from tests.dag_bag import parsed_dag
from tests.factories import add_debt, make_institution, make_reference, make_user

DAY = date(2026, 11, 20)  # the day the references are made and sealed, a Friday
NEXT, AFTER = DAY + timedelta(days=1), DAY + timedelta(days=2)


def _at(day: date, hour: int, minute: int = 0) -> str:
    return datetime.combine(day, time(hour, minute), tzinfo=LOCAL_ZONE).isoformat()


def _succeeded(run) -> dict[str, str]:  # type: ignore[no-untyped-def]
    states = {ti.task_id: str(ti.state).rsplit(".", 1)[-1] for ti in run.get_task_instances()}
    assert str(run.state).endswith("success"), states
    return states


def _page_texts(pdf: bytes) -> list[str]:
    """The text of each page that has any (a blank back for two-sided printing has none)."""
    texts = [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages]
    return [text for text in texts if text.strip()]


def _listed(folder: Path) -> list[str]:
    with (folder / "invoices.csv").open(encoding="utf-8-sig", newline="") as handle:
        return [row["document_id"] for row in csv.DictReader(handle, delimiter=";")]


@pytest.fixture
def books(sqlite_url: str, var_dir: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: None):  # type: ignore[no-untyped-def]
    """A library with a nightly type (DOM-BIB) and a direct one (DIRECT-BIB), a patron with a home address and no
    e-mail (paper), a sealed DOM-BIB reference waiting for the night and open debt for the direct type."""
    monkeypatch.setenv("INNEN_DB_URL", sqlite_url)
    monkeypatch.setattr(airflow_roles, "run_roles", lambda context: ("fiona", frozenset({"finance"})))
    engine = get_engine(sqlite_url)
    with transaction(engine) as session:
        bib = make_institution(session)
        session.add(PaymentReferenceType(code="DIRECT-BIB", name="Direct", direct_print=True,
                                         invoice_counter="inv-direct", invoice_prefix="D-"))
        patron = make_user(session)
        session.add(Address(end_user_id=patron.id, position=1, address_type="thuis", street="Naamsestraat",
                            house_number="12", postal_code="3000", city="Leuven"))
        nightly = make_reference(session, bib, patron, ("12.50",), number=1, loi="fp:BIB:900")
        nightly.invoice_number = "BIB-1"
        lines = [add_debt(session, bib, patron, "LID", "25.00").id, add_debt(session, bib, patron, "LID", "7.00").id]
        eloi = patron.eloi
    yield engine, eloi, lines
    engine.dispose()


def _invoices(engine) -> list[tuple[int, str, str, date, str]]:  # type: ignore[no-untyped-def]
    with transaction(engine, readonly=True) as session:
        return [tuple(row) for row in session.execute(  # type: ignore[misc]
            select(Invoice.id, Invoice.document_id, Invoice.channel, Invoice.print_day, Invoice.sha256)
            .where(Invoice.withdrawn_at.is_(None)).order_by(Invoice.document_id))]


def _print_run(day: date, var_dir: Path) -> Path:
    _succeeded(parsed_dag("invoice_run").test(run_conf={"run_date": day.isoformat(), "as_of": _at(day, 2, 30)}))
    return var_dir / "reports" / "invoice_run" / day.isoformat()


def test_an_invoice_made_at_once_is_printed_by_the_next_nights_run_once(books, var_dir: Path) -> None:  # type: ignore[no-untyped-def]
    engine, patron, (created_line, sealed_line) = books
    # Day D, 14:00 in Brussels: one reference made and sealed at once, another made as a draft and sealed later.
    created = parsed_dag("payment_reference_create").test(run_conf={
        "end_user": patron, "reference_type": "DIRECT-BIB", "debt_lines": [created_line], "as_of": _at(DAY, 14)})
    assert _succeeded(created) == {"create": "success", "direct_invoice": "success"}
    draft = parsed_dag("payment_reference_create").test(run_conf={
        "end_user": patron, "reference_type": "DIRECT-BIB", "debt_lines": [sealed_line], "seal": False,
        "as_of": _at(DAY, 14, 5)})
    assert _succeeded(draft)["direct_invoice"] == "skipped"
    with transaction(engine, readonly=True) as session:
        draft_loi = session.scalar(select(PaymentReference.loi).where(PaymentReference.status == "draft"))
    sealed = parsed_dag("payment_reference_seal").test(run_conf={
        "references": [draft_loi], "action": "seal", "as_of": _at(DAY, 16)})
    assert _succeeded(sealed)["direct_invoice"] == "success"
    direct = _invoices(engine)
    assert [(document, channel, day) for _id, document, channel, day, _sha in direct] == [
        ("D-1", "paper", NEXT), ("D-2", "paper", NEXT)]  # the next day's printing, in its folder
    assert all((var_dir / "invoices" / NEXT.isoformat() / f"{document}.pdf").is_file() for _, document, *_ in direct)

    # D's print run (02:30, or again by hand after the sealing): the nightly invoice, not the direct ones.
    folder = _print_run(DAY, var_dir)
    invoices = _invoices(engine)
    nightly = [row for row in invoices if row[1] == "BIB-1"]
    assert [row[3] for row in nightly] == [DAY] and len(invoices) == 3
    assert _listed(folder) == ["BIB-1"]
    printed = _page_texts((folder / "print.pdf").read_bytes())
    assert printed == _page_texts((var_dir / "invoices" / DAY.isoformat() / "BIB-1.pdf").read_bytes())
    assert not any("D-1" in text or "D-2" in text for text in printed)

    # D+1's print run: the direct invoices as they are (same rows, same files), each in print.pdf once.
    folder = _print_run(NEXT, var_dir)
    assert _invoices(engine) == invoices
    assert _listed(folder) == ["D-1", "D-2"]
    expected = [text for document in ("D-1", "D-2")
                for text in _page_texts((var_dir / "invoices" / NEXT.isoformat() / f"{document}.pdf").read_bytes())]
    printed = _page_texts((folder / "print.pdf").read_bytes())
    assert printed == expected and len(printed) == 2
    assert [sum(document in text for text in printed) for document in ("D-1", "D-2")] == [1, 1]

    # D+2: nothing of theirs printed again.
    folder = _print_run(AFTER, var_dir)
    assert _invoices(engine) == invoices
    assert _listed(folder) == [] and not (folder / "print.pdf").exists()

