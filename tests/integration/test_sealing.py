"""Payment references made by hand, sealed and unsealed, and their transaction costs (seed 2.3.1, 2.5.2).

Each test runs on SQLite and on PostgreSQL (the ``engine`` fixture). Expected
numbers are worked out here by hand, not with the code under test.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from stdnum import iso11649

from include.errors import InnenError
from include.finance.db import transaction
from include.finance.models import (
    AuditLog,
    Collection,
    CollectionRun,
    Counter,
    DebtLine,
    EndUser,
    Invoice,
    PaymentReference,
    PaymentReferenceLine,
    PaymentReferenceType,
    TransactionCost,
)
from include.finance.payments import Ledger, reverse_transaction_costs
from include.finance.reference_deletion import delete_references
from include.finance.sealing import create_reference, seal, unseal
from tests.dag_bag import parsed_dag
from tests.factories import add_debt, make_institution, make_mandate, make_user

NOW = datetime(2026, 11, 20, 9, 30, tzinfo=timezone.utc)
ACTOR = "finance:test"


@dataclass
class Books:
    bib: Any
    ska: Any
    user: str  # e-loi
    other_user: str
    lines: dict[str, int]  # name -> debt line id
    cost_type: str  # a type with a transaction cost, RF numbers and its own invoice series


@pytest.fixture
def books(engine) -> Books:  # type: ignore[no-untyped-def]
    """Two financial systems (BIB, SKA), a type with a transaction cost, and one user's debt in both systems."""
    with transaction(engine) as session:
        bib = make_institution(session, "BIB")
        ska = make_institution(session, "SKA")
        session.add(PaymentReferenceType(
            code="FACT-KOST", name="Factuur met kost", reference_format="RF", reference_counter="rf-fact",
            reference_prefix="71", invoice_counter="inv-fact", invoice_prefix="F-", transaction_cost_code="KOST",
        ))
        session.add_all([
            TransactionCost(financial_system_id=bib.system.id, transaction_code="KOST", amount=Decimal("1.35"),
                            description="Administratiekost"),
            TransactionCost(financial_system_id=ska.system.id, transaction_code="KOST", amount=Decimal("2.10"),
                            description="Kost academie"),
        ])
        user = make_user(session)
        other = make_user(session, "Jan", "Peeters")
        lines = {
            "lid": add_debt(session, bib, user, "LID", "25.00").id,
            "boete_laat": add_debt(session, bib, user, "BOETE-LAAT", "1.20").id,
            "boete_schade": add_debt(session, bib, user, "BOETE-SCHADE", "3.35").id,
            "lidgeld": add_debt(session, bib, user, "LIDGELD", "7.00").id,
            "ska": add_debt(session, ska, user, "INSCHRIJVING", "10.00", system=ska.system).id,
            "other_user": add_debt(session, bib, other, "LID", "5.00").id,
        }
        return Books(bib, ska, user.eloi, other.eloi, lines, "FACT-KOST")


def _create(engine, books: Books, **kwargs: Any) -> PaymentReference:  # type: ignore[no-untyped-def]
    values: dict[str, Any] = {"end_user": books.user, "type_code": "DOM-BIB", "seal": False, "actor": ACTOR, "now": NOW}
    values.update(kwargs)
    with transaction(engine) as session:
        return create_reference(session, **values)


def _ref(engine, ref_id: int) -> PaymentReference:  # type: ignore[no-untyped-def]
    with transaction(engine, readonly=True) as session:
        ref = session.get(PaymentReference, ref_id)
        assert ref is not None
        return ref


def _line(engine, line_id: int) -> DebtLine:  # type: ignore[no-untyped-def]
    with transaction(engine, readonly=True) as session:
        line = session.get(DebtLine, line_id)
        assert line is not None
        return line


def _cost_lines(engine, ref_id: int) -> list[DebtLine]:  # type: ignore[no-untyped-def]
    with transaction(engine, readonly=True) as session:
        return list(session.scalars(select(DebtLine).where(DebtLine.cost_of_reference_id == ref_id)))


def _actions(engine, entity: str, entity_id: int) -> list[str]:  # type: ignore[no-untyped-def]
    with transaction(engine, readonly=True) as session:
        return list(session.scalars(
            select(AuditLog.action).where(AuditLog.entity == entity, AuditLog.entity_id == entity_id).order_by(AuditLog.id)
        ))


def _utc(moment: datetime | None) -> datetime | None:
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _ogm(base: str) -> str:
    """A Belgian structured communication by hand: ten digits and their remainder by 97 (97 for 0)."""
    return f"{base}{int(base) % 97 or 97:02d}"


# -- create -------------------------------------------------------------------------------------------


