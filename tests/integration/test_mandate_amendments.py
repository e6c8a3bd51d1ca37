"""Mandate amendments end to end: a changed mandate's next collection says what changed, in the bank file too."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from lxml import etree
from schwifty import IBAN
from sqlalchemy import select

from include.finance.db import transaction
from include.finance.models import AuditLog, BankHub, Collection, CollectionRun, Mandate
from include.sepa.export import export_collection_run
from include.sepa.mandate_execution import execute_mandates
from include.sepa.xsd import XSD_DIR
from tests.factories import add_debt, make_institution, make_mandate, make_user

OCTOBER, NOVEMBER, DECEMBER = date(2026, 10, 19), date(2026, 11, 19), date(2026, 12, 21)
KBC_OLD = str(IBAN.generate("BE", bank_code="734", account_code="0190012"))
KBC_NEW = str(IBAN.generate("BE", bank_code="734", account_code="0190013"))
BELFIUS = str(IBAN.generate("BE", bank_code="068", account_code="2402190"))


def _mandate(engine, version: str = "pain.008.001.02"):  # type: ignore[no-untyped-def]
    """A monthly mandate due from 21 October on KBC_OLD, and its hub's id."""
    with transaction(engine) as session:
        inst = make_institution(session, lead_days=2, pain008_version=version)
        owner = make_user(session)
        mandate = make_mandate(session, inst, owner, first=date(2026, 10, 21), debtor_iban=KBC_OLD,
                               debtor_bic="KREDBEBB", reference="BIB-M-0001")
        return inst, owner, mandate.id, inst.hub.id


def _collect_and_export(engine, inst, owner, run_date: date, tmp_path: Path) -> etree._Element:  # type: ignore[no-untyped-def]
    """Owe one line, execute on ``run_date``, export the run; the file's only transaction."""
    with transaction(engine) as session:
        add_debt(session, inst, owner, "LID", "10.00")
        result = execute_mandates(session, run_date, "test")
    assert result.collections == 1
    exported = export_collection_run(result.ready_runs[0], "test", engine=engine, outbox=tmp_path)
    tree = etree.parse(exported["file_path"])
    assert etree.XMLSchema(etree.parse(str(XSD_DIR / f"{_version(tree)}.xsd"))).validate(tree)
    return next(node for node in tree.iter() if etree.QName(node).localname == "DrctDbtTxInf")


def _version(tree: etree._ElementTree) -> str:
    return etree.QName(tree.getroot()).namespace.rsplit(":", 1)[1]


def _text(node: etree._Element, path: str) -> str | None:
    found = node.xpath("/".join(f"*[local-name()='{step}']" for step in path.split("/")))
    return found[0].text if found else None


def _edit(engine, mandate_id: int, **fields: object) -> None:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        mandate = session.get(Mandate, mandate_id)
        for name, value in fields.items():
            setattr(mandate, name, value)


def _latest(engine, mandate_id: int) -> Collection:  # type: ignore[no-untyped-def]
    with transaction(engine, readonly=True) as session:
        return session.scalars(select(Collection).where(Collection.mandate_id == mandate_id).order_by(Collection.id.desc())).first()


AMENDED = "DrctDbtTx/MndtRltdInf/AmdmntInd"
DETAILS = "DrctDbtTx/MndtRltdInf/AmdmntInfDtls"


@pytest.mark.parametrize("version", ["pain.008.001.02", "pain.008.001.08"])
def test_a_new_account_at_the_same_bank_is_told_once_with_the_old_iban(engine, tmp_path, version) -> None:
    inst, owner, mandate_id, _ = _mandate(engine, version)
    first = _collect_and_export(engine, inst, owner, OCTOBER, tmp_path)
    assert _text(first, AMENDED) is None
    _edit(engine, mandate_id, debtor_iban=KBC_NEW)
    second = _collect_and_export(engine, inst, owner, NOVEMBER, tmp_path)
    assert _text(second, AMENDED) == "true"
    assert _text(second, f"{DETAILS}/OrgnlDbtrAcct/Id/IBAN") == IBAN(KBC_OLD).compact
    assert _text(second, f"{DETAILS}/OrgnlDbtrAgt/FinInstnId/Othr/Id") is None
    assert _text(second, "DbtrAcct/Id/IBAN") == IBAN(KBC_NEW).compact
    stored = _latest(engine, mandate_id)
    assert (stored.debtor_iban, stored.original_debtor_iban, stored.debtor_agent_changed) == (KBC_NEW, IBAN(KBC_OLD).compact, False)
    third = _collect_and_export(engine, inst, owner, DECEMBER, tmp_path)
    assert _text(third, AMENDED) is None  # told once


