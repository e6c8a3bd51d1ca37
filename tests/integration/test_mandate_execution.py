"""Mandate execution on a real database: eligibility, sequence types, dates, runs, idempotence, atomicity."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from stdnum.be import ogm_vcs

from include.finance.db import transaction
from include.finance.models import (
    AuditLog,
    Collection,
    CollectionRun,
    DebtLine,
    Mandate,
    PaymentReference,
    PaymentReferenceLine,
)
from include.sepa import mandate_execution
from include.sepa.mandate_execution import execute_mandates
from tests.factories import add_debt, make_institution, make_mandate, make_user

RUN = date(2026, 11, 20)  # Friday; lead 2 days -> Sunday 22nd -> first business day Monday 23rd


def _execute(engine, run_date=RUN):  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        return execute_mandates(session, run_date, "test")


def _due_mandates(engine, count: int, amount: str = "10.00", **hub_settings):  # type: ignore[no-untyped-def]
    """An institution with ``count`` monthly mandates due on RUN, each owing one matching line."""
    with transaction(engine) as session:
        inst = make_institution(session, **hub_settings)
        for _ in range(count):
            owner = make_user(session)
            make_mandate(session, inst, owner, first=date(2026, 11, 21))
            add_debt(session, inst, owner, "LID", amount)
    return inst


def _collections(engine) -> dict[int, Collection]:  # type: ignore[no-untyped-def]
    with transaction(engine, readonly=True) as session:
        return {c.mandate_id: c for c in session.scalars(select(Collection))}


def test_eligible_debt_becomes_one_sealed_reference_and_collection(engine) -> None:
    with transaction(engine) as session:
        inst = make_institution(session)
        other = make_institution(session, code="SKA")
        owner, payer = make_user(session, "Arthur", "Peeters"), make_user(session, "Griet", "Peeters")
        mandate = make_mandate(session, inst, owner, first=date(2026, 11, 21), debtor_id=payer.id)
        lid = add_debt(session, inst, owner, "LID", "25.00")
        fine = add_debt(session, inst, owner, "BOETE-LAAT", "1.20")
        add_debt(session, inst, owner, "PRINT", "0.40")  # no pattern matches
        add_debt(session, inst, owner, "BOETE-LAAT", "3.00", system=other.system)  # other financial system
        add_debt(session, inst, payer, "LID", "30.00")  # the payer's own debt is not the owner's
        ids = mandate.id, {lid.id, fine.id}
    result = _execute(engine)
    assert (result.due, result.collections, result.total) == (1, 1, "26.20")
    with transaction(engine, readonly=True) as session:
        reference = session.scalars(select(PaymentReference)).one()
        assert reference.status == "sealed" and reference.sealed_at is not None
        assert reference.amount == reference.open_amount == Decimal("26.20")
        assert reference.mandate_id == ids[0] and reference.end_user_id != payer.id
        assert reference.loi == "fp:BIB:1" and reference.invoice_number == "BIB-1"
        assert ogm_vcs.is_valid(reference.reference_number) and reference.reference_number.startswith("062")
        assert reference.due_date == date(2026, 11, 23)
        lines = session.scalars(select(PaymentReferenceLine.debt_line_id)).all()
        assert set(lines) == ids[1]
        held = session.scalars(select(DebtLine.id).where(DebtLine.payment_reference_id == reference.id)).all()
        assert set(held) == ids[1]
        collection = session.scalars(select(Collection)).one()
        assert (collection.sequence_type, collection.amount, collection.status) == ("FRST", Decimal("26.20"), "pending")
        assert collection.end_to_end_id == reference.loi and collection.due_date == date(2026, 11, 21)
        run = session.get(CollectionRun, collection.run_id)
        assert (run.loi, run.status, run.collection_date, run.transaction_count, run.total_amount) == (
            "fj:BIB:1", "ready", date(2026, 11, 23), 1, Decimal("26.20"))


def test_no_eligible_debt_creates_nothing(engine) -> None:
    with transaction(engine) as session:
        inst = make_institution(session)
        owner = make_user(session)
        make_mandate(session, inst, owner, first=date(2026, 11, 21))
        add_debt(session, inst, owner, "PRINT", "0.40")
    result = _execute(engine)
    assert (result.due, result.without_debt, result.collections, result.runs) == (1, 1, 0, [])
    with transaction(engine, readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(PaymentReference)) == 0


def test_debt_in_an_open_reference_is_not_collected_twice(engine) -> None:
    with transaction(engine) as session:
        inst = make_institution(session)
        owner = make_user(session)
        make_mandate(session, inst, owner, first=date(2026, 11, 21), patterns=("LID",))
        make_mandate(session, inst, owner, first=date(2026, 11, 21), patterns=("*",))  # would take the same lines
        add_debt(session, inst, owner, "LID", "25.00")
    result = _execute(engine)
    assert result.collections == 1 and result.without_debt == 1


@pytest.mark.parametrize(
    ("mandate_fields", "hub_fields", "expected"),
    [
        ({}, {}, "FRST"),
        ({}, {"rcur_only": True}, "RCUR"),
        ({"last_collection_date": date(2026, 10, 21)}, {}, "RCUR"),
        ({"last_collection_date": date(2026, 10, 21), "end_date": date(2026, 12, 1)}, {}, "FNAL"),
        ({"end_date": date(2026, 12, 1)}, {}, "FRST"),  # first and last: a series opens with FRST
        ({"one_off": True}, {}, "OOFF"),
    ],
    ids=["first", "rcur-only hub", "converted", "final", "first-and-final", "one-off"],
)
def test_sequence_types(engine, mandate_fields, hub_fields, expected) -> None:
    with transaction(engine) as session:
        inst = make_institution(session, **hub_fields)
        owner = make_user(session)
        mandate = make_mandate(session, inst, owner, first=date(2026, 11, 21), **mandate_fields)
        add_debt(session, inst, owner, "LID", "10.00")
        mandate_id = mandate.id
    _execute(engine)
    assert _collections(engine)[mandate_id].sequence_type == expected


def test_after_a_returned_first_collection_the_next_is_first_again(engine) -> None:
    with transaction(engine) as session:
        inst = make_institution(session)
        owner = make_user(session)
        mandate = make_mandate(session, inst, owner, first=date(2026, 10, 21))
        add_debt(session, inst, owner, "LID", "10.00")
        mandate_id = mandate.id
    _execute(engine, date(2026, 10, 19))
    with transaction(engine) as session:
        collection = session.scalars(select(Collection)).one()
        assert collection.sequence_type == "FRST"
        collection.status = "returned"
        add_debt(session, inst, owner, "LID", "12.00")
    _execute(engine)
    with transaction(engine, readonly=True) as session:
        latest = session.scalars(select(Collection).where(Collection.mandate_id == mandate_id).order_by(Collection.id.desc())).first()
        assert (latest.sequence_type, latest.due_date) == ("FRST", date(2026, 11, 21))


@pytest.mark.parametrize(
    ("run_date", "first", "lead_days", "collection_date"),
    [
        (date(2026, 11, 20), date(2026, 11, 21), 2, date(2026, 11, 23)),  # weekend rolled to Monday
        (date(2026, 12, 23), date(2026, 12, 24), 2, date(2026, 12, 28)),  # 25 Dec (Fri) closed -> Monday 28th
        (date(2027, 3, 26), date(2027, 3, 26), 0, date(2027, 3, 30)),  # Good Friday 2027 to Easter Monday closed
        (date(2026, 3, 31), date(2026, 4, 3), 3, date(2026, 4, 7)),  # Good Friday + Easter Monday closed
        (date(2026, 11, 2), date(2026, 10, 15), 1, date(2026, 11, 3)),  # overdue slot: run date + lead days
    ],
)
def test_collection_date_is_a_target2_business_day(engine, run_date, first, lead_days, collection_date) -> None:
    with transaction(engine) as session:
        inst = make_institution(session, lead_days=lead_days)
        owner = make_user(session)
        mandate = make_mandate(session, inst, owner, first=first, signature_date=date(2026, 1, 1))
        add_debt(session, inst, owner, "LID", "10.00")
        mandate_id = mandate.id
    _execute(engine, run_date)
    with transaction(engine, readonly=True) as session:
        run = session.scalars(select(CollectionRun)).one()
        assert run.collection_date == collection_date
        assert session.scalars(select(PaymentReference.due_date)).one() == collection_date
    assert _collections(engine)[mandate_id].due_date == first


def test_collections_are_grouped_per_hub_and_collection_date(engine) -> None:
    with transaction(engine) as session:
        bib = make_institution(session)
        ska = make_institution(session, code="SKA", lead_days=0)
        for inst, first in ((bib, date(2026, 11, 21)), (bib, date(2026, 11, 22)), (ska, date(2026, 11, 20)),
                            (ska, date(2026, 11, 23))):
            owner = make_user(session)
            make_mandate(session, inst, owner, first=first, signature_date=date(2026, 1, 1))
            add_debt(session, inst, owner, "LID", "10.00")
    result = _execute(engine)
    # BIB: both due slots land on Monday 23rd (one run). SKA (no lead): Friday 20th; the 23rd is not due yet.
    assert sorted((r["loi"], r["collection_date"], r["transactions"]) for r in result.runs) == [
        ("fj:BIB:1", "2026-11-23", 2), ("fj:SKA:1", "2026-11-20", 1)]


def test_rerunning_the_same_date_creates_nothing_new(engine) -> None:
    _due_mandates(engine, 3)
    first = _execute(engine)
    with transaction(engine, readonly=True) as session:
        counts = [session.scalar(select(func.count()).select_from(t)) for t in (PaymentReference, Collection, CollectionRun, AuditLog)]
    second = _execute(engine)
    with transaction(engine, readonly=True) as session:
        again = [session.scalar(select(func.count()).select_from(t)) for t in (PaymentReference, Collection, CollectionRun, AuditLog)]
    assert first.collections == 3 and second.collections == 0 and second.due == 0
    assert again == counts


def test_new_collections_join_the_ready_run_of_their_hub_and_date(engine) -> None:
    inst = _due_mandates(engine, 1)
    _execute(engine)
    with transaction(engine) as session:
        owner = make_user(session)
        make_mandate(session, inst, owner, first=date(2026, 11, 21))
        add_debt(session, inst, owner, "LID", "5.55")
    result = _execute(engine)
    assert [(r["loi"], r["transactions"], r["total"]) for r in result.runs] == [("fj:BIB:1", 2, "15.55")]


def test_a_crash_mid_execution_leaves_the_database_as_before(engine, monkeypatch) -> None:
    _due_mandates(engine, 4)

    def crash(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("worker killed")

    monkeypatch.setattr(mandate_execution, "_refresh_run_totals", crash)
    with pytest.raises(RuntimeError):
        _execute(engine)
    with transaction(engine, readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(PaymentReference)) == 0
        assert session.scalar(select(func.count()).select_from(Collection)) == 0
        assert session.scalar(select(func.count()).select_from(AuditLog)) == 0
        assert session.scalar(select(func.count()).select_from(DebtLine).where(DebtLine.payment_reference_id.is_not(None))) == 0
    monkeypatch.undo()
    assert _execute(engine).collections == 4


def test_every_change_is_audited(engine) -> None:
    _due_mandates(engine, 1)
    _execute(engine)
    with transaction(engine, readonly=True) as session:
        rows = session.scalars(select(AuditLog)).all()
        actions = sorted((row.entity, row.action) for row in rows)
        assert actions == [("collection", "created"), ("collection_run", "collections_added"),
                           ("collection_run", "created"), ("payment_reference", "created")]
        reference = next(r for r in rows if r.entity == "payment_reference")
        assert reference.actor == "test" and reference.after["amount"] == "10.00" and reference.after["status"] == "sealed"


def test_monthly_mandate_collects_once_per_period_over_months(engine) -> None:
    with transaction(engine) as session:
        inst = make_institution(session, lead_days=0)
        owner = make_user(session)
        mandate = make_mandate(session, inst, owner, first=date(2026, 1, 31), signature_date=date(2026, 1, 1))
        mandate_id = mandate.id
    day, seen = date(2026, 1, 25), []
    while day <= date(2026, 5, 5):
        with transaction(engine) as session:
            add_debt(session, inst, owner, "LID", "1.00")
        result = _execute(engine, day)
        if result.collections:
            seen.append(day)
        day += timedelta(days=1)
    with transaction(engine, readonly=True) as session:
        dues = session.scalars(select(Collection.due_date).where(Collection.mandate_id == mandate_id).order_by(Collection.due_date)).all()
    assert dues == [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30)]
    # Due on the slot itself, or the next run after a weekend slot: 31 Jan 2026 is a Saturday.
    assert seen == [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30)]


def test_a_type_with_a_transaction_cost_adds_it_to_each_collected_reference(engine) -> None:
    from include.finance.models import TransactionCost
    from include.finance.payments import Ledger

    inst = _due_mandates(engine, 2, amount="10.00")
    with transaction(engine) as session:
        session.get(type(inst.recurring), inst.recurring.id).transaction_cost_code = "KOST-DOM"
        session.add(TransactionCost(financial_system_id=inst.system.id, transaction_code="KOST-DOM",
                                    amount=Decimal("0.75"), description="Kost domiciliëring"))
    _execute(engine)
    assert _execute(engine).collections == 0  # a rerun adds neither collections nor costs
    with transaction(engine, readonly=True) as session:
        costs = session.scalars(select(DebtLine).where(DebtLine.transaction_code == "KOST-DOM")).all()
        collections = session.scalars(select(Collection)).all()
        refs = {r.id: r for r in session.scalars(select(PaymentReference))}
        run_total = session.scalar(select(CollectionRun.total_amount))
    assert len(costs) == 2 and {c.cost_of_reference_id for c in costs} == set(refs)
    assert all(c.payment_reference_id == c.cost_of_reference_id and c.amount == Decimal("0.75") for c in costs)
    assert {c.amount for c in collections} == {Decimal("10.75")} and run_total == Decimal("21.50")
    assert all(r.amount == r.open_amount == Decimal("10.75") for r in refs.values())
    with transaction(engine) as session:  # a returned collection releases its reference: the cost goes back
        ledger = Ledger(session, "test", datetime(2026, 11, 25, tzinfo=timezone.utc))
        reference = ledger.load([costs[0].cost_of_reference_id])[costs[0].cost_of_reference_id]
        ledger.release(reference, "deleted")
        ledger.flush()
    with transaction(engine, readonly=True) as session:
        line = session.get(DebtLine, costs[0].id)
        lid = session.scalars(select(DebtLine).where(DebtLine.transaction_code == "LID",
                                                     DebtLine.end_user_id == line.end_user_id)).one()
    assert line.open_amount == Decimal("0.00") and line.reversed_at is not None and line.payment_reference_id is None
    assert lid.open_amount == Decimal("10.00") and lid.payment_reference_id is None  # the debt itself is open again



def test_two_executions_for_the_same_day_at_once_make_one_set_of_collections(engine) -> None:
    import threading

    _due_mandates(engine, 12)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def execute() -> None:
        start.wait()
        try:
            _execute(engine)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=execute) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    with transaction(engine, readonly=True) as session:
        per_mandate = session.execute(select(Collection.mandate_id, func.count()).group_by(Collection.mandate_id)).all()
        runs = session.scalar(select(func.count()).select_from(CollectionRun))
    assert len(per_mandate) == 12 and {count for _mandate, count in per_mandate} == {1}
    assert runs == 1


def test_each_reference_and_collection_is_audited_with_what_was_stored(engine) -> None:
    """The audit rows the database writes say what each row holds, in the order the collections were planned."""
    with transaction(engine) as session:
        inst = make_institution(session)
        for n in range(3):
            owner = make_user(session)
            make_mandate(session, inst, owner, first=date(2026, 11, 21))
            add_debt(session, inst, owner, "LID", f"{n + 1}.10")
            add_debt(session, inst, owner, "PRINT", "0.40")  # not collected
            add_debt(session, inst, owner, "BOETE-LAAT", f"0.0{n + 1}")
    _execute(engine)
    with transaction(engine, readonly=True) as session:
        audits = session.scalars(select(AuditLog).where(AuditLog.action == "created",
                                                        AuditLog.entity != "collection_run").order_by(AuditLog.id)).all()
        references = session.scalars(select(PaymentReference).order_by(PaymentReference.id)).all()
        collections = {c.payment_reference_id: c for c in session.scalars(select(Collection))}
        lines = {r.id: sorted(session.scalars(select(PaymentReferenceLine.debt_line_id).where(
            PaymentReferenceLine.payment_reference_id == r.id))) for r in references}
        mandates = {r.id: session.get(Mandate, r.mandate_id).loi for r in references}
    expected = []
    for reference in references:
        collection = collections[reference.id]
        expected += [
            ("payment_reference", reference.id, {
                "loi": reference.loi, "status": "sealed", "amount": str(reference.amount),
                "reference_number": reference.reference_number, "mandate": mandates[reference.id],
                "debt_line_ids": lines[reference.id]}),
            ("collection", collection.id, {
                "status": "pending", "sequence_type": "FRST", "amount": str(collection.amount),
                "due_date": "2026-11-21", "end_to_end_id": reference.loi}),
        ]
    assert [(a.entity, a.entity_id, a.after) for a in audits] == expected
    assert all(len(ids) == 2 for ids in lines.values()) and all(a.actor == "test" for a in audits)


def test_debt_beyond_what_one_direct_debit_may_carry_is_not_collected(engine) -> None:
    # EPC: at most 999 999 999.99 per collection. A bank refuses the whole file for one beyond it.
    with transaction(engine) as session:
        inst = make_institution(session)
        big, fits = make_user(session), make_user(session)
        big_mandate = make_mandate(session, inst, big, first=date(2026, 11, 21))
        make_mandate(session, inst, fits, first=date(2026, 11, 21))
        add_debt(session, inst, big, "LID", "999999999.99")
        add_debt(session, inst, big, "LID", "0.01")
        add_debt(session, inst, fits, "LID", "999999999.99")
        loi = big_mandate.loi
    result = _execute(engine)
    assert (result.collections, result.total, result.too_large) == (1, "999999999.99", [[loi, "1000000000.00"]])
    with transaction(engine, readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(DebtLine).where(DebtLine.payment_reference_id.is_(None))) == 2