def test_a_reference_from_chosen_lines(engine, books: Books) -> None:
    ref = _create(engine, books, debt_line_ids=[books.lines["boete_laat"], books.lines["lid"]],
                  due_date=date(2026, 12, 15), description="Factuur november\nTweede lijn")
    assert (ref.loi, ref.status, ref.amount, ref.open_amount) == ("fp:BIB:1", "draft", Decimal("26.20"), Decimal("26.20"))
    assert ref.reference_number == _ogm("0620000001") and ref.invoice_number == "BIB-1"
    assert ref.due_date == date(2026, 12, 15) and ref.description == "Factuur november\nTweede lijn"
    assert ref.sealed_at is None and ref.mandate_id is None
    with transaction(engine, readonly=True) as session:
        held = dict(session.execute(select(DebtLine.id, DebtLine.payment_reference_id)).all())
        rows = session.execute(
            select(PaymentReferenceLine.debt_line_id, PaymentReferenceLine.transaction_code, PaymentReferenceLine.amount)
            .where(PaymentReferenceLine.payment_reference_id == ref.id).order_by(PaymentReferenceLine.debt_line_id)
        ).all()
        user_id = session.scalars(select(EndUser.id).where(EndUser.eloi == books.user)).one()
    assert held[books.lines["lid"]] == ref.id and held[books.lines["boete_laat"]] == ref.id
    assert held[books.lines["boete_schade"]] is None and held[books.lines["lidgeld"]] is None
    assert [tuple(r) for r in rows] == [
        (books.lines["lid"], "LID", Decimal("25.00")), (books.lines["boete_laat"], "BOETE-LAAT", Decimal("1.20")),
    ]
    assert ref.end_user_id == user_id and ref.financial_system_id == books.bib.system.id
    assert _actions(engine, "payment_reference", ref.id) == ["created"]
    with transaction(engine, readonly=True) as session:
        audit = session.scalars(select(AuditLog).where(AuditLog.entity_id == ref.id, AuditLog.entity == "payment_reference")).one()
    assert audit.actor == ACTOR and _utc(audit.at) == NOW
    assert audit.after["status"] == "draft" and Decimal(audit.after["amount"]) == Decimal("26.20")
    assert sorted(audit.after["debt_line_ids"]) == sorted([books.lines["lid"], books.lines["boete_laat"]])


def test_a_reference_from_a_pattern_takes_only_matching_open_lines(engine, books: Books) -> None:
    fines = _create(engine, books, pattern="BOETE*")
    assert fines.amount == Decimal("4.55") and fines.financial_system_id == books.bib.system.id
    with transaction(engine, readonly=True) as session:
        ids = set(session.scalars(select(DebtLine.id).where(DebtLine.payment_reference_id == fines.id)))
    assert ids == {books.lines["boete_laat"], books.lines["boete_schade"]}
    # An exact code: LID, not LIDGELD (nor the other user's LID).
    fee = _create(engine, books, pattern="LID", financial_system="BIB")
    assert fee.amount == Decimal("25.00")
    # The fines are in an open reference now: nothing left that matches.
    with pytest.raises(InnenError, match="no open debt.*BOETE"):
        _create(engine, books, pattern="BOETE*")


def test_a_line_taken_back_is_refused_naming_the_day_in_brussels(engine, books: Books) -> None:
    # Taken back at 23:30 UTC on 28 March: 00:30 on the 29th in Brussels. SQLite gives the time back without
    # its zone (UTC), PostgreSQL with it: the message names the 29th on both.
    with transaction(engine) as session:
        line = session.get(DebtLine, books.lines["lid"])
        line.open_amount, line.reversed_at = Decimal("0.00"), datetime(2026, 3, 28, 23, 30, tzinfo=timezone.utc)
    with pytest.raises(InnenError, match=f"debt line {books.lines['lid']} .*was taken back on 2026-03-29"):
        _create(engine, books, debt_line_ids=[books.lines["lid"]])


def test_lines_of_two_financial_systems_are_refused(engine, books: Books) -> None:
    with pytest.raises(InnenError, match="financial systems") as refusal:
        _create(engine, books, debt_line_ids=[books.lines["lid"], books.lines["ska"]])
    assert "BIB" in str(refusal.value) and "SKA" in str(refusal.value)
    with pytest.raises(InnenError, match="financial systems"):
        _create(engine, books, pattern="*")
    with pytest.raises(InnenError, match=f"debt line {books.lines['ska']} .*financial system SKA, not BIB"):
        _create(engine, books, debt_line_ids=[books.lines["ska"]], financial_system="BIB")
    with transaction(engine, readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(PaymentReference)) == 0
        assert session.scalar(select(func.count()).select_from(Counter).where(Counter.name.like("fp:%"))) == 0
    # Naming the system settles it: only the academy's line, numbered in the academy's series.
    ska = _create(engine, books, pattern="*", financial_system="SKA", type_code="DOM-SKA")
    assert (ska.loi, ska.amount, ska.invoice_number) == ("fp:SKA:1", Decimal("10.00"), "SKA-1")