def test_an_account_at_another_bank_is_told_as_smnda_without_the_old_iban(engine, tmp_path) -> None:
    inst, owner, mandate_id, _ = _mandate(engine)
    _collect_and_export(engine, inst, owner, OCTOBER, tmp_path)
    _edit(engine, mandate_id, debtor_iban=BELFIUS, debtor_bic="GKCCBEBB")
    second = _collect_and_export(engine, inst, owner, NOVEMBER, tmp_path)
    assert _text(second, AMENDED) == "true"
    assert _text(second, f"{DETAILS}/OrgnlDbtrAgt/FinInstnId/Othr/Id") == "SMNDA"
    assert _text(second, f"{DETAILS}/OrgnlDbtrAcct/Id/IBAN") is None
    assert _text(second, "DbtrAgt/FinInstnId/BIC") == "GKCCBEBB"
    assert _latest(engine, mandate_id).debtor_agent_changed is True
    # The new bank gets a first collection; the one after is recurring again.
    assert _latest(engine, mandate_id).sequence_type == "FRST"
    assert _text(second.getparent(), "PmtTpInf/SeqTp") == "FRST"
    _collect_and_export(engine, inst, owner, DECEMBER, tmp_path)
    assert _latest(engine, mandate_id).sequence_type == "RCUR"


def test_the_last_collection_at_a_new_bank_is_its_first(engine, tmp_path) -> None:
    # The mandate ends after November: November's collection would be FNAL, but the new bank never saw the
    # series, so it opens it (FRST), as a first collection that is also the last does.
    inst, owner, mandate_id, _ = _mandate(engine)
    _edit(engine, mandate_id, end_date=date(2026, 12, 1))
    _collect_and_export(engine, inst, owner, OCTOBER, tmp_path)
    _edit(engine, mandate_id, debtor_iban=BELFIUS, debtor_bic="GKCCBEBB")
    second = _collect_and_export(engine, inst, owner, NOVEMBER, tmp_path)
    assert _text(second, f"{DETAILS}/OrgnlDbtrAgt/FinInstnId/Othr/Id") == "SMNDA"
    assert _latest(engine, mandate_id).sequence_type == "FRST"
    assert _text(second.getparent(), "PmtTpInf/SeqTp") == "FRST"


def test_an_rcur_only_hub_keeps_rcur_for_a_new_bank(engine, tmp_path) -> None:
    inst, owner, mandate_id, hub_id = _mandate(engine)
    with transaction(engine) as session:
        session.get(BankHub, hub_id).rcur_only = True
    _collect_and_export(engine, inst, owner, OCTOBER, tmp_path)
    _edit(engine, mandate_id, debtor_iban=BELFIUS, debtor_bic="GKCCBEBB")
    _collect_and_export(engine, inst, owner, NOVEMBER, tmp_path)
    latest = _latest(engine, mandate_id)
    assert (latest.sequence_type, latest.debtor_agent_changed) == ("RCUR", True)


def test_a_new_mandate_id_and_creditor_id_are_told_with_the_old_ones(engine, tmp_path) -> None:
    inst, owner, mandate_id, hub_id = _mandate(engine)
    _collect_and_export(engine, inst, owner, OCTOBER, tmp_path)
    with transaction(engine) as session:
        hub = session.get(BankHub, hub_id)
        old_creditor_id, hub.creditor_id = hub.creditor_id, "BE69ZZZ050D000000008"
    _edit(engine, mandate_id, reference="BIB-M-0001-B")
    second = _collect_and_export(engine, inst, owner, NOVEMBER, tmp_path)
    assert _text(second, "DrctDbtTx/MndtRltdInf/MndtId") == "BIB-M-0001-B"
    assert _text(second, f"{DETAILS}/OrgnlMndtId") == "BIB-M-0001"
    assert _text(second, f"{DETAILS}/OrgnlCdtrSchmeId/Id/PrvtId/Othr/Id") == old_creditor_id
    assert _text(second, f"{DETAILS}/OrgnlDbtrAcct/Id/IBAN") is None
    with transaction(engine, readonly=True) as session:
        created = session.scalars(
            select(AuditLog).where(AuditLog.entity == "collection", AuditLog.action == "created").order_by(AuditLog.id.desc())
        ).first()
    assert created.after["amendment"]["original_mandate_reference"] == "BIB-M-0001"


