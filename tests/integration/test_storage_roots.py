"""Innen's files on another storage root (``INNEN_STORAGE_URL``): a second local folder, and an object store.

Each test runs the real pipeline (statement import, bank file approval and
release, delivery report analysis, invoices and their printing overview,
the reports a run's page reads) with the storage root moved away from this
machine's ``var/``, and checks that everything lands under the root, that
inbox files move to the archive or the quarantine, and that ``var/`` holds
nothing but the database. The object store is fsspec's memory store attached
to Airflow's ObjectStoragePath, as a provider attaches ``s3``.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from airflow.sdk.io import attach
from fsspec.implementations.memory import MemoryFileSystem
from sqlalchemy import Engine, select, update

from include.config import storage_root
from include.files import atomic_write, sha256_of
from include.finance.db import create_schema, get_engine, transaction
from include.finance.models import BankEntry, BankStatement, CollectionRun, Invoice
from include.housekeeping import housekeep
from include.invoices.mailing import read_invoice_pdf
from include.invoices.making import make_invoices
from include.invoices.print_overview import write_print_overview
from include.pom.delivery_files import analyse_report_file, pending_reports
from include.run_reports import report_file
from include.sepa.bank_file_approval import file_to_view, release, stage_run
from include.sepa.camt import CamtRefused
from include.sepa.statement_files import import_statement_file, pending_files
from include.storage import is_local, location
from tests.integration.test_delivery_report_store import NOW as REPORT_NOW
from tests.integration.test_delivery_report_store import build_batch, report_lines
from tests.integration.test_export import _prepare
from tests.integration.test_invoices import DAY, NOW, _setup

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "iso20022"
STATEMENT = SAMPLES / "viafintech-camt_parser__053_valid_example.xml"

attach("memory", fs=MemoryFileSystem())


@pytest.fixture(params=["second local root", "object store"])
def root(request: pytest.FixtureRequest, tmp_path: Path, var_dir: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    url = str(tmp_path / "shared") if request.param == "second local root" else f"memory://innen-{uuid.uuid4().hex}"
    monkeypatch.setenv("INNEN_STORAGE_URL", url)
    assert str(storage_root()) == url
    return location(url)


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    url = f"sqlite:///{tmp_path / 'db' / 'innen.sqlite'}"
    monkeypatch.setenv("INNEN_DB_URL", url)
    engine = get_engine(url)
    create_schema(engine)
    return engine


def _files(folder) -> list[str]:  # type: ignore[no-untyped-def]
    """Every file under ``folder``, relative, hidden parts included (none may be left)."""
    if not folder.exists():
        return []
    found = []
    for path in folder.rglob("*"):
        if path.is_file():
            found.append(str(path.relative_to(folder)))
    return sorted(found)


def _nothing_on_this_machine(var_dir: Path) -> None:
    assert not var_dir.exists() or _files(var_dir) == []


def test_statements_are_imported_from_the_root_and_archived_or_quarantined_there(root, db, var_dir) -> None:  # type: ignore[no-untyped-def]
    atomic_write(root / "inbox" / "camt053" / "statement.xml", STATEMENT.read_bytes())
    atomic_write(root / "inbox" / "camt053" / "broken.xml", b"<Document><unclosed></Document>")
    assert [p.name for p in pending_files()] == ["broken.xml", "statement.xml"]

    with pytest.raises(CamtRefused):
        import_statement_file(pending_files()[0], "test", engine=db)
    result = import_statement_file(str(pending_files()[0]), "test", engine=db)  # as the DAG passes it: a string

    assert result["archived"] == str(root / "archive" / "statement.xml")
    assert (root / "archive" / "statement.xml").read_bytes() == STATEMENT.read_bytes()
    assert result["sha256"] == sha256_of(root / "archive" / "statement.xml")
    assert "broken.xml" in (root / "quarantine" / "broken.xml.reason.txt").read_text()
    assert pending_files() == []
    with transaction(db, readonly=True) as session:
        assert len(session.scalars(select(BankEntry)).all()) == result["statements"][0]["lines"] > 0
    assert result["control_lists"] and all(page.startswith(str(root / "reports" / "camt053")) for page in result["control_lists"])
    relative = result["control_lists"][0][len(str(root / "reports")) + 1:]
    assert "<html" in report_file(relative).read_text(encoding="utf-8").lower()  # what a run's page serves
    assert all(not name.split("/")[-1].startswith(".") for name in _files(root))
    _nothing_on_this_machine(var_dir)


def test_a_bank_file_waits_in_staging_and_is_released_whole_to_the_outbox(root, db, var_dir) -> None:  # type: ignore[no-untyped-def]
    loi = _prepare(db, approval_required=True)
    staged = stage_run(loi, "pain_export", requested_by="operator", engine=db)
    assert staged["approval_required"] is True
    waiting = file_to_view(staged["approval_id"], engine=db)
    assert str(waiting).startswith(str(root / "staging")) and _files(root / "outbox") == []
    data = waiting.read_bytes()

    released = release(staged["approval_id"], "finance", "pain_export", engine=db)

    outbox = root / "outbox"
    assert _files(outbox) == sorted([waiting.name, waiting.name + ".sha256"])
    assert (outbox / waiting.name).read_bytes() == data and not waiting.exists()
    assert (outbox / f"{waiting.name}.sha256").read_text() == f"{released['sha256']}  {waiting.name}\n"
    with transaction(db, readonly=True) as session:
        run = session.scalars(select(CollectionRun).where(CollectionRun.loi == loi)).one()
        assert (run.status, run.file_path) == ("exported", str(outbox / waiting.name))
    assert file_to_view(staged["approval_id"], engine=db).read_bytes() == data
    _nothing_on_this_machine(var_dir)


def test_a_delivery_report_is_analysed_from_the_root_with_its_action_list_there(root, db, var_dir) -> None:  # type: ignore[no-untyped-def]
    build_batch(db)
    atomic_write(root / "inbox" / "pom_reports" / "pom-report.csv", ("\n".join(report_lines()) + "\n").encode())
    (path,) = pending_reports()

    result = analyse_report_file(path, "test", db, now=REPORT_NOW)

    assert result["archived"] == str(root / "archive" / "pom_reports" / "pom-report.csv")
    assert pending_reports() == []
    (lists,) = result["action_lists"]
    folder = root / "reports" / "pom_delivery" / "B-2026-03-16"
    assert (lists["html"], lists["csv"]) == (str(folder / "index.html"), str(folder / "action-list.csv"))
    assert _files(folder) == ["action-list.csv", "delivered.csv", "index.html", "summary.csv"]
    delivered = (folder / "delivered.csv").read_text(encoding="utf-8-sig").splitlines()
    assert len(delivered) == 1 + 6 and any("a@example.be" in line for line in delivered)
    assert "Bert" in (folder / "action-list.csv").read_text(encoding="utf-8-sig")
    assert not is_local(root) or not any(p.name.startswith(".") for p in folder.parent.iterdir())
    _nothing_on_this_machine(var_dir)


def test_invoices_and_the_print_overview_are_written_to_the_root_and_read_back(root, db, var_dir) -> None:  # type: ignore[no-untyped-def]
    ref_id = _setup(db)

    run = make_invoices(db, "test", NOW, print_day=DAY)

    assert run.counts["made"] == 1
    with transaction(db, readonly=True) as session:
        invoice = session.scalars(select(Invoice).where(Invoice.payment_reference_id == ref_id)).one()
    path = root / "invoices" / invoice.file_path
    assert invoice.file_path == f"{DAY.isoformat()}/BIB-000123.pdf"
    pdf = read_invoice_pdf(path, invoice.sha256)
    assert pdf.startswith(b"%PDF-")
    with transaction(db) as session:
        overview = write_print_overview(session, DAY)
    assert str(overview.folder) == str(root / "reports" / "invoice_run" / DAY.isoformat())
    assert (overview.invoices, overview.paper) == (1, 1) and (root / "reports" / "invoice_run" / DAY.isoformat() / "print.pdf").exists()
    _nothing_on_this_machine(var_dir)


def test_housekeeping_removes_expired_files_from_the_root_and_keeps_fresh_ones(root, db, var_dir) -> None:  # type: ignore[no-untyped-def]
    atomic_write(root / "inbox" / "camt053" / "statement.xml", STATEMENT.read_bytes())
    imported = import_statement_file(pending_files()[0], "test", engine=db)
    with transaction(db) as session:  # imported long ago: its files are past keeping, the stray one is not
        session.execute(update(BankStatement).values(imported_at=datetime(2014, 1, 6, tzinfo=timezone.utc)))
    fresh = root / "outbox" / "stray.xml"
    atomic_write(fresh, b"<x/>")
    archived = location(imported["archived"])
    control_list = location(imported["control_lists"][0]).parent

    dry = housekeep(date(2027, 1, 4), "test", dry_run=True, engine=db)
    assert {str(item.path) for item in dry.files} == {str(archived), str(control_list)}
    assert archived.exists() and control_list.exists()

    done = housekeep(date(2027, 1, 4), "test", dry_run=False, engine=db)

    assert not archived.exists() and not control_list.exists() and fresh.exists()
    assert {str(item.path) for item in done.files} == {str(archived), str(control_list)} and not done.errors
    assert str(done.report).startswith(str(root / "reports" / "housekeeping"))
    _nothing_on_this_machine(var_dir)