def test_a_line_already_in_an_open_reference_or_not_the_users_is_refused_by_name(engine, books: Books) -> None:
    first = _create(engine, books, debt_line_ids=[books.lines["lid"]])
    with pytest.raises(InnenError) as refusal:
        _create(engine, books, debt_line_ids=[books.lines["boete_laat"], books.lines["lid"]])
    assert f"debt line {books.lines['lid']}" in str(refusal.value) and first.loi in str(refusal.value)
    assert f"debt line {books.lines['boete_laat']}" not in str(refusal.value)
    with pytest.raises(InnenError, match=f"debt line {books.lines['other_user']} is not a debt of"):
        _create(engine, books, debt_line_ids=[books.lines["other_user"]])
    with pytest.raises(InnenError, match="debt line 999999 does not exist"):
        _create(engine, books, debt_line_ids=[999999])
    with pytest.raises(InnenError, match="not both"):
        _create(engine, books, debt_line_ids=[books.lines["boete_laat"]], pattern="BOETE*")
    with pytest.raises(InnenError, match="choose the debt"):
        _create(engine, books)
    with pytest.raises(InnenError, match="end user 'e:NOBODY' does not exist"):
        _create(engine, books, end_user="e:NOBODY", pattern="*")
    with pytest.raises(InnenError, match="type 'NOPE' does not exist"):
        _create(engine, books, type_code="NOPE", pattern="*")
    with pytest.raises(InnenError, match="financial system 'XYZ' does not exist"):
        _create(engine, books, financial_system="XYZ", pattern="*")
    # Nothing of the refused attempts stayed: the boete line is still free, one reference exists.
    assert _line(engine, books.lines["boete_laat"]).payment_reference_id is None
    with transaction(engine, readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(PaymentReference)) == 1


def test_counters_give_every_reference_its_own_numbers(engine, books: Books) -> None:
    refs = [_create(engine, books, debt_line_ids=[books.lines[name]]) for name in ("lid", "boete_laat", "boete_schade")]
    assert [r.loi for r in refs] == ["fp:BIB:1", "fp:BIB:2", "fp:BIB:3"]
    assert [r.reference_number for r in refs] == [_ogm("0620000001"), _ogm("0620000002"), _ogm("0620000003")]
    assert [r.invoice_number for r in refs] == ["BIB-1", "BIB-2", "BIB-3"]
    # A type without counters: the OGM is built over the fp number, and there is no invoice number.
    once = _create(engine, books, debt_line_ids=[books.lines["lidgeld"]], type_code="ONCE-BIB")
    assert (once.loi, once.reference_number, once.invoice_number) == ("fp:BIB:4", _ogm("0000000004"), None)
    # An RF type with its own series.
    with transaction(engine) as session:
        user = session.scalars(select(EndUser).where(EndUser.eloi == books.user)).one()
        extra = add_debt(session, books.bib, user, "LID", "2.00").id
    rf = _create(engine, books, debt_line_ids=[extra], type_code=books.cost_type)
    assert rf.loi == "fp:BIB:5" and rf.invoice_number == "F-1"
    assert iso11649.is_valid(rf.reference_number) and rf.reference_number.endswith("7100000001")
    assert len({r.reference_number for r in [*refs, once, rf]}) == 5


# -- seal and unseal ----------------------------------------------------------------------------------


