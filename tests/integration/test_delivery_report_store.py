"""Delivery reports against a real database (SQLite and PostgreSQL): one diagnosis per invoice × recipient.

One batch of invoices covers every case of seed 003: each POM message, the
order of attempts, the 48 hours, each cause of "no attempt", lines for
nobody we meant. The report is analysed from the inbox, then again (nothing
doubles), then in a later version (the analysis is replaced); bad files are
refused with nothing stored.
"""

from __future__ import annotations

import csv
import io
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from include.config import archive_dir, inbox_dir, quarantine_dir
from include.finance.db import transaction
from include.finance.models import (
    Address,
    AuditLog,
    Contact,
    DeliveryDiagnosis,
    DeliveryReport,
    DeliveryReportLine,
    EndUser,
    SalesJournal,
)
from include.pom.delivery_diagnosis import SEED_MESSAGES
from include.pom.delivery_files import analyse_recent_batches, analyse_report_file
from include.pom.delivery_reader import DeliveryReportRefused
from include.pom.delivery_store import DocumentToSend, intended_recipients, record_sent_documents
from tests.dag_bag import parsed_dag
from tests.factories import make_institution, make_reference, make_user

BATCH = "B-2026-03-16"
T0 = datetime(2026, 3, 16, 7, 0, tzinfo=timezone.utc)  # sent
NOW = T0 + timedelta(hours=60)
HEADER = "Batch,DocumentId,RecipientName,EmailAddress,Status,Description,Timestamp"
DELIVERY_TABLES = (DeliveryReport, DeliveryReportLine, DeliveryDiagnosis, AuditLog)


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat()


def report_lines(**changes: str) -> list[str]:
    """The batch's report; every line is one attempt (``changes`` replace a line by its key)."""
    lines = {
        "a": f"{BATCH},D-A,Anna Aerts,A@Example.BE,DELIVERED,,{at(0.1)}",  # case differs from the contact
        "a-old": f"{BATCH},D-A,Anna Aerts,old@example.be,DELIVERED,,{at(0.1)}",  # not on the record any more
        "b": f'{BATCH},D-B,Bert,b@example.be,FAILED,"{SEED_MESSAGES["temporary"]}",{at(30)}',
        "c1": f'{BATCH},D-C,Chris,c@example.be,FAILED,"{SEED_MESSAGES["mailbox_full"]}",{at(1)}',
        "c2": f'{BATCH},D-C,Chris,c@example.be,FAILED,"{SEED_MESSAGES["mailbox_full"]}",{at(50)}',
        # Delivered after a temporary failure; the DELIVERED line comes first in the file.
        "d2": f"{BATCH},D-D,Dina,d@example.be,DELIVERED,,{at(5)}",
        "d1": f'{BATCH},D-D,Dina,d@example.be,FAILED,"{SEED_MESSAGES["temporary"]}",{at(1)}',
        "e": f'{BATCH},D-E,Eva,e@example.be,FAILED,"{SEED_MESSAGES["rejected_blacklisted"]}",{at(0.2)}',
        "f": f'{BATCH},D-F,Frank,f@example.be,FAILED,"{SEED_MESSAGES["blacklisted"].upper()}",{at(0.2)}',
        "g": f'{BATCH},D-G,Greet,g@example.be,FAILED,"{SEED_MESSAGES["unsubscribed"]}  ",{at(0.2)}',
        "h": f'{BATCH},D-H,Hans,h@example.be,FAILED,"{SEED_MESSAGES["document_id_used"].rstrip(".")}",{at(0.2)}',
        "i": f'{BATCH},D-I,Ilse,i@example.be,FAILED,"Greylisted, please try again later (451)",{at(0.2)}',
        "j1": f"{BATCH},D-J,Jo,j1@example.be,DELIVERED,,{at(0.3)}",
        "k1": f"{BATCH},D-K,Kim,k1@example.be,DELIVERED,,{at(0.3)}",
        "x": f"{BATCH},D-UNKNOWN,Xavier,x@example.be,DELIVERED,,{at(0.3)}",
    }
    lines.update(changes)
    return [HEADER, *lines.values()]


# (document, email or None) -> diagnosis, as the report above must give it
EXPECTED = {
    ("D-A", "a@example.be"): "delivered",
    ("D-A", "old@example.be"): "delivered",  # with a note
    ("D-B", "b@example.be"): "retrying",
    ("D-C", "c@example.be"): "given_up",
    ("D-D", "d@example.be"): "delivered",
    ("D-E", "e@example.be"): "rejected_blacklisted",
    ("D-F", "f@example.be"): "blacklisted",
    ("D-G", "g@example.be"): "unsubscribed",
    ("D-H", "h@example.be"): "document_id_used",
    ("D-I", "i@example.be"): "unknown",
    ("D-J", "j1@example.be"): "delivered",
    ("D-J", "j2@example.be"): "not_attempted_email_recipient_off",
    ("D-K", "k1@example.be"): "delivered",
    ("D-K", "k2@example.be"): "not_attempted_copy_per_address_off",
    ("D-K", "k3@example.be"): "not_attempted_unexplained",
    ("D-L", None): "not_attempted_no_email_address",
    ("D-UNKNOWN", "x@example.be"): "delivered",  # with a note
}


