"""The camt.053 writer: every file it writes here is validated against its XSD and read back with lxml.

Expected values are computed in the tests from the data they pass in (cents
as integers), never taken from the writer.
"""

from __future__ import annotations

import hashlib
import time
import tracemalloc
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import pytest
from lxml import etree
from schwifty import IBAN

from include.errors import BankFileError
from include.finance.reference_numbers import format_ogm, ogm, rf
from include.sepa.xsd import namespace, schema
from include.xml_safety import safe_parser
from sandbox import camt_writer
from sandbox.camt_writer import (
    SCT_RECEIVED,
    SCT_SENT,
    SDD_COLLECTED,
    SDD_RETURNED,
    VERSIONS,
    Entry,
    Statement,
    Tx,
    write_camt053,
    write_camt053_multi,
)

ACCOUNT = "BE19068240219012"
ACCOUNT_BIC = "GKCCBEBB"
CREATED = datetime(2026, 11, 24, 6, 30, 5)
DAY = date(2026, 11, 23)
AWKWARD_NAME = "Zoë D'Hondt & Søn <Liège>"


@lru_cache(maxsize=None)
def _iban(n: int) -> str:
    return str(IBAN.generate("BE", "734", f"{n:07d}"))


def _eur(cents: int) -> Decimal:
    return Decimal(cents) / 100


class Doc:
    """A written file, validated whole against its schema, with namespace-free paths ("Stmt/Bal")."""

    def __init__(self, path: Path, version: str) -> None:
        self.version = version
        self.ns = {"c": namespace(version)}
        tree = etree.parse(str(path), safe_parser())
        schema(version).assertValid(tree)
        self.root = tree.getroot()
        assert etree.QName(self.root).namespace == namespace(version)

    def _path(self, path: str) -> str:
        return "/".join(f"c:{step}" for step in path.split("/"))

    def all(self, path: str, element: etree._Element | None = None) -> list[etree._Element]:
        return (self.root if element is None else element).findall(self._path(path), self.ns)

    def one(self, path: str, element: etree._Element | None = None) -> etree._Element:
        found = self.all(path, element)
        assert len(found) == 1, (path, len(found))
        return found[0]

    def text(self, path: str, element: etree._Element | None = None) -> str | None:
        return (self.root if element is None else element).findtext(self._path(path), namespaces=self.ns)

    def texts(self, path: str, element: etree._Element | None = None) -> list[str]:
        return [e.text for e in self.all(path, element)]

    # What differs between versions, read the way each schema says.
    def status(self, entry: etree._Element) -> str | None:
        return self.text("Sts/Cd" if self.version.endswith(".08") else "Sts", entry)

    def party_name(self, tx: etree._Element, role: str) -> str | None:
        return self.text(f"RltdPties/{role}/Pty/Nm" if self.version.endswith(".08") else f"RltdPties/{role}/Nm", tx)

    def bic(self, element: etree._Element, path: str) -> str | None:
        return self.text(f"{path}/FinInstnId/{'BIC' if self.version.endswith('.02') else 'BICFI'}", element)

    def tx_amount(self, tx: etree._Element) -> Decimal:
        if self.version.endswith(".02"):
            assert self.all("Amt", tx) == []
            return Decimal(self.text("AmtDtls/TxAmt/Amt", tx))
        return Decimal(self.text("Amt", tx))

    def balances(self, statement: etree._Element) -> dict[str, tuple[Decimal, str, str]]:
        """code -> (signed amount, raw amount text, date)."""
        out = {}
        for bal in self.all("Bal", statement):
            raw = self.text("Amt", bal)
            assert self.one("Amt", bal).get("Ccy") == "EUR"
            sign = {"CRDT": 1, "DBIT": -1}[self.text("CdtDbtInd", bal)]
            out[self.text("Tp/CdOrPrtry/Cd", bal)] = (sign * Decimal(raw), raw, self.text("Dt/Dt", bal))
        return out

    def summary(self, statement: etree._Element) -> dict[str, object]:
        s = self.one("TxsSummry", statement)
        if self.version.endswith(".02"):
            net = Decimal(self.text("TtlNtries/TtlNetNtryAmt", s)), self.text("TtlNtries/CdtDbtInd", s)
        else:
            net = Decimal(self.text("TtlNtries/TtlNetNtry/Amt", s)), self.text("TtlNtries/TtlNetNtry/CdtDbtInd", s)
        return {
            "count": int(self.text("TtlNtries/NbOfNtries", s)), "sum": Decimal(self.text("TtlNtries/Sum", s)),
            "net": net[0] if net[1] == "CRDT" else -net[0],
            "credits": (int(self.text("TtlCdtNtries/NbOfNtries", s)), Decimal(self.text("TtlCdtNtries/Sum", s))),
            "debits": (int(self.text("TtlDbtNtries/NbOfNtries", s)), Decimal(self.text("TtlDbtNtries/Sum", s))),
        }


