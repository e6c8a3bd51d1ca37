"""Exporting collection runs from the database: formats, checksums, determinism, refusals, audit."""

from __future__ import annotations

import csv
import hashlib
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select

from include.errors import ExportRejected
from include.finance.db import transaction
from include.finance.models import AuditLog, BankHub, Collection, CollectionRun
from include.sepa.export import export_collection_run, runs_to_export
from include.sepa.mandate_execution import execute_mandates
from include.sepa.xsd import XSD_DIR
from tests.factories import add_debt, make_institution, make_mandate, make_user

RUN = date(2026, 11, 20)


def _prepare(engine, **hub_settings) -> str:  # type: ignore[no-untyped-def]
    """Three collections (FRST, RCUR, OOFF) in one ready run; returns the run's identifier."""
    with transaction(engine) as session:
        inst = make_institution(session, **hub_settings)
        for n, fields in enumerate(({}, {"last_collection_date": date(2026, 10, 21)}, {"one_off": True})):
            owner = make_user(session, "Noémie", f"Vandenbroucke-{n}")
            make_mandate(session, inst, owner, first=date(2026, 11, 21), **fields)
            add_debt(session, inst, owner, "LID", f"{10 + n}.25")
        execute_mandates(session, RUN, "test")
        return session.scalars(select(CollectionRun.loi)).one()


def _run(engine, loi):  # type: ignore[no-untyped-def]
    with transaction(engine, readonly=True) as session:
        return session.scalars(select(CollectionRun).where(CollectionRun.loi == loi)).one()


@pytest.mark.parametrize(("export_format", "version"), [("SEPA", "pain.008.001.02"), ("SAFESEPA", "pain.008.001.08")])
def test_sepa_export_is_valid_recorded_and_checksummed(engine, tmp_path, export_format, version) -> None:
    loi = _prepare(engine, export_format=export_format, pain008_version=version)
    result = export_collection_run(loi, "test", engine=engine, outbox=tmp_path)
    path = Path(result["file_path"])
    assert path.parent == tmp_path and path.name == "HUB-BIB_fj-BIB-1.xml"
    data = path.read_bytes()
    assert result["sha256"] == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "HUB-BIB_fj-BIB-1.xml.sha256").read_text() == f"{result['sha256']}  {path.name}\n"
    tree = etree.fromstring(data)
    etree.XMLSchema(etree.parse(str(XSD_DIR / f"{version}.xsd"))).assertValid(tree)
    seq_types = [n.text for n in tree.iter() if etree.QName(n).localname == "SeqTp"]
    assert seq_types == ["FRST", "RCUR", "OOFF"]
    assert (result["transactions"], result["total"]) == (3, "33.75")
    run = _run(engine, loi)
    assert (run.status, run.file_path, run.file_sha256, run.export_format) == ("exported", str(path), result["sha256"], export_format)
    with transaction(engine, readonly=True) as session:
        assert set(session.scalars(select(Collection.status))) == {"exported"}
        actions = [(a.entity, a.action) for a in session.scalars(select(AuditLog).where(AuditLog.action == "exported"))]
        assert actions.count(("collection", "exported")) == 3 and ("collection_run", "exported") in actions


def test_exporting_the_same_run_twice_gives_identical_bytes(engine, tmp_path) -> None:
    loi = _prepare(engine)
    first = export_collection_run(loi, "test", engine=engine, outbox=tmp_path / "a")
    second = export_collection_run(loi, "test", engine=engine, outbox=tmp_path / "b")
    assert first["sha256"] == second["sha256"]
    assert Path(first["file_path"]).read_bytes() == Path(second["file_path"]).read_bytes()


