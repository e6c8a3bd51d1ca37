"""Mandate execution (seed 2.3.3.2): due mandates become sealed payment references and collections.

For each due ``active-ok`` mandate we gather the debt owner's open debt lines
that match the mandate's transaction-code patterns, lie in the hub's
financial system and are in no open payment reference. None: nothing happens.
Otherwise one sealed payment reference of the mandate's type and one
collection with its sequence type; collections are grouped per hub and
collection date into collection runs (``fj:SYS:n``), appended to a run of the
same hub and date that is still ``ready``.

Everything happens in the caller's transaction and in bulk statements: a
crash leaves the database as it was, and a rerun for the same date finds the
mandates no longer due (their slot is collected), backed by the unique
constraint on (mandate, due date).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from include.finance.audit import audit_row, record_many
from include.finance.bulk import insert_many, reserve_ids, stream_rows, update_by_id
from include.finance.counters import reserve
from include.finance.money import ZERO, from_cents
from include.finance.models import (
    BankHub,
    Collection,
    CollectionRun,
    DebtLine,
    FinancialSystem,
    PaymentReference,
    PaymentReferenceLine,
    PaymentReferenceType,
    TransactionCost,
    in_cents,
)
from include.finance.numbering import reference_numbers
from include.sepa.amendments import Amendment, Told, amendment
from include.sepa.mandate_check import HubFacts, MandateList, MandateStatus, check_mandates, hub_facts
from include.sepa.schedule import is_final
from include.sepa.sequence_type import sequence_type
from include.sepa.transaction_codes import cached_matcher

USER_BATCH = 5_000


@dataclass(slots=True)
class _Debt:
    id: int
    code: str
    open_amount: Decimal


@dataclass(slots=True)
class _Plan:
    mandate: MandateStatus
    hub: HubFacts
    lines: list[_Debt]
    amount: Decimal
    sequence_type: str
    collection_date: date
    told: Told | None = None  # what this collection tells the banks about its mandate
    amendment: Amendment | None = None


@dataclass
class ExecutionResult:
    """What one execution did, small enough for XCom and the demo summary."""

    run_date: str
    due: int = 0
    without_debt: int = 0
    collections: int = 0
    total: str = "0.00"
    by_sequence_type: dict[str, int] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ready_runs(self) -> list[str]:
        return [run["loi"] for run in self.runs]


def _open_debts(session: Session, keys: set[tuple[int, int]]) -> dict[tuple[int, int], list[_Debt]]:
    """Open debt lines in no open reference, per (end user, financial system), oldest first."""
    pool: dict[tuple[int, int], list[_Debt]] = defaultdict(list)
    users = sorted({user for user, _ in keys})
    systems = sorted({system for _, system in keys})
    for start in range(0, len(users), USER_BATCH):
        rows = stream_rows(
            session,
            select(
                DebtLine.id, DebtLine.end_user_id, DebtLine.financial_system_id, DebtLine.transaction_code,
                in_cents(DebtLine.open_amount),
            )
            .where(
                DebtLine.end_user_id.in_(users[start : start + USER_BATCH]),
                DebtLine.financial_system_id.in_(systems),
                DebtLine.payment_reference_id.is_(None),
                DebtLine.open_amount > 0,
            )
            .order_by(DebtLine.id),
        )
        for line_id, user, system, code, open_cents in rows:
            if (user, system) in keys:
                pool[(user, system)].append(_Debt(line_id, code, from_cents(open_cents)))
    return pool


def _claim(pool: list[_Debt], patterns: tuple[str, ...]) -> list[_Debt]:
    """Take the lines matching ``patterns`` out of ``pool`` (so no other mandate takes them)."""
    matches = cached_matcher(patterns)
    claimed, kept = [], []
    for line in pool:
        (claimed if matches(line.code) else kept).append(line)
    pool[:] = kept
    return claimed


def _plan(session: Session, run_date: date, result: ExecutionResult, mandate_ids: Iterable[int] | None) -> list[_Plan]:
    hubs = hub_facts(session)
    checked = check_mandates(session, run_date, mandate_ids=mandate_ids)
    due = [m for m in checked if m.list is MandateList.ACTIVE_OK and m.due]
    result.due = len(due)
    pool = _open_debts(session, {(m.end_user_id, hubs[m.hub_id].financial_system_id) for m in due})  # type: ignore[index]
    plans = []
    for m in due:
        hub = hubs[m.hub_id]  # type: ignore[index]
        lines = _claim(pool.get((m.end_user_id, hub.financial_system_id), []), m.patterns)
        if not lines:
            result.without_debt += 1
            continue
        seq = sequence_type(
            one_off=m.one_off,
            has_prior=m.has_prior,
            final=is_final(m.first_collection_date, m.next_due_date, m.schedule, m.end_date),  # type: ignore[arg-type]
            rcur_only=hub.rcur_only,
        )
        amount = sum((line.open_amount for line in lines), ZERO)
        plans.append(_Plan(m, hub, lines, amount, seq, m.next_collection_date))  # type: ignore[arg-type]
    return plans


def _what_to_tell(session: Session, plans: list[_Plan]) -> None:
    """Each plan's mandate details as they stand, and the amendment since the mandate's latest collection."""
    creditor_ids = {hub_id: creditor_id for hub_id, creditor_id in session.execute(select(BankHub.id, BankHub.creditor_id))}
    by_mandate = {plan.mandate.id: plan for plan in plans}
    ids = sorted(by_mandate)
    for start in range(0, len(ids), USER_BATCH):
        batch = ids[start : start + USER_BATCH]
        latest = (
            select(func.max(Collection.id))
            .where(Collection.mandate_id.in_(batch), Collection.status != "cancelled")
            .group_by(Collection.mandate_id)
        )
        told_before = {
            mandate_id: Told(reference, iban, creditor_id)
            for mandate_id, reference, iban, creditor_id in session.execute(
                select(Collection.mandate_id, Collection.mandate_reference, Collection.debtor_iban, Collection.creditor_id)
                .where(Collection.id.in_(latest))
            )
        }
        for mandate_id in batch:
            plan = by_mandate[mandate_id]
            plan.told = Told(plan.mandate.reference, plan.mandate.debtor_iban, creditor_ids.get(plan.hub.id))
            plan.amendment = amendment(told_before.get(mandate_id), plan.told)
            if plan.amendment and plan.amendment.debtor_agent_changed and plan.sequence_type == "RCUR" and not plan.hub.rcur_only:
                # The new bank holds no earlier collection: it gets a first one (the EPC's rule for SMNDA until the
                # 2016 rulebook, still allowed since; an RCUR-only hub keeps RCUR).
                plan.sequence_type = "FRST"


def _numbering(session: Session, plans: list[_Plan]) -> list[dict[str, Any]]:
    """Identifiers, reference numbers and invoice numbers, one counter statement per series."""
    # A due mandate has a type: mandate_check lists one without as active-err.
    wanted = [(plan.hub.financial_system_id, plan.mandate.type_id) for plan in plans]
    return reference_numbers(session, wanted)  # type: ignore[arg-type]


def _transaction_costs(session: Session, plans: list[_Plan]) -> dict[int, tuple[str, Decimal, str | None]]:
    """Plan index → (code, amount, description) of the transaction cost its type adds when sealed (seed 2.5.2
    ``transcost``), where the hub's financial system has a tariff for the code."""
    codes = dict(session.execute(select(PaymentReferenceType.id, PaymentReferenceType.transaction_cost_code)
                                 .where(PaymentReferenceType.transaction_cost_code.is_not(None))).all())
    if not codes:
        return {}
    tariffs = {(system, code): (amount, text) for system, code, amount, text in session.execute(
        select(TransactionCost.financial_system_id, TransactionCost.transaction_code, TransactionCost.amount,
               TransactionCost.description))}
    costs = {}
    for index, plan in enumerate(plans):
        code = codes.get(plan.mandate.type_id)  # type: ignore[arg-type]
        tariff = tariffs.get((plan.hub.financial_system_id, code)) if code else None
        if tariff is not None:
            costs[index] = (code, tariff[0], tariff[1])
    return costs


