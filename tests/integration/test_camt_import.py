"""Importing statements into a real database: matching, partial and over-payments, returns, no entry twice."""

from __future__ import annotations

import csv
import os
import re
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from include.finance.db import transaction
from include.finance.models import (
    AuditLog,
    BankEntry,
    BankStatement,
    Collection,
    ControlListItem,
    DebtLine,
    Invoice,
    Mandate,
    Payment,
    PaymentAllocation,
    PaymentReference,
)
from include.finance.reference_numbers import format_ogm, format_rf, ogm, rf
from include.sepa import camt_import
from include.sepa.camt import CamtRefused
from include.sepa.camt_decision import references_in
from include.sepa.export import export_collection_run
from include.sepa.mandate_execution import execute_mandates
from include.sepa.statement_files import import_statement_file
from sandbox.camt_writer import SDD_COLLECTED, SDD_RETURNED, Entry, Tx, write_camt053
from tests.factories import add_debt, make_institution, make_mandate, make_reference, make_user

pytestmark = pytest.mark.usefixtures("known_control_list_kinds")  # every item's kind is a ControlListKind
DAY = date(2026, 11, 24)


def _statement(var_dir: Path, account: str, entries: list[Entry], *, statement_id: str = "2026-330", seq: int | None = 330,
               opening: str = "1000.00", name: str = "statement.xml", **kwargs) -> Path:  # type: ignore[no-untyped-def]
    path = var_dir / "inbox" / "camt053" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    write_camt053(path, account_iban=account, statement_id=statement_id, electronic_seq=seq,
                  created_at=datetime(2026, 11, 25, 6, tzinfo=timezone.utc), from_date=DAY, to_date=DAY,
                  opening_balance=Decimal(opening), entries=entries, **kwargs)
    return path


def _credit(amount: str, ref: str | None = None, text: str | None = None, asr: str | None = None, **tx) -> Entry:  # type: ignore[no-untyped-def]
    return Entry(True, DAY, (Tx(Decimal(amount), structured_reference=ref, unstructured=text, account_servicer_ref=asr, **tx),))


def _rows(engine, model, *where):  # type: ignore[no-untyped-def]
    with transaction(engine, readonly=True) as session:
        return session.scalars(select(model).where(*where)).all()


def _count(engine, model) -> int:  # type: ignore[no-untyped-def]
    with transaction(engine, readonly=True) as session:
        return session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def bib(engine):  # type: ignore[no-untyped-def]
    """An institution with three sealed references: 30.00 (10+20), 15.50, 40.00 (25+15)."""
    with transaction(engine) as session:
        inst = make_institution(session)
        user = make_user(session, "Renée", "Lefèvre")
        refs = [make_reference(session, inst, user, amounts, number=n)
                for n, amounts in ((1, ("10.00", "20.00")), (2, ("15.50",)), (3, ("25.00", "15.00")))]
        return inst.hub.creditor_iban, [r.id for r in refs]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ({"structured_refs": (ogm("062", 1),)}, [ogm("062", 1)]),
        ({"structured_refs": (rf("71", 5),)}, [rf("71", 5)]),
        ({"unstructured": f"lidgeld {format_ogm(ogm('062', 2))} dank u"}, [ogm("062", 2)]),
        ({"unstructured": "***062/0000/00258***"}, [ogm("062", 2)]),
        ({"unstructured": f"ref {ogm('062', 3)}"}, [ogm("062", 3)]),
        ({"unstructured": "062000000158 is wrong"}, []),  # check digits off by one
        ({"unstructured": f"betaling {rf('71', 9)}"}, [rf("71", 9)]),
        ({"unstructured": "no reference at all 12345"}, []),
        # typed without the plus signs, as payers do
        ({"unstructured": "factuur 062/0000/00258"}, [ogm("062", 2)]),
        ({"unstructured": "062-0000-00258."}, [ogm("062", 2)]),
        ({"unstructured": "Ref: 062 0000 00258 bedankt"}, [ogm("062", 2)]),
        ({"unstructured": "ref.062.0000.00258"}, [ogm("062", 2)]),
        ({"unstructured": "062/0000/00259"}, []),  # check digits off by one
        ({"unstructured": "2026/0000/00258 and 062/0000/002581 and 1/062/0000/00258 and 062/0000/00258-1"}, []),
        ({"unstructured": "IBAN BE68 5390 0754 7034 on 16/03/2026"}, []),
        # RF as printed on the invoice, in groups of four, with words after it
        ({"unstructured": f"betaling {format_rf(rf('71', 9))} dank u"}, [rf("71", 9)]),
        ({"unstructured": f"{format_rf(rf('71', 9)).lower()} 2026"}, [rf("71", 9)]),
        ({"unstructured": "RF18 5390 0754 7034 abcd"}, ["RF18539007547034"]),
        ({"unstructured": "RF19 5390 0754 7034"}, []),  # check digits off by one
        ({"structured_refs": (ogm("062", 1),), "unstructured": f"+++{ogm('062', 2)[:3]}/{ogm('062', 2)[3:7]}/{ogm('062', 2)[7:]}+++"},
         [ogm("062", 1), ogm("062", 2)]),
    ],
)
def test_references_found_in_a_credit(line, expected) -> None:
    from include.sepa.camt import EntryLine

    entry = EntryLine(entry_index=1, tx_index=1, amount=Decimal("1.00"), credit=True, reversal=False, status="BOOK",
                      booking_date=DAY, value_date=DAY, entry_amount=Decimal("1.00"), **line)
    assert references_in(entry) == expected