def build_batch(engine: Engine) -> dict[str, Any]:
    """Twelve customers, one invoice each, sent in one batch."""
    with transaction(engine) as session:
        inst = make_institution(session)
        plain = SalesJournal(code="VK-SCHOOL", name="Schoolrekeningen", payment_reference_type_id=inst.recurring.id)
        copies = SalesJournal(code="VK-KOPIE", name="Met exemplaar per adres", copy_per_address=True)
        session.add_all([plain, copies])
        session.flush()
        documents = []
        for n, letter in enumerate("ABCDEFGHIJKL", 1):
            user = make_user(session, first=f"Klant{letter}", last="Peeters")
            reference = make_reference(session, inst, user, ("12.50",), number=7000 + n)
            reference.invoice_number = f"SCH-2026-{n:04d}"
            home = Address(end_user_id=user.id, position=1, street="Kerkstraat", house_number=str(n),
                           postal_code="3000", city="Leuven")
            session.add(home)
            session.flush()
            if letter == "L":
                session.add(Contact(end_user_id=user.id, kind="phone", value="+32 16 00 00 00"))
            elif letter in "JK":
                session.add(Contact(end_user_id=user.id, kind="email", value=f"{letter.lower()}1@example.be",
                                    address_id=home.id))
            else:
                session.add(Contact(end_user_id=user.id, kind="email", value=f"{letter.lower()}@example.be",
                                    address_id=home.id))
            if letter == "J":  # a second parent whose "E-mail ontvanger" is off
                session.add(Contact(end_user_id=user.id, kind="email", value="j2@example.be", email_recipient=False))
            journal_id = None
            if letter == "K":  # a parent on the second address; the invoice's journal has no copy per address
                second = Address(end_user_id=user.id, position=2, street="Dorp", house_number="2",
                                 postal_code="3001", city="Heverlee")
                third = Address(end_user_id=user.id, position=3, street="Markt", house_number="3",
                                postal_code="3010", city="Kessel-Lo", copy_per_address=True)
                session.add_all([second, third])
                session.flush()
                session.add(Contact(end_user_id=user.id, kind="email", value="k2@example.be", address_id=second.id))
                session.add(Contact(end_user_id=user.id, kind="email", value="k3@example.be", address_id=third.id))
                journal_id = copies.id  # k3 then qualifies: POM should have tried it
            documents.append(DocumentToSend(f"D-{letter}", user.id, reference.id, journal_id))
        record_sent_documents(session, BATCH, documents, "test", sent_at=T0)
        users = {letter: doc.end_user_id for letter, doc in zip("ABCDEFGHIJKL", documents)}
    return {"users": users, "plain": plain.id, "copies": copies.id}


def inbox(lines: list[str], name: str = "pom-report.csv", encoding: str = "utf-8") -> Path:
    path = inbox_dir("pom_reports") / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def diagnoses(engine: Engine) -> dict[tuple[str, str | None], DeliveryDiagnosis]:
    with transaction(engine, readonly=True) as session:
        rows = session.scalars(select(DeliveryDiagnosis)).all()
    found = {(row.document_id, row.email): row for row in rows}
    assert len(found) == len(rows), "one diagnosis per invoice × recipient"
    return found


def counts(engine: Engine) -> dict[str, int]:
    with transaction(engine, readonly=True) as session:
        return {m.__tablename__: session.scalar(select(func.count()).select_from(m)) for m in DELIVERY_TABLES}


def action_list(result: dict[str, Any], delivered: bool = True) -> list[dict[str, str]]:
    """The rows of the action list, then (``delivered``) those of delivered.csv."""
    (lists,) = result["action_lists"]
    rows = []
    for path in [Path(lists["csv"])] + ([Path(lists["delivered_csv"])] if delivered else []):
        text = path.read_text(encoding="utf-8-sig")
        rows += list(csv.DictReader(io.StringIO(text), delimiter=";"))
    return rows


@pytest.fixture
def batch(engine: Engine, var_dir: Path) -> dict[str, Any]:
    return build_batch(engine)