def test_sealing_adds_the_transaction_cost_once(engine, books: Books) -> None:
    ref = _create(engine, books, debt_line_ids=[books.lines["lid"], books.lines["boete_laat"]],
                  type_code=books.cost_type, seal=True)
    assert ref.status == "sealed" and _utc(ref.sealed_at) == NOW
    assert (ref.amount, ref.open_amount) == (Decimal("27.55"), Decimal("27.55"))  # 25.00 + 1.20 + 1.35
    [cost] = _cost_lines(engine, ref.id)
    assert (cost.transaction_code, cost.amount, cost.open_amount) == ("KOST", Decimal("1.35"), Decimal("1.35"))
    assert cost.description == "Administratiekost" and cost.payment_reference_id == ref.id
    assert cost.financial_system_id == books.bib.system.id and cost.reversed_at is None
    with transaction(engine, readonly=True) as session:
        linked = session.scalars(select(PaymentReferenceLine.amount).where(
            PaymentReferenceLine.payment_reference_id == ref.id, PaymentReferenceLine.debt_line_id == cost.id)).all()
    assert linked == [Decimal("1.35")]

    later = NOW + timedelta(hours=1)
    with transaction(engine) as session:
        assert unseal(session, [ref.id], ACTOR, later) == [ref.loi]
    draft = _ref(engine, ref.id)
    assert (draft.status, draft.sealed_at, draft.amount) == ("draft", None, Decimal("27.55"))
    with transaction(engine) as session:
        assert seal(session, [ref.id], ACTOR, later) == [ref.loi]
    with transaction(engine) as session:
        assert seal(session, [ref.id], ACTOR, later) == []  # sealed already: nothing to do
    again = _ref(engine, ref.id)
    assert (again.status, again.amount, again.open_amount) == ("sealed", Decimal("27.55"), Decimal("27.55"))
    assert len(_cost_lines(engine, ref.id)) == 1
    with transaction(engine, readonly=True) as session:
        line_total = sum(session.scalars(select(DebtLine.open_amount).where(DebtLine.payment_reference_id == ref.id)))
    assert line_total == again.open_amount
    assert _actions(engine, "payment_reference", ref.id) == [
        "created", "sealed", "transaction_cost_added", "unsealed", "sealed",
    ]


def test_the_cost_is_the_tariff_of_the_references_financial_system(engine, books: Books) -> None:
    ska = _create(engine, books, debt_line_ids=[books.lines["ska"]], type_code=books.cost_type, seal=True)
    assert ska.amount == Decimal("12.10")
    assert [c.amount for c in _cost_lines(engine, ska.id)] == [Decimal("2.10")]
    # A type naming a cost code without a tariff, and a type naming none: sealed without a cost.
    with transaction(engine) as session:
        session.scalars(select(PaymentReferenceType).where(PaymentReferenceType.code == "ONCE-BIB")).one() \
            .transaction_cost_code = "KOST-ZONDER-TARIEF"
    plain = _create(engine, books, debt_line_ids=[books.lines["lid"]], type_code="ONCE-BIB", seal=True)
    none = _create(engine, books, debt_line_ids=[books.lines["boete_laat"]], seal=True)
    assert (plain.status, plain.amount, none.amount) == ("sealed", Decimal("25.00"), Decimal("1.20"))
    assert _cost_lines(engine, plain.id) == [] and _cost_lines(engine, none.id) == []


def test_seal_and_unseal_refuse_what_they_cannot_change(engine, books: Books) -> None:
    ref = _create(engine, books, debt_line_ids=[books.lines["lid"]], seal=True)
    with transaction(engine) as session:
        ledger = Ledger(session, "cash desk", NOW)
        ledger.pay(ledger.load([ref.id])[ref.id], Decimal("25.00"), source="manual")
        ledger.flush()
    with pytest.raises(InnenError, match=f"{ref.loi} is paid"):
        with transaction(engine) as session:
            unseal(session, [ref.id], ACTOR, NOW)
    with pytest.raises(InnenError, match=f"{ref.loi} is paid"):
        with transaction(engine) as session:
            seal(session, [ref.id], ACTOR, NOW)
    assert _ref(engine, ref.id).status == "paid"
    # A draft unsealed is left as it is; a missing reference is refused; the refusal of one stops all.
    draft = _create(engine, books, debt_line_ids=[books.lines["boete_laat"]])
    with transaction(engine) as session:
        assert unseal(session, [draft.id], ACTOR, NOW) == []
    with pytest.raises(InnenError, match="id 999999 does not exist"):
        with transaction(engine) as session:
            seal(session, [draft.id, 999999], ACTOR, NOW)
    with pytest.raises(InnenError, match=f"{ref.loi} is paid"):
        with transaction(engine) as session:
            seal(session, [draft.id, ref.id], ACTOR, NOW)
    assert _ref(engine, draft.id).status == "draft"
    assert _actions(engine, "payment_reference", draft.id) == ["created"]