def test_csv_and_bxml_formats(engine, tmp_path) -> None:
    loi = _prepare(engine, export_format="CSV")
    result = export_collection_run(loi, "test", engine=engine, outbox=tmp_path)
    with Path(result["file_path"]).open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    assert [r["sequence_type"] for r in rows] == ["FRST", "RCUR", "OOFF"]
    assert sum(Decimal(r["amount"]) for r in rows) == Decimal("33.75")
    assert rows[0]["structured_communication"].startswith("+++062/") and rows[0]["debtor_name"] == "Noémie Vandenbroucke-0"
    bxml = export_collection_run(loi, "test", engine=engine, outbox=tmp_path, export_format="BXML")
    root = etree.parse(bxml["file_path"]).getroot()
    assert root.tag == "collectionRun" and root.get("loi") == loi and root.get("total") == "33.75"
    assert [c.get("sequenceType") for c in root.iter("collection")] == ["FRST", "RCUR", "OOFF"]


def test_a_hub_without_a_valid_creditor_id_gets_no_file_and_says_why(engine, tmp_path) -> None:
    tmp_path = tmp_path / "outbox"
    loi = _prepare(engine)
    with transaction(engine) as session:
        session.scalars(select(BankHub)).one().creditor_id = "BE00ZZZ0123456789"
    with pytest.raises(ExportRejected, match="creditor identifier BE00ZZZ0123456789 is invalid"):
        export_collection_run(loi, "test", engine=engine, outbox=tmp_path)
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []
    run = _run(engine, loi)
    assert run.status == "failed" and "creditor identifier" in run.error and run.file_path is None


def test_a_file_failing_the_xsd_is_never_released(engine, tmp_path) -> None:
    tmp_path = tmp_path / "outbox"
    loi = _prepare(engine)
    with transaction(engine) as session:
        # The collection's IBAN was edited by hand after execution: it no longer fits the schema.
        session.scalars(select(Collection).order_by(Collection.id)).first().debtor_iban = "XX00"
    with pytest.raises(ExportRejected) as refused:
        export_collection_run(loi, "test", engine=engine, outbox=tmp_path)
    assert "HUB-BIB_fj-BIB-1.xml" in str(refused.value) and "IBAN" in str(refused.value)
    assert list(tmp_path.iterdir()) == []  # no file, no temporary file
    run = _run(engine, loi)
    assert run.status == "failed" and "XSD validation failed" in run.error
    with transaction(engine, readonly=True) as session:
        assert set(session.scalars(select(Collection.status))) == {"pending"}
        assert session.scalars(select(AuditLog.action).where(AuditLog.entity == "collection_run").order_by(AuditLog.id.desc())).first() == "failed"


def test_runs_to_export_lists_ready_runs_of_hubs_with_a_format(engine, tmp_path) -> None:
    loi = _prepare(engine)
    with transaction(engine, readonly=True) as session:
        assert runs_to_export(session) == [loi]
    export_collection_run(loi, "test", engine=engine, outbox=tmp_path)
    with transaction(engine, readonly=True) as session:
        assert runs_to_export(session) == []


def test_a_hub_without_export_format_makes_no_file(engine, tmp_path) -> None:
    loi = _prepare(engine, export_format=None)
    result = export_collection_run(loi, "test", engine=engine, outbox=tmp_path)
    assert result["file_path"] is None and "no export format" in result["message"]
    assert _run(engine, loi).status == "ready"