def test_every_invoice_and_recipient_gets_one_diagnosis(engine: Engine, batch: dict[str, Any]) -> None:
    path = inbox(report_lines())
    result = analyse_report_file(path, "test", engine, now=NOW)

    found = diagnoses(engine)
    assert {key: row.diagnosis for key, row in found.items()} == EXPECTED
    assert result["lines"] == 15 and result["recipients"] == len(EXPECTED)
    assert result["summary"] == {
        "not_attempted_email_recipient_off": 1, "not_attempted_copy_per_address_off": 1,
        "not_attempted_no_email_address": 1, "not_attempted_unexplained": 1, "delivered": 6, "retrying": 1,
        "given_up": 1, "rejected_blacklisted": 1, "blacklisted": 1, "unsubscribed": 1, "document_id_used": 1,
        "unknown": 1,
    }

    # The joins: customer, invoice, attempts, POM's last words (the action list has them beside each diagnosis).
    listed = {(row["document_id"], row["email_address"] or None): row for row in action_list(result)}
    assert listed.keys() == EXPECTED.keys()
    retrying = found[("D-B", "b@example.be")]
    assert (retrying.attempts, retrying.action, retrying.last_line_no) == (1, "wait", 4)
    assert retrying.retry_until.replace(tzinfo=timezone.utc) == T0 + timedelta(hours=78)
    assert (listed[("D-B", "b@example.be")]["customer"], listed[("D-B", "b@example.be")]["invoice"]) == (
        "KlantB Peeters", "SCH-2026-0002")
    given_up = found[("D-C", "c@example.be")]
    assert (given_up.attempts, given_up.action, given_up.last_line_no) == (2, "send_another_way", 6)
    # Dina: the DELIVERED line (7) comes before the earlier FAILED one (8) in the file, and decides.
    assert (found[("D-D", "d@example.be")].attempts, found[("D-D", "d@example.be")].last_line_no) == (2, 7)
    dina = listed[("D-D", "d@example.be")]  # in delivered.csv
    assert (dina["attempts"], dina["delivered_at"], dina["note"]) == ("2", "2026-03-16 13:00", "")
    assert listed[("D-A", "a@example.be")]["recipient"] == "Anna Aerts"
    assert found[("D-I", "i@example.be")].detail == "'Greylisted, please try again later (451)'"
    assert listed[("D-I", "i@example.be")]["pom_message"] == "Greylisted, please try again later (451)"
    assert found[("D-A", "old@example.be")].note == "e-mail address not (or no longer) on the customer record"
    assert listed[("D-A", "old@example.be")]["customer"] == "KlantA Peeters"
    unknown_doc = found[("D-UNKNOWN", "x@example.be")]
    assert unknown_doc.note == f"document id not among the documents we sent in batch {BATCH}"
    assert unknown_doc.sent_document_id is None and listed[("D-UNKNOWN", "x@example.be")]["customer"] == ""
    assert listed[("D-UNKNOWN", "x@example.be")]["note"] == unknown_doc.note

    # No attempt: the flags named, and where.
    j2 = found[("D-J", "j2@example.be")]
    assert j2.action == "fix_customer_record" and "'E-mail ontvanger' on the contact j2@example.be" in j2.detail
    k2 = found[("D-K", "k2@example.be")]
    assert k2.address_label == "address 2: Dorp 2, 3001 Heverlee"
    assert "'Exemplaar factuur/aanmaning' on address 2 (Dorp 2, 3001 Heverlee)" in k2.detail
    assert "'Exemplaar per adres'" not in k2.detail  # the invoice's journal VK-KOPIE has the flag
    assert listed[("D-L", None)]["customer"] == "KlantL Peeters" and found[("D-L", None)].attempts == 0

    # Stored as POM wrote it, and audited.
    with transaction(engine, readonly=True) as session:
        lines = session.scalars(select(DeliveryReportLine).order_by(DeliveryReportLine.line_no)).all()
        report = session.scalars(select(DeliveryReport)).one()
        audit = session.scalars(select(AuditLog).where(AuditLog.entity == "delivery_report")).all()
    assert [line.line_no for line in lines] == list(range(2, 17))
    assert lines[0].email == "A@Example.BE" and lines[6].message_kind == "temporary"
    assert (report.batch, report.lines, report.recipients, report.source) == (BATCH, 15, 17, "file")
    assert [(a.action, a.entity_id, a.before) for a in audit] == [("analysed", report.id, None)]
    assert audit[0].after["summary"]["delivered"] == 6
    assert Path(result["archived"]) == archive_dir() / "pom_reports" / "pom-report.csv" and not path.exists()


def test_the_action_list_groups_by_action(engine: Engine, batch: dict[str, Any]) -> None:
    result = analyse_report_file(inbox(report_lines()), "test", engine, now=NOW)
    rows = action_list(result)
    actions = [row["action"] for row in action_list(result, delivered=False)]
    groups = list(dict.fromkeys(actions))
    assert groups == ["Fix the customer record", "Correct or replace the e-mail address", "Send the invoice another way",
                      "Contact POM support", "Wait: POM is still retrying"]
    assert actions == sorted(actions, key=groups.index)  # each group together
    assert len(rows) == len(EXPECTED)
    by_email = {row["email_address"]: row for row in rows}
    k2 = by_email["k2@example.be"]
    assert (k2["customer"], k2["invoice"], k2["postal_address"]) == ("KlantK Peeters", "SCH-2026-0011",
                                                                      "address 2: Dorp 2, 3001 Heverlee")
    assert "Exemplaar factuur/aanmaning" in k2["what_to_do"]
    assert by_email["b@example.be"]["what_to_do"].endswith("Look again after 2026-03-19 14:00.")  # T0 + 78 h, Brussels
    assert by_email["f@example.be"]["pom_message"] == SEED_MESSAGES["blacklisted"].upper()
    assert "contact POM support" in by_email["h@example.be"]["what_to_do"].replace("Contact", "contact")
    actionable = action_list(result, delivered=False)
    delivered = rows[len(actionable):]
    assert {row["action"] for row in actionable} == set(groups) and len(delivered) == 6
    assert list(delivered[0]) == ["customer", "invoice", "document_id", "recipient", "email_address", "postal_address",
                                  "attempts", "delivered_at", "note"]
    summary = Path(result["action_lists"][0]["csv"]).with_name("summary.csv").read_text(encoding="utf-8-sig")
    assert "delivered;delivered;none;6" in summary
    html = Path(result["action_lists"][0]["html"]).read_text(encoding="utf-8")
    assert "Fix the customer record (3)" in html and "pom.be" in html and "Gmail" in html