def test_a_mandate_edited_between_execution_and_export_is_told_by_the_next_collection(engine, tmp_path) -> None:
    # The file carries what was checked when the collection was made; the edit is an amendment of the next one.
    inst, owner, mandate_id, _ = _mandate(engine)
    with transaction(engine) as session:
        add_debt(session, inst, owner, "LID", "10.00")
        run = execute_mandates(session, OCTOBER, "test").ready_runs[0]
    _edit(engine, mandate_id, debtor_iban=KBC_NEW)
    exported = export_collection_run(run, "test", engine=engine, outbox=tmp_path)
    first = next(n for n in etree.parse(exported["file_path"]).iter() if etree.QName(n).localname == "DrctDbtTxInf")
    assert _text(first, "DbtrAcct/Id/IBAN") == IBAN(KBC_OLD).compact and _text(first, AMENDED) is None
    second = _collect_and_export(engine, inst, owner, NOVEMBER, tmp_path)
    assert _text(second, f"{DETAILS}/OrgnlDbtrAcct/Id/IBAN") == IBAN(KBC_OLD).compact


def test_a_returned_collection_still_counts_as_told_and_a_cancelled_one_does_not(engine, tmp_path) -> None:
    inst, owner, mandate_id, _ = _mandate(engine)
    _collect_and_export(engine, inst, owner, OCTOBER, tmp_path)
    with transaction(engine) as session:
        session.scalars(select(Collection).where(Collection.mandate_id == mandate_id)).one().status = "returned"
    _edit(engine, mandate_id, debtor_iban=KBC_NEW)
    with transaction(engine) as session:
        add_debt(session, inst, owner, "LID", "10.00")
        execute_mandates(session, NOVEMBER, "test")
    assert _latest(engine, mandate_id).original_debtor_iban == IBAN(KBC_OLD).compact
    with transaction(engine) as session:
        never_sent = session.scalars(select(Collection).where(Collection.mandate_id == mandate_id).order_by(Collection.id.desc())).first()
        never_sent.status = "cancelled"
        session.scalars(select(CollectionRun).where(CollectionRun.id == never_sent.run_id)).one().status = "deleted"
    _edit(engine, mandate_id, debtor_iban=BELFIUS)
    with transaction(engine) as session:
        add_debt(session, inst, owner, "LID", "10.00")
        assert execute_mandates(session, DECEMBER, "test").collections == 1
    # Compared with October's (returned, so presented), not November's cancelled one: another bank.
    assert _latest(engine, mandate_id).debtor_agent_changed is True


def test_collections_made_before_innen_kept_their_details_say_nothing(engine, tmp_path) -> None:
    inst, owner, mandate_id, _ = _mandate(engine)
    _collect_and_export(engine, inst, owner, OCTOBER, tmp_path)
    with transaction(engine) as session:
        old = session.scalars(select(Collection).where(Collection.mandate_id == mandate_id)).one()
        old.mandate_reference = old.debtor_iban = old.debtor_bic = old.creditor_id = None
    _edit(engine, mandate_id, debtor_iban=KBC_NEW)
    second = _collect_and_export(engine, inst, owner, NOVEMBER, tmp_path)
    assert _text(second, AMENDED) is None


def test_a_bxml_hub_gets_the_amendment_as_attributes(engine, tmp_path) -> None:
    inst, owner, mandate_id, hub_id = _mandate(engine)
    _collect_and_export(engine, inst, owner, OCTOBER, tmp_path)
    with transaction(engine) as session:
        session.get(BankHub, hub_id).export_format = "BXML"
        add_debt(session, inst, owner, "LID", "10.00")
    _edit(engine, mandate_id, debtor_iban=BELFIUS, reference="BIB-M-0001-B")
    with transaction(engine) as session:
        run = execute_mandates(session, NOVEMBER, "test").ready_runs[0]
    exported = export_collection_run(run, "test", engine=engine, outbox=tmp_path)
    (collection,) = etree.parse(exported["file_path"]).getroot().iter("collection")
    assert collection.get("originalMandate") == "BIB-M-0001"
    assert collection.get("originalDebtorIban") == IBAN(KBC_OLD).compact and collection.get("debtorAgentChanged") == "true"
    assert collection.get("originalCreditorId") is None