def test_unsealing_is_refused_while_the_reference_is_being_collected(engine, books: Books, var_dir: Path) -> None:
    from include.sepa.export import export_collection_run
    from include.sepa.mandate_execution import execute_mandates

    with transaction(engine) as session:
        owner = make_user(session)
        make_mandate(session, books.bib, owner, first=date(2026, 11, 21))
        add_debt(session, books.bib, owner, "LID", "30.00")
        execute_mandates(session, date(2026, 11, 20), "test")
        run_loi = session.scalars(select(CollectionRun.loi)).one()
        ref_id, ref_loi = session.execute(select(PaymentReference.id, PaymentReference.loi)
                                          .join(Collection, Collection.payment_reference_id == PaymentReference.id)).one()
    with pytest.raises(InnenError, match=f"{ref_loi} is collected in run {run_loi} \\(ready\\)"):
        with transaction(engine) as session:  # a ready run's file would still carry it
            unseal(session, [ref_id], ACTOR, NOW)
    export_collection_run(run_loi, "test", engine=engine, outbox=var_dir / "outbox")
    with pytest.raises(InnenError) as refusal:
        with transaction(engine) as session:
            unseal(session, [ref_id], ACTOR, NOW)
    assert ref_loi in str(refusal.value) and run_loi in str(refusal.value) and "exported" in str(refusal.value)
    assert _ref(engine, ref_id).status == "sealed"
    assert "unsealed" not in _actions(engine, "payment_reference", ref_id)


def test_a_reference_being_collected_does_not_expire(engine, books: Books, var_dir: Path) -> None:
    """Past its type's lifetime, a reference whose collection is in a run (ready or sent) stays: expired, its debt
    would be free and the next mandate execution would collect it a second time."""
    from include.pom.accounts import PomClients
    from include.pom.expiry import expire_references
    from include.sepa.export import export_collection_run
    from include.sepa.mandate_execution import execute_mandates

    with transaction(engine) as session:
        session.get(PaymentReferenceType, books.bib.recurring.id).lifetime_seconds = 3600
        owner = make_user(session)
        make_mandate(session, books.bib, owner, first=date(2026, 11, 21))
        add_debt(session, books.bib, owner, "LID", "30.00")
        execute_mandates(session, date(2026, 11, 20), "test")
        run_loi = session.scalars(select(CollectionRun.loi)).one()
        ref_id = session.scalars(select(Collection.payment_reference_id)).one()
        session.get(PaymentReference, ref_id).created_at = NOW - timedelta(days=1)
    later = NOW + timedelta(days=1)
    with PomClients({}) as clients:
        assert expire_references(engine, clients, ACTOR, later).expired == []  # a ready run's file would carry it
        export_collection_run(run_loi, "test", engine=engine, outbox=var_dir / "outbox")
        assert expire_references(engine, clients, ACTOR, later).expired == []  # the bank holds it
        assert _ref(engine, ref_id).status == "sealed"
        with transaction(engine) as session:  # the collection came back: nothing ties the reference any more
            session.scalars(select(Collection)).one().status = "returned"
        assert expire_references(engine, clients, ACTOR, later).expired == [_ref(engine, ref_id).loi]
    assert _ref(engine, ref_id).status == "expired"


def test_unsealing_withdraws_the_current_invoice(engine, books: Books) -> None:
    ref = _create(engine, books, debt_line_ids=[books.lines["lid"]], seal=True)
    earlier = NOW - timedelta(days=3)

    def invoice(version: int, withdrawn: datetime | None, reason: str | None) -> Invoice:
        return Invoice(
            payment_reference_id=ref.id, version=version, document_id=f"{ref.invoice_number}-{version}",
            template="default.nl.typ", language="nl", channel="email", amount=Decimal("25.00"),
            file_path=f"2026-11-20/doc-{version}.pdf", sha256="0" * 64, pages=1, print_day=date(2026, 11, 20),
            made_at=earlier, made_by="test", withdrawn_at=withdrawn, withdrawn_reason=reason,
        )

    with transaction(engine) as session:
        old, current = invoice(1, earlier, "amount changed"), invoice(2, None, None)
        session.add_all([old, current])
        session.flush()
        old_id, current_id = old.id, current.id
    with transaction(engine) as session:
        unseal(session, [ref.id], ACTOR, NOW)
    with transaction(engine, readonly=True) as session:
        rows = {i.id: i for i in session.scalars(select(Invoice))}
        current_left = session.scalar(select(func.count()).select_from(Invoice).where(
            Invoice.payment_reference_id == ref.id, Invoice.withdrawn_at.is_(None)))
    assert current_left == 0
    assert (_utc(rows[current_id].withdrawn_at), rows[current_id].withdrawn_reason) == (NOW, "unsealed")
    assert (_utc(rows[old_id].withdrawn_at), rows[old_id].withdrawn_reason) == (earlier, "amount changed")
    assert _actions(engine, "invoice", current_id) == ["withdrawn"] and _actions(engine, "invoice", old_id) == []