def test_the_action_list_from_the_database_is_the_same(engine: Engine, batch: dict[str, Any], tmp_path: Path) -> None:
    from include.pom.delivery_action_list import write_action_list

    result = analyse_report_file(inbox(report_lines()), "test", engine, now=NOW)
    folder = Path(result["action_lists"][0]["csv"]).parent
    with transaction(engine, readonly=True) as session:
        again = write_action_list(session, result["batches"][0]["report_id"], tmp_path / "again")
    assert again.rows == len(EXPECTED)
    for name in ("action-list.csv", "delivered.csv", "summary.csv", "index.html"):
        assert (tmp_path / "again" / name).read_bytes() == (folder / name).read_bytes(), name


def test_a_rerun_replaces_and_a_newer_report_updates(engine: Engine, batch: dict[str, Any]) -> None:
    lines = report_lines()
    analyse_report_file(inbox(lines), "test", engine, now=NOW)
    first = counts(engine)
    again = analyse_report_file(inbox(lines), "test", engine, now=NOW)
    assert counts(engine) == {**first, "audit_log": first["audit_log"] + 1}
    assert again["summary"] == analyse_summary(engine) and again["batches"][0]["replaced"] is True

    # POM's later retries: Bert's mail got through, Chris's never did.
    newer = report_lines(b2=f"{BATCH},D-B,Bert,b@example.be,DELIVERED,,{at(40)}")
    analyse_report_file(inbox(newer, name="pom-report-2.csv"), "test", engine, now=NOW)
    found = diagnoses(engine)
    assert found[("D-B", "b@example.be")].diagnosis == "delivered"
    assert found[("D-B", "b@example.be")].attempts == 2
    assert counts(engine)["delivery_report_line"] == 16 and counts(engine)["delivery_diagnosis"] == len(EXPECTED)
    with transaction(engine, readonly=True) as session:
        audit = session.scalars(select(AuditLog).where(AuditLog.entity == "delivery_report").order_by(AuditLog.id)).all()
    assert [a.action for a in audit] == ["analysed", "reanalysed", "reanalysed"]
    assert audit[2].before["summary"]["retrying"] == 1 and "retrying" not in audit[2].after["summary"]


def analyse_summary(engine: Engine) -> dict[str, int]:
    with transaction(engine, readonly=True) as session:
        return session.scalars(select(DeliveryReport.summary)).one()


def test_retrying_turns_into_given_up_when_analysed_later(engine: Engine, batch: dict[str, Any]) -> None:
    analyse_report_file(inbox(report_lines()), "test", engine, now=T0 + timedelta(hours=78))
    assert diagnoses(engine)[("D-B", "b@example.be")].diagnosis == "given_up"


def test_a_report_of_two_batches_line_by_line(engine: Engine, batch: dict[str, Any]) -> None:
    later = "B-2026-03-17"
    with transaction(engine) as session:
        record_sent_documents(session, later, [DocumentToSend("D-A2", batch["users"]["A"]),
                                               DocumentToSend("D-B2", batch["users"]["B"])], "test", sent_at=T0)
    header, *first = report_lines()
    second = [f"{later},D-A2,Anna,a@example.be,DELIVERED,,{at(24)}",
              f'{later},D-B2,Bert,b@example.be,FAILED,"{SEED_MESSAGES["blacklisted"]}",{at(24)}']
    # The second batch's lines come between the first one's: lines 3 and 5 of the file.
    result = analyse_report_file(inbox([header, first[0], second[0], first[1], second[1], *first[2:]]), "test",
                                 engine, now=NOW)

    assert [(b["batch"], b["lines"], b["recipients"]) for b in result["batches"]] == [
        (BATCH, 15, len(EXPECTED)), (later, 2, 2)]
    found = {key: row.diagnosis for key, row in diagnoses(engine).items()}
    assert found == {**EXPECTED, ("D-A2", "a@example.be"): "delivered", ("D-B2", "b@example.be"): "blacklisted"}
    with transaction(engine, readonly=True) as session:
        lines = session.execute(select(DeliveryReport.batch, DeliveryReportLine.line_no).join(
            DeliveryReportLine, DeliveryReportLine.report_id == DeliveryReport.id)).all()
    assert sorted(line_no for name, line_no in lines if name == later) == [3, 5]
    assert sorted(line_no for name, line_no in lines if name == BATCH) == [2, 4, *range(6, 19)]
    assert len(result["action_lists"]) == 2


# -- refusals: clear error, nothing stored --------------------------------------------------------------


