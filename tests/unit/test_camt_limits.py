"""What the camt reader refuses or cuts so that a file it passes always fits the tables it is booked into, and
how its refusals quote what they refuse.

Each test writes one small camt.053.001.02 statement (:func:`statement`) with one value changed.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from include.finance.models import BankEntry, BankStatement
from include.sepa import camt
from include.sepa.camt import CamtRefused, read_camt

# The values of the statement, by the placeholder :data:`TEMPLATE` gives them.
VALUES = {
    "MsgId": "MSG-1", "StmtId": "STMT-1", "Account": "<IBAN>BE68539007547034</IBAN>", "Ccy": "EUR",
    "CpyDplctInd": "DUPL", "NtryRef": "NREF-1", "CdtDbtInd": "CRDT", "Sts": "BOOK", "BookgDt": "2026-11-20",
    "NtrySvcrRef": "NSVC-1", "BkTxCd": "NTRF+020", "TxSvcrRef": "TSVC-1", "EndToEndId": "E2E-1", "Nm": "Zoë Peeters",
    "DbtrIBAN": "BE71 0961 2345 6769", "BIC": "GEBABEBB", "Ustrd": "lidgeld", "Rsn": "AC04", "AddtlTxInf": "info",
    "AddtlNtryInf": "entry info",
}
TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>
<GrpHdr><MsgId>{MsgId}</MsgId><CreDtTm>2026-11-20T18:00:00</CreDtTm></GrpHdr>
<Stmt><Id>{StmtId}</Id><ElctrncSeqNb>7</ElctrncSeqNb><CpyDplctInd>{CpyDplctInd}</CpyDplctInd>
<Acct><Id>{Account}</Id><Ccy>{Ccy}</Ccy></Acct>
<Ntry><NtryRef>{NtryRef}</NtryRef><Amt Ccy="EUR">12.50</Amt><CdtDbtInd>{CdtDbtInd}</CdtDbtInd><Sts>{Sts}</Sts>
<BookgDt><Dt>{BookgDt}</Dt></BookgDt><ValDt><Dt>2026-11-20</Dt></ValDt><AcctSvcrRef>{NtrySvcrRef}</AcctSvcrRef>
<BkTxCd><Prtry><Cd>{BkTxCd}</Cd></Prtry></BkTxCd>
<NtryDtls><TxDtls><Refs><AcctSvcrRef>{TxSvcrRef}</AcctSvcrRef><EndToEndId>{EndToEndId}</EndToEndId></Refs>
<RltdPties><Dbtr><Nm>{Nm}</Nm></Dbtr><DbtrAcct><Id><IBAN>{DbtrIBAN}</IBAN></Id></DbtrAcct></RltdPties>
<RltdAgts><DbtrAgt><FinInstnId><BIC>{BIC}</BIC></FinInstnId></DbtrAgt></RltdAgts>
<RmtInf><Ustrd>{Ustrd}</Ustrd></RmtInf><RtrInf><Rsn><Prtry>{Rsn}</Prtry></Rsn></RtrInf>
<AddtlTxInf>{AddtlTxInf}</AddtlTxInf></TxDtls></NtryDtls>
<AddtlNtryInf>{AddtlNtryInf}</AddtlNtryInf></Ntry></Stmt></BkToCstmrStmt></Document>
"""


def statement(tmp_path: Path, **changed: str) -> Path:
    values = VALUES | changed
    assert set(values) == set(VALUES)
    path = tmp_path / "bank.xml"
    path.write_text(TEMPLATE.format(**values), encoding="utf-8")
    return path


def refusal(tmp_path: Path, **changed: str) -> CamtRefused:
    with pytest.raises(CamtRefused) as refused:
        read_camt(statement(tmp_path, **changed))
    assert str(refused.value).startswith("bank.xml: ")
    return refused.value