def test_deleting_or_expiring_a_reference_withdraws_its_invoice_at_once(engine, books: Books) -> None:
    """As unsealing does (seed 2.3.1): a deleted or expired reference's invoice is no longer handed to the payer
    (the download route gives the current invoice) nor printed, even before the nightly invoice run."""
    from include.invoices.download import invoice_pdf
    from include.pom.accounts import PomClients
    from include.pom.expiry import expire_references

    with transaction(engine) as session:
        session.add(PaymentReferenceType(code="ONLINE-1H", name="Online", lifetime_seconds=3600))
        session.scalars(select(PaymentReferenceType).where(PaymentReferenceType.code == "DOM-BIB")).one(
        ).access_admin = "finance-admin"
    deleted = _create(engine, books, debt_line_ids=[books.lines["lid"]], seal=True)
    expired = _create(engine, books, debt_line_ids=[books.lines["boete_laat"]], type_code="ONLINE-1H", seal=True)
    kept = _create(engine, books, debt_line_ids=[books.lines["lidgeld"]], seal=True)
    with transaction(engine) as session:
        invoices = {ref.id: Invoice(
            payment_reference_id=ref.id, version=1, document_id=f"DOC-{ref.id}", template="default.nl.typ",
            language="nl", channel="paper", amount=ref.open_amount, file_path=f"2026-11-20/DOC-{ref.id}.pdf",
            sha256="0" * 64, pages=1, print_day=date(2026, 11, 20), made_at=NOW, made_by="test",
        ) for ref in (deleted, expired, kept)}
        session.add_all(invoices.values())
        session.flush()
        ids = {ref_id: invoice.id for ref_id, invoice in invoices.items()}
    later = NOW + timedelta(hours=2)
    with transaction(engine) as session:
        delete_references(session, ACTOR, roles={"finance-admin"}, reference_lois=[deleted.loi], dry_run=False,
                          now=later)
    with PomClients({}) as clients:  # no POM request: POM is not asked
        assert expire_references(engine, clients, ACTOR, later).expired == [expired.loi]
    with transaction(engine, readonly=True) as session:
        rows = {i.payment_reference_id: i for i in session.scalars(select(Invoice))}
    assert (_utc(rows[deleted.id].withdrawn_at), rows[deleted.id].withdrawn_reason) == (later, "reference deleted")
    assert (_utc(rows[expired.id].withdrawn_at), rows[expired.id].withdrawn_reason) == (later, "reference expired")
    assert rows[kept.id].withdrawn_at is None
    assert _actions(engine, "invoice", ids[deleted.id]) == ["withdrawn"]
    with PomClients({}) as clients:
        assert invoice_pdf(engine, clients, deleted.loi, later) is None
        assert invoice_pdf(engine, clients, expired.loi, later) is None


# -- taking costs back --------------------------------------------------------------------------------


def test_deleting_a_reference_takes_its_transaction_cost_back(engine, books: Books) -> None:
    ref = _create(engine, books, debt_line_ids=[books.lines["lid"], books.lines["boete_laat"]],
                  type_code=books.cost_type, seal=True)
    [cost] = _cost_lines(engine, ref.id)
    # 27.00 of 27.55 paid: the oldest lines first, so 0.80 of the cost is paid and 0.55 is open.
    with transaction(engine) as session:
        ledger = Ledger(session, "cash desk", NOW)
        ledger.pay(ledger.load([ref.id])[ref.id], Decimal("27.00"), source="manual")
        ledger.flush()
    assert _line(engine, cost.id).open_amount == Decimal("0.55")
    with transaction(engine) as session:  # deleting needs the type's admin lock; an empty one lets nobody delete
        session.scalars(select(PaymentReferenceType).where(PaymentReferenceType.code == books.cost_type)).one(
        ).access_admin = "finance-admin"
    admin = {"finance-admin"}
    with transaction(engine) as session:
        dry = delete_references(session, ACTOR, roles=admin, reference_lois=[ref.loi], dry_run=True, now=NOW)
    assert dry.deleted == [ref.loi] and _line(engine, cost.id).reversed_at is None
    with transaction(engine) as session:
        delete_references(session, ACTOR, roles=admin, reference_lois=[ref.loi], dry_run=False, now=NOW)
    taken_back = _line(engine, cost.id)
    assert (taken_back.open_amount, taken_back.payment_reference_id, _utc(taken_back.reversed_at)) == (
        Decimal("0.00"), None, NOW)
    assert taken_back.amount == Decimal("1.35")
    assert _ref(engine, ref.id).status == "deleted"
    assert _line(engine, books.lines["lid"]).payment_reference_id is None
    with transaction(engine, readonly=True) as session:
        audit = session.scalars(select(AuditLog).where(AuditLog.entity == "payment_reference", AuditLog.entity_id == ref.id,
                                                       AuditLog.action == "transaction_cost_reversed")).one()
    assert Decimal(audit.before["open_amount"]) == Decimal("0.55") and audit.after["debt_line_id"] == cost.id
    # The cost is no open debt any more: a new reference over everything open leaves it out.
    again = _create(engine, books, pattern="*", financial_system="BIB")
    with transaction(engine, readonly=True) as session:
        taken = set(session.scalars(select(DebtLine.id).where(DebtLine.payment_reference_id == again.id)))
    assert cost.id not in taken and books.lines["boete_schade"] in taken
    # A deleted reference is neither sealed again nor unsealed, and a second pass takes nothing back.
    with pytest.raises(InnenError, match="is deleted"):
        with transaction(engine) as session:
            seal(session, [ref.id], ACTOR, NOW)
    with pytest.raises(InnenError, match="is deleted"):
        with transaction(engine) as session:
            unseal(session, [ref.id], ACTOR, NOW)
    with transaction(engine) as session:
        assert reverse_transaction_costs(session, [ref.id], ACTOR, NOW) == []


