"""The mandate check on a real database: four lists, every error with its reason, next dates."""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal

import pytest

from include.finance.db import transaction
from include.finance.models import BankHub
from include.sepa.mandate_check import MandateList, check_mandates
from include.sepa.mandate_reports import write_mandate_lists
from tests.factories import add_debt, iban, make_institution, make_mandate, make_user

RUN = date(2026, 11, 20)  # a Friday; with 2 lead days the earliest collection is Monday 23rd


def _by_loi(engine, **kwargs):  # type: ignore[no-untyped-def]
    with transaction(engine, readonly=True) as session:
        return {m.loi: m for m in check_mandates(session, RUN, **kwargs)}


ERROR_CASES = [
    ("bad IBAN", {"debtor_iban": iban(1)[:-1] + str((int(iban(1)[-1]) + 1) % 10)}, "debtor IBAN"),
    ("missing IBAN", {"debtor_iban": None}, "debtor IBAN missing"),
    ("bad BIC", {"debtor_bic": "KREDBEB"}, "debtor BIC KREDBEB is invalid"),
    ("signed after first", {"signature_date": date(2026, 12, 1)}, "after the first collection date"),
    ("signed after end", {"signature_date": date(2026, 12, 1), "end_date": date(2026, 11, 30)}, "after the end date"),
    ("first after end", {"end_date": date(2026, 11, 1)}, "first collection date 2026-11-21 is after the end date"),
    ("no hub", {"hub_id": None}, "no bank hub"),
    ("no debtor", {"debtor_id": None}, "no debtor"),
    ("no type", {"type_id": None}, "no payment reference type"),
    ("no frequency", {"frequency_id": None}, "no frequency"),
    ("no signature date", {"signature_date": None}, "signature date missing"),
    # signed after the run date: a collection presented now would precede the debtor's signature
    ("signed in the future", {"signature_date": date(2026, 11, 21)}, "signed on 2026-11-21, after the run date 2026-11-20"),
    # Reachability of the debtor's account by a SEPA direct debit (schwifty's SEPA zone; the EEA by country).
    ("outside SEPA", {"debtor_iban": "SA0380000000608010167519"}, "is of SA, outside the SEPA zone"),
    ("Swiss bank", {"debtor_iban": "CH9300762011623852957", "debtor_bic": "UBSWCHZH80A"},
     "is of CH, in SEPA but outside the EEA"),
    ("British bank", {"debtor_iban": "GB29NWBK60161331926819", "debtor_bic": "NWBKGB2L"},
     "is of GB, in SEPA but outside the EEA"),
    # A mandate id the bank file could only carry changed (cut, transliterated, collapsed) or banks refuse.
    ("UMR with //", {"reference": "BIB/2019//42"}, "holds '//'"),
    ("UMR ends in /", {"reference": "BIB-2019/"}, "holds '/' at an end"),
    ("UMR with accent", {"reference": "Mandaat Zoë"}, "holds 'ë'"),
    ("UMR with two spaces", {"reference": "MND  7"}, "starts or ends with a space or holds two in a row"),
    ("UMR empty", {"reference": ""}, "mandate reference (UMR) missing"),
    ("UMR with underscore", {"reference": "MND_7"}, "holds '_'"),
]