@pytest.mark.parametrize(("content", "expected"), [
    (b"", "pom-report.csv: empty file: no header and no lines"),
    ("Batch,DocumentId,EmailAddress,Status,Timestamp\r\nB,D,a@b.be,DELIVERED,2026-03-16T08:00:00Z\r\n".encode(),
     "pom-report.csv: column Description (or Omschrijving): required column Description (or Omschrijving) is missing "
     "(columns found: Batch, DocumentId, EmailAddress, Status, Timestamp)"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "pom-report.csv: line 3: binary content (NUL bytes): not a CSV text report"),
    (f"{HEADER}\r\n{BATCH},D-A,\x81,a@example.be,DELIVERED,,2026-03-16T08:00:00Z\r\n".encode("latin-1"),
     "pom-report.csv: line 2: neither UTF-8 nor Windows-1252 (byte 0x81); save the report as UTF-8 CSV"),
    # A bad line after good ones: the good ones were already written in the transaction, and are rolled back.
    ("\r\n".join(report_lines()[:6] + [f"{BATCH},D-Z,Z,z@example.be,FAILED,x,morgen"]).encode(),
     "pom-report.csv: line 7: column Timestamp (or Tijdstip): not a time: 'morgen' (expected e.g. "
     "2026-03-16T08:15:00+01:00 or 16/03/2026 08:15)"),
    (f"{HEADER}\r\n".encode(), "pom-report.csv: no attempt lines, only a header, and no batch given"),
], ids=["empty", "missing-column", "binary", "wrong-encoding", "bad-line", "header-only"])
def test_a_refused_report_is_quarantined_and_nothing_is_stored(
    engine: Engine, batch: dict[str, Any], content: bytes, expected: str
) -> None:
    path = inbox_dir("pom_reports") / "pom-report.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    with pytest.raises(DeliveryReportRefused) as refused:
        analyse_report_file(path, "test", engine, now=NOW)
    assert str(refused.value) == expected
    assert counts(engine) == {"delivery_report": 0, "delivery_report_line": 0, "delivery_diagnosis": 0,
                              "audit_log": 1}  # the batch's sending only
    quarantined = quarantine_dir() / "pom_reports" / "pom-report.csv"
    assert quarantined.read_bytes() == content and not path.exists()
    assert quarantined.with_name("pom-report.csv.reason.txt").read_text(encoding="utf-8") == expected + "\n"


def test_a_refused_report_leaves_the_earlier_analysis_alone(engine: Engine, batch: dict[str, Any]) -> None:
    analyse_report_file(inbox(report_lines()), "test", engine, now=NOW)
    before = counts(engine), diagnoses(engine).keys()
    broken = report_lines()[:4] + [f"{BATCH},D-Z,Z,z@example.be,FAILED"]
    with pytest.raises(DeliveryReportRefused, match="line 5: 5 fields"):
        analyse_report_file(inbox(broken, name="later.csv"), "test", engine, now=NOW)
    assert (counts(engine), diagnoses(engine).keys()) == before


# -- fetched through the POM client ------------------------------------------------------------------------


class FakeClient:
    """The two calls of the POM client the fetch uses."""

    def __init__(self, reports: dict[str, bytes]) -> None:
        self.reports = reports
        self.asked: list[Any] = []

    def delivery_report_batches(self, sent_since: Any) -> list[str]:
        self.asked.append(sent_since)
        return list(self.reports)

    def delivery_report(self, batch: str) -> bytes:
        return self.reports[batch]


def test_reports_fetched_from_pom(engine: Engine, batch: dict[str, Any]) -> None:
    good = ("\r\n".join(report_lines()) + "\r\n").encode()
    client = FakeClient({BATCH: good, "B-broken": b"Batch;Status\r\nB-broken;FAILED\r\n"})
    result = analyse_recent_batches(client, (T0 - timedelta(days=4)).date(), "test", engine=engine, now=NOW)
    assert client.asked == [(T0 - timedelta(days=4)).date()]
    assert [r["batches"][0]["batch"] for r in result["analysed"]] == [BATCH]
    assert list(result["refused"]) == ["B-broken"] and "required column DocumentId" in result["refused"]["B-broken"]
    assert {key: row.diagnosis for key, row in diagnoses(engine).items()} == EXPECTED
    with transaction(engine, readonly=True) as session:
        assert session.scalars(select(DeliveryReport.source)).one() == "pom"
    assert Path(result["analysed"][0]["archived"]).read_bytes() == good
    assert len(list((quarantine_dir() / "pom_reports").glob("B-broken_*.csv.reason.txt"))) == 1


def test_an_empty_report_of_a_fetched_batch_means_nobody_was_tried(engine: Engine, batch: dict[str, Any]) -> None:
    result = analyse_recent_batches(FakeClient({BATCH: (HEADER + "\n").encode()}), T0.date(), "test", engine=engine,
                                    now=NOW)
    (analysed,) = result["analysed"]
    assert analysed["lines"] == 0
    assert set(analysed["summary"]) == {"not_attempted_unexplained", "not_attempted_email_recipient_off",
                                        "not_attempted_copy_per_address_off", "not_attempted_no_email_address"}