def test_an_open_reference_keeps_its_cost(engine, books: Books) -> None:
    ref = _create(engine, books, debt_line_ids=[books.lines["lid"]], type_code=books.cost_type, seal=True)
    with transaction(engine) as session:
        assert reverse_transaction_costs(session, [ref.id], ACTOR, NOW) == []
    [cost] = _cost_lines(engine, ref.id)
    assert (cost.open_amount, cost.payment_reference_id, cost.reversed_at) == (Decimal("1.35"), ref.id, None)


def test_expiry_takes_the_transaction_cost_back(engine, books: Books) -> None:
    from include.pom.accounts import PomClients
    from include.pom.expiry import expire_references

    with transaction(engine) as session:
        session.add(PaymentReferenceType(code="ONLINE-KOST", name="Online", lifetime_seconds=3600, transaction_cost_code="KOST"))
    ref = _create(engine, books, debt_line_ids=[books.lines["boete_schade"]], type_code="ONLINE-KOST", seal=True)
    assert ref.amount == Decimal("4.70")
    with PomClients({}) as clients:  # no POM request: POM is not asked
        summary = expire_references(engine, clients, ACTOR, NOW + timedelta(hours=2))
    assert summary.expired == [ref.loi]
    [cost] = _cost_lines(engine, ref.id)
    assert (cost.open_amount, cost.payment_reference_id, _utc(cost.reversed_at)) == (
        Decimal("0.00"), None, NOW + timedelta(hours=2))
    freed = _line(engine, books.lines["boete_schade"])
    assert (freed.open_amount, freed.payment_reference_id) == (Decimal("3.35"), None)
    assert _actions(engine, "payment_reference", ref.id)[-3:] == ["expired", "debt_released", "transaction_cost_reversed"]


# -- the DAG ------------------------------------------------------------------------------------------


def _dag(dag_id: str):  # type: ignore[no-untyped-def]
    return parsed_dag(dag_id)


def _states(run) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {ti.task_id: str(ti.state).rsplit(".", 1)[-1] for ti in run.get_task_instances()}


@pytest.fixture
def airflow_books(books: Books, db_url: str, var_dir: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: None) -> Books:
    """The books, for runs triggered by fiona of finance (``dag.test()`` runs hold no roles of their own)."""
    from include import airflow_roles

    monkeypatch.setenv("INNEN_DB_URL", db_url)
    monkeypatch.setattr(airflow_roles, "run_roles", lambda context: ("fiona", frozenset({"finance"})))
    return books


def test_the_dag_makes_and_seals_a_reference_from_its_form(engine, airflow_books: Books) -> None:
    books = airflow_books
    run = _dag("payment_reference_create").test(run_conf={
        "end_user": books.user, "reference_type": books.cost_type, "pattern": "BOETE*",
        "due_date": "2026-12-31", "description": "Boetes november\nbibliotheek Leuven",
    })
    assert str(run.state).endswith("success"), _states(run)
    assert _states(run) == {"create": "success", "direct_invoice": "skipped"}  # the type prints nightly
    with transaction(engine, readonly=True) as session:
        ref = session.scalars(select(PaymentReference)).one()
        audit_actor = session.scalar(select(AuditLog.actor).where(AuditLog.action == "created"))
    assert (ref.status, ref.amount, ref.open_amount) == ("sealed", Decimal("5.90"), Decimal("5.90"))  # 1.20 + 3.35 + 1.35
    assert ref.due_date == date(2026, 12, 31) and ref.description == "Boetes november\nbibliotheek Leuven"
    assert ref.invoice_number == "F-1" and len(_cost_lines(engine, ref.id)) == 1
    assert audit_actor.startswith("airflow:payment_reference_create/") and audit_actor.endswith("/create by dag_test")

    # A draft from chosen lines.
    conf = {"end_user": books.user, "reference_type": "DOM-BIB", "debt_lines": [books.lines["lid"]]}
    draft = _dag("payment_reference_create").test(run_conf={**conf, "seal": False})
    assert _states(draft) == {"create": "success", "direct_invoice": "skipped"}
    with transaction(engine, readonly=True) as session:
        made = session.scalars(select(PaymentReference).order_by(PaymentReference.id.desc())).first()
    assert (made.status, made.amount, made.loi) == ("draft", Decimal("25.00"), "fp:BIB:2")

    # A refusal fails the run at once (no retry) and changes nothing.
    refused = _dag("payment_reference_create").test(run_conf=conf)
    assert str(refused.state).endswith("failed") and _states(refused)["create"] == "failed"
    assert [ti.try_number for ti in refused.get_task_instances() if ti.task_id == "create"] == [1]
    with transaction(engine, readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(PaymentReference)) == 2


