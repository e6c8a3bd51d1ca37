"""Confirming a run against the amount received (all or nothing) and deleting payment references."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from include.errors import InnenError
from include.finance.db import transaction
from include.finance.models import AuditLog, Collection, CollectionRun, DebtLine, Payment, PaymentReference
from include.finance.payments import Ledger
from include.finance.reference_deletion import delete_references
from include.sepa.collection_confirm import confirm_collection_run
from include.sepa.export import export_collection_run
from include.sepa.mandate_execution import execute_mandates
from tests.factories import add_debt, make_institution, make_mandate, make_user

AMOUNTS = ("25.00", "17.50", "8.25")  # open total 50.75


@pytest.fixture
def run(engine, var_dir):  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        inst = make_institution(session)
        for amount in AMOUNTS:
            owner = make_user(session)
            make_mandate(session, inst, owner, first=date(2026, 11, 21))
            add_debt(session, inst, owner, "LID", amount)
        execute_mandates(session, date(2026, 11, 20), "test")
        loi = session.scalars(select(CollectionRun.loi)).one()
    export_collection_run(loi, "test", engine=engine, outbox=var_dir / "outbox")
    return loi


def _confirm(engine, loi, amount, dry_run):  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        return confirm_collection_run(session, loi, amount, "finance:test", dry_run=dry_run)


def test_a_dry_run_reports_the_open_total_and_books_nothing(engine, run) -> None:
    result = _confirm(engine, run, "1.00", True)
    assert (result.open_total, result.difference, result.booked) == ("50.75", "-49.75", False)
    assert [c["amount"] for c in result.collections] == list(AMOUNTS)
    with transaction(engine, readonly=True) as session:
        assert session.scalars(select(Payment)).all() == []


def test_the_exact_amount_books_every_collection(engine, run) -> None:
    result = _confirm(engine, run, "50.75", False)
    assert result.booked and "3 collections" in result.message
    with transaction(engine, readonly=True) as session:
        assert set(session.scalars(select(Collection.status))) == {"paid"}
        assert set(session.scalars(select(PaymentReference.status))) == {"paid"}
        assert sorted(session.scalars(select(Payment.amount))) == sorted(Decimal(a) for a in AMOUNTS)
        assert set(session.scalars(select(Payment.source))) == {"collection_confirm"}
        assert session.scalars(select(CollectionRun.status)).one() == "confirmed"
        assert set(session.scalars(select(DebtLine.open_amount))) == {Decimal("0.00")}
        assert session.scalar(select(AuditLog.actor).where(AuditLog.action == "confirmed")) == "finance:test"
    again = _confirm(engine, run, "50.75", False)
    assert not again.booked and "confirmed before" in again.message


def test_a_different_amount_books_nothing_and_names_what_was_paid_otherwise(engine, run) -> None:
    with transaction(engine) as session:
        ledger = Ledger(session, "cash desk", __import__("datetime").datetime.now())
        ref_id = session.scalars(select(PaymentReference.id).order_by(PaymentReference.id)).first()
        ledger.pay(ledger.load([ref_id])[ref_id], Decimal("5.00"), source="manual", note="paid at the desk")
        ledger.flush()
    result = _confirm(engine, run, "50.75", False)
    assert not result.booked and result.open_total == "45.75" and result.difference == "5.00"
    assert "already paid some other way: 5.00 of 25.00" in result.collections[0]["note"]
    with transaction(engine, readonly=True) as session:
        assert len(session.scalars(select(Payment)).all()) == 1
        assert set(session.scalars(select(Collection.status))) == {"exported"}


def test_only_an_exported_run_can_be_confirmed(engine) -> None:
    with transaction(engine) as session:
        inst = make_institution(session)
        owner = make_user(session)
        make_mandate(session, inst, owner, first=date(2026, 11, 21))
        add_debt(session, inst, owner, "LID", "10.00")
        execute_mandates(session, date(2026, 11, 20), "test")
        loi = session.scalars(select(CollectionRun.loi)).one()
    with pytest.raises(InnenError, match="only an exported run"):
        _confirm(engine, loi, "10.00", False)


def test_deleting_a_run_frees_its_debt_and_refuses_paid_references(engine, run) -> None:
    with transaction(engine) as session:
        paid_id = session.scalars(select(PaymentReference.id).order_by(PaymentReference.id)).first()
        partly_id = session.scalars(select(PaymentReference.id).order_by(PaymentReference.id.desc())).first()
        ledger = Ledger(session, "cash desk", __import__("datetime").datetime.now())
        refs = ledger.load([paid_id, partly_id])
        ledger.pay(refs[paid_id], refs[paid_id].open_amount, source="manual")
        ledger.pay(refs[partly_id], Decimal("1.00"), source="manual")
        ledger.flush()
    with transaction(engine) as session:
        dry = delete_references(session, "finance:test", run_loi=run, dry_run=True)
    assert len(dry.deleted) == 2 and dry.refused[0]["reason"].startswith("paid")
    with transaction(engine, readonly=True) as session:
        assert "deleted" not in set(session.scalars(select(PaymentReference.status)))
    with transaction(engine) as session:
        result = delete_references(session, "finance:test", run_loi=run, dry_run=False)
    assert len(result.deleted) == 2 and result.runs_deleted == []  # the paid one keeps the run alive
    with transaction(engine, readonly=True) as session:
        statuses = dict(session.execute(select(PaymentReference.id, PaymentReference.status)).all())
        assert statuses[paid_id] == "paid" and statuses[partly_id] == "deleted"
        held = session.scalars(select(DebtLine.payment_reference_id).where(DebtLine.payment_reference_id.is_not(None))).all()
        assert held == [paid_id]
        assert len(session.scalars(select(Payment)).all()) == 2, "payments stay"
        assert sorted(session.scalars(select(Collection.status))) == ["cancelled", "cancelled", "exported"]
    # The freed debt is collected again by the next execution, FRST again.
    with transaction(engine) as session:
        again = execute_mandates(session, date(2026, 11, 27), "test")
    assert again.by_sequence_type == {"FRST": 2}


def test_deleting_named_references(engine, run) -> None:
    with transaction(engine) as session:
        lois = session.scalars(select(PaymentReference.loi).order_by(PaymentReference.id)).all()
        result = delete_references(session, "finance:test", reference_lois=[lois[0], "fp:BIB:999"], dry_run=False)
    assert result.deleted == [lois[0]] and result.refused == [{"reference": "fp:BIB:999", "reason": "does not exist"}]
    with pytest.raises(InnenError):
        with transaction(engine) as session:
            delete_references(session, "finance:test")