def test_the_sending_side_uses_the_same_rule(engine: Engine, batch: dict[str, Any]) -> None:
    with transaction(engine, readonly=True) as session:
        users = batch["users"]
        assert list(intended_recipients(session, users["J"], False)) == ["j1@example.be"]
        assert list(intended_recipients(session, users["K"], False)) == ["k1@example.be"]
        assert list(intended_recipients(session, users["K"], True)) == ["k1@example.be", "k3@example.be"]
        assert session.get(EndUser, users["L"]) is not None
        assert list(intended_recipients(session, users["L"], True)) == []


# -- the DAG ---------------------------------------------------------------------------------------------------


def test_the_dag_analyses_the_inbox(sqlite_url: str, var_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                    airflow_db: None) -> None:
    from include.finance.db import get_engine

    monkeypatch.setenv("INNEN_DB_URL", sqlite_url)
    engine = get_engine(sqlite_url)
    build_batch(engine)
    inbox(report_lines())
    inbox(["Batch;Status", "x;y"], name="broken.csv")
    dag = parsed_dag("pom_delivery_report")
    run = dag.test(run_conf={"as_of": NOW.isoformat()})
    states = {(ti.task_id, ti.map_index): str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state).endswith("failed"), states  # broken.csv failed its task; the good report went through
    assert sorted(state.split(".")[-1] for (task, _), state in states.items() if task == "analyse_file") == [
        "failed", "success"]
    assert states[("fetch_from_pom", -1)].endswith("skipped")
    assert {key: row.diagnosis for key, row in diagnoses(engine).items()} == EXPECTED
    assert (var_dir / "reports" / "pom_delivery" / BATCH / "index.html").is_file()
    assert (var_dir / "archive" / "pom_reports" / "pom-report.csv").is_file()
    assert (var_dir / "quarantine" / "pom_reports" / "broken.csv.reason.txt").is_file()
    shutil.rmtree(var_dir / "reports")


# -- end to end through the POM simulator ----------------------------------------------------------------------

try:
    from include.pom.client import PomClient, PomDocument, PomRecipient
    from sandbox.pom_simulator import (
        MSG_BLACKLISTED,
        MSG_BOUNCE_BLACKLISTED,
        MSG_MAILBOX_FULL,
        MSG_RETRYING,
        MSG_UNSUBSCRIBED,
        RunningSimulator,
    )
    from tests.integration.pom_fixtures import ACCOUNTS, pom_account, pom_server, pom_sim  # noqa: F401

    SIMULATOR = True
except ImportError:  # the POM client and simulator are built elsewhere
    SIMULATOR = False


@pytest.mark.skipif(not SIMULATOR, reason="include.pom.client / sandbox.pom_simulator not available")
def test_through_the_simulator(engine: Engine, var_dir: Path, pom_sim: "RunningSimulator", pom_account: Any) -> None:
    import httpx

    rules = {
        "b@example.be": [["FAILED", MSG_RETRYING, 0], ["DELIVERED", "", 5]],
        "c@example.be": [["FAILED", MSG_MAILBOX_FULL, 0], ["FAILED", MSG_MAILBOX_FULL, 24], ["FAILED", MSG_MAILBOX_FULL, 47]],
        "d@example.be": [["FAILED", MSG_RETRYING, 0]],
        "e@example.be": [["FAILED", MSG_BOUNCE_BLACKLISTED, 0]],
        "f@example.be": [["FAILED", MSG_BLACKLISTED, 0]],
        "g@example.be": [["FAILED", MSG_UNSUBSCRIBED, 0]],
        "i@example.be": [["FAILED", "Message rejected: spam score too high", 0]],
    }
    control = httpx.Client(base_url=pom_sim.base_url, timeout=5)
    for email, outcomes in rules.items():
        control.post("/_sim/delivery-outcomes", json={"email_contains": email, "outcomes": outcomes}).raise_for_status()
    users = build_batch(engine)["users"]
    with transaction(engine) as session:
        documents = []
        for letter, user in users.items():
            recipients = tuple(PomRecipient(f"Ouder {letter}", email)
                               for email in intended_recipients(session, user, letter == "K"))
            if recipients:
                documents.append(PomDocument(f"D-{letter}", recipients))
    with PomClient(pom_account, max_attempts=2) as client:
        control.post("/_sim/clock", json={"now": (T0 - timedelta(days=2)).isoformat()}).raise_for_status()
        client.send_batch("B-earlier", [PomDocument("D-H", (PomRecipient("Ouder H", "h@example.be"),))])
        control.post("/_sim/clock", json={"now": T0.isoformat()}).raise_for_status()
        assert client.send_batch(BATCH, documents) == 11
        control.post("/_sim/clock", json={"now": (T0 + timedelta(hours=30)).isoformat()}).raise_for_status()
        first = analyse_recent_batches(client, T0.date(), "test", engine=engine, now=T0 + timedelta(hours=30))
        control.post("/_sim/clock", json={"now": NOW.isoformat()}).raise_for_status()
        later = analyse_recent_batches(client, T0.date(), "test", engine=engine, now=NOW)
    control.close()
    assert first["refused"] == {} and [r["batches"][0]["batch"] for r in first["analysed"]] == [BATCH]
    assert first["analysed"][0]["summary"]["retrying"] == 2  # Chris and Dina, within their 48 hours
    assert later["analysed"][0]["batches"][0]["replaced"] is True
    assert {key: row.diagnosis for key, row in diagnoses(engine).items()} == {
        ("D-A", "a@example.be"): "delivered",
        ("D-B", "b@example.be"): "delivered",  # after a temporary failure
        ("D-C", "c@example.be"): "given_up",  # three "mailbox full" over 47 hours, 60 hours ago
        ("D-D", "d@example.be"): "given_up",
        ("D-E", "e@example.be"): "rejected_blacklisted",
        ("D-F", "f@example.be"): "blacklisted",
        ("D-G", "g@example.be"): "unsubscribed",
        ("D-H", "h@example.be"): "document_id_used",
        ("D-I", "i@example.be"): "unknown",
        ("D-J", "j1@example.be"): "delivered",
        ("D-J", "j2@example.be"): "not_attempted_email_recipient_off",
        ("D-K", "k1@example.be"): "delivered",
        ("D-K", "k2@example.be"): "not_attempted_copy_per_address_off",
        ("D-K", "k3@example.be"): "delivered",  # on address 3, both flags set: sent
        ("D-L", None): "not_attempted_no_email_address",
    }
    assert diagnoses(engine)[("D-I", "i@example.be")].detail == "'Message rejected: spam score too high'"


