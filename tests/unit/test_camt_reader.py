"""The camt reader on a real third-party statement: values checked against the file's own text."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from include.sepa.camt import read_camt
from sandbox.camt_writer import Entry, Tx, write_camt053

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "iso20022"
DAY = date(2026, 11, 24)


def test_a_german_statement_with_a_batch_entry() -> None:
    camt = read_camt(SAMPLES / "viafintech-camt_parser__053_valid_example.xml")
    assert (camt.version, camt.message_id) == ("camt.053.001.02", "053D2013-12-27T22:05:03.0N130000005")
    (statement,) = camt.statements
    assert (statement.statement_id, statement.electronic_seq) == ("0352C5320131227220503", 130000005)
    assert (statement.opening_balance, statement.closing_balance) == (Decimal("33.06"), Decimal("23.06"))
    assert statement.entries == 4
    # Four entries: -2.00, -3.00, +1.00, and a batch of -6.00 split into its two transactions.
    assert [(line.entry_index, line.amount, line.credit) for line in statement.lines] == [
        (1, Decimal("2.00"), False), (2, Decimal("3.00"), False), (3, Decimal("1.00"), True),
        (4, Decimal("3.50"), False), (4, Decimal("2.50"), False),
    ]
    assert statement.booked_movement() == Decimal("-10.00")  # 33.06 - 10.00 = 23.06
    first, second = statement.lines[0], statement.lines[1]
    assert (first.end_to_end_id, first.tx_servicer_ref, first.entry_servicer_ref) == (
        "EndToEndReference", "BankReference", "2013122710583450000")
    assert second.end_to_end_id is None  # NOTPROVIDED
    assert statement.lines[3].end_to_end_id == "STZV-EtE27122013-11:02-1"
    assert statement.lines[3].unstructured.startswith("Sammelueberwseisung 2. Zahlung")


def _as_version(sample: str, old: str, new: str, tmp_path: Path) -> Path:
    content = (SAMPLES / sample).read_bytes()
    assert f"xsd:{old}".encode() in content
    copy = tmp_path / f"{new}.xml"
    copy.write_bytes(content.replace(f"xsd:{old}".encode(), f"xsd:{new}".encode()))
    return copy


def _lines(camt) -> list[tuple]:  # type: ignore[no-untyped-def]
    return [(s.statement_id, s.opening_balance, s.closing_balance,
             [(line.entry_index, line.amount, line.credit, line.end_to_end_id, line.counterparty_iban,
               line.structured_refs, line.unstructured, line.booking_date) for line in s.lines])
            for s in camt.statements]



@pytest.mark.parametrize(("sample", "old", "new"), [
    ("viafintech-camt_parser__053_valid_example.xml", "camt.053.001.02", "camt.053.001.03"),
    ("viafintech-camt_parser__053_valid_example.xml", "camt.053.001.02", "camt.053.001.06"),
    ("viafintech-camt_parser__053_valid_example_v8.xml", "camt.053.001.08", "camt.053.001.10"),
    ("viafintech-camt_parser__053_valid_example_v8.xml", "camt.053.001.08", "camt.053.001.13"),
    ("genkgo-camt__camt054.v2.xml", "camt.054.001.02", "camt.054.001.08"),
])
def test_a_bank_on_a_newer_version_is_read_as_the_version_it_came_from(sample, old, new, tmp_path) -> None:
    # The elements we read keep their names from .02 to .13: a bank moving on must not stop its imports.
    original, moved = read_camt(SAMPLES / sample), read_camt(_as_version(sample, old, new, tmp_path))
    assert (original.version, moved.version) == (old, new)
    assert moved.kind == original.kind and _lines(moved) == _lines(original)
    assert any(statement.lines for statement in moved.statements)


@pytest.mark.parametrize(("indicator", "reversal"), [
    ("<RvslInd>true</RvslInd>", True),
    ("<RvslInd>1</RvslInd>", True),  # xs:boolean: some banks write 1 and 0
    ("<RvslInd>false</RvslInd>", False),
    ("<RvslInd>0</RvslInd>", False),
    ("", False),
])
def test_the_reversal_indicator_is_an_xml_boolean(indicator, reversal, tmp_path) -> None:
    path = tmp_path / "reversal.xml"
    write_camt053(path, account_iban="BE68539007547034", statement_id="2026-330", electronic_seq=330,
                  created_at=datetime(2026, 11, 25, 6, tzinfo=timezone.utc), from_date=DAY, to_date=DAY,
                  opening_balance=Decimal("100.00"),
                  entries=[Entry(False, DAY, (Tx(Decimal("30.00"), end_to_end_id="PAYER-1"),), reversal=True)])
    content = path.read_bytes()
    assert content.count(b"<RvslInd>true</RvslInd>") == 1
    path.write_bytes(content.replace(b"<RvslInd>true</RvslInd>", indicator.encode()))
    (line,) = read_camt(path).statements[0].lines
    assert (line.reversal, line.credit, line.amount) == (reversal, False, Decimal("30.00"))


@pytest.mark.parametrize(("message_page", "statement_page", "page"), [
    ("<MsgPgntn><PgNb>1</PgNb><LastPgInd>true</LastPgInd></MsgPgntn>", "", 1),
    ("<MsgPgntn><PgNb>3</PgNb><LastPgInd>false</LastPgInd></MsgPgntn>", "", 3),
    ("", "", None),
    ("<MsgPgntn><PgNb>1</PgNb><LastPgInd>true</LastPgInd></MsgPgntn>",
     "<StmtPgntn><PgNb>2</PgNb><LastPgInd>true</LastPgInd></StmtPgntn>", 2),  # the statement's own page first
])
def test_the_page_of_a_statement_in_pages(message_page, statement_page, page, tmp_path) -> None:
    path = tmp_path / "page.xml"
    write_camt053(path, account_iban="BE68539007547034", statement_id="2026-330", electronic_seq=330,
                  created_at=datetime(2026, 11, 25, 6, tzinfo=timezone.utc), from_date=DAY, to_date=DAY,
                  opening_balance=Decimal("100.00"), entries=[Entry(True, DAY, (Tx(Decimal("30.00")),))])
    content = path.read_bytes().replace(b"<MsgPgntn><PgNb>1</PgNb><LastPgInd>true</LastPgInd></MsgPgntn>",
                                        message_page.encode())
    content = re.sub(rb"(<Stmt>\s*<Id>[^<]*</Id>)", lambda m: m.group(1) + statement_page.encode(), content)
    path.write_bytes(content)
    assert read_camt(path).statements[0].page == page


@pytest.mark.parametrize(("status", "read"), [
    ("<Sts><Cd>BOOK</Cd></Sts>", "BOOK"),
    ("<Sts><Prtry>PDNG</Prtry></Sts>", "PDNG"),  # camt.053.001.09 on: a status may be proprietary only
    ("<Sts><Prtry>BOOK</Prtry></Sts>", "BOOK"),
    ("", "BOOK"),  # no status: booked
])
def test_a_proprietary_status_is_the_entrys_status(status, read, tmp_path) -> None:
    path = tmp_path / "status.xml"
    write_camt053(path, account_iban="BE68539007547034", statement_id="2026-330", electronic_seq=330,
                  created_at=datetime(2026, 11, 25, 6, tzinfo=timezone.utc), from_date=DAY, to_date=DAY,
                  opening_balance=Decimal("100.00"), entries=[Entry(True, DAY, (Tx(Decimal("30.00")),))],
                  version="camt.053.001.08")
    content = path.read_bytes()
    assert content.count(b"<Sts><Cd>BOOK</Cd></Sts>") == 1
    path.write_bytes(content.replace(b"<Sts><Cd>BOOK</Cd></Sts>", status.encode()))
    (line,) = read_camt(path).statements[0].lines
    assert line.status == read