def test_the_statement_as_written(tmp_path: Path) -> None:
    # The control for every test below: one value changed is what makes the difference.
    camt = read_camt(statement(tmp_path))
    (st,) = camt.statements
    (line,) = st.lines
    assert (camt.message_id, st.statement_id, st.account_iban, st.currency, st.copy) == (
        "MSG-1", "STMT-1", "BE68539007547034", "EUR", "DUPL")
    found: dict[str, Any] = {
        "entry_ref": "NREF-1", "entry_servicer_ref": "NSVC-1", "status": "BOOK", "bank_tx_code": "NTRF+020",
        "tx_servicer_ref": "TSVC-1", "end_to_end_id": "E2E-1", "counterparty_name": "Zoë Peeters",
        "counterparty_iban": "BE71096123456769", "counterparty_bic": "GEBABEBB", "unstructured": "lidgeld",
        "return_reason": "AC04", "additional_info": "info",
    }
    assert {name: getattr(line, name) for name in found} == found


# -- refusals quote what they refuse, cut short -------------------------------------------------------------


def test_a_long_bad_date_is_quoted_short(tmp_path: Path) -> None:
    refused = refusal(tmp_path, BookgDt="2026-13-45" * 10_000)
    assert (refused.statement, refused.element) == ("STMT-1", "Ntry[1]/BookgDt")
    assert refused.reason == "not a date: '2026-13-452026-13-452026-13-452026-13-45'… (100000 characters)"


def test_a_long_credit_debit_indicator_is_quoted_short(tmp_path: Path) -> None:
    refused = refusal(tmp_path, CdtDbtInd="CRDT" * 25_000)
    assert (refused.statement, refused.element) == ("STMT-1", "Ntry[1]/CdtDbtInd")
    assert refused.reason == f"credit/debit indicator {'CRDT' * 10!r}… (100000 characters) is neither CRDT nor DBIT"


@pytest.mark.parametrize("entity", ["e", "x" * 40_000])
def test_an_undeclared_entity_is_refused_with_its_line_and_name(tmp_path: Path, entity: str) -> None:
    # Without a DTD no entity but the five predefined ones exists; the parser, not resolving, stops at it.
    line = TEMPLATE.splitlines().index(next(t for t in TEMPLATE.splitlines() if "{AddtlNtryInf}" in t)) + 1
    refused = refusal(tmp_path, AddtlNtryInf=f"&{entity};")
    assert refused.statement == "STMT-1"
    assert refused.reason.startswith(f"not well-formed XML (line {line}): ")
    assert f"Entity '{entity[:40]}" in refused.reason and len(refused.reason) < 300


# -- identifiers too long for their column refuse the file ----------------------------------------------------

TX = "Ntry[1]/NtryDtls/TxDtls[1]"
IBAN_46 = ("BE68" + "5390075470341234567890" * 2)[:46]  # the shape of an IBAN, too long for any
TOO_LONG = {  # case -> (the value changed, the element named, the statement named, what, characters, at most)
    "statement id": ({"StmtId": "S" * 150}, "Stmt/Id", None, "statement id", 150, 100),
    "message id": ({"MsgId": "M" * 101}, "GrpHdr/MsgId", None, "message id", 101, 100),
    "account IBAN": ({"Account": f"<IBAN>{IBAN_46}</IBAN>"}, "Acct/Id/IBAN", "STMT-1", "account IBAN", 46, 40),
    "account id": ({"Account": f"<Othr><Id>{'1' * 41}</Id></Othr>"}, "Acct/Id/Othr/Id", "STMT-1", "account id", 41,
                   40),
    "copy indicator": ({"CpyDplctInd": "DUPLICATE"}, "CpyDplctInd", "STMT-1", "copy indicator", 9, 4),
    "entry status": ({"Sts": "BOOKED"}, "Ntry[1]/Sts", "STMT-1", "entry status", 6, 4),
    "entry reference": ({"NtryRef": "N" * 101}, "Ntry[1]/NtryRef", "STMT-1", "entry reference", 101, 100),
    "entry's bank reference": ({"NtrySvcrRef": "A" * 300}, "Ntry[1]/AcctSvcrRef", "STMT-1", "bank reference", 300,
                               100),
    "transaction's bank reference": ({"TxSvcrRef": "T" * 101}, f"{TX}/Refs/AcctSvcrRef", "STMT-1", "bank reference",
                                     101, 100),
    "end-to-end id": ({"EndToEndId": "E" * 101}, f"{TX}/Refs/EndToEndId", "STMT-1", "end-to-end id", 101, 100),
    "counterparty IBAN": ({"DbtrIBAN": IBAN_46}, f"{TX}/RltdPties/DbtrAcct/Id/IBAN", "STMT-1", "counterparty IBAN",
                          46, 40),
}