@pytest.mark.parametrize(("case", "fields", "reason"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_each_error_puts_an_active_mandate_on_active_err_with_its_reason(engine, case, fields, reason) -> None:
    with transaction(engine) as session:
        inst = make_institution(session)
        good = make_mandate(session, inst, make_user(session), first=date(2026, 11, 21))
        bad = make_mandate(session, inst, make_user(session), first=date(2026, 11, 21), **fields)
        good_loi, bad_loi = good.loi, bad.loi
    checked = _by_loi(engine)
    assert checked[good_loi].list is MandateList.ACTIVE_OK
    assert checked[bad_loi].list is MandateList.ACTIVE_ERR
    assert any(reason in text for text in checked[bad_loi].reasons), checked[bad_loi].reasons
    assert checked[bad_loi].next_due_date is None


def test_a_mandate_reference_longer_than_35_characters_is_an_error(engine) -> None:
    if engine.dialect.name != "sqlite":  # PostgreSQL refuses it already: the column holds 35 characters
        from sqlalchemy.exc import DataError

        with pytest.raises(DataError), transaction(engine) as session:
            make_mandate(session, make_institution(session), make_user(session), first=date(2026, 11, 21),
                         reference="M" * 36)
        return
    with transaction(engine) as session:
        loi = make_mandate(session, make_institution(session), make_user(session), first=date(2026, 11, 21),
                           reference="M" * 36).loi
    checked = _by_loi(engine)[loi]
    assert checked.list is MandateList.ACTIVE_ERR
    assert checked.reasons == [f"mandate reference {'M' * 35!r}… has 36 characters: an id has at most 35"]


@pytest.mark.parametrize(("first", "last"), [("", ""), (None, "  "), ("  ", "")])
def test_a_debtor_without_a_name_puts_the_mandate_on_active_err(engine, first, last) -> None:
    with transaction(engine) as session:
        inst = make_institution(session)
        debtor = make_user(session, first=first, last=last)
        loi = make_mandate(session, inst, make_user(session), first=date(2026, 11, 21), debtor_id=debtor.id).loi
    checked = _by_loi(engine)[loi]
    assert checked.list is MandateList.ACTIVE_ERR
    assert "debtor has no name (the bank file needs one)" in checked.reasons


@pytest.mark.parametrize("account", [
    "NL91ABNA0417164300", "DE89370400440532013000", "FR1420041010050500013M02606", "NO9386011117947",
    "LI21088100002324013AA", "IS140159260076545510730339", "be68 5390 0754 7034",
])
def test_debtor_accounts_in_the_eea_are_collected(engine, account) -> None:
    with transaction(engine) as session:
        inst = make_institution(session)
        loi = make_mandate(session, inst, make_user(session), first=date(2026, 11, 21), debtor_iban=account,
                           debtor_bic=None).loi
    assert _by_loi(engine)[loi].list is MandateList.ACTIVE_OK


def test_no_transaction_code_pattern_and_hub_without_creditor_id(engine) -> None:
    with transaction(engine) as session:
        inst = make_institution(session)
        broken_hub = BankHub(code="OLD", name="old", financial_system_id=inst.system.id, creditor_iban=iban(9),
                             creditor_name="Bib", creditor_id="BE00ZZZ0123456789")
        session.add(broken_hub)
        session.flush()
        no_pattern = make_mandate(session, inst, make_user(session), first=date(2026, 11, 21), patterns=())
        on_broken = make_mandate(session, inst, make_user(session), first=date(2026, 11, 21), hub_id=broken_hub.id)
        lois = no_pattern.loi, on_broken.loi
    checked = _by_loi(engine)
    assert checked[lois[0]].reasons == ["no transaction-code pattern"]
    assert len(checked[lois[1]].reasons) == 1
    assert checked[lois[1]].reasons[0].startswith("bank hub OLD incomplete: creditor identifier BE00ZZZ0123456789 is invalid")


def test_a_blank_pattern_is_no_pattern(engine) -> None:
    with transaction(engine) as session:
        inst = make_institution(session)
        only_blank = make_mandate(session, inst, make_user(session), first=date(2026, 11, 21), patterns=("  ",))
        with_one = make_mandate(session, inst, make_user(session), first=date(2026, 11, 21), patterns=("", "LID"))
        lois = only_blank.loi, with_one.loi
    checked = _by_loi(engine, with_amounts=True)
    assert checked[lois[0]].list is MandateList.ACTIVE_ERR
    assert checked[lois[0]].reasons == ["no transaction-code pattern"]
    assert checked[lois[1]].list is MandateList.ACTIVE_OK


def test_a_due_mandate_without_open_debt_says_so(engine) -> None:
    with transaction(engine) as session:
        inst = make_institution(session)
        owing, owing_nothing = make_user(session), make_user(session)
        add_debt(session, inst, owing, "LID", "12.00")
        lois = [make_mandate(session, inst, user, first=date(2026, 11, 21)).loi for user in (owing, owing_nothing)]
    checked = _by_loi(engine, with_amounts=True)
    assert (checked[lois[0]].eligible_amount, checked[lois[0]].note) == (Decimal("12.00"), "")
    nothing = checked[lois[1]]
    assert (nothing.list, nothing.due, nothing.eligible_amount) == (MandateList.ACTIVE_OK, True, Decimal("0.00"))
    assert nothing.note == "no open debt to collect: nothing is collected this time"


def test_inactive_mandates_go_to_the_nonactive_lists(engine) -> None:
    with transaction(engine) as session:
        inst = make_institution(session)
        fine = make_mandate(session, inst, make_user(session), first=date(2026, 11, 21), active=False)
        broken = make_mandate(session, inst, make_user(session), first=date(2026, 11, 21), active=False, debtor_id=None)
        lois = fine.loi, broken.loi
    checked = _by_loi(engine)
    assert checked[lois[0]].list is MandateList.NONACTIVE_OK
    assert checked[lois[1]].list is MandateList.NONACTIVE_ERR
    assert checked[lois[0]].next_due_date is None  # inactive mandates are never scheduled


def test_next_dates_of_active_ok_mandates(engine) -> None:
    with transaction(engine) as session:
        inst = make_institution(session)
        user = make_user(session)
        due_now = make_mandate(session, inst, user, first=date(2026, 11, 21))
        later = make_mandate(session, inst, user, first=date(2026, 12, 15))
        converted = make_mandate(session, inst, user, first=date(2025, 1, 31), last_collection_date=date(2026, 10, 31))
        ended = make_mandate(session, inst, user, first=date(2025, 1, 10), end_date=date(2026, 10, 1),
                             last_collection_date=date(2026, 9, 10))
        lois = due_now.loi, later.loi, converted.loi, ended.loi
    checked = _by_loi(engine)
    now, future, conv, done = (checked[loi] for loi in lois)
    assert (now.next_due_date, now.next_collection_date, now.due) == (date(2026, 11, 21), date(2026, 11, 23), True)
    assert (future.next_due_date, future.next_collection_date, future.due) == (date(2026, 12, 15), date(2026, 12, 15), False)
    # Converted: last collected 31 October on a 31st-of-the-month schedule: next 30 November.
    assert (conv.next_due_date, conv.due, conv.has_prior) == (date(2026, 11, 30), False, True)
    assert done.list is MandateList.ACTIVE_OK and done.next_due_date is None and "ended" in done.note


def test_eligible_amount_counts_matching_open_debt_of_the_hub_system_only(engine) -> None:
    with transaction(engine) as session:
        inst = make_institution(session)
        other = make_institution(session, code="SKA")
        user = make_user(session)
        mandate = make_mandate(session, inst, user, first=date(2026, 11, 21), patterns=("LID", "BOETE*"))
        add_debt(session, inst, user, "LID", "25.00")
        add_debt(session, inst, user, "BOETE-LAAT", "1.50")
        add_debt(session, inst, user, "LIDGELD", "9.99")  # not matched: "LID" is exact
        add_debt(session, inst, user, "BOETE-LAAT", "7.00", system=other.system)  # other financial system
        paid = add_debt(session, inst, user, "LID", "4.00")
        paid.open_amount = Decimal("0.00")
        loi = mandate.loi
    assert _by_loi(engine, with_amounts=True)[loi].eligible_amount == Decimal("26.50")


def test_lists_are_written_as_csv_and_html(engine, tmp_path) -> None:
    with transaction(engine) as session:
        inst = make_institution(session)
        make_mandate(session, inst, make_user(session, "Renée", "Lefèvre"), first=date(2026, 11, 21))
        make_mandate(session, inst, make_user(session), first=date(2026, 11, 21), debtor_id=None)
        make_mandate(session, inst, make_user(session), first=date(2026, 11, 21), active=False)
    with transaction(engine, readonly=True) as session:
        lists = write_mandate_lists(check_mandates(session, RUN, with_amounts=True), RUN, folder=tmp_path)
    assert lists.counts == {"active-ok": 1, "active-err": 1, "nonactive-ok": 1, "nonactive-err": 0}
    with (tmp_path / "active-ok.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    assert len(rows) == 1
    assert rows[0]["debtor"] == "Renée Lefèvre"
    assert rows[0]["next_collection_date"] == "2026-11-23"
    assert "*" in rows[0]["debtor_iban"]  # masked
    with (tmp_path / "active-err.csv").open(encoding="utf-8-sig", newline="") as handle:
        assert next(csv.DictReader(handle, delimiter=";"))["reasons"] == "no debtor"
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "Renée Lefèvre" in page and "active-err (1)" in page and "D&#39;Hondt" in page


@pytest.mark.parametrize(
    ("last_collection", "lapsed"),
    [(date(2023, 11, 19), True), (date(2023, 11, 20), False), (date(2025, 6, 1), False)],
)
def test_a_converted_mandate_unused_for_36_months_has_lapsed(engine, last_collection, lapsed) -> None:
    # RUN is 2026-11-20: 36 months after 2023-11-20 is still within the mandate's life, the day before is not.
    with transaction(engine) as session:
        inst = make_institution(session)
        loi = make_mandate(session, inst, make_user(session), first=date(2020, 1, 20), signature_date=date(2019, 12, 1),
                           last_collection_date=last_collection).loi
    checked = _by_loi(engine)[loi]
    assert (checked.list is MandateList.ACTIVE_ERR) is lapsed
    assert any(reason.startswith("lapsed: no collection presented since") for reason in checked.reasons) is lapsed


def test_a_returned_collection_keeps_the_mandate_alive_and_a_cancelled_one_does_not(engine) -> None:
    from sqlalchemy import select

    from include.finance.models import Collection
    from include.sepa.mandate_execution import execute_mandates

    with transaction(engine) as session:
        inst = make_institution(session, lead_days=2)
        owner = make_user(session)
        kept, dropped = (make_mandate(session, inst, owner, first=date(2023, 12, 1), signature_date=date(2023, 11, 1),
                                      patterns=(pattern,)) for pattern in ("LID", "BOETE*"))
        add_debt(session, inst, owner, "LID", "10.00")
        add_debt(session, inst, owner, "BOETE-X", "5.00")
        lois = kept.loi, dropped.loi
    with transaction(engine) as session:
        assert execute_mandates(session, date(2023, 11, 29), "test").collections == 2
        first, second = session.scalars(select(Collection).order_by(Collection.id)).all()
        first.status, second.status = "returned", "cancelled"
    checked = _by_loi(engine)
    # Presented on 1 Dec 2023 (returned): 36 months run to 1 Dec 2026, after RUN. Never presented: no life counted.
    assert not any(r.startswith("lapsed") for r in checked[lois[0]].reasons)
    assert not any(r.startswith("lapsed") for r in checked[lois[1]].reasons)
    with transaction(engine, readonly=True) as session:
        later = {m.loi: m for m in check_mandates(session, date(2026, 12, 2))}
    assert any(r.startswith("lapsed: no collection presented since 2023-12-01") for r in later[lois[0]].reasons)
    assert not any(r.startswith("lapsed") for r in later[lois[1]].reasons)


def test_the_sql_pattern_match_decides_as_the_python_rule(engine) -> None:
    """Every case of the matcher's own table, answered by the SQL the check sums eligible debt with."""
    from sqlalchemy import exists, select

    from include.finance.models import DebtLine, MandateTransactionCode
    from include.sepa.transaction_codes import matcher, sql_matches, sql_meanings
    from tests.unit.test_transaction_codes import CASES

    with transaction(engine) as session:
        inst = make_institution(session)
        cases = []
        for patterns, code, expected in CASES:
            user = make_user(session)
            mandate = make_mandate(session, inst, user, first=date(2026, 11, 21), patterns=tuple(patterns))
            line = add_debt(session, inst, user, code, "1.00")
            assert matcher(patterns)(code) is expected
            cases.append((mandate.id, line.id, expected))
    with transaction(engine, readonly=True) as session:
        meanings = sql_meanings(session.scalars(select(MandateTransactionCode.pattern).distinct()))
        for mandate_id, line_id, expected in cases:
            matched = session.scalar(select(exists().where(
                MandateTransactionCode.mandate_id == mandate_id, DebtLine.id == line_id,
                sql_matches(meanings, MandateTransactionCode.pattern, DebtLine.transaction_code))))
            assert bool(matched) is expected, CASES[[c[0] for c in cases].index(mandate_id)]


def test_eligible_amounts_follow_the_rule_for_every_case(engine) -> None:
    """The check's eligible amount (summed in SQL) is what the rule matches, case by case of the matcher's table."""
    from tests.unit.test_transaction_codes import CASES

    with transaction(engine) as session:
        inst = make_institution(session)
        expected = {}
        for patterns, code, matches in CASES:
            user = make_user(session)
            # every mandate needs a pattern that is not blank to be active-ok; one that matches no code here keeps the
            # case's answer
            loi = make_mandate(session, inst, user, first=date(2026, 11, 21), patterns=(*patterns, "NO-SUCH-CODE")).loi
            add_debt(session, inst, user, code, "2.50")
            add_debt(session, inst, user, "OTHER-CODE", "0.10")
            expected[loi] = Decimal("2.50") * matches + Decimal("0.10") * any(p.strip() == "*" for p in patterns)
    checked = _by_loi(engine, with_amounts=True)
    assert {loi: checked[loi].eligible_amount for loi in expected} == expected


def test_the_36_months_run_from_the_day_a_late_slot_was_collected(engine) -> None:
    # A yearly mandate's 15 January 2024 slot is collected only on 3 October 2024, when its first debt appears;
    # nothing after. On 20 January 2027 the mandate is 36 months past the slot but not past the collection.
    from include.sepa.mandate_execution import execute_mandates

    with transaction(engine) as session:
        inst = make_institution(session, lead_days=2)
        owner = make_user(session)
        mandate = make_mandate(session, inst, owner, first=date(2024, 1, 15), frequency=inst.yearly)
        add_debt(session, inst, owner, "LID", "10.00")
        loi = mandate.loi
    with transaction(engine) as session:
        assert execute_mandates(session, date(2024, 10, 1), "test").runs[0]["collection_date"] == "2024-10-03"
    with transaction(engine, readonly=True) as session:
        alive = {m.loi: m for m in check_mandates(session, date(2027, 1, 20))}[loi]
        lapsed = {m.loi: m for m in check_mandates(session, date(2027, 10, 4))}[loi]
    assert alive.list is MandateList.ACTIVE_OK, alive.reasons
    assert lapsed.reasons == ["lapsed: no collection presented since 2024-10-03, more than 36 months ago (SDD rulebook); "
                              "a new mandate must be signed"]


def test_a_mandate_whose_hub_serves_another_financial_system_is_refused(engine) -> None:
    # fm:BIB:n with the hub of SKA would collect SKA's debt (the hub's system) under a BIB mandate.
    with transaction(engine) as session:
        bib, ska = make_institution(session), make_institution(session, code="SKA")
        owner = make_user(session)
        mandate = make_mandate(session, bib, owner, first=date(2026, 11, 21), hub_id=ska.hub.id)
        add_debt(session, ska, owner, "LID", "10.00")
        loi = mandate.loi
    checked = _by_loi(engine)[loi]
    assert checked.list is MandateList.ACTIVE_ERR
    assert checked.reasons == ["bank hub HUB-SKA collects the debt of another financial system than the mandate's"]