def test_two_exports_of_the_same_run_at_once_give_one_file_and_one_record(engine, tmp_path) -> None:
    import threading

    loi = _prepare(engine)
    start = threading.Barrier(2)
    results: list[dict] = []
    errors: list[BaseException] = []

    def export() -> None:
        start.wait()
        try:
            results.append(export_collection_run(loi, "test", engine=engine, outbox=tmp_path / "outbox"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=export) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and len(results) == 2
    assert results[0]["sha256"] == results[1]["sha256"]
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == ["HUB-BIB_fj-BIB-1.xml", "HUB-BIB_fj-BIB-1.xml.sha256"]
    assert hashlib.sha256((tmp_path / "outbox" / "HUB-BIB_fj-BIB-1.xml").read_bytes()).hexdigest() == results[0]["sha256"]
    with transaction(engine, readonly=True) as session:
        recorded = session.scalars(select(AuditLog).where(AuditLog.entity == "collection_run",
                                                          AuditLog.action == "exported")).all()
        assert len(recorded) == 1
        assert set(session.scalars(select(Collection.status))) == {"exported"}


def test_a_reference_deleted_before_the_export_is_not_in_the_bank_file(engine, tmp_path) -> None:
    # Finance deletes one reference of a ready run (paid at the counter meanwhile): its collection is cancelled and
    # its debt open again. The file must not collect it, and a later execution that collects the debt again joins
    # the same run with a new collection, which the file then holds once.
    from include.finance.models import PaymentReference, PaymentReferenceType
    from include.finance.reference_deletion import delete_references

    loi = _prepare(engine)
    with transaction(engine) as session:
        for type_ in session.scalars(select(PaymentReferenceType)):
            type_.access_admin = "finance-admin"
        first, second = session.scalars(select(PaymentReference.loi).order_by(PaymentReference.id)).all()[:2]
    with transaction(engine) as session:
        delete_references(session, "test", roles={"finance-admin"}, reference_lois=[first], dry_run=False)
    run = _run(engine, loi)
    assert (run.status, run.transaction_count, run.total_amount) == ("ready", 2, Decimal("23.50"))
    result = export_collection_run(loi, "test", engine=engine, outbox=tmp_path)
    assert (result["transactions"], result["total"]) == (2, "23.50")
    tree = etree.parse(result["file_path"])
    e2e = [n.text for n in tree.iter() if etree.QName(n).localname == "EndToEndId"]
    assert first not in e2e and second in e2e
    with transaction(engine, readonly=True) as session:
        assert sorted(session.scalars(select(Collection.status))) == ["cancelled", "exported", "exported"]


def test_a_debt_collected_again_after_a_deletion_is_in_the_file_once(engine, tmp_path) -> None:
    from include.finance.models import PaymentReference, PaymentReferenceType
    from include.finance.reference_deletion import delete_references

    loi = _prepare(engine)
    with transaction(engine) as session:
        for type_ in session.scalars(select(PaymentReferenceType)):
            type_.access_admin = "finance-admin"
        first = session.scalars(select(PaymentReference.loi).order_by(PaymentReference.id)).first()
    with transaction(engine) as session:
        delete_references(session, "test", roles={"finance-admin"}, reference_lois=[first], dry_run=False)
    with transaction(engine) as session:
        again = execute_mandates(session, RUN, "test")
    assert [(r["loi"], r["transactions"], r["total"]) for r in again.runs] == [(loi, 3, "33.75")]
    result = export_collection_run(loi, "test", engine=engine, outbox=tmp_path)
    assert (result["transactions"], result["total"]) == (3, "33.75")
    tree = etree.parse(result["file_path"])
    e2e = [n.text for n in tree.iter() if etree.QName(n).localname == "EndToEndId"]
    assert len(e2e) == 3 and first not in e2e


@pytest.mark.parametrize("export_format", ["SEPA", "CSV", "BXML"])
def test_a_run_whose_collections_do_not_add_up_never_shows_a_file_in_the_outbox(
        engine, tmp_path, monkeypatch, export_format) -> None:  # type: ignore[no-untyped-def]
    """Refused before writing: a file put in place, then removed again, was visible to the bank's pickup meanwhile."""
    import include.files

    outbox = tmp_path / "outbox"
    loi = _prepare(engine, export_format=export_format)
    with transaction(engine) as session:
        session.scalars(select(CollectionRun)).one().transaction_count = 4
    placed: list[str] = []
    real_replace = include.files.os.replace
    monkeypatch.setattr(include.files.os, "replace",
                        lambda src, dst: (placed.append(str(dst)), real_replace(src, dst))[1])
    with pytest.raises(ExportRejected, match="the run 4 for 33.75"):
        export_collection_run(loi, "test", engine=engine, outbox=outbox)
    assert placed == []
    assert not outbox.exists() or list(outbox.iterdir()) == []
    assert _run(engine, loi).status == "failed"


@pytest.mark.parametrize("export_format", ["SEPA", "CSV", "BXML"])
def test_a_re_export_refused_for_its_totals_leaves_the_released_file_in_place(engine, tmp_path, export_format) -> None:
    # The run was exported; then a collection's amount was edited by hand, so the collections no longer add up to
    # the run. The re-export is refused before anything is written: the released file and its checksum stay.
    tmp_path = tmp_path / "outbox"
    loi = _prepare(engine, export_format=export_format)
    released = export_collection_run(loi, "test", engine=engine, outbox=tmp_path)
    path = Path(released["file_path"])
    data, checksum = path.read_bytes(), path.with_name(path.name + ".sha256").read_text()
    with transaction(engine) as session:
        session.scalars(select(Collection).order_by(Collection.id)).first().amount = Decimal("99.99")
    with pytest.raises(ExportRejected, match="the run 3 for 33.75"):
        export_collection_run(loi, "test", engine=engine, outbox=tmp_path)
    assert path.read_bytes() == data and path.with_name(path.name + ".sha256").read_text() == checksum
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name, path.name + ".sha256"]
    assert _run(engine, loi).status == "exported"


