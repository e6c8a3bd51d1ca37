"""What the camt reader refuses or cuts so that a file it passes always fits the tables it is booked into, and
how its refusals quote what they refuse.

Each test writes one small camt.053.001.02 statement (:func:`statement`) with one value changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from include.sepa.camt import CamtRefused, read_camt

# The values of the statement, by the placeholder :data:`TEMPLATE` gives them.
VALUES = {
    "MsgId": "MSG-1", "StmtId": "STMT-1", "Account": "<IBAN>BE68539007547034</IBAN>", "Ccy": "EUR",
    "CpyDplctInd": "DUPL", "NtryRef": "NREF-1", "CdtDbtInd": "CRDT", "Sts": "BOOK", "BookgDt": "2026-11-20", "NtrySvcrRef": "NSVC-1",
    "BkTxCd": "NTRF+020", "TxSvcrRef": "TSVC-1", "EndToEndId": "E2E-1", "Nm": "Zoë Peeters",
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