def _add_cost_lines(session: Session, plans: list[_Plan], reference_ids: list[int],
                    costs: dict[int, tuple[str, Decimal, str | None]], run_date: date) -> None:
    """The cost lines of the sealed references, each already part of its reference (and of its plan's lines)."""
    line_ids = reserve_ids(session, DebtLine.__table__, len(costs))
    rows = []
    for line_id, (index, (code, amount, text)) in zip(line_ids, sorted(costs.items()), strict=True):
        plan, ref_id = plans[index], reference_ids[index]
        rows.append({"id": line_id, "financial_system_id": plan.hub.financial_system_id,
                     "end_user_id": plan.mandate.end_user_id, "transaction_code": code, "description": text or code,
                     "amount": amount, "open_amount": amount, "created_on": run_date, "payment_reference_id": ref_id,
                     "cost_of_reference_id": ref_id})
        plan.lines.append(_Debt(line_id, code, amount))
    insert_many(session, DebtLine.__table__, rows)


def _lock(session: Session) -> None:
    """One execution at a time. SQLite already holds its write lock (BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext('innen.mandate_execution'))"))


def execute_mandates(
    session: Session, run_date: date, actor: str, now: datetime | None = None, *, mandate_ids: Iterable[int] | None = None
) -> ExecutionResult:
    """Create the references, collections and collection runs due on ``run_date``.

    ``mandate_ids`` limits the work to those mandates (the due ones of a check
    made just before); each is checked again here, inside the transaction.
    """
    now = now or datetime.now(timezone.utc)
    _lock(session)
    result = ExecutionResult(run_date=run_date.isoformat())
    plans = _plan(session, run_date, result, mandate_ids)
    if not plans:
        return result
    _what_to_tell(session, plans)
    numbers = _numbering(session, plans)
    costs = _transaction_costs(session, plans)
    for index, (_code, cost, _text) in costs.items():
        plans[index].amount += cost

    reference_rows = [
        {
            **number,
            "financial_system_id": plan.hub.financial_system_id,
            "type_id": plan.mandate.type_id,
            "end_user_id": plan.mandate.end_user_id,
            "mandate_id": plan.mandate.id,
            "hub_id": plan.hub.id,
            "status": "sealed",
            "amount": plan.amount,
            "open_amount": plan.amount,
            "due_date": plan.collection_date,
            "description": f"Direct debit {plan.mandate.loi} ({plan.mandate.reference}) due {plan.mandate.next_due_date}",
            "created_at": now,
            "sealed_at": now,
        }
        for plan, number in zip(plans, numbers, strict=True)
    ]
    reference_ids = reserve_ids(session, PaymentReference.__table__, len(plans))
    for row, ref_id in zip(reference_rows, reference_ids, strict=True):
        row["id"] = ref_id
    insert_many(session, PaymentReference.__table__, reference_rows)
    if costs:
        _add_cost_lines(session, plans, reference_ids, costs, run_date)
    insert_many(
        session,
        PaymentReferenceLine.__table__,
        [
            {"payment_reference_id": ref_id, "debt_line_id": line.id, "transaction_code": line.code, "amount": line.open_amount}
            for plan, ref_id in zip(plans, reference_ids, strict=True)
            for line in plan.lines
        ],
    )
    update_by_id(
        session,
        DebtLine.__table__,
        [{"id": line.id, "payment_reference_id": ref_id} for plan, ref_id in zip(plans, reference_ids, strict=True) for line in plan.lines],
    )

    run_ids, audits = _runs_for(session, plans, run_date, actor, now)
    collection_ids = reserve_ids(session, Collection.__table__, len(plans))
    # Bulk rows share their keys: the amendment columns only when some collection carries one (else their defaults).
    amended = any(plan.amendment is not None for plan in plans)
    collection_rows = [
        {
            "id": coll_id,
            "run_id": run_ids[(plan.hub.id, plan.collection_date)],
            "mandate_id": plan.mandate.id,
            "payment_reference_id": ref_id,
            "sequence_type": plan.sequence_type,
            "due_date": plan.mandate.next_due_date,
            "amount": plan.amount,
            "end_to_end_id": ref_row["loi"],
            "status": "pending",
            "return_reason": None,
            **_told_columns(plan, amended),
        }
        for plan, ref_id, ref_row, coll_id in zip(plans, reference_ids, reference_rows, collection_ids, strict=True)
    ]
    insert_many(session, Collection.__table__, collection_rows)

    for plan, ref_row, coll_row in zip(plans, reference_rows, collection_rows, strict=True):
        audits.append(
            audit_row(
                "payment_reference", ref_row["id"], "created", actor,
                after={
                    "loi": ref_row["loi"], "status": "sealed", "amount": plan.amount,
                    "reference_number": ref_row["reference_number"], "mandate": plan.mandate.loi,
                    "debt_line_ids": [line.id for line in plan.lines],
                },
                at=now,
            )
        )
        after = {
            "status": "pending", "sequence_type": plan.sequence_type, "amount": plan.amount,
            "due_date": coll_row["due_date"], "end_to_end_id": coll_row["end_to_end_id"],
        }
        if plan.amendment is not None:
            after["amendment"] = asdict(plan.amendment)
        audits.append(audit_row("collection", coll_row["id"], "created", actor, after=after, at=now))
    audits.extend(_refresh_run_totals(session, set(run_ids.values()), actor, now))
    record_many(session, audits)

    by_seq: dict[str, int] = defaultdict(int)
    for plan in plans:
        by_seq[plan.sequence_type] += 1
    result.collections = len(plans)
    result.total = str(sum((plan.amount for plan in plans), ZERO))
    result.by_sequence_type = dict(sorted(by_seq.items()))
    result.runs = [
        {
            "loi": run.loi, "hub": run.hub_id, "collection_date": run.collection_date.isoformat(),
            "transactions": run.transaction_count, "total": str(run.total_amount),
        }
        for run in session.scalars(select(CollectionRun).where(CollectionRun.id.in_(run_ids.values())).order_by(CollectionRun.id))
    ]
    return result


def _told_columns(plan: _Plan, with_amendment: bool) -> dict[str, Any]:
    """The collection's columns for what it tells the banks, and (``with_amendment``) for the amendment it carries."""
    told = plan.told
    assert told is not None
    columns = {
        "mandate_reference": told.mandate_reference, "debtor_iban": told.debtor_iban,
        "debtor_bic": plan.mandate.debtor_bic, "creditor_id": told.creditor_id,
    }
    if with_amendment:
        change = plan.amendment or Amendment()
        columns.update(
            original_mandate_reference=change.original_mandate_reference,
            original_creditor_id=change.original_creditor_id,
            original_debtor_iban=change.original_debtor_iban,
            debtor_agent_changed=change.debtor_agent_changed,
        )
    return columns