@pytest.mark.parametrize("case", list(TOO_LONG))
def test_an_identifier_too_long_for_its_column_refuses_the_file(tmp_path: Path, case: str) -> None:
    changed, element, statement_id, what, length, limit = TOO_LONG[case]
    refused = refusal(tmp_path, **changed)
    assert (refused.element, refused.statement) == (element, statement_id)
    assert refused.reason == f"{what} too long: {length} characters (at most {limit} characters)"
    assert "53900754703412" not in str(refused)  # an IBAN is not repeated


@pytest.mark.parametrize("case", list(TOO_LONG))
def test_an_identifier_as_long_as_its_column_is_read(tmp_path: Path, case: str) -> None:
    changed, *_, limit = TOO_LONG[case]
    ((placeholder, value),) = changed.items()
    if placeholder == "Account":
        value = value.replace(IBAN_46, IBAN_46[:limit]).replace("1" * 41, "1" * limit)
    elif placeholder == "DbtrIBAN":
        value = " ".join(IBAN_46[n:n + 4] for n in range(0, limit, 4))  # spaces are not part of it
    else:
        value = value[:limit]
    (line,) = read_camt(statement(tmp_path, **{placeholder: value})).statements[0].lines
    assert line.amount == Decimal("12.50")


@pytest.mark.parametrize("currency", ["EURO-DOLLAR", "eur", "EU", "EUR1"])
def test_a_currency_that_is_no_iso_code_refuses_the_file(tmp_path: Path, currency: str) -> None:
    refused = refusal(tmp_path, Ccy=currency)
    assert (refused.element, refused.statement) == ("Acct/Ccy", "STMT-1")
    assert refused.reason == f"not a currency code (three capital letters): {currency!r}"


# -- text only shown to people is cut to its column ------------------------------------------------------------


def test_text_only_shown_is_cut_to_its_column_and_the_return_reason_kept_whole(tmp_path: Path) -> None:
    name, bic, code, reason = "Zoë " + "Peeters-" * 30, "GEBABEBBXXXXX", "NTRF+" + "9" * 70, "R" * 35
    info = "x" * 5_000
    (line,) = read_camt(statement(tmp_path, Nm=name, BIC=bic, BkTxCd=code, Rsn=reason, Ustrd=info,
                                  AddtlTxInf=info)).statements[0].lines
    assert (line.counterparty_name, line.counterparty_bic, line.bank_tx_code) == (name[:140], bic[:11], code[:60])
    # The hub's list of reasons that block a mandate is compared with the whole code; the column holds its start.
    assert line.return_reason == reason
    assert line.unstructured == line.additional_info == info  # kept whole: stored as text of any length


def test_the_limits_are_the_columns(tmp_path: Path) -> None:
    # An entry's key is "tx:" or "ntry:" + a bank reference (+ ":" + its position) (+ "#" + its rank in the
    # statement), and a statement's identity account|statement id|electronic sequence (+ "|" + currency)
    # (+ "|page " + page): what the reader lets through must fit them too.
    statement_columns, entry_columns = BankStatement.__table__.c, BankEntry.__table__.c
    assert camt.STATEMENT_ID_MAX == statement_columns.statement_id.type.length == 100
    assert camt.COUNTERPARTY_IBAN_MAX == entry_columns.counterparty_iban.type.length == 40
    longest_sequence = len(str(10**18 - 1))  # what _INTEGER reads (sequence numbers and pages)
    assert (camt.ACCOUNT_MAX + 1 + camt.STATEMENT_ID_MAX + 1 + longest_sequence + len("|USD")
            + len("|page ") + longest_sequence <= statement_columns.identity.type.length)
    assert len("ntry:") + camt.SERVICER_REF_MAX + len(":") + 10 + len("#") + 10 <= entry_columns.entry_key.type.length