def test_bxml_drops_the_characters_xml_cannot_carry(engine, tmp_path) -> None:
    # A name imported with control characters (a vertical tab, a stray \x01): lxml refuses them in XML, so without
    # care the export died with a ValueError instead of writing the file or refusing the run.
    loi = _prepare(engine, export_format="BXML")
    with transaction(engine) as session:
        from include.finance.models import EndUser

        session.scalars(select(EndUser).order_by(EndUser.id)).first().first_name = "No\x01émie\x0b &\ufffe <x>"
    result = export_collection_run(loi, "test", engine=engine, outbox=tmp_path / "outbox")
    root = etree.parse(result["file_path"]).getroot()
    assert [c.get("debtorName") for c in root.iter("collection")][0] == "Noémie & <x> Vandenbroucke-0"
    assert _run(engine, loi).status == "exported"


def test_a_confirmed_or_deleted_run_gets_no_bank_file_again(engine, tmp_path) -> None:
    """A confirmed run's money is in: exporting it again by hand wrote its file anew and, once recorded, made it
    'exported' again, ready to be collected a second time; a deleted run was marked 'failed' ("no collections").
    Both are refused now, naming the status, with nothing written and the status kept."""
    from include.errors import InnenError
    from include.finance.reference_deletion import delete_references
    from include.sepa.collection_confirm import confirm_collection_run

    loi = _prepare(engine)
    released = Path(export_collection_run(loi, "test", engine=engine, outbox=tmp_path / "out")["file_path"])
    with transaction(engine) as session:
        assert confirm_collection_run(session, loi, "33.75", "test", dry_run=False).booked
    released.unlink()
    with pytest.raises(InnenError, match=rf"^{loi} is confirmed \(the bank paid it\): no bank file is made again"):
        export_collection_run(loi, "test", engine=engine, outbox=tmp_path / "out")
    assert _run(engine, loi).status == "confirmed" and not released.exists()

    with transaction(engine) as session:  # a second run, all of its references deleted
        inst = make_institution(session, "SKA")
        owner = make_user(session, "Jan", "Peeters")
        make_mandate(session, inst, owner, first=date(2026, 11, 21))
        add_debt(session, inst, owner, "LID", "5.00")
        execute_mandates(session, RUN, "test")
        inst.recurring.access_admin = "finance-admin"
        other = session.scalars(select(CollectionRun.loi).where(CollectionRun.loi != loi)).one()
        delete_references(session, "test", roles={"finance-admin"}, run_loi=other, dry_run=False)
    assert _run(engine, other).status == "deleted"
    with pytest.raises(InnenError, match=rf"^{other} is deleted \(its references were deleted\): no bank file"):
        export_collection_run(other, "test", engine=engine, outbox=tmp_path / "out")
    assert _run(engine, other).status == "deleted"