def _runs_for(
    session: Session, plans: list[_Plan], run_date: date, actor: str, now: datetime
) -> tuple[dict[tuple[int, date], int], list[dict[str, Any]]]:
    """The run of each (hub, collection date): a ``ready`` one of that day, or a new one."""
    systems = {s.id: s.code for s in session.scalars(select(FinancialSystem))}
    run_ids: dict[tuple[int, date], int] = {}
    audits = []
    for hub_id, collection_date in sorted({(p.hub.id, p.collection_date) for p in plans}):
        existing = session.scalars(
            select(CollectionRun.id)
            .where(
                CollectionRun.hub_id == hub_id,
                CollectionRun.collection_date == collection_date,
                CollectionRun.status == "ready",
            )
            .order_by(CollectionRun.id)
        ).first()
        if existing is not None:
            run_ids[(hub_id, collection_date)] = existing
            continue
        hub = session.get(BankHub, hub_id)
        assert hub is not None
        system = systems[hub.financial_system_id]
        loi = f"fj:{system}:{reserve(session, f'fj:{system}')}"
        run = CollectionRun(
            loi=loi, hub_id=hub_id, collection_date=collection_date, run_date=run_date, status="ready",
            export_format=hub.export_format, created_at=now, created_by=actor,
        )
        session.add(run)
        session.flush()
        run_ids[(hub_id, collection_date)] = run.id
        audits.append(
            audit_row("collection_run", run.id, "created", actor,
                      after={"loi": loi, "status": "ready", "collection_date": collection_date}, at=now)
        )
    return run_ids, audits


def _refresh_run_totals(session: Session, run_ids: set[int], actor: str, now: datetime) -> list[dict[str, Any]]:
    """Transaction count and total of each run, from its collections (summed in exact cents)."""
    audits = []
    for run in session.scalars(select(CollectionRun).where(CollectionRun.id.in_(run_ids))):
        count, cents = session.execute(
            select(func.count(), func.coalesce(func.sum(in_cents(Collection.amount)), 0)).where(Collection.run_id == run.id)
        ).one()
        before = {"transactions": run.transaction_count, "total": run.total_amount}
        run.transaction_count = count
        run.total_amount = from_cents(int(cents))
        after = {"transactions": run.transaction_count, "total": run.total_amount}
        if before != after:
            audits.append(audit_row("collection_run", run.id, "collections_added", actor, before=before, after=after, at=now))
    session.flush()
    return audits