@pytest.mark.skipif(not SIMULATOR, reason="include.pom.client / sandbox.pom_simulator not available")
def test_the_dag_fetches_from_pom(sqlite_url: str, var_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                  airflow_db: None, pom_sim: "RunningSimulator", pom_account: Any) -> None:

    import httpx


    engine, documents = _dag_world(monkeypatch, sqlite_url, pom_sim)
    control = httpx.Client(base_url=pom_sim.base_url, timeout=5)
    control.post("/_sim/delivery-outcomes", json={"email_contains": "g@example.be",
                                                  "outcomes": [["FAILED", MSG_UNSUBSCRIBED, 0]]}).raise_for_status()
    control.post("/_sim/clock", json={"now": T0.isoformat()}).raise_for_status()
    with PomClient(pom_account) as client:
        client.send_batch(BATCH, documents)
    control.post("/_sim/clock", json={"now": NOW.isoformat()}).raise_for_status()
    control.close()

    dag = parsed_dag("pom_delivery_report")
    run = dag.test(run_conf={"fetch_days": 3, "as_of": NOW.isoformat()})
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state).endswith("success"), states
    assert states["fetch_from_pom"].endswith("success")
    found = diagnoses(engine)
    assert found[("D-G", "g@example.be")].diagnosis == "unsubscribed"
    assert found[("D-J", "j2@example.be")].diagnosis == "not_attempted_email_recipient_off"
    assert sum(row.diagnosis == "delivered" for row in found.values()) == 11
    assert (var_dir / "reports" / "pom_delivery" / BATCH / "delivered.csv").is_file()
    assert len(list((var_dir / "archive" / "pom_reports").glob(f"{BATCH}_*.csv"))) == 1


def _account(pom_sim: "RunningSimulator", name: str, data: dict[str, Any], **changes: Any) -> Any:
    from include.pom.client import PomAccount

    return PomAccount(**{
        "name": name, "base_url": pom_sim.base_url, "env": data["env"], "username": data["username"],
        "password": data["password"], "sender_id": data["sender_id"], "sender_contract_number": data["sender_contract_number"],
        "callback_secret": data["callback_secret"], "timeout_seconds": 2, **changes})


@pytest.mark.skipif(not SIMULATOR, reason="include.pom.client / sandbox.pom_simulator not available")
def test_reports_are_fetched_from_every_account_that_e_mailed(engine: Engine, var_dir: Path,
                                                              pom_sim: "RunningSimulator") -> None:
    """Seed 003 reads the report of the school's own POM user; a batch goes out through its reference type's account
    (seed 000, 3: several accounts), so its report is fetched from that account, not only from ``default``. An
    account POM refuses is named; the others are read all the same."""
    import httpx

    from include.finance.models import PaymentReferenceType
    from include.pom.accounts import PomClients
    from include.pom.delivery_files import delivery_report_accounts, fetch_delivery_reports

    users = build_batch(engine)["users"]
    with transaction(engine) as session:
        for kind in session.scalars(select(PaymentReferenceType)):
            kind.pom_account = "tickets"  # the school's invoices go out through its own POM user
        documents = [PomDocument(f"D-{letter}", tuple(PomRecipient(letter, e) for e in intended_recipients(
            session, user, letter == "K"))) for letter, user in users.items() if letter != "L"]
    control = httpx.Client(base_url=pom_sim.base_url, timeout=5)
    control.post("/_sim/delivery-outcomes", json={"email_contains": "g@example.be",
                                                  "outcomes": [["FAILED", MSG_UNSUBSCRIBED, 0]]}).raise_for_status()
    control.post("/_sim/clock", json={"now": T0.isoformat()}).raise_for_status()
    tickets = _account(pom_sim, "tickets", ACCOUNTS["tickets"])
    with PomClient(tickets) as client:
        client.send_batch(BATCH, documents)
    control.post("/_sim/clock", json={"now": NOW.isoformat()}).raise_for_status()
    control.close()

    since = T0.date() - timedelta(days=1)
    names = delivery_report_accounts(since, engine)
    assert names == {"default", "tickets"}
    accounts = {"default": _account(pom_sim, "default", ACCOUNTS["prod"], password="wrong"), "tickets": tickets}
    with PomClients(accounts, factory=lambda a: PomClient(a, max_attempts=1)) as clients:
        result = fetch_delivery_reports(clients, names, since, "test", engine=engine, now=NOW)
    assert list(result["failed"]) == ["default"] and result["refused"] == {}
    assert [r["batches"][0]["batch"] for r in result["analysed"]] == [BATCH]
    found = diagnoses(engine)
    assert found[("D-G", "g@example.be")].diagnosis == "unsubscribed"
    assert sum(row.diagnosis == "delivered" for row in found.values()) == 11