def _write(path: Path, entries: list[Entry], version: str, opening: Decimal = Decimal("1000.00"), **kwargs: object):
    values: dict[str, object] = {
        "account_iban": ACCOUNT, "statement_id": "2026-327", "electronic_seq": 327, "created_at": CREATED,
        "from_date": DAY, "to_date": DAY, "opening_balance": opening, "entries": entries, "version": version,
    }
    values.update(kwargs)
    return write_camt053(path, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_belgian_statement_reads_back_field_by_field(tmp_path, version) -> None:
    ogm_ref, rf_ref = ogm("062", 1), rf("71", 2)
    entries = [
        Entry(credit=True, booking_date=DAY, value_date=DAY - timedelta(days=1), account_servicer_ref="2026112300001",
              entry_ref="N1", transactions=(Tx(_eur(2500), end_to_end_id="fp:BIB:1", account_servicer_ref="TX-1",
                                               counterparty_name="Zoë D'Hondt & Søn", counterparty_iban=_iban(1),
                                               counterparty_bic="KREDBEBB", structured_reference=ogm_ref),)),
        Entry(credit=True, booking_date=DAY, transactions=(
            Tx(_eur(1999), counterparty_name="Société <Générale> Liège", counterparty_iban="be71 0961 2345 6769",
               structured_reference=rf_ref, unstructured="Factuur 2026/11 – lidgeld"),)),
        Entry(credit=True, booking_date=DAY, transactions=(
            Tx(_eur(4000), counterparty_iban=_iban(3), unstructured="+++123/4567/89002+++"),)),
        Entry(credit=False, booking_date=DAY, bank_tx_code=SCT_SENT, account_servicer_ref="2026112300004",
              transactions=(Tx(_eur(750), end_to_end_id="REFUND-4", counterparty_name="Jan Peeters",
                               counterparty_iban=_iban(4), counterparty_bic="GEBABEBB", unstructured="Terugbetaling"),)),
    ]
    written = _write(tmp_path / "stmt.xml", entries, version, account_bic=ACCOUNT_BIC, owner_name="Bibliothèque de Liège",
                     legal_seq=27, message_id="MSG-2026-327")
    doc = Doc(tmp_path / "stmt.xml", version)

    assert doc.text("BkToCstmrStmt/GrpHdr/MsgId") == "MSG-2026-327"
    assert doc.text("BkToCstmrStmt/GrpHdr/CreDtTm") == "2026-11-24T06:30:05"
    (stmt,) = doc.all("BkToCstmrStmt/Stmt")
    assert [doc.text(p, stmt) for p in ("Id", "ElctrncSeqNb", "LglSeqNb", "CreDtTm")] == [
        "2026-327", "327", "27", "2026-11-24T06:30:05"]
    assert doc.text("FrToDt/FrDtTm", stmt) == "2026-11-23T00:00:00"
    assert doc.text("FrToDt/ToDtTm", stmt) == "2026-11-23T23:59:59"
    assert doc.all("CpyDplctInd", stmt) == []
    assert doc.text("Acct/Id/IBAN", stmt) == ACCOUNT and doc.text("Acct/Ccy", stmt) == "EUR"
    assert doc.text("Acct/Ownr/Nm", stmt) == "Bibliothèque de Liège"
    assert doc.bic(stmt, "Acct/Svcr") == ACCOUNT_BIC

    # 1000.00 + 25.00 + 19.99 + 40.00 - 7.50
    balances = doc.balances(stmt)
    assert balances == {"OPBD": (Decimal("1000.00"), "1000.00", "2026-11-23"),
                        "CLBD": (Decimal("1077.49"), "1077.49", "2026-11-23")}
    assert (written.opening_balance, written.closing_balance) == (Decimal("1000.00"), Decimal("1077.49"))
    assert doc.summary(stmt) == {"count": 4, "sum": Decimal("92.49"), "net": Decimal("77.49"),
                                 "credits": (3, Decimal("84.99")), "debits": (1, Decimal("7.50"))}

    ntries = doc.all("Ntry", stmt)
    assert [doc.text("Amt", n) for n in ntries] == ["25.00", "19.99", "40.00", "7.50"]
    assert all(doc.one("Amt", n).get("Ccy") == "EUR" for n in ntries)
    assert [doc.text("CdtDbtInd", n) for n in ntries] == ["CRDT", "CRDT", "CRDT", "DBIT"]
    assert [doc.status(n) for n in ntries] == ["BOOK"] * 4
    assert [doc.text("BookgDt/Dt", n) for n in ntries] == ["2026-11-23"] * 4
    assert [doc.text("ValDt/Dt", n) for n in ntries] == ["2026-11-22"] + ["2026-11-23"] * 3
    assert [doc.text("AcctSvcrRef", n) for n in ntries] == ["2026112300001", None, None, "2026112300004"]
    assert [doc.text("NtryRef", n) for n in ntries] == ["N1", None, None, None]
    assert [doc.all("RvslInd", n) for n in ntries] == [[]] * 4
    codes = [tuple(doc.text(p, n) for p in ("BkTxCd/Domn/Cd", "BkTxCd/Domn/Fmly/Cd", "BkTxCd/Domn/Fmly/SubFmlyCd"))
             for n in ntries]
    assert codes == [SCT_RECEIVED] * 3 + [SCT_SENT]
    assert all(doc.all("NtryDtls/Btch", n) == [] for n in ntries)

    txs = [doc.one("NtryDtls/TxDtls", n) for n in ntries]
    assert [doc.tx_amount(t) for t in txs] == [Decimal("25.00"), Decimal("19.99"), Decimal("40.00"), Decimal("7.50")]
    if not version.endswith(".02"):
        assert [doc.text("CdtDbtInd", t) for t in txs] == ["CRDT", "CRDT", "CRDT", "DBIT"]
    assert [doc.text("Refs/EndToEndId", t) for t in txs] == ["fp:BIB:1", None, None, "REFUND-4"]
    assert doc.text("Refs/AcctSvcrRef", txs[0]) == "TX-1"
    # The counterparty is the debtor of a credit and the creditor of a debit.
    assert [doc.party_name(t, "Dbtr") for t in txs] == ["Zoë D'Hondt & Søn", "Société <Générale> Liège", None, None]
    assert [doc.text("RltdPties/DbtrAcct/Id/IBAN", t) for t in txs] == [_iban(1), "BE71096123456769", _iban(3), None]
    assert doc.party_name(txs[3], "Cdtr") == "Jan Peeters"
    assert doc.text("RltdPties/CdtrAcct/Id/IBAN", txs[3]) == _iban(4)
    assert [doc.all("RltdPties/Cdtr", t) for t in txs[:3]] == [[]] * 3
    assert doc.bic(txs[0], "RltdAgts/DbtrAgt") == "KREDBEBB"
    assert doc.bic(txs[3], "RltdAgts/CdtrAgt") == "GEBABEBB"
    assert doc.all("RltdAgts", txs[1]) == doc.all("RltdAgts", txs[2]) == []
    # Structured: SCOR with BBA for the OGM, ISO for the RF reference, the value as given.
    assert [doc.text("RmtInf/Strd/CdtrRefInf/Ref", t) for t in txs] == [ogm_ref, rf_ref, None, None]
    assert [doc.text("RmtInf/Strd/CdtrRefInf/Tp/Issr", t) for t in txs] == ["BBA", "ISO", None, None]
    assert doc.texts("RmtInf/Strd/CdtrRefInf/Tp/CdOrPrtry/Cd", txs[0]) == ["SCOR"]
    assert [doc.texts("RmtInf/Ustrd", t) for t in txs] == [
        [], ["Factuur 2026/11 – lidgeld"], ["+++123/4567/89002+++"], ["Terugbetaling"]]
    assert all(doc.all("RtrInf", t) == [] for t in txs)

    assert (written.entries, written.transactions, written.statement_id) == (4, 4, "2026-327")
    data = (tmp_path / "stmt.xml").read_bytes()
    assert written.sha256 == hashlib.sha256(data).hexdigest() and written.size == len(data)
    assert written.path == str(tmp_path / "stmt.xml")


@pytest.mark.parametrize("version", VERSIONS)
def test_a_collection_batch_and_its_returns(tmp_path, version) -> None:
    """A Core collection credited as one batch entry, then returns debited (batched and single) with their reasons."""
    collected = [(1234, "MND-1"), (5000, "MND-2"), (99, "MND-3")]
    returned = [(5000, "MND-2", "AM04"), (99, "MND-3", "MD01")]
    late_return = (1234, "MND-1", "MS02")
    batch = Entry(credit=True, booking_date=DAY, bank_tx_code=SDD_COLLECTED, payment_info_id="fj:BIB:7/RCUR",
                  account_servicer_ref="COLL-7", transactions=tuple(
                      Tx(_eur(c), end_to_end_id=f"fp:BIB:{m}", mandate_id=m, counterparty_name=f"Debtor {m}",
                         counterparty_iban=_iban(n), counterparty_bic="KREDBEBB", structured_reference=ogm("062", n))
                      for n, (c, m) in enumerate(collected, 1)))
    returns = Entry(credit=False, booking_date=DAY + timedelta(days=1), bank_tx_code=SDD_RETURNED, transactions=tuple(
        Tx(_eur(c), end_to_end_id=f"fp:BIB:{m}", mandate_id=m, counterparty_name="Bibliothèque", return_reason=r)
        for c, m, r in returned))
    single = Entry(credit=False, booking_date=DAY + timedelta(days=2), bank_tx_code=SDD_RETURNED,
                   transactions=(Tx(_eur(late_return[0]), end_to_end_id=f"fp:BIB:{late_return[1]}",
                                    return_reason=late_return[2]),))
    opening_cents = 10_000
    written = _write(tmp_path / "sdd.xml", [batch, returns, single], version, opening=_eur(opening_cents),
                     to_date=DAY + timedelta(days=2))
    doc = Doc(tmp_path / "sdd.xml", version)
    (stmt,) = doc.all("BkToCstmrStmt/Stmt")
    ntries = doc.all("Ntry", stmt)

    collected_cents = sum(c for c, _ in collected)
    returned_cents = sum(c for c, _, _ in returned)
    assert [doc.text("Amt", n) for n in ntries] == [
        f"{_eur(collected_cents):.2f}", f"{_eur(returned_cents):.2f}", f"{_eur(late_return[0]):.2f}"]
    assert [doc.text("CdtDbtInd", n) for n in ntries] == ["CRDT", "DBIT", "DBIT"]
    assert doc.text("BkTxCd/Domn/Fmly/SubFmlyCd", ntries[0]) == "ESDD"
    assert doc.text("BkTxCd/Domn/Fmly/SubFmlyCd", ntries[1]) == "UPDD"

    # Batch entries carry Btch with the count and total; a single transaction does not.
    btch = doc.one("NtryDtls/Btch", ntries[0])
    assert doc.text("PmtInfId", btch) == "fj:BIB:7/RCUR"
    assert (doc.text("NbOfTxs", btch), doc.text("TtlAmt", btch), doc.text("CdtDbtInd", btch)) == (
        "3", f"{_eur(collected_cents):.2f}", "CRDT")
    assert doc.text("NtryDtls/Btch/NbOfTxs", ntries[1]) == "2"
    assert doc.all("NtryDtls/Btch", ntries[2]) == []

    credited = doc.all("NtryDtls/TxDtls", ntries[0])
    assert [doc.tx_amount(t) for t in credited] == [_eur(c) for c, _ in collected]
    assert [doc.text("Refs/MndtId", t) for t in credited] == [m for _, m in collected]
    assert [doc.party_name(t, "Dbtr") for t in credited] == [f"Debtor {m}" for _, m in collected]
    assert [doc.text("RmtInf/Strd/CdtrRefInf/Ref", t) for t in credited] == [ogm("062", n) for n in (1, 2, 3)]
    assert all(doc.all("RtrInf", t) == [] for t in credited)

    debited = doc.all("NtryDtls/TxDtls", ntries[1]) + doc.all("NtryDtls/TxDtls", ntries[2])
    assert [doc.tx_amount(t) for t in debited] == [_eur(c) for c, _, _ in [*returned, late_return]]
    assert [doc.text("RtrInf/Rsn/Cd", t) for t in debited] == ["AM04", "MD01", "MS02"]
    assert [doc.text("Refs/EndToEndId", t) for t in debited] == ["fp:BIB:MND-2", "fp:BIB:MND-3", "fp:BIB:MND-1"]
    assert [doc.party_name(t, "Cdtr") for t in debited] == ["Bibliothèque", "Bibliothèque", None]

    closing = _eur(opening_cents + collected_cents - returned_cents - late_return[0])
    assert doc.balances(stmt)["CLBD"] == (closing, f"{closing:.2f}", "2026-11-25")
    assert written.closing_balance == closing
    assert (written.entries, written.transactions) == (3, 6)
    assert doc.summary(stmt)["credits"] == (1, _eur(collected_cents))
    assert doc.summary(stmt)["debits"] == (2, _eur(returned_cents + late_return[0]))


@pytest.mark.parametrize("version", VERSIONS)
def test_a_reversal_counts_by_its_own_direction_and_pending_entries_do_not_count(tmp_path, version) -> None:
    entries = [
        Entry(credit=True, booking_date=DAY, transactions=(Tx(Decimal("120.00"), end_to_end_id="E-1"),)),
        Entry(credit=False, booking_date=DAY, reversal=True, transactions=(Tx(Decimal("120.00"), end_to_end_id="E-1"),)),
        Entry(credit=True, booking_date=DAY, status="PDNG", transactions=(Tx(Decimal("55.00")),)),
        Entry(credit=True, booking_date=DAY, status="INFO", transactions=(Tx(Decimal("1.00")),)),
        Entry(credit=True, booking_date=DAY, transactions=(Tx(Decimal("30.10")),)),
    ]
    written = _write(tmp_path / "rev.xml", entries, version, opening=Decimal("5.00"))
    doc = Doc(tmp_path / "rev.xml", version)
    (stmt,) = doc.all("BkToCstmrStmt/Stmt")
    ntries = doc.all("Ntry", stmt)
    assert [doc.texts("RvslInd", n) for n in ntries] == [[], ["true"], [], [], []]
    assert [doc.text("CdtDbtInd", n) for n in ntries] == ["CRDT", "DBIT", "CRDT", "CRDT", "CRDT"]
    assert [doc.status(n) for n in ntries] == ["BOOK", "BOOK", "PDNG", "INFO", "BOOK"]
    # 5.00 + 120.00 - 120.00 + 30.10; the pending and information-only entries are not booked.
    assert doc.balances(stmt)["CLBD"][0] == written.closing_balance == Decimal("35.10")
    # The summary counts every entry reported.
    assert doc.summary(stmt)["count"] == 5 and doc.summary(stmt)["sum"] == Decimal("326.10")


@pytest.mark.parametrize("version", ["camt.053.001.02", "camt.053.001.08"])
@pytest.mark.parametrize(
    ("opening", "moves", "closing_text", "closing_indicator"),
    [
        ("-250.75", [(True, "100.00")], "150.75", "DBIT"),  # still overdrawn
        ("-250.75", [(True, "300.00"), (False, "0.25")], "49.00", "CRDT"),  # back above zero
        ("-0.01", [(True, "0.01")], "0.00", "CRDT"),  # zero is a credit balance
        ("10.00", [(False, "10.01")], "0.01", "DBIT"),
    ],
)
def test_negative_balances_are_positive_amounts_with_a_debit_indicator(
    tmp_path, version, opening, moves, closing_text, closing_indicator
) -> None:
    entries = [Entry(credit=c, booking_date=DAY, transactions=(Tx(Decimal(a)),)) for c, a in moves]
    written = _write(tmp_path / "neg.xml", entries, version, opening=Decimal(opening))
    doc = Doc(tmp_path / "neg.xml", version)
    bals = {doc.text("Tp/CdOrPrtry/Cd", b): (doc.text("Amt", b), doc.text("CdtDbtInd", b))
            for b in doc.all("BkToCstmrStmt/Stmt/Bal")}
    assert bals["OPBD"] == (opening.lstrip("-"), "DBIT" if opening.startswith("-") else "CRDT")
    assert bals["CLBD"] == (closing_text, closing_indicator)
    signed = Decimal(closing_text) * (-1 if closing_indicator == "DBIT" else 1)
    expected = Decimal(opening) + sum((Decimal(a) if c else -Decimal(a) for c, a in moves), Decimal(0))
    assert signed == expected == written.closing_balance
    assert written.opening_balance == Decimal(opening)


@pytest.mark.parametrize("version", ["camt.053.001.02", "camt.053.001.08"])
def test_a_given_closing_balance_is_written_even_when_wrong(tmp_path, version) -> None:
    """Tests of the importer's balance check need a statement whose balances do not add up."""
    entries = [Entry(credit=True, booking_date=DAY, transactions=(Tx(Decimal("10.00")),))]
    written = _write(tmp_path / "wrong.xml", entries, version, opening=Decimal("100.00"),
                     closing_balance=Decimal("-999.99"))
    doc = Doc(tmp_path / "wrong.xml", version)
    (stmt,) = doc.all("BkToCstmrStmt/Stmt")
    assert doc.balances(stmt) == {"OPBD": (Decimal("100.00"), "100.00", "2026-11-23"),
                                  "CLBD": (Decimal("-999.99"), "999.99", "2026-11-23")}
    assert written.closing_balance == Decimal("-999.99")
    assert doc.summary(stmt)["net"] == Decimal("10.00")  # the entries, as they are


@pytest.mark.parametrize("copy", [None, "DUPL", "CODU", "COPY"])
@pytest.mark.parametrize("version", VERSIONS)
def test_the_copy_indicator(tmp_path, version, copy) -> None:
    entries = [Entry(credit=True, booking_date=DAY, transactions=(Tx(Decimal("1.00")),))]
    _write(tmp_path / "copy.xml", entries, version, copy=copy)
    doc = Doc(tmp_path / "copy.xml", version)
    assert doc.texts("BkToCstmrStmt/Stmt/CpyDplctInd") == ([copy] if copy else [])


def test_an_unknown_copy_indicator_is_refused(tmp_path) -> None:
    with pytest.raises(BankFileError, match="copy indicator 'ORIG'"):
        _write(tmp_path / "copy.xml", [], "camt.053.001.02", copy="ORIG")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("version", ["camt.053.001.02", "camt.053.001.08"])
def test_several_statements_in_one_file(tmp_path, version) -> None:
    second_account = _iban(77)
    first = Statement(
        account_iban=ACCOUNT, statement_id="2026-327", electronic_seq=327, from_date=DAY, to_date=DAY,
        opening_balance=Decimal("-12.50"), account_bic=ACCOUNT_BIC, owner_name="Bibliothèque de Liège",
        entries=[Entry(credit=True, booking_date=DAY, transactions=(Tx(Decimal("20.00")), Tx(Decimal("2.50")))),
                 Entry(credit=False, booking_date=DAY, transactions=(Tx(Decimal("3.00")),))],
    )
    second = {  # a mapping of the same fields works too
        "account_iban": second_account, "statement_id": "2026-041", "electronic_seq": 41, "from_date": DAY,
        "to_date": DAY + timedelta(days=1), "opening_balance": Decimal("500.00"), "legal_seq": 41, "copy": "DUPL",
        "created_at": datetime(2026, 11, 24, 7, 0, tzinfo=timezone(timedelta(hours=1))),
        "entries": [Entry(credit=False, booking_date=DAY, transactions=(Tx(Decimal("499.99")),))],
    }
    empty = Statement(account_iban=ACCOUNT, statement_id="2026-328", electronic_seq=328, from_date=DAY,
                      to_date=DAY, opening_balance=Decimal("7.00"), entries=[])
    files = write_camt053_multi(tmp_path / "multi.xml", [first, second, empty], message_id="MSG-7",
                                created_at=CREATED, version=version)
    doc = Doc(tmp_path / "multi.xml", version)
    assert doc.texts("BkToCstmrStmt/GrpHdr/MsgId") == ["MSG-7"]
    stmts = doc.all("BkToCstmrStmt/Stmt")
    assert [doc.text("Id", s) for s in stmts] == ["2026-327", "2026-041", "2026-328"]
    assert [doc.text("Acct/Id/IBAN", s) for s in stmts] == [ACCOUNT, second_account, ACCOUNT]
    assert [doc.text("ElctrncSeqNb", s) for s in stmts] == ["327", "41", "328"]
    assert [doc.texts("CpyDplctInd", s) for s in stmts] == [[], ["DUPL"], []]
    assert [doc.text("CreDtTm", s) for s in stmts] == [
        "2026-11-24T06:30:05", "2026-11-24T07:00:00+01:00", "2026-11-24T06:30:05"]
    assert doc.text("FrToDt/ToDtTm", stmts[1]) == "2026-11-24T23:59:59+01:00"
    assert [len(doc.all("Ntry", s)) for s in stmts] == [2, 1, 0]
    assert [len(doc.all("Ntry/NtryDtls/TxDtls", s)) for s in stmts] == [3, 1, 0]
    assert [doc.balances(s)["OPBD"][0] for s in stmts] == [Decimal("-12.50"), Decimal("500.00"), Decimal("7.00")]
    # -12.50 + 22.50 - 3.00; 500.00 - 499.99; no entries
    closings = [Decimal("7.00"), Decimal("0.01"), Decimal("7.00")]
    assert [doc.balances(s)["CLBD"][0] for s in stmts] == closings
    assert doc.summary(stmts[2]) == {"count": 0, "sum": Decimal("0.00"), "net": Decimal("0.00"),
                                     "credits": (0, Decimal("0.00")), "debits": (0, Decimal("0.00"))}

    assert [f.statement_id for f in files] == ["2026-327", "2026-041", "2026-328"]
    assert [f.closing_balance for f in files] == closings
    assert [(f.entries, f.transactions) for f in files] == [(2, 3), (1, 1), (0, 0)]
    digest = hashlib.sha256((tmp_path / "multi.xml").read_bytes()).hexdigest()
    assert {f.sha256 for f in files} == {digest} and {f.path for f in files} == {str(tmp_path / "multi.xml")}


@pytest.mark.parametrize("version", ["camt.053.001.02", "camt.053.001.08"])
def test_awkward_text_comes_out_as_valid_escaped_xml(tmp_path, version) -> None:
    long_name = "Vereniging van Eigenaars Résidence l'Étoile & Co " * 5  # trimmed to 140
    long_text = " ".join(f"woord{n}" for n in range(60))  # 469 characters, cut at spaces
    unbroken = "x" * 300  # no space to cut at
    entries = [Entry(credit=True, booking_date=DAY, transactions=(
        Tx(Decimal("1.00"), counterparty_name=AWKWARD_NAME, unstructured="Lidgeld\t2026 \x01 D'Hondt & <kids>",
           end_to_end_id="A&B<1>"),
        Tx(Decimal("2.00"), counterparty_name=long_name, unstructured=long_text),
        Tx(Decimal("3.00"), counterparty_name="Ærøskøbing Œuvre Ĳssel", unstructured=unbroken),
    ))]
    _write(tmp_path / "text.xml", entries, version, owner_name="Ville d'Anvers & Cie")
    raw = (tmp_path / "text.xml").read_bytes()
    assert raw.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert b"D'Hondt &amp; S\xc3\xb8n &lt;Li\xc3\xa8ge&gt;" in raw  # UTF-8 kept, markup escaped
    doc = Doc(tmp_path / "text.xml", version)
    txs = doc.all("BkToCstmrStmt/Stmt/Ntry/NtryDtls/TxDtls")
    assert doc.party_name(txs[0], "Dbtr") == AWKWARD_NAME
    assert doc.texts("RmtInf/Ustrd", txs[0]) == ["Lidgeld 2026 D'Hondt & <kids>"]  # control character dropped
    assert doc.text("Refs/EndToEndId", txs[0]) == "A&B<1>"
    assert doc.text("BkToCstmrStmt/Stmt/Acct/Ownr/Nm") == "Ville d'Anvers & Cie"
    assert doc.party_name(txs[1], "Dbtr") == long_name[:140].rstrip()
    assert doc.party_name(txs[2], "Dbtr") == "Ærøskøbing Œuvre Ĳssel"
    parts = doc.texts("RmtInf/Ustrd", txs[1])
    assert len(parts) == 4 and all(len(p) <= 140 for p in parts)
    assert " ".join(parts) == long_text  # cut at spaces: joined with one, the text comes back
    assert doc.texts("RmtInf/Ustrd", txs[2]) == ["x" * 140, "x" * 140, "x" * 20]


def test_the_same_input_gives_the_same_bytes_and_a_file_appears_only_when_written(tmp_path) -> None:
    entries = [Entry(credit=n % 2 == 0, booking_date=DAY, transactions=(Tx(_eur(n), counterparty_name=AWKWARD_NAME),))
               for n in range(1, 40)]
    first = _write(tmp_path / "a.xml", entries, "camt.053.001.08")
    second = _write(tmp_path / "b.xml", list(entries), "camt.053.001.08")
    assert (tmp_path / "a.xml").read_bytes() == (tmp_path / "b.xml").read_bytes()
    assert first.sha256 == second.sha256 == hashlib.sha256((tmp_path / "a.xml").read_bytes()).hexdigest()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.xml", "b.xml"]  # no temporary file left


@pytest.mark.parametrize(
    ("entries", "kwargs", "message"),
    [
        ([Entry(credit=True, booking_date=DAY, transactions=(Tx(Decimal("0.00")),))], {}, "not positive"),
        ([Entry(credit=True, booking_date=DAY, transactions=(Tx(Decimal("-5.00")),))], {}, "not positive"),
        ([Entry(credit=True, booking_date=DAY, transactions=())], {}, "entry 1 has no transactions"),
        ([Entry(credit=True, booking_date=DAY, status="BOKD", transactions=(Tx(Decimal("1.00")),))], {}, "status"),
        ([Entry(credit=False, booking_date=DAY, transactions=(Tx(Decimal("1.00"), return_reason="am04 "),))], {},
         "return reason"),
        ([], {"version": "camt.053.001.99"}, "unsupported camt.053 version"),
        ([], {"from_date": DAY + timedelta(days=1)}, "after to date"),
        ([], {"statement_id": " ", "message_id": "MSG-1"}, "statement needs an Id"),
        ([], {"message_id": " "}, "message needs a MsgId"),
    ],
)
def test_input_no_bank_would_write_is_refused_and_nothing_appears(tmp_path, entries, kwargs, message) -> None:
    kwargs = dict(kwargs)
    version = kwargs.pop("version", "camt.053.001.02")
    with pytest.raises(BankFileError, match=message):
        _write(tmp_path / "bad.xml", entries, version, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_money_is_decimal_never_float(tmp_path) -> None:
    with pytest.raises(TypeError, match="float"):
        _write(tmp_path / "bad.xml", [Entry(credit=True, booking_date=DAY, transactions=(Tx(12.5),))],  # type: ignore[arg-type]
               "camt.053.001.02")
    with pytest.raises(ValueError, match="fractions of a cent"):
        _write(tmp_path / "bad.xml", [Entry(credit=True, booking_date=DAY, transactions=(Tx(Decimal("0.001")),))],
               "camt.053.001.02")
    assert list(tmp_path.iterdir()) == []
    assert Entry(credit=True, booking_date=DAY, transactions=(Tx(Decimal("1.10")), Tx(Decimal("2.25")))).amount == \
        Decimal("3.35")


def _big_entries(count: int) -> tuple[list[Entry], dict[str, int]]:
    """A realistic day of a large creditor; returns the entries and the expected figures, in cents."""
    expected = {"entries": count, "transactions": 0, "credit_cents": 0, "debit_cents": 0, "returns": 0, "batches": 0}
    entries = []
    names = ("Jan Peeters", "Zoë D'Hondt & Søn", "Marie Dubois", "Ahmed El Amrani")
    for n in range(count):
        cents = (n * 7919) % 250_000 + 1
        if n % 50 == 49:  # a collection batch of three
            txs = tuple(Tx(_eur(cents + k), end_to_end_id=f"fp:BIG:{n}/{k}", mandate_id=f"MND-{n}-{k}",
                           counterparty_name=names[k], counterparty_iban=_iban(n % 9000 + k),
                           structured_reference=ogm("062", n * 3 + k)) for k in range(3))
            entries.append(Entry(credit=True, booking_date=DAY, bank_tx_code=SDD_COLLECTED,
                                 payment_info_id=f"fj:BIG:{n}", transactions=txs))
            expected["credit_cents"] += 3 * cents + 3
            expected["transactions"] += 3
            expected["batches"] += 1
        elif n % 10 == 9:  # a return
            entries.append(Entry(credit=False, booking_date=DAY, bank_tx_code=SDD_RETURNED, transactions=(
                Tx(_eur(cents), end_to_end_id=f"fp:BIG:{n}", counterparty_name=names[n % 4], return_reason="MD06"),)))
            expected["debit_cents"] += cents
            expected["transactions"] += 1
            expected["returns"] += 1
        else:
            reference = {"structured_reference": ogm("062", n)} if n % 2 else {"unstructured": format_ogm(ogm("062", n))}
            entries.append(Entry(credit=True, booking_date=DAY, account_servicer_ref=f"B{n:09d}", transactions=(
                Tx(_eur(cents), end_to_end_id=f"fp:BIG:{n}", account_servicer_ref=f"T{n:09d}",
                   counterparty_name=names[n % 4], counterparty_iban=_iban(n % 9000),
                   counterparty_bic="KREDBEBB" if n % 3 else "GEBABEBB", **reference),)))
            expected["credit_cents"] += cents
            expected["transactions"] += 1
    return entries, expected


def _stream(path: Path, version: str) -> Iterator[tuple[str, etree._Element]]:
    """Elements of interest, validated against the schema while parsed, each freed once read."""
    ns = f"{{{namespace(version)}}}"
    tags = [f"{ns}{tag}" for tag in ("Bal", "TxsSummry", "Ntry")]
    for _, element in etree.iterparse(str(path), tag=tags, schema=schema(version), no_network=True,
                                      resolve_entities=False, huge_tree=False):
        yield etree.QName(element).localname, element
        element.clear()
        parent = element.getparent()
        while element.getprevious() is not None:
            del parent[0]


@pytest.mark.parametrize("version", ["camt.053.001.02"])
def test_one_hundred_thousand_entries(tmp_path, version) -> None:
    entries, expected = _big_entries(100_000)
    started = time.perf_counter()
    written = _write(tmp_path / "big.xml", entries, version, opening=Decimal("-1000.00"))
    seconds = time.perf_counter() - started
    size = (tmp_path / "big.xml").stat().st_size
    print(f"\n{version}: 100 000 entries ({written.transactions} transactions, {size / 1e6:.0f} MB) in {seconds:.2f} s")
    assert seconds < 10

    ns = {"c": namespace(version)}
    balances: dict[str, Decimal] = {}
    counts = {"entries": 0, "transactions": 0, "returns": 0, "batches": 0}
    credit = debit = Decimal(0)
    samples = {}
    for tag, element in _stream(tmp_path / "big.xml", version):
        if tag == "Bal":
            amount = Decimal(element.findtext("c:Amt", namespaces=ns))
            sign = -1 if element.findtext("c:CdtDbtInd", namespaces=ns) == "DBIT" else 1
            balances[element.findtext("c:Tp/c:CdOrPrtry/c:Cd", namespaces=ns)] = sign * amount
        elif tag == "TxsSummry":
            summary = (element.findtext("c:TtlNtries/c:NbOfNtries", namespaces=ns),
                       element.findtext("c:TtlCdtNtries/c:Sum", namespaces=ns),
                       element.findtext("c:TtlDbtNtries/c:Sum", namespaces=ns))
        else:
            counts["entries"] += 1
            amount = Decimal(element.findtext("c:Amt", namespaces=ns))
            txs = element.findall("c:NtryDtls/c:TxDtls", ns)
            counts["transactions"] += len(txs)
            counts["returns"] += len(element.findall("c:NtryDtls/c:TxDtls/c:RtrInf", ns))
            counts["batches"] += len(element.findall("c:NtryDtls/c:Btch", ns))
            assert sum(Decimal(t.findtext("c:AmtDtls/c:TxAmt/c:Amt", namespaces=ns)) for t in txs) == amount
            if element.findtext("c:CdtDbtInd", namespaces=ns) == "CRDT":
                credit += amount
            else:
                debit += amount
            if counts["entries"] in (1, 50, 100_000):
                samples[counts["entries"]] = (amount, [t.findtext("c:Refs/c:EndToEndId", namespaces=ns) for t in txs])

    assert counts == {k: expected[k] for k in counts}
    assert (credit, debit) == (_eur(expected["credit_cents"]), _eur(expected["debit_cents"]))
    net_cents = expected["credit_cents"] - expected["debit_cents"]
    assert balances == {"OPBD": Decimal("-1000.00"), "CLBD": _eur(-100_000 + net_cents)}
    assert written.closing_balance == _eur(-100_000 + net_cents)
    assert summary == ("100000", f"{_eur(expected['credit_cents']):.2f}", f"{_eur(expected['debit_cents']):.2f}")
    assert samples[1] == (Decimal("0.01"), ["fp:BIG:0"])
    assert samples[50] == (_eur(3 * ((49 * 7919) % 250_000 + 1) + 3), ["fp:BIG:49/0", "fp:BIG:49/1", "fp:BIG:49/2"])
    last = (99_999 * 7919) % 250_000 + 1
    assert samples[100_000] == (_eur(3 * last + 3), ["fp:BIG:99999/0", "fp:BIG:99999/1", "fp:BIG:99999/2"])
    assert (written.entries, written.transactions) == (100_000, expected["transactions"])


def test_memory_stays_bounded_whatever_the_file_size(tmp_path, monkeypatch) -> None:
    """The output is written in chunks of FLUSH_EVERY entries, never held whole."""
    monkeypatch.setattr(camt_writer, "FLUSH_EVERY", 100)
    entries, _ = _big_entries(10_000)
    tracemalloc.start()
    try:
        _write(tmp_path / "mem.xml", entries, "camt.053.001.08")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = (tmp_path / "mem.xml").stat().st_size
    print(f"\npeak {peak / 1e6:.1f} MB of traced memory while writing {size / 1e6:.1f} MB")
    assert size > 7_000_000
    assert peak < size / 10, (peak, size)
    Doc(tmp_path / "mem.xml", "camt.053.001.08")