def test_a_type_with_direct_printing_gets_its_invoice_at_once(engine, airflow_books: Books, var_dir: Path) -> None:
    pytest.importorskip("include.invoices.making")  # written beside this DAG; the first task is tested above
    with transaction(engine) as session:
        session.add(PaymentReferenceType(code="DIRECT-BIB", name="Direct", direct_print=True, invoice_counter="inv-direct",
                                         invoice_prefix="D-"))
    run = _dag("payment_reference_create").test(run_conf={
        "end_user": airflow_books.user, "reference_type": "DIRECT-BIB", "debt_lines": [airflow_books.lines["lid"]],
    })
    assert _states(run) == {"create": "success", "direct_invoice": "success"}
    with transaction(engine, readonly=True) as session:
        ref = session.scalars(select(PaymentReference)).one()
        invoices = session.scalars(select(Invoice).where(Invoice.payment_reference_id == ref.id)).all()
    assert ref.status == "sealed" and len(invoices) == 1
    assert invoices[0].amount == Decimal("25.00") and invoices[0].withdrawn_at is None
    assert (var_dir / "invoices" / invoices[0].file_path).is_file()


def test_a_direct_invoice_its_data_cannot_make_fails_at_once_naming_the_reference(engine, airflow_books: Books) -> None:
    """The reference's own data refuses the invoice: a retry a minute later meets the same data, so none is made."""
    with transaction(engine) as session:
        session.add(PaymentReferenceType(code="DIRECT-BIB", name="Direct", direct_print=True, invoice_counter="inv-direct",
                                         invoice_prefix="D-"))
        user = session.scalars(select(EndUser).where(EndUser.eloi == airflow_books.user)).one()
        # One euro cent more than an EPC QR code (and one SEPA transfer) carries.
        huge = add_debt(session, airflow_books.bib, user, "SCHADE", "1000000000.00").id
    run = _dag("payment_reference_create").test(run_conf={
        "end_user": airflow_books.user, "reference_type": "DIRECT-BIB", "debt_lines": [huge],
    })
    assert _states(run) == {"create": "success", "direct_invoice": "failed"}
    assert [ti.try_number for ti in run.get_task_instances() if ti.task_id == "direct_invoice"] == [1]
    with transaction(engine, readonly=True) as session:
        ref = session.scalars(select(PaymentReference)).one()
        assert session.scalar(select(func.count()).select_from(Invoice)) == 0
    assert ref.status == "sealed"  # the reference stands; its invoice waits until its data can make one


def test_a_direct_invoice_whose_template_cannot_be_read_fails_at_once_naming_it(
        engine, airflow_books: Books, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The institution's template file: a retry a minute later reads the same file."""
    import shutil

    folder = tmp_path / "templates"
    shutil.copytree(Path(__file__).resolve().parents[2] / "templates" / "invoices", folder)
    for template in folder.glob("*.typ"):
        template.write_text("$State.Cbedrag\n" + template.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setenv("INNEN_TEMPLATE_DIR", str(folder))
    with transaction(engine) as session:
        session.add(PaymentReferenceType(code="DIRECT-BIB", name="Direct", direct_print=True, invoice_counter="inv-direct",
                                         invoice_prefix="D-"))
    run = _dag("payment_reference_create").test(run_conf={
        "end_user": airflow_books.user, "reference_type": "DIRECT-BIB", "debt_lines": [airflow_books.lines["lid"]],
    })
    assert _states(run) == {"create": "success", "direct_invoice": "failed"}
    assert [ti.try_number for ti in run.get_task_instances() if ti.task_id == "direct_invoice"] == [1]