def test_a_line_repeated_word_for_word_is_one_attempt(engine: Engine, batch: dict[str, Any]) -> None:
    """A report saved twice into one file (or a portal that repeats a line): the lines are all kept as written,
    but finance must not read that POM tried twice when it tried once."""
    lines = report_lines()
    twice = [*lines, lines[3], lines[4], lines[-1]]  # Bert's one attempt, Chris's first, the unknown document's
    result = analyse_report_file(inbox(twice), "test", engine, now=NOW)
    found = diagnoses(engine)
    assert {key: row.diagnosis for key, row in found.items()} == EXPECTED
    assert result["lines"] == 18
    assert (found[("D-B", "b@example.be")].attempts, found[("D-C", "c@example.be")].attempts) == (1, 2)
    assert found[("D-UNKNOWN", "x@example.be")].attempts == 1


@pytest.mark.skipif(not SIMULATOR, reason="include.pom.client / sandbox.pom_simulator not available")
def test_a_refused_batch_fails_the_fetch_and_the_others_action_lists_stay_on_the_runs_reports(
        sqlite_url: str, var_dir: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: None,
        pom_sim: "RunningSimulator", pom_account: Any) -> None:
    """POM's report of one batch refused (cut off), another analysed: the task fails naming the refused batch, as
    before, and the analysed batch's action list is still on the run's Reports tab (a failed task returned nothing,
    so the run showed no report at all)."""

    import httpx
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from include.run_reports import reports_of

    engine, documents = _dag_world(monkeypatch, sqlite_url, pom_sim)
    control = httpx.Client(base_url=pom_sim.base_url, timeout=5)
    control.post("/_sim/clock", json={"now": T0.isoformat()}).raise_for_status()
    with PomClient(pom_account) as client:
        client.send_batch(BATCH, documents)
        client.send_batch("B-cut", documents[:1])
    control.post("/_sim/clock", json={"now": NOW.isoformat()}).raise_for_status()
    control.post("/_sim/faults", json={"kind": "malformed", "path_contains": "delivery-reports/B-cut",
                                       "times": None}).raise_for_status()
    control.close()

    run = parsed_dag("pom_delivery_report").test(run_conf={"fetch_days": 3, "as_of": NOW.isoformat()})
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states["fetch_from_pom"].endswith("failed"), states
    assert (var_dir / "reports" / "pom_delivery" / BATCH / "index.html").is_file()
    with create_session() as session:
        values = {row.task_id: XComModel.deserialize_value(row) for row in session.execute(
            select(XComModel.task_id, XComModel.value).where(
                XComModel.dag_id == "pom_delivery_report", XComModel.run_id == run.run_id,
                XComModel.key == "return_value"))}
    assert list(values["fetch_from_pom"]["refused"]) == ["B-cut"]
    pages = [report.html_path for report in reports_of("pom_delivery_report", values)]
    assert f"pom_delivery/{BATCH}/index.html" in pages


def _dag_world(monkeypatch: pytest.MonkeyPatch, sqlite_url: str, pom_sim: "RunningSimulator") -> tuple[Engine, list[Any]]:
    """The DAG's database and its Connection `pom_default` (the simulator's prod account), and the batch's
    documents as the sending side hands them to POM."""
    import json

    from include.finance.db import get_engine

    account = ACCOUNTS["prod"]
    monkeypatch.setenv("INNEN_DB_URL", sqlite_url)
    monkeypatch.setenv("AIRFLOW_CONN_POM_DEFAULT", json.dumps({
        "conn_type": "http", "host": pom_sim.base_url, "login": account["username"], "password": account["password"],
        "extra": {"env": "prod", "sender_id": account["sender_id"],
                  "sender_contract_number": account["sender_contract_number"],
                  "callback_secret": account["callback_secret"]},
    }))
    engine = get_engine(sqlite_url)
    users = build_batch(engine)["users"]
    with transaction(engine) as session:
        documents = [PomDocument(f"D-{letter}", tuple(PomRecipient(letter, e) for e in intended_recipients(
            session, user, letter == "K"))) for letter, user in users.items() if letter != "L"]
    return engine, documents