def test_full_partial_over_and_unmatched_credits(engine, var_dir, bib) -> None:
    account, (r1, r2, r3) = bib
    path = _statement(var_dir, account, [
        _credit("30.00", ref=ogm("062", 1), asr="A1"),
        _credit("5.50", text=f"betaling {format_ogm(ogm('062', 2))}", asr="A2"),
        _credit("45.00", text=ogm("062", 3), asr="A3", counterparty_iban="BE68539007547034"),
        _credit("12.34", text="lidgeld", asr="A4", counterparty_name="Renée Lefèvre"),
    ])
    result = import_statement_file(path, "test", engine=engine)
    assert result["status"] == "imported"
    assert result["outcomes"] == {"paid": 1, "partial": 1, "overpaid": 1, "unmatched": 1}
    assert Path(result["archived"]).parent == var_dir / "archive" and not path.exists()
    refs = {r.id: r for r in _rows(engine, PaymentReference)}
    assert (refs[r1].status, refs[r1].open_amount) == ("paid", Decimal("0.00"))
    assert (refs[r2].status, refs[r2].open_amount) == ("sealed", Decimal("10.00"))
    assert (refs[r3].status, refs[r3].open_amount) == ("paid", Decimal("0.00"))
    payments = {p.payment_reference_id: p.amount for p in _rows(engine, Payment)}
    assert payments == {r1: Decimal("30.00"), r2: Decimal("5.50"), r3: Decimal("40.00")}  # only the open amount of r3
    # The debt lines follow: r1's two lines paid, r2's line lowered to 10.00.
    with transaction(engine, readonly=True) as session:
        open_by_line = dict(session.execute(select(DebtLine.amount, DebtLine.open_amount).order_by(DebtLine.id)).all())
    assert open_by_line[Decimal("15.50")] == Decimal("10.00")
    assert open_by_line[Decimal("10.00")] == Decimal("0.00") and open_by_line[Decimal("20.00")] == Decimal("0.00")
    kinds = sorted(item.kind for item in _rows(engine, ControlListItem))
    assert kinds == ["overpaid", "partial", "unmatched"]
    over = next(i for i in _rows(engine, ControlListItem) if i.kind == "overpaid")
    assert over.amount == Decimal("5.00") and "BE68 **** **** 7034" in over.action
    unmatched = next(i for i in _rows(engine, ControlListItem) if i.kind == "unmatched")
    assert {c["why"] for c in unmatched.details["candidates"]} == {"name of the payer"}
    folder = Path(result["control_lists"][0]).parent
    with (folder / "control-list.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    assert sorted(r["kind"] for r in rows) == ["overpaid", "partial", "unmatched"]
    page = (folder / "index.html").read_text(encoding="utf-8")
    assert "total booked" in page and "75.50" in page


def test_the_summary_airflow_logs_and_the_control_lists_folder_hold_no_account_in_full(engine, var_dir, bib) -> None:
    """import_file returns the summary (Airflow logs it); banks name their files after the account."""
    import json

    account, _ = bib
    other = "BE71096123456769"  # an account of no hub
    spaced = " ".join(other[i:i + 4] for i in range(0, len(other), 4))
    results = [
        import_statement_file(_statement(var_dir, iban, [_credit("12.34", text="lidgeld", asr=f"A-{iban}")],
                                         name=f"CODA_{iban}_20261124.xml"), "test", engine=engine)
        for iban in (account, other)
    ]
    with transaction(engine, readonly=True) as session:
        ids = {s.account: s.id for s in session.scalars(select(BankStatement))}
    shown = json.dumps(results)
    for iban in (account, other):
        assert iban not in shown and iban[4:] not in shown and iban[-8:] not in shown
    assert spaced not in shown and "BE71 **** **** 6769" in shown
    lists = [Path(result["control_lists"][0]) for result in results]
    assert [path.parent.name for path in lists] == [f"HUB-BIB_2026-330_{ids[account]}", f"BE71-6769_2026-330_{ids[other]}"]
    assert all(path.is_file() for path in lists)
    assert results[1]["file"] == "CODA_BE71 **** **** 6769_20261124.xml"
    assert results[1]["archived"].endswith("/archive/CODA_BE71 **** **** 6769_20261124.xml")
    assert (var_dir / "archive" / f"CODA_{other}_20261124.xml").is_file()  # the file itself keeps its name


_ADDITIONAL_INFO_STATEMENT = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>
<GrpHdr><MsgId>ADDTL-1</MsgId><CreDtTm>2026-11-25T06:00:00</CreDtTm></GrpHdr>
<Stmt><Id>2026-331</Id><ElctrncSeqNb>331</ElctrncSeqNb><CreDtTm>2026-11-25T06:00:00</CreDtTm>
<Acct><Id><IBAN>{account}</IBAN></Id><Ccy>EUR</Ccy></Acct>
<Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">1000.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-11-24</Dt></Dt></Bal>
<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">1085.50</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-11-24</Dt></Dt></Bal>
<Ntry><Amt Ccy="EUR">30.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2026-11-24</Dt></BookgDt>
<ValDt><Dt>2026-11-24</Dt></ValDt><AcctSvcrRef>ADDTL-A1</AcctSvcrRef><BkTxCd/>
<AddtlNtryInf>EUROPESE OVERSCHRIJVING VAN BE68539007547034 MEDEDELING: {first}</AddtlNtryInf></Ntry>
<Ntry><Amt Ccy="EUR">15.50</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2026-11-24</Dt></BookgDt>
<ValDt><Dt>2026-11-24</Dt></ValDt><AcctSvcrRef>ADDTL-A2</AcctSvcrRef><BkTxCd/>
<NtryDtls><TxDtls><Refs><EndToEndId>NOTPROVIDED</EndToEndId></Refs>
<RltdPties><Dbtr><Nm>Renée Lefèvre</Nm></Dbtr></RltdPties><AddtlTxInf>{second}</AddtlTxInf></TxDtls></NtryDtls>
<AddtlNtryInf>OVERSCHRIJVING</AddtlNtryInf></Ntry>
<Ntry><Amt Ccy="EUR">40.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2026-11-24</Dt></BookgDt>
<ValDt><Dt>2026-11-24</Dt></ValDt><AcctSvcrRef>ADDTL-A3</AcctSvcrRef><BkTxCd/>
<NtryDtls><TxDtls><RmtInf><Strd><AddtlRmtInf>{third}</AddtlRmtInf></Strd></RmtInf></TxDtls></NtryDtls></Ntry>
</Stmt></BkToCstmrStmt></Document>
"""


def test_a_reference_only_in_the_additional_information_is_found(engine, var_dir, bib) -> None:
    # Some banks give the payer's communication only as AddtlNtryInf (an entry without details), AddtlTxInf
    # or the structured block's AddtlRmtInf.
    account, (r1, r2, r3) = bib
    path = var_dir / "inbox" / "camt053" / "addtl.xml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_ADDITIONAL_INFO_STATEMENT.format(
        account=account, first=format_ogm(ogm("062", 1)), second=f"factuur {ogm('062', 2)[:3]}/{ogm('062', 2)[3:7]}/"
        f"{ogm('062', 2)[7:]}", third=f"***{ogm('062', 3)[:3]}/{ogm('062', 3)[3:7]}/{ogm('062', 3)[7:]}***"),
        encoding="utf-8")
    result = import_statement_file(path, "test", engine=engine)
    assert result["status"] == "imported" and result["outcomes"] == {"paid": 3}
    refs = {r.id: r.status for r in _rows(engine, PaymentReference)}
    assert (refs[r1], refs[r2], refs[r3]) == ("paid", "paid", "paid")
    entries = sorted(_rows(engine, BankEntry), key=lambda e: e.entry_index)
    assert [e.remittance for e in entries] == [
        f"EUROPESE OVERSCHRIJVING VAN BE68539007547034 MEDEDELING: {format_ogm(ogm('062', 1))}",
        f"factuur {ogm('062', 2)[:3]}/{ogm('062', 2)[3:7]}/{ogm('062', 2)[7:]}",
        f"***{ogm('062', 3)[:3]}/{ogm('062', 3)[3:7]}/{ogm('062', 3)[7:]}***",
    ]


def test_partial_payment_strategies(engine, var_dir) -> None:
    with transaction(engine) as session:
        first = make_institution(session, code="BIB")
        matching = make_institution(session, code="SKA")
        matching.system.partial_payment_strategy = "matching_amount"
        user = make_user(session)
        make_reference(session, first, user, ("10.00", "20.00"), number=1)
        make_reference(session, matching, user, ("10.00", "20.00"), number=1, loi="fp:SKA:1")
        accounts = first.hub.creditor_iban, matching.hub.creditor_iban
    for n, account in enumerate(accounts):
        import_statement_file(_statement(var_dir, account, [_credit("20.00", ref=ogm("062", 1), asr=f"S{n}")],
                                         statement_id=f"S{n}", name=f"s{n}.xml"), "test", engine=engine)
    with transaction(engine, readonly=True) as session:
        allocations = session.execute(
            select(PaymentReference.loi, DebtLine.amount, PaymentAllocation.amount)
            .join(Payment, Payment.id == PaymentAllocation.payment_id)
            .join(PaymentReference, PaymentReference.id == Payment.payment_reference_id)
            .join(DebtLine, DebtLine.id == PaymentAllocation.debt_line_id)
            .order_by(PaymentReference.loi, DebtLine.id)
        ).all()
    assert allocations == [
        ("fp:BIB:1", Decimal("10.00"), Decimal("10.00")), ("fp:BIB:1", Decimal("20.00"), Decimal("10.00")),
        ("fp:SKA:1", Decimal("20.00"), Decimal("20.00")),
    ]


def test_a_paid_reference_paid_again_goes_to_the_control_list(engine, var_dir, bib) -> None:
    account, (r1, *_ ) = bib
    import_statement_file(_statement(var_dir, account, [_credit("30.00", ref=ogm("062", 1), asr="A1")]), "test", engine=engine)
    result = import_statement_file(_statement(var_dir, account, [_credit("30.00", ref=ogm("062", 1), asr="A9")],
                                              statement_id="2026-331", seq=331, opening="1030.00", name="next.xml"), "test", engine=engine)
    assert result["outcomes"] == {"closed_reference": 1}
    assert [p.amount for p in _rows(engine, Payment)] == [Decimal("30.00")]


def test_several_credits_for_one_reference_in_one_statement(engine, var_dir, bib) -> None:
    # A parent pays in two parts, then a second parent pays the whole again, all on the same day's statement.
    account, (r1, *_) = bib
    result = import_statement_file(_statement(var_dir, account, [
        _credit("10.00", ref=ogm("062", 1), asr="P1"),
        _credit("20.00", text=format_ogm(ogm("062", 1)), asr="P2"),
        _credit("30.00", ref=ogm("062", 1), asr="P3"),
    ]), "test", engine=engine)
    assert result["outcomes"] == {"partial": 1, "paid": 1, "closed_reference": 1}
    (reference,) = [r for r in _rows(engine, PaymentReference) if r.id == r1]
    assert (reference.status, reference.open_amount) == ("paid", Decimal("0.00"))
    assert sorted(p.amount for p in _rows(engine, Payment)) == [Decimal("10.00"), Decimal("20.00")]
    assert sorted(i.kind for i in _rows(engine, ControlListItem)) == ["closed_reference", "partial"]


@pytest.mark.parametrize("end_to_end_id", ["PAYER-1", "BANK-RECALL-77", None],
                         ids=["same-e2e", "own-e2e-same-reference", "reference-only"])
def test_a_reversed_credit_transfer_reopens_its_reference(engine, var_dir, bib, end_to_end_id) -> None:
    # The bank takes back a credit we booked on an earlier statement (RvslInd, same amount; the same end-to-end
    # id, or the same payment reference when the reversal carries an id of its own or none).
    account, (r1, r2, _) = bib
    import_statement_file(_statement(var_dir, account, [
        _credit("30.00", ref=ogm("062", 1), asr="C1", end_to_end_id="PAYER-1"),
        _credit("15.50", ref=ogm("062", 2), asr="C2"),
    ]), "test", engine=engine)
    reversal = Entry(False, DAY, (Tx(Decimal("30.00"), end_to_end_id=end_to_end_id, account_servicer_ref="R1",
                                     structured_reference=ogm("062", 1)),), reversal=True)
    result = import_statement_file(_statement(var_dir, account, [reversal], statement_id="2026-331", seq=331,
                                              opening="1045.50", name="next.xml"), "test", engine=engine)
    assert result["outcomes"] == {"returned": 1}
    refs = {r.id: r for r in _rows(engine, PaymentReference)}
    assert (refs[r1].status, refs[r1].open_amount) == ("sealed", Decimal("30.00"))
    assert (refs[r2].status, refs[r2].open_amount) == ("paid", Decimal("0.00"))  # untouched
    payments = sorted(_rows(engine, Payment), key=lambda p: p.id)
    original = next(p for p in payments if p.payment_reference_id == r1 and p.amount > 0)
    undo = next(p for p in payments if p.amount < 0)
    (entry,) = _rows(engine, BankEntry, BankEntry.account_servicer_ref == "R1")
    assert (undo.amount, undo.reverses_payment_id, undo.bank_entry_id) == (Decimal("-30.00"), original.id, entry.id)
    assert (entry.outcome, entry.payment_reference_id) == ("returned", r1)
    with transaction(engine, readonly=True) as session:
        open_amounts = sorted(session.scalars(select(DebtLine.open_amount)))
    assert open_amounts == [Decimal("0.00"), Decimal("10.00"), Decimal("15.00"), Decimal("20.00"), Decimal("25.00")]
    (item,) = [i for i in _rows(engine, ControlListItem) if i.kind == "returned"]
    assert "30.00 is open again" in item.reason and item.details["reference"] == refs[r1].loi
    actions = {(a.entity, a.action) for a in _rows(engine, AuditLog)}
    assert ("payment", "reversed") in actions and ("payment_reference", "sealed") in actions


def test_a_credit_returned_on_the_same_statement(engine, var_dir, bib) -> None:
    # Booked and returned the same day (the payer's bank recalls it): the return undoes this file's own payment,
    # once; a second return of the same credit has nothing left to undo and goes to the control list.
    account, (r1, *_) = bib
    returned = Entry(False, DAY, (Tx(Decimal("30.00"), return_reason="AC04", account_servicer_ref="R2",
                                     unstructured=f"terugbetaling {format_ogm(ogm('062', 1))}"),))
    result = import_statement_file(_statement(var_dir, account, [
        _credit("30.00", ref=ogm("062", 1), asr="C1"), returned,
        Entry(False, DAY, (Tx(Decimal("30.00"), return_reason="AC04", account_servicer_ref="R3",
                              structured_reference=ogm("062", 1)),)),
    ]), "test", engine=engine)
    assert result["outcomes"] == {"paid": 1, "returned": 1, "unknown_return": 1}
    (reference,) = [r for r in _rows(engine, PaymentReference) if r.id == r1]
    assert (reference.status, reference.open_amount) == ("sealed", Decimal("30.00"))
    assert sorted(p.amount for p in _rows(engine, Payment)) == [Decimal("-30.00"), Decimal("30.00")]


def test_our_own_money_coming_back_is_never_a_payment(engine, var_dir, bib) -> None:
    # A refund we sent, returned by the payee's bank (a credit with a return reason), and a reversal of a debit
    # (a credit with RvslInd), both naming a paid reference: neither books nor undoes anything.
    account, (r1, *_) = bib
    import_statement_file(_statement(var_dir, account, [_credit("30.00", ref=ogm("062", 1), asr="C1")]), "test",
                          engine=engine)
    refund_back = Entry(True, DAY, (Tx(Decimal("30.00"), return_reason="AC04", account_servicer_ref="B1",
                                       unstructured=f"terugbetaling {format_ogm(ogm('062', 1))}"),))
    debit_reversed = Entry(True, DAY, (Tx(Decimal("30.00"), structured_reference=ogm("062", 1),
                                          account_servicer_ref="B2"),), reversal=True)
    result = import_statement_file(_statement(var_dir, account, [refund_back, debit_reversed], statement_id="2026-331",
                                              seq=331, opening="1030.00", name="next.xml"), "test", engine=engine)
    assert result["outcomes"] == {"unknown_return": 2}
    (reference,) = [r for r in _rows(engine, PaymentReference) if r.id == r1]
    assert reference.status == "paid" and [p.amount for p in _rows(engine, Payment)] == [Decimal("30.00")]


def test_a_reversal_that_fits_no_booked_credit_changes_nothing(engine, var_dir, bib) -> None:
    account, (r1, *_) = bib
    import_statement_file(_statement(var_dir, account, [_credit("30.00", ref=ogm("062", 1), asr="C1")]), "test",
                          engine=engine)
    other_amount = Entry(False, DAY, (Tx(Decimal("29.00"), structured_reference=ogm("062", 1), account_servicer_ref="R1"),),
                         reversal=True)
    result = import_statement_file(_statement(var_dir, account, [other_amount], statement_id="2026-331", seq=331,
                                              opening="1030.00", name="next.xml"), "test", engine=engine)
    assert result["outcomes"] == {"unknown_return": 1}
    (reference,) = [r for r in _rows(engine, PaymentReference) if r.id == r1]
    assert reference.status == "paid" and [p.amount for p in _rows(engine, Payment)] == [Decimal("30.00")]


def test_a_statement_in_another_currency_books_nothing(engine, var_dir, bib) -> None:
    # One IBAN may carry a dollar account beside the euro one: its statement is stored, never booked in euro.
    account, (r1, *_) = bib
    path = _statement(var_dir, account, [_credit("30.00", ref=ogm("062", 1), asr="U1")])
    path.write_text(path.read_text(encoding="utf-8").replace("<Ccy>EUR</Ccy>", "<Ccy>USD</Ccy>")
                    .replace('Ccy="EUR"', 'Ccy="USD"'), encoding="utf-8")
    result = import_statement_file(path, "test", engine=engine)
    assert result["status"] == "imported" and result["outcomes"] == {"not_booked": 1}
    assert _count(engine, Payment) == 0
    (reference,) = [r for r in _rows(engine, PaymentReference) if r.id == r1]
    assert reference.status == "sealed"
    (item,) = _rows(engine, ControlListItem)
    assert item.kind == "foreign_currency" and "is in USD, not in euro" in item.reason


def test_the_euro_statement_of_an_account_is_not_taken_for_its_dollar_statement(engine, var_dir, bib) -> None:
    # The dollar and the euro account of one IBAN, each with its statement, may share the statement's id and number.
    account, (r1, *_) = bib
    dollars = _statement(var_dir, account, [_credit("5.00", text="usd", asr="U1")], name="usd.xml")
    dollars.write_text(dollars.read_text(encoding="utf-8").replace("<Ccy>EUR</Ccy>", "<Ccy>USD</Ccy>")
                       .replace('Ccy="EUR"', 'Ccy="USD"'), encoding="utf-8")
    assert import_statement_file(dollars, "test", engine=engine)["outcomes"] == {"not_booked": 1}
    euros = import_statement_file(_statement(var_dir, account, [_credit("30.00", ref=ogm("062", 1), asr="E1")],
                                             name="eur.xml"), "test", engine=engine)
    assert euros["status"] == "imported" and euros["outcomes"] == {"paid": 1}
    assert [p.amount for p in _rows(engine, Payment)] == [Decimal("30.00")]


def test_the_same_statement_twice_adds_nothing(engine, var_dir, bib) -> None:
    account, _ = bib
    entries = [_credit("30.00", ref=ogm("062", 1), asr="A1"), _credit("1.00", text="?", asr="A2")]
    import_statement_file(_statement(var_dir, account, entries), "test", engine=engine)
    counts = [_count(engine, m) for m in (BankStatement, BankEntry, Payment, ControlListItem, AuditLog)]
    again = import_statement_file(_statement(var_dir, account, entries, name="again.xml"), "test", engine=engine)
    assert again["status"] == "already_imported" and "already imported" in again["message"]
    assert [_count(engine, m) for m in (BankStatement, BankEntry, Payment, ControlListItem, AuditLog)] == counts
    assert (var_dir / "archive" / "again.xml").exists()


@pytest.mark.parametrize("with_servicer_refs", [True, False], ids=["bank references", "fingerprints"])
def test_overlapping_statements_book_only_new_entries(engine, var_dir, bib, with_servicer_refs) -> None:
    account, (r1, r2, r3) = bib
    asr = (lambda v: v) if with_servicer_refs else (lambda v: None)
    first = [_credit("30.00", ref=ogm("062", 1), asr=asr("A1")), _credit("5.00", ref=ogm("062", 2), asr=asr("A2"))]
    second = [*first, _credit("40.00", ref=ogm("062", 3), asr=asr("A3"))]
    import_statement_file(_statement(var_dir, account, first, statement_id="day-1", seq=1), "test", engine=engine)
    result = import_statement_file(_statement(var_dir, account, second, statement_id="day-1b", seq=2, name="b.xml"), "test", engine=engine)
    assert result["statements"][0]["new_lines"] == 1 and result["outcomes"] == {"paid": 1}
    assert sorted(p.amount for p in _rows(engine, Payment)) == [Decimal("5.00"), Decimal("30.00"), Decimal("40.00")]


def test_a_bank_reference_repeated_on_every_transaction_of_a_batch_books_each_once(engine, var_dir, bib) -> None:
    # Some banks give each TxDtls of a batch the batch's own AcctSvcrRef: two lines of one statement, one reference.
    account, (r1, r2, _) = bib
    batch = Entry(True, DAY, (Tx(Decimal("30.00"), structured_reference=ogm("062", 1), account_servicer_ref="BATCH-7"),
                              Tx(Decimal("15.50"), structured_reference=ogm("062", 2), account_servicer_ref="BATCH-7")),
                  account_servicer_ref="BATCH-7")
    twice = Entry(True, DAY, (Tx(Decimal("1.00"), unstructured="?"),), account_servicer_ref="NTRY-1")
    result = import_statement_file(_statement(var_dir, account, [batch, twice, twice]), "test", engine=engine)
    assert result["status"] == "imported" and result["outcomes"] == {"paid": 2, "unmatched": 2}
    assert {r.id: r.status for r in _rows(engine, PaymentReference) if r.id in (r1, r2)} == {r1: "paid", r2: "paid"}
    # The same lines again, in a statement overlapping it, are known: nothing new.
    again = import_statement_file(_statement(var_dir, account, [batch, twice, twice], statement_id="2026-330b", seq=331,
                                             name="again.xml"), "test", engine=engine)
    assert again["statements"][0]["new_lines"] == 0 and again["outcomes"] == {}
    assert sorted(p.amount for p in _rows(engine, Payment)) == [Decimal("15.50"), Decimal("30.00")]


def test_a_statement_in_pages_books_every_page(engine, var_dir, bib) -> None:
    # A long statement comes in several messages (GrpHdr/MsgPgntn), each page with the statement's id and number.
    account, (r1, r2, _) = bib

    def page(number: int, last: bool, entries: list[Entry], opening: str) -> Path:
        path = _statement(var_dir, account, entries, opening=opening, name=f"page-{number}.xml")
        single = b"<MsgPgntn><PgNb>1</PgNb><LastPgInd>true</LastPgInd></MsgPgntn>"
        content = path.read_bytes()
        assert content.count(single) == 1
        path.write_bytes(content.replace(single, f"<MsgPgntn><PgNb>{number}</PgNb><LastPgInd>{str(last).lower()}"
                                                 "</LastPgInd></MsgPgntn>".encode()))
        return path

    first = import_statement_file(page(1, False, [_credit("30.00", ref=ogm("062", 1), asr="P1")], "1000.00"), "test",
                                  engine=engine)
    second = import_statement_file(page(2, True, [_credit("15.50", ref=ogm("062", 2), asr="P2")], "1030.00"), "test",
                                   engine=engine)
    assert (first["outcomes"], second["outcomes"]) == ({"paid": 1}, {"paid": 1})
    assert sorted(p.amount for p in _rows(engine, Payment)) == [Decimal("15.50"), Decimal("30.00")]
    again = import_statement_file(page(2, True, [_credit("15.50", ref=ogm("062", 2), asr="P2")], "1030.00"), "test",
                                  engine=engine)
    assert again["status"] == "already_imported" and _count(engine, BankStatement) == 2


def test_a_credit_notified_during_the_day_is_not_booked_again_by_the_statement(engine, var_dir, bib) -> None:
    # Banks notify credits as they come (camt.054) and list them again in the evening's statement (camt.053).
    account, (r1, r2, _) = bib
    statement = _statement(var_dir, account, [_credit("30.00", ref=ogm("062", 1), asr="A1"),
                                              _credit("15.50", ref=ogm("062", 2), asr="A2")])
    text = statement.read_text(encoding="utf-8")
    first_entry_end = text.index("</Ntry>") + len("</Ntry>")
    notification = (re.sub(r"<Bal>.*?</Bal>", "", text[:first_entry_end], flags=re.S) + "</Ntfctn></BkToCstmrDbtCdtNtfctn></Document>\n")
    notification = (notification.replace("camt.053.001.02", "camt.054.001.02").replace("BkToCstmrStmt", "BkToCstmrDbtCdtNtfctn")
                    .replace("<Stmt>", "<Ntfctn>").replace("<Id>2026-330</Id>", "<Id>NTF-1</Id>", 1))
    notified = var_dir / "inbox" / "camt053" / "notification.xml"
    notified.write_text(notification, encoding="utf-8")
    first = import_statement_file(notified, "test", engine=engine)
    assert first["status"] == "imported" and first["outcomes"] == {"paid": 1}
    second = import_statement_file(statement, "test", engine=engine)
    assert second["outcomes"] == {"paid": 1} and second["statements"][0]["new_lines"] == 1
    assert sorted(p.amount for p in _rows(engine, Payment)) == [Decimal("15.50"), Decimal("30.00")]


def test_a_copy_of_a_statement_books_nothing_new(engine, var_dir, bib) -> None:
    account, _ = bib
    entries = [_credit("30.00", ref=ogm("062", 1), asr="A1")]
    import_statement_file(_statement(var_dir, account, entries), "test", engine=engine)
    result = import_statement_file(_statement(var_dir, account, entries, statement_id="2026-330-DUPL", copy="DUPL",
                                              name="copy.xml"), "test", engine=engine)
    assert result["statements"][0]["new_lines"] == 0 and _count(engine, Payment) == 1


def test_a_gap_in_electronic_sequence_numbers_is_on_the_control_list(engine, var_dir, bib) -> None:
    account, _ = bib
    import_statement_file(_statement(var_dir, account, [_credit("1.00", text="a", asr="A1")], statement_id="s1", seq=1), "test", engine=engine)
    import_statement_file(_statement(var_dir, account, [_credit("1.00", text="b", asr="A2")], statement_id="s4", seq=4,
                                     opening="1001.00", name="s4.xml"), "test", engine=engine)
    gaps = [i for i in _rows(engine, ControlListItem) if i.kind == "sequence_gap"]
    assert len(gaps) == 1 and "2..3 are missing" in gaps[0].reason
    # The account's dollar statements are numbered on their own: number 40 misses no euro statement.
    dollars = _statement(var_dir, account, [_credit("1.00", text="c", asr="U1")], statement_id="u40", seq=40,
                         name="usd.xml")
    dollars.write_text(dollars.read_text(encoding="utf-8").replace("<Ccy>EUR</Ccy>", "<Ccy>USD</Ccy>")
                       .replace('Ccy="EUR"', 'Ccy="USD"'), encoding="utf-8")
    import_statement_file(dollars, "test", engine=engine)
    import_statement_file(_statement(var_dir, account, [_credit("1.00", text="d", asr="A5")], statement_id="s5", seq=5,
                                     opening="1002.00", name="s5.xml"), "test", engine=engine)
    assert len([i for i in _rows(engine, ControlListItem) if i.kind == "sequence_gap"]) == 1


def test_a_crash_after_some_entries_leaves_nothing_and_the_rerun_books_each_once(engine, var_dir, bib, monkeypatch) -> None:
    account, _ = bib
    entries = [_credit("30.00", ref=ogm("062", 1), asr="A1"), _credit("15.50", ref=ogm("062", 2), asr="A2"),
               _credit("40.00", ref=ogm("062", 3), asr="A3")]
    path = _statement(var_dir, account, entries)
    # The crash comes once the entries, payments and allocations are written, before the references are.
    original = camt_import._Import._write_references
    written = {}

    def crash(self):  # type: ignore[no-untyped-def]
        with_session = self.session
        written.update({model: with_session.scalar(select(func.count()).select_from(model))
                        for model in (BankEntry, Payment, PaymentAllocation)})
        raise RuntimeError("worker killed")

    monkeypatch.setattr(camt_import._Import, "_write_references", crash)
    with pytest.raises(RuntimeError):
        import_statement_file(path, "test", engine=engine)
    assert written == {BankEntry: 3, Payment: 3, PaymentAllocation: 5}  # the references have 2, 1 and 2 debt lines
    assert path.exists(), "the file stays in the inbox for the rerun"
    for model in (BankStatement, BankEntry, Payment, PaymentAllocation, ControlListItem, AuditLog):
        assert _count(engine, model) == 0, model
    assert {r.status for r in _rows(engine, PaymentReference)} == {"sealed"}
    monkeypatch.setattr(camt_import._Import, "_write_references", original)
    assert import_statement_file(path, "test", engine=engine)["outcomes"] == {"paid": 3}
    assert _count(engine, Payment) == 3


def test_an_account_of_no_hub_books_nothing(engine, var_dir, bib) -> None:
    result = import_statement_file(_statement(var_dir, "BE68539007547034", [_credit("30.00", ref=ogm("062", 1), asr="A1")]), "test", engine=engine)
    assert result["outcomes"] == {"unknown_account": 1} and _count(engine, Payment) == 0


def test_pending_entries_are_not_booked(engine, var_dir, bib) -> None:
    account, _ = bib
    pending = Entry(True, DAY, (Tx(Decimal("30.00"), structured_reference=ogm("062", 1), account_servicer_ref="P1"),), status="PDNG")
    result = import_statement_file(_statement(var_dir, account, [pending]), "test", engine=engine)
    assert result["outcomes"] == {"not_booked": 1} and _count(engine, Payment) == 0


# -- direct debits: collections paid by the bank, returned, reversed -------------------------------------------


@pytest.fixture
def collected(engine, var_dir):  # type: ignore[no-untyped-def]
    """Two exported collections (FRST) of one run: 25.00 and 17.50."""
    with transaction(engine) as session:
        inst = make_institution(session)
        for amount in ("25.00", "17.50"):
            owner = make_user(session)
            make_mandate(session, inst, owner, first=date(2026, 11, 21))
            add_debt(session, inst, owner, "LID", amount)
        execute_mandates(session, date(2026, 11, 20), "test")
        account = inst.hub.creditor_iban
    with transaction(engine, readonly=True) as session:
        run = session.scalar(select(Collection.run_id))
        from include.finance.models import CollectionRun

        loi = session.get(CollectionRun, run).loi
    export_collection_run(loi, "test", engine=engine, outbox=var_dir / "outbox")
    with transaction(engine, readonly=True) as session:
        collections = session.execute(select(Collection.end_to_end_id, Collection.amount).order_by(Collection.id)).all()
    return account, collections


def test_a_direct_debit_batch_credit_pays_each_collection(engine, var_dir, collected) -> None:
    account, collections = collected
    batch = Entry(True, DAY, tuple(Tx(amount, end_to_end_id=e2e, account_servicer_ref=f"B{n}") for n, (e2e, amount) in enumerate(collections)),
                  bank_tx_code=SDD_COLLECTED, account_servicer_ref="BATCH1")
    result = import_statement_file(_statement(var_dir, account, [batch]), "test", engine=engine)
    assert result["outcomes"] == {"paid": 2}
    assert {c.status for c in _rows(engine, Collection)} == {"paid"}
    assert {r.status for r in _rows(engine, PaymentReference)} == {"paid"}
    from include.finance.models import CollectionRun

    assert [r.status for r in _rows(engine, CollectionRun)] == ["confirmed"]  # nothing of it waits any more


def test_the_details_of_a_batch_already_booked_are_not_booked_again(engine, var_dir, collected) -> None:
    # The statement books the block from its batch line; the bank's detail notification of that credit follows.
    account, collections = collected
    run = _run_loi(engine)
    import_statement_file(_statement(var_dir, account, [_batch_only(collections, payment_info_id=f"{run}/FRST")]),
                          "test", engine=engine)
    details = Entry(True, DAY, tuple(Tx(amount, end_to_end_id=e2e) for e2e, amount in collections), bank_tx_code=SDD_COLLECTED,
                    account_servicer_ref="BATCH1-DETAIL", payment_info_id=f"{run}/FRST")
    result = import_statement_file(_statement(var_dir, account, [details], statement_id="2026-330-D", seq=None,
                                              name="details.xml"), "test", engine=engine)
    assert result["outcomes"] == {"not_booked": 2}
    assert len(_rows(engine, Payment)) == 2 and _rows(engine, ControlListItem) == []
    # A credit of another amount for a paid collection is still a person's to look at.
    (e2e, amount), _ = collections
    odd = Entry(True, DAY, (Tx(amount + 1, end_to_end_id=e2e),), bank_tx_code=SDD_COLLECTED, account_servicer_ref="ODD")
    result = import_statement_file(_statement(var_dir, account, [odd], statement_id="2026-331", seq=None, name="odd.xml"),
                                   "test", engine=engine)
    assert result["outcomes"] == {"closed_reference": 1}


def test_a_batch_credit_naming_a_run_never_sent_is_an_ordinary_unmatched_credit(engine, var_dir, collected) -> None:
    from include.finance.models import CollectionRun

    account, collections = collected
    run = _run_loi(engine)
    with transaction(engine) as session:
        session.scalars(select(CollectionRun)).one().status = "ready"
    result = import_statement_file(_statement(var_dir, account, [_batch_only(collections, payment_info_id=f"{run}/FRST")]),
                                   "test", engine=engine)
    assert result["outcomes"] == {"unmatched": 1}
    assert _rows(engine, Payment) == []


def test_a_run_with_a_collection_still_waiting_stays_exported(engine, var_dir, collected) -> None:
    from include.finance.models import CollectionRun

    account, collections = collected
    (e2e, amount), _ = collections
    paid = Entry(True, DAY, (Tx(amount, end_to_end_id=e2e, account_servicer_ref="C1"),), bank_tx_code=SDD_COLLECTED)
    import_statement_file(_statement(var_dir, account, [paid]), "test", engine=engine)
    assert sorted(c.status for c in _rows(engine, Collection)) == ["exported", "paid"]
    assert [r.status for r in _rows(engine, CollectionRun)] == ["exported"]


@pytest.mark.parametrize("paid_at_the_desk", ["5.00", "25.00"])
def test_a_refund_the_bank_gave_back_with_its_collection_is_listed_with_nothing_to_refund(
        engine, var_dir, collected, paid_at_the_desk: str) -> None:
    # fp:BIB:1 (25.00) partly or wholly paid at the desk; its collection is credited anyway (an over-payment, or a
    # payment on a paid reference: a refund), then the debtor has the bank return the whole collection.
    from include.finance.payments import Ledger
    from include.finance_page import refunds

    account, collections = collected
    (e2e, amount), _ = collections
    with transaction(engine) as session:
        ledger = Ledger(session, "desk", datetime(2026, 11, 23, tzinfo=timezone.utc))
        ref_id = session.scalars(select(PaymentReference.id).order_by(PaymentReference.id)).first()
        ledger.pay(ledger.load([ref_id])[ref_id], Decimal(paid_at_the_desk), source="manual", note="desk")
        ledger.flush()
    credit = Entry(True, DAY, (Tx(amount, end_to_end_id=e2e, account_servicer_ref="C1", counterparty_name="Jan",
                                  counterparty_iban="BE68539007547034"),), bank_tx_code=SDD_COLLECTED)
    import_statement_file(_statement(var_dir, account, [credit]), "test", engine=engine)
    with transaction(engine, readonly=True) as session:
        (before,) = refunds(session).rows
    # To refund: the 5.00 too much, or the whole 25.00 paid on a paid reference (the desk's amount, both times).
    assert (before[5], before[6]) == (paid_at_the_desk, "Jan BE68 **** **** 7034")
    back = Entry(False, DAY, (Tx(amount, end_to_end_id=e2e, return_reason="MD06"),), bank_tx_code=SDD_RETURNED,
                 account_servicer_ref="R1")
    import_statement_file(_statement(var_dir, account, [back], statement_id="2026-331", seq=331, name="back.xml"),
                          "test", engine=engine)
    with transaction(engine, readonly=True) as session:
        section = refunds(session)
    (row,) = section.rows  # still listed until someone handles it, but with nothing to refund
    assert row[0] == before[0] and (row[5], row[6]) == ("0.00", "Jan BE68 **** **** 7034")
    assert row[8].startswith(f"do not refund: the bank returned collection {e2e} on {DAY}")
    assert section.amount_total == Decimal("0.00")
    assert section.note.startswith("0 to refund or book elsewhere, 1 returned by the bank")


def _run_loi(engine) -> str:  # type: ignore[no-untyped-def]
    from include.finance.models import CollectionRun

    with transaction(engine, readonly=True) as session:
        return session.scalars(select(CollectionRun.loi)).one()


def _batch_only(collections, **names) -> Entry:  # type: ignore[no-untyped-def]
    """The bank's one-line report of a batch-booked block: Btch with its name, no TxDtls."""
    return Entry(True, DAY, tuple(Tx(amount) for _, amount in collections), bank_tx_code=SDD_COLLECTED,
                 account_servicer_ref="BATCH1", details=False, **names)


@pytest.mark.parametrize("named_by", ["payment_info_id", "message_id"])
def test_a_batch_credit_without_details_pays_its_block_and_confirms_the_run(engine, var_dir, collected, named_by) -> None:
    account, collections = collected
    run = _run_loi(engine)
    name = f"{run}/FRST" if named_by == "payment_info_id" else run
    result = import_statement_file(_statement(var_dir, account, [_batch_only(collections, **{named_by: name})]),
                                   "test", engine=engine)
    assert result["outcomes"] == {"paid": 1}
    assert {c.status for c in _rows(engine, Collection)} == {"paid"}
    assert {r.status for r in _rows(engine, PaymentReference)} == {"paid"}
    (entry,) = _rows(engine, BankEntry)
    payments = _rows(engine, Payment)
    assert len(payments) == 2 and {p.bank_entry_id for p in payments} == {entry.id}
    assert sum(p.amount for p in payments) == entry.amount == entry.booked_amount
    from include.finance.models import CollectionRun

    assert [r.status for r in _rows(engine, CollectionRun)] == ["confirmed"]
    assert _rows(engine, ControlListItem) == []


def test_a_batch_credit_of_another_amount_books_nothing_and_says_why(engine, var_dir, collected) -> None:
    account, collections = collected
    run = _run_loi(engine)
    short = [(collections[0][0], collections[0][1])]  # the bank credits only the first: the second did not go through
    result = import_statement_file(_statement(var_dir, account, [_batch_only(short, payment_info_id=f"{run}/FRST")]),
                                   "test", engine=engine)
    assert result["outcomes"] == {"unmatched": 1}
    assert _rows(engine, Payment) == []
    assert {c.status for c in _rows(engine, Collection)} == {"exported"}
    (item,) = _rows(engine, ControlListItem)
    difference = collections[0][1] - sum(amount for _, amount in collections)
    assert item.kind == "batch_mismatch" and f"difference {difference}" in item.reason and run in item.action


def test_a_batch_credit_after_a_return_counts_only_what_is_still_open(engine, var_dir, collected) -> None:
    # One collection came back first; the batch credit is then the rest, and books it.
    account, collections = collected
    run = _run_loi(engine)
    (returned, returned_amount), (kept, kept_amount) = collections
    back = Entry(False, DAY, (Tx(returned_amount, end_to_end_id=returned, return_reason="AM04"),), bank_tx_code=SDD_RETURNED,
                 account_servicer_ref="R1")
    import_statement_file(_statement(var_dir, account, [back], opening="1000.00", name="first.xml"), "test", engine=engine)
    rest = _batch_only([(kept, kept_amount)], payment_info_id=f"{run}/FRST")
    result = import_statement_file(_statement(var_dir, account, [rest], statement_id="2026-331", seq=331, name="second.xml",
                                              opening=str(Decimal("1000.00") - returned_amount)), "test", engine=engine)
    assert result["outcomes"] == {"paid": 1}
    statuses = {c.end_to_end_id: c.status for c in _rows(engine, Collection)}
    assert statuses == {returned: "returned", kept: "paid"}


@pytest.mark.parametrize("returned_first", [False, True])
def test_the_batch_credit_of_a_run_confirmed_by_hand_before_is_not_money_received_again(
        engine, var_dir, collected, returned_first: bool) -> None:
    # Finance confirmed the run from the bank's portal (collection_confirm); the statement with its credit follows.
    from include.finance.models import CollectionRun
    from include.sepa.collection_confirm import confirm_collection_run

    account, collections = collected
    run = _run_loi(engine)
    credited = collections
    if returned_first:  # the first collection came back before the run was confirmed with the rest
        (returned, returned_amount), credited = collections[0], collections[1:]
        back = Entry(False, DAY, (Tx(returned_amount, end_to_end_id=returned, return_reason="AM04"),),
                     bank_tx_code=SDD_RETURNED, account_servicer_ref="R1")
        import_statement_file(_statement(var_dir, account, [back], name="back.xml"), "test", engine=engine)
    with transaction(engine) as session:
        assert confirm_collection_run(session, run, sum(a for _, a in credited), "finance:anna", dry_run=False).booked
    items_before, payments_before = len(_rows(engine, ControlListItem)), len(_rows(engine, Payment))
    result = import_statement_file(_statement(var_dir, account, [_batch_only(credited, payment_info_id=f"{run}/FRST")],
                                              statement_id="2026-331", seq=331, name="credit.xml"),
                                   "test", engine=engine)
    assert result["outcomes"] == {"not_booked": 1}
    assert len(_rows(engine, ControlListItem)) == items_before and len(_rows(engine, Payment)) == payments_before
    assert [r.status for r in _rows(engine, CollectionRun)] == ["confirmed"]
    # Another amount for that block is still a person's to look at.
    odd = Entry(True, DAY, (Tx(Decimal("1.00")),), bank_tx_code=SDD_COLLECTED, account_servicer_ref="BATCH2",
                details=False, payment_info_id=f"{run}/FRST")
    result = import_statement_file(_statement(var_dir, account, [odd], statement_id="2026-332", seq=332, name="odd.xml",
                                              opening="2000.00"), "test", engine=engine)
    assert result["outcomes"] == {"unmatched": 1}
    assert _rows(engine, ControlListItem)[-1].kind == "batch_mismatch"


def test_a_batch_credit_naming_no_run_of_this_hub_is_an_ordinary_unmatched_credit(engine, var_dir, collected) -> None:
    account, collections = collected
    result = import_statement_file(_statement(var_dir, account, [_batch_only(collections, payment_info_id="fj:XYZ:9/FRST")]),
                                   "test", engine=engine)
    assert result["outcomes"] == {"unmatched": 1}
    assert [i.kind for i in _rows(engine, ControlListItem)] == ["unmatched"]
    assert {c.status for c in _rows(engine, Collection)} == {"exported"}


@pytest.mark.parametrize(("reason", "blocked"), [("AM04", False), ("MD01", True)])
def test_a_returned_collection_reopens_the_debt(engine, var_dir, collected, reason, blocked) -> None:
    account, collections = collected
    (e2e, amount), (other, other_amount) = collections
    paid = Entry(True, DAY, (Tx(amount, end_to_end_id=e2e, account_servicer_ref="C1"),
                             Tx(other_amount, end_to_end_id=other, account_servicer_ref="C2")), bank_tx_code=SDD_COLLECTED)
    import_statement_file(_statement(var_dir, account, [paid]), "test", engine=engine)
    with transaction(engine) as session:  # the collection's notice, kept by the paid reference
        ref_id = session.scalar(select(Collection.payment_reference_id).where(Collection.end_to_end_id == e2e))
        session.add(Invoice(
            payment_reference_id=ref_id, version=1, document_id="NOTICE-1", template="default.nl.typ", language="nl",
            channel="paper", amount=amount, file_path="2026-11-20/NOTICE-1.pdf", sha256="0" * 64, pages=1,
            print_day=date(2026, 11, 20), made_at=datetime(2026, 11, 20, 5, tzinfo=timezone.utc), made_by="test"))
    returned = Entry(False, date(2026, 11, 27), (Tx(amount, end_to_end_id=e2e, return_reason=reason, account_servicer_ref="R1"),),
                     bank_tx_code=SDD_RETURNED)
    result = import_statement_file(_statement(var_dir, account, [returned], statement_id="2026-331", seq=331,
                                              opening=str(Decimal("1000.00") + amount + other_amount), name="r.xml"), "test", engine=engine)
    assert result["outcomes"] == {"returned": 1}
    collection = next(c for c in _rows(engine, Collection) if c.end_to_end_id == e2e)
    assert (collection.status, collection.return_reason) == ("returned", reason)
    reference = _rows(engine, PaymentReference, PaymentReference.id == collection.payment_reference_id)[0]
    assert (reference.status, reference.open_amount) == ("deleted", amount)
    (notice,) = _rows(engine, Invoice, Invoice.payment_reference_id == reference.id)  # a deleted reference has none
    assert notice.withdrawn_at is not None and notice.withdrawn_reason == "reference deleted"
    payments = _rows(engine, Payment, Payment.payment_reference_id == reference.id)
    assert sorted(p.amount for p in payments) == [-amount, amount]
    undo = next(p for p in payments if p.amount < 0)
    assert undo.reverses_payment_id == next(p for p in payments if p.amount > 0).id
    (return_entry,) = _rows(engine, BankEntry, BankEntry.account_servicer_ref == "R1")
    assert undo.bank_entry_id == return_entry.id
    summary = (Path(result["control_lists"][0]).parent / "index.html").read_text(encoding="utf-8")
    undone_shown = re.search(r"total undone by returns</dt>\s*<dd>([\d.]+)</dd>", summary)
    assert undone_shown and Decimal(undone_shown.group(1)) == amount
    lines = _rows(engine, DebtLine, DebtLine.end_user_id == reference.end_user_id)
    assert [(line.open_amount, line.payment_reference_id) for line in lines] == [(amount, None)]
    mandate = _rows(engine, Mandate, Mandate.id == collection.mandate_id)[0]
    assert (mandate.blocked_reason is not None) == blocked
    # The open debt is collected again by the next run (FRST again after a returned first collection),
    # unless the mandate is blocked; the other mandate owes nothing new.
    with transaction(engine) as session:
        again = execute_mandates(session, date(2026, 12, 19), "test")
    assert again.by_sequence_type == ({} if blocked else {"FRST": 1})


def test_a_return_we_cannot_place_goes_to_the_control_list(engine, var_dir, collected) -> None:
    account, _ = collected
    stray = Entry(False, DAY, (Tx(Decimal("9.99"), end_to_end_id="SOMEONE-ELSE", return_reason="AC04", account_servicer_ref="X"),))
    result = import_statement_file(_statement(var_dir, account, [stray]), "test", engine=engine)
    assert result["outcomes"] == {"unknown_return": 1}
    assert [i.kind for i in _rows(engine, ControlListItem)] == ["unknown_return"]


def test_refused_balance_books_nothing(engine, var_dir, bib) -> None:
    account, _ = bib
    path = _statement(var_dir, account, [_credit("30.00", ref=ogm("062", 1), asr="A1")], closing_balance=Decimal("999.00"))
    with pytest.raises(CamtRefused, match="closing balance"):
        import_statement_file(path, "test", engine=engine)
    assert _count(engine, Payment) == 0 and (var_dir / "quarantine" / "statement.xml.reason.txt").exists()


def _import_in_a_process(url: str, path: str, start, results) -> None:  # type: ignore[no-untyped-def]
    """A worker's import task: its own engine and connection; one retry after a failure, as Airflow's."""
    from include.finance.db import get_engine

    engine = get_engine(url)
    start.wait()
    for attempt in (1, 2):
        try:
            outcome = import_statement_file(Path(path), f"worker-{os.getpid()}", engine=engine)
            results.put((path, attempt, outcome["status"], outcome["outcomes"]))
            return
        except Exception as error:  # noqa: BLE001 - the retry below is what Airflow would do
            if attempt == 2:
                results.put((path, attempt, "failed", repr(error)))
    engine.dispose()


def test_two_overlapping_statements_imported_at_once_book_every_entry_once(engine, var_dir, bib) -> None:
    # Two workers pick up two statements of one account that share two entries, at the same moment.
    import multiprocessing

    account, refs = bib
    shared = [_credit("30.00", ref=ogm("062", 1), asr="A1"), _credit("15.50", ref=ogm("062", 2), asr="A2")]
    first = _statement(var_dir, account, shared, statement_id="day-1", seq=1, name="a.xml")
    second = _statement(var_dir, account, [*shared, _credit("40.00", ref=ogm("062", 3), asr="A3")],
                        statement_id="day-1b", seq=2, name="b.xml")
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(2), context.Queue()
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    workers = [context.Process(target=_import_in_a_process, args=(url, str(path), start, results))
               for path in (first, second)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    outcomes = [results.get(timeout=5) for _ in workers]
    assert all(status == "imported" for _, _, status, _ in outcomes), outcomes
    assert sorted(p.amount for p in _rows(engine, Payment)) == [Decimal("15.50"), Decimal("30.00"), Decimal("40.00")]
    assert _count(engine, BankEntry) == 3
    assert {r.status for r in _rows(engine, PaymentReference, PaymentReference.id.in_(refs))} == {"paid"}


def test_a_return_with_a_long_proprietary_reason_is_booked_with_its_note_cut(engine, var_dir, collected) -> None:
    # A payment's note repeats the end-to-end id and the bank's reason: made longer than its column by a
    # proprietary reason (Max35Text, any length in a broken file), it is cut, not the booking refused by the
    # database.
    account, collections = collected
    (e2e, amount), (other, other_amount) = collections
    paid = Entry(True, DAY, (Tx(amount, end_to_end_id=e2e, account_servicer_ref="C1"),
                             Tx(other_amount, end_to_end_id=other, account_servicer_ref="C2")), bank_tx_code=SDD_COLLECTED)
    import_statement_file(_statement(var_dir, account, [paid]), "test", engine=engine)
    returned = Entry(False, date(2026, 11, 27), (Tx(amount, end_to_end_id=e2e, return_reason="AM04",
                                                    account_servicer_ref="R1"),), bank_tx_code=SDD_RETURNED)
    path = _statement(var_dir, account, [returned], statement_id="2026-331", seq=331,
                      opening=str(Decimal("1000.00") + amount + other_amount), name="r.xml")
    reason = "NOT-ALLOWED-" + "R" * 240
    content = path.read_bytes()
    assert content.count(b"<Rsn><Cd>AM04</Cd></Rsn>") == 1
    path.write_bytes(content.replace(b"<Rsn><Cd>AM04</Cd></Rsn>", f"<Rsn><Prtry>{reason}</Prtry></Rsn>".encode()))
    result = import_statement_file(path, "test", engine=engine)
    assert result["outcomes"] == {"returned": 1}
    collection = next(c for c in _rows(engine, Collection) if c.end_to_end_id == e2e)
    assert (collection.status, collection.return_reason) == ("returned", reason[:10])
    (entry,) = _rows(engine, BankEntry, BankEntry.account_servicer_ref == "R1")
    assert entry.return_reason == reason[:10]
    (undo,) = _rows(engine, Payment, Payment.amount < 0)
    assert undo.note == f"collection {e2e} returned ({reason})"[:250]
    with transaction(engine, readonly=True) as session:
        audit = session.scalars(select(AuditLog).where(AuditLog.entity == "payment", AuditLog.entity_id == undo.id)).one()
    assert audit.after["note"] == undo.note


def _pay_at_the_counter(engine, end_to_end_id: str, amount: Decimal) -> None:  # type: ignore[no-untyped-def]
    from include.finance.payments import Ledger

    with transaction(engine) as session:
        reference = session.scalars(select(PaymentReference).where(PaymentReference.loi == end_to_end_id)).one()
        ledger = Ledger(session, "cashier", datetime(2026, 11, 23, 10, tzinfo=timezone.utc))
        ledger.receive(ledger.load([reference.id])[reference.id], amount, source="manual", note="paid at the counter")
        ledger.flush()


@pytest.mark.parametrize("credited", [True, False], ids=["credited-then-refunded", "rejected"])
def test_a_return_of_a_collection_paid_another_way_leaves_that_payment(engine, var_dir, collected, credited) -> None:
    # The debtor paid the collected reference at the counter after the file left. The bank then credits the
    # collection (closed reference: refund it) and the debtor has it refunded (MD06), or the bank rejects it
    # (AM04) with no credit at all. Either way the counter payment stands: nothing is open, nothing collected again.
    account, collections = collected
    (e2e, amount), _ = collections
    _pay_at_the_counter(engine, e2e, amount)
    entries = [Entry(True, DAY, (Tx(amount, end_to_end_id=e2e, account_servicer_ref="C1"),), bank_tx_code=SDD_COLLECTED)]
    entries = entries if credited else []
    entries.append(Entry(False, DAY, (Tx(amount, end_to_end_id=e2e, return_reason="MD06" if credited else "AM04",
                                         account_servicer_ref="R1"),), bank_tx_code=SDD_RETURNED))
    result = import_statement_file(_statement(var_dir, account, entries), "test", engine=engine)
    assert result["outcomes"]["returned"] == 1
    collection = next(c for c in _rows(engine, Collection) if c.end_to_end_id == e2e)
    assert collection.status == "returned"
    reference = _rows(engine, PaymentReference, PaymentReference.id == collection.payment_reference_id)[0]
    assert (reference.status, reference.open_amount) == ("paid", Decimal("0.00"))
    assert [(p.amount, p.source) for p in _rows(engine, Payment, Payment.payment_reference_id == reference.id)] == [
        (amount, "manual")]
    assert [line.open_amount for line in _rows(engine, DebtLine, DebtLine.end_user_id == reference.end_user_id)] == [
        Decimal("0.00")]
    returned = next(i for i in _rows(engine, ControlListItem) if i.kind == "returned")
    assert "paid another way" in returned.action
    with transaction(engine) as session:
        assert execute_mandates(session, date(2026, 12, 19), "test").collections == 0


def test_a_return_undoes_only_what_the_collection_booked(engine, var_dir, collected) -> None:
    # 10.00 of the 25.00 came by transfer first; the collection's credit then booked the other 15.00 (overpaid:
    # 10.00 to refund). Its return undoes those 15.00 only: 15.00 is open again and collected with the next run.
    account, collections = collected
    (e2e, amount), _ = collections
    assert amount == Decimal("25.00")
    with transaction(engine, readonly=True) as session:
        number = session.scalars(select(PaymentReference.reference_number).where(PaymentReference.loi == e2e)).one()
    paid = [_credit("10.00", ref=number, asr="T1"),
            Entry(True, DAY, (Tx(amount, end_to_end_id=e2e, account_servicer_ref="C1"),), bank_tx_code=SDD_COLLECTED)]
    assert import_statement_file(_statement(var_dir, account, paid), "test", engine=engine)["outcomes"] == {
        "partial": 1, "overpaid": 1}
    back = Entry(False, date(2026, 11, 27), (Tx(amount, end_to_end_id=e2e, return_reason="MD06", account_servicer_ref="R1"),),
                 bank_tx_code=SDD_RETURNED)
    import_statement_file(_statement(var_dir, account, [back], statement_id="2026-331", seq=331, name="r.xml",
                                     opening="1035.00"), "test", engine=engine)
    reference = _rows(engine, PaymentReference, PaymentReference.loi == e2e)[0]
    assert (reference.status, reference.open_amount) == ("deleted", Decimal("15.00"))
    assert sorted(p.amount for p in _rows(engine, Payment, Payment.payment_reference_id == reference.id)) == [
        Decimal("-15.00"), Decimal("10.00"), Decimal("15.00")]
    with transaction(engine) as session:
        again = execute_mandates(session, date(2026, 12, 19), "test")
    assert (again.collections, again.total) == (1, "15.00")


@pytest.mark.parametrize("code", [SDD_COLLECTED, ("PMNT", "IDDT", "ESDD")], ids=["RDDT", "IDDT"])
def test_a_collection_credited_by_its_communication_only_is_undone_by_its_return(engine, var_dir, collected, code) -> None:
    # A bank that reports the collection's credit without its end-to-end id, by the structured communication the
    # collection carried: still the collection's money, taken back by the return.
    account, collections = collected
    (e2e, amount), _ = collections
    with transaction(engine, readonly=True) as session:
        number = session.scalars(select(PaymentReference.reference_number).where(PaymentReference.loi == e2e)).one()
    paid = Entry(True, DAY, (Tx(amount, structured_reference=number, account_servicer_ref="C1"),), bank_tx_code=code)
    back = Entry(False, DAY, (Tx(amount, end_to_end_id=e2e, return_reason="MD06", account_servicer_ref="R1"),),
                 bank_tx_code=SDD_RETURNED)
    import_statement_file(_statement(var_dir, account, [paid], name="a.xml"), "test", engine=engine)
    import_statement_file(_statement(var_dir, account, [back], statement_id="2026-331", seq=331, name="b.xml",
                                     opening=str(Decimal("1000.00") + amount)), "test", engine=engine)
    reference = _rows(engine, PaymentReference, PaymentReference.loi == e2e)[0]
    assert (reference.status, reference.open_amount) == ("deleted", amount)


def test_a_statement_named_after_its_account_reaches_no_task_result_in_full(engine, var_dir, bib) -> None:
    """What import_file returns is logged and shown as an XCom: a statement id holding the account is masked,
    and so is the folder of its control list."""
    account, _refs = bib
    compact = account.replace(" ", "")
    path = _statement(var_dir, account, [_credit("12.34", text="lidgeld", asr="A1")],
                      statement_id=f"{compact}-2026-330")
    result = import_statement_file(path, "test", engine=engine)
    assert result["statements"][0]["control_items"] == 1
    assert compact not in repr(result) and compact[4:] not in repr(result)
    assert result["statements"][0]["statement"] == f"{compact[:4]} **** **** {compact[-4:]}-2026-330"
    assert Path(result["control_lists"][0]).parent.name.startswith(f"HUB-BIB_{compact[:4]}-{compact[-4:]}-2026-330_")
