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
constraint on (mandate, due date). Which lines a mandate may collect is
decided in SQL by the patterns' meanings (``mandate_check``), which takes
them is decided here (the first due mandate in id order); the references,
their lines and the collections are written from the plans, the debt lines'
reference and the audit rows by the database from what was written.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, literal, select, union_all, update
from sqlalchemy.orm import Session

from include.finance.audit import audit_row, record_many
from include.finance.bulk import (
    Memo,
    as_json,
    ids_json_sql,
    in_ids,
    insert_tuples,
    json_object_sql,
    reserve_ids,
    stream_records,
)
from include.finance.counters import reserve
from include.finance.db import hold_ledger, one_at_a_time
from include.finance.models import (
    AuditLog,
    BankFileApproval,
    BankHub,
    Collection,
    CollectionRun,
    DebtLine,
    FinancialSystem,
    Mandate,
    PaymentReference,
    PaymentReferenceLine,
    PaymentReferenceType,
    TransactionCost,
    in_cents,
)
from include.finance.money import ZERO, from_cents
from include.finance.numbering import reference_numbers
from include.finance.statuses import ApprovalStatus, CollectionStatus, ReferenceStatus, RunStatus
from include.sepa.amendments import Amendment, Told, amendment
from include.sepa.mandate_check import (
    HubFacts,
    MandateList,
    by_mandate,
    check_mandates,
    hub_facts,
    open_debt_by_mandate,
)
from include.sepa.schedule import is_final
from include.sepa.sequence_type import sequence_type

# EPC SDD rulebook (AT-06): one collection carries at most EUR 999 999 999.99.
MAX_COLLECTION_CENTS = 99_999_999_999

# (debt line id, transaction code, open amount): exact tuples of plain values, which the garbage collector leaves be.
Line = tuple[int, str, Decimal]


@dataclass(slots=True)
class _Plan:
    """One collection to make: a plain record, so that 200 000 of them leave little for the garbage collector."""

    mandate_id: int
    mandate_loi: str
    end_user_id: int
    type_id: int
    # What this collection tells the banks about its mandate (Told's fields), and the BIC.
    mandate_reference: str
    debtor_iban: str | None
    creditor_id: str | None
    debtor_bic: str | None
    due_date: date
    hub: HubFacts
    lines: tuple[Line, ...]
    amount: Decimal
    sequence_type: str
    collection_date: date
    amendment: Amendment | None = None
    reference_id: int = 0
    collection_id: int = 0
    loi: str = ""
    reference_number: str | None = None
    invoice_number: str | None = None


@dataclass
class ExecutionResult:
    """What one execution did, small enough for XCom and the demo summary."""

    run_date: str
    due: int = 0
    without_debt: int = 0
    # Mandates whose eligible debt exceeds what one SEPA direct debit may carry (EPC: 999 999 999.99): not
    # collected, their lines left open, each named (loi, amount) for finance to collect another way.
    too_large: list[list[str]] = field(default_factory=list)
    collections: int = 0
    total: str = "0.00"
    by_sequence_type: dict[str, int] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ready_runs(self) -> list[str]:
        return [run["loi"] for run in self.runs]


def _plan(session: Session, run_date: date, result: ExecutionResult, mandate_ids: Iterable[int] | None) -> list[_Plan]:
    """Each due mandate with the open debt lines it collects: those of its owner in its hub's financial system that
    match its patterns (:func:`~include.sepa.mandate_check.open_debt_by_mandate`) and no mandate before it (in id
    order) took."""
    hubs = hub_facts(session)
    ids = None if mandate_ids is None else sorted(set(mandate_ids))
    debt_of = by_mandate(open_debt_by_mandate(session, ids), ())
    claimed: set[int] = set()
    plans = []
    amounts = Memo(from_cents)  # one Decimal per amount: many lines and plans share one, bound once
    for m in check_mandates(session, run_date, mandate_ids=ids):
        if m.list is not MandateList.ACTIVE_OK or not m.due:
            continue
        result.due += 1
        taken = [line for line in debt_of(m.id) if line.id not in claimed]
        if not taken:
            result.without_debt += 1
            continue
        cents = sum(line.cents for line in taken)
        if cents > MAX_COLLECTION_CENTS:
            result.too_large.append([m.loi, str(from_cents(cents))])
            continue
        lines = tuple((line.id, line.transaction_code, amounts[line.cents]) for line in taken)
        claimed.update(line.id for line in taken)
        hub = hubs[m.hub_id]  # type: ignore[index]
        seq = sequence_type(
            one_off=m.one_off,
            has_prior=m.has_prior,
            final=is_final(m.first_collection_date, m.next_due_date, m.schedule, m.end_date),  # type: ignore[arg-type]
            rcur_only=hub.rcur_only,
        )
        amount = amounts[cents]
        plans.append(_Plan(
            m.id, m.loi, m.end_user_id, m.type_id, m.reference, m.debtor_iban, None, m.debtor_bic,  # type: ignore[arg-type]
            m.next_due_date, hub, lines, amount, seq, m.next_collection_date,  # type: ignore[arg-type]
        ))
    return plans


def _what_to_tell(session: Session, plans: list[_Plan]) -> None:
    """Each plan's mandate details as they stand, and the amendment since the mandate's latest collection."""
    creditor_ids = {hub.id: hub.creditor_id for hub in session.execute(select(BankHub.id, BankHub.creditor_id))}
    latest = (
        select(func.max(Collection.id))
        .where(in_ids(session, Collection.mandate_id, [plan.mandate_id for plan in plans]),
               Collection.status != CollectionStatus.CANCELLED)
        .group_by(Collection.mandate_id)
    )
    told_before = {
        row.mandate_id: Told(row.mandate_reference, row.debtor_iban, row.creditor_id)
        for row in stream_records(
            session,
            select(Collection.mandate_id, Collection.mandate_reference, Collection.debtor_iban, Collection.creditor_id)
            .where(Collection.id.in_(latest)),
        )
    }
    for plan in plans:
        plan.creditor_id = creditor_ids.get(plan.hub.id)
        plan.amendment = amendment(told_before.get(plan.mandate_id), _told(plan))
        if (plan.amendment and plan.amendment.debtor_agent_changed and plan.sequence_type in ("RCUR", "FNAL")
                and not plan.hub.rcur_only):
            # The new bank holds no earlier collection: it gets a first one (the EPC's rule for SMNDA until the
            # 2016 rulebook, still allowed since; an RCUR-only hub keeps RCUR). The last collection too: a series
            # opens with FRST, at the new bank as anywhere (sequence_type keeps a first-and-last FRST).
            plan.sequence_type = "FRST"


def _told(plan: _Plan) -> Told:
    return Told(plan.mandate_reference, plan.debtor_iban, plan.creditor_id)


def _number(session: Session, plans: list[_Plan]) -> None:
    """Identifiers, reference numbers and invoice numbers, one counter statement per series."""
    # A due mandate has a type: mandate_check lists one without as active-err.
    wanted = [(plan.hub.financial_system_id, plan.type_id) for plan in plans]
    for plan, number in zip(plans, reference_numbers(session, wanted), strict=True):  # type: ignore[arg-type]
        plan.loi, plan.reference_number, plan.invoice_number = (
            number["loi"], number["reference_number"], number["invoice_number"])  # type: ignore[assignment]


def _transaction_costs(session: Session, plans: list[_Plan]) -> dict[int, tuple[str, Decimal, str | None]]:
    """Plan index → (code, amount, description) of the transaction cost its type adds when sealed (seed 2.5.2
    ``transcost``), where the hub's financial system has a tariff for the code."""
    codes = {type_.id: type_.transaction_cost_code for type_ in session.execute(
        select(PaymentReferenceType.id, PaymentReferenceType.transaction_cost_code)
        .where(PaymentReferenceType.transaction_cost_code.is_not(None)))}
    if not codes:
        return {}
    tariffs = {(cost.financial_system_id, cost.transaction_code): cost for cost in session.execute(
        select(TransactionCost.financial_system_id, TransactionCost.transaction_code, TransactionCost.amount,
               TransactionCost.description))}
    costs = {}
    for index, plan in enumerate(plans):
        code = codes.get(plan.type_id)  # type: ignore[arg-type]
        tariff = tariffs.get((plan.hub.financial_system_id, code)) if code else None
        if tariff is not None:
            costs[index] = (code, tariff.amount, tariff.description)
    return costs


def _add_cost_lines(session: Session, plans: list[_Plan], costs: dict[int, tuple[str, Decimal, str | None]],
                    run_date: date) -> None:
    """The cost lines of the sealed references, each already part of its reference (and of its plan's lines)."""
    line_ids = reserve_ids(session, DebtLine.__table__, len(costs))
    rows = []
    for line_id, (index, (code, amount, label)) in zip(line_ids, sorted(costs.items()), strict=True):
        plan = plans[index]
        rows.append((line_id, plan.hub.financial_system_id, plan.end_user_id, code, label or code, amount,
                     amount, run_date, plan.reference_id, plan.reference_id))
        plan.lines += ((line_id, code, amount),)
    insert_tuples(session, DebtLine.__table__, (
        "id", "financial_system_id", "end_user_id", "transaction_code", "description", "amount", "open_amount",
        "created_on", "payment_reference_id", "cost_of_reference_id"), rows)


def execute_mandates(
    session: Session, run_date: date, actor: str, now: datetime | None = None, *, mandate_ids: Iterable[int] | None = None
) -> ExecutionResult:
    """Create the references, collections and collection runs due on ``run_date``.

    ``mandate_ids`` limits the work to those mandates (the due ones of a check
    made just before); each is checked again here, inside the transaction.
    """
    now = now or datetime.now(timezone.utc)
    one_at_a_time(session, "innen.mandate_execution")  # before the ledger: a second execution waits here
    hold_ledger(session)  # the debt lines it takes are free of any reference until it commits
    result = ExecutionResult(run_date=run_date.isoformat())
    plans = _plan(session, run_date, result, mandate_ids)
    if not plans:
        return result
    _what_to_tell(session, plans)
    _number(session, plans)
    costs = _transaction_costs(session, plans)
    for index, (_code, cost, _text) in costs.items():
        plans[index].amount += cost

    for plan, ref_id in zip(plans, reserve_ids(session, PaymentReference.__table__, len(plans)), strict=True):
        plan.reference_id = ref_id
    insert_tuples(session, PaymentReference.__table__, _REFERENCE_COLUMNS, (
        (plan.reference_id, plan.loi, plan.reference_number, plan.invoice_number, plan.hub.financial_system_id,
         plan.type_id, plan.end_user_id, plan.mandate_id, plan.hub.id, _SEALED, plan.amount,
         plan.amount, plan.collection_date,
         f"Direct debit {plan.mandate_loi} ({plan.mandate_reference}) due {plan.due_date}", now, now)
        for plan in plans
    ))
    if costs:
        _add_cost_lines(session, plans, costs, run_date)
    insert_tuples(
        session, PaymentReferenceLine.__table__, ("payment_reference_id", "debt_line_id", "transaction_code", "amount"),
        ((plan.reference_id, line_id, code, amount) for plan in plans for line_id, code, amount in plan.lines),
    )
    _hold_lines(session, [plan.reference_id for plan in plans])

    run_ids, run_audits = _runs_for(session, plans, run_date, actor, now)
    for plan, coll_id in zip(plans, reserve_ids(session, Collection.__table__, len(plans)), strict=True):
        plan.collection_id = coll_id
    # The amendment columns only when some collection carries one (else their defaults).
    amended = any(plan.amendment is not None for plan in plans)
    insert_tuples(session, Collection.__table__, _COLLECTION_COLUMNS + (_AMENDMENT_COLUMNS if amended else ()), (
        (plan.collection_id, run_ids[(plan.hub.id, plan.collection_date)], plan.mandate_id, plan.reference_id,
         plan.sequence_type, plan.due_date, plan.amount, plan.loi, _PENDING, None,
         *_told(plan), plan.debtor_bic,
         *(_amendment_values(plan.amendment) if amended else ()))
        for plan in plans
    ))
    total_audits = _refresh_run_totals(session, set(run_ids.values()), actor, now)
    record_many(session, run_audits)
    _audit_created(session, plans, actor, now)
    record_many(session, total_audits)

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


_REFERENCE_COLUMNS = (
    "id", "loi", "reference_number", "invoice_number", "financial_system_id", "type_id", "end_user_id", "mandate_id",
    "hub_id", "status", "amount", "open_amount", "due_date", "description", "created_at", "sealed_at",
)
# What the collection tells the banks about its mandate (Told's fields, then the BIC), and the amendment it carries.
_COLLECTION_COLUMNS = (
    "id", "run_id", "mandate_id", "payment_reference_id", "sequence_type", "due_date", "amount", "end_to_end_id",
    "status", "return_reason", *Told._fields, "debtor_bic",
)
_AMENDMENT_COLUMNS = ("original_mandate_reference", "original_creditor_id", "original_debtor_iban", "debtor_agent_changed")
# Plain str, not the members: these rows go in by the million, and sqlite3 looks for an adapter for every value
# of a str subclass (binding them takes three times as long).
_SEALED, _PENDING = ReferenceStatus.SEALED.value, CollectionStatus.PENDING.value


def _amendment_values(change: Amendment | None) -> tuple[Any, ...]:
    change = change or Amendment()
    return (change.original_mandate_reference, change.original_creditor_id, change.original_debtor_iban,
            change.debtor_agent_changed)


def _hold_lines(session: Session, reference_ids: list[int]) -> None:
    """Each debt line put into one of the new references now points at it (its open reference)."""
    lines = PaymentReferenceLine.__table__
    session.execute(
        update(DebtLine.__table__)
        .values(payment_reference_id=lines.c.payment_reference_id)
        .where(lines.c.debt_line_id == DebtLine.__table__.c.id, in_ids(session, lines.c.payment_reference_id, reference_ids))
    )


def _audit_created(session: Session, plans: list[_Plan], actor: str, now: datetime) -> None:
    """The audit rows of each new reference and its collection, in plan order, made by the database from the rows
    just written (INSERT … SELECT): what each says is what was stored."""
    r, c, m = PaymentReference.__table__.c, Collection.__table__.c, Mandate.__table__.c
    lines = PaymentReferenceLine.__table__.c
    reference_after = json_object_sql(
        session, ("loi", r.loi, "text"), ("status", r.status, "text"), ("amount", r.amount, "amount"),
        ("reference_number", r.reference_number, "text"), ("mandate", m.loi, "text"),
        ("debt_line_ids", ids_json_sql(session, lines.debt_line_id, lines.payment_reference_id == r.id), "json"))
    amended = (c.original_mandate_reference.is_not(None) | c.original_creditor_id.is_not(None)
               | c.original_debtor_iban.is_not(None))
    collection_after = json_object_sql(
        session, ("status", c.status, "text"), ("sequence_type", c.sequence_type, "text"),
        ("amount", c.amount, "amount"), ("due_date", c.due_date, "date"), ("end_to_end_id", c.end_to_end_id, "text"),
        ("amendment", json_object_sql(
            session, ("original_mandate_reference", c.original_mandate_reference, "text"),
            ("original_creditor_id", c.original_creditor_id, "text"),
            ("original_debtor_iban", c.original_debtor_iban, "text"),
            ("debtor_agent_changed", c.debtor_agent_changed, "boolean")), "json", amended))
    rows = union_all(
        select(literal("payment_reference").label("entity"), r.id.label("entity_id"),
               as_json(session, reference_after).label("after"), r.id.label("plan"), literal(0).label("kind"))
        .select_from(PaymentReference.__table__.join(Mandate.__table__, m.id == r.mandate_id))
        .where(in_ids(session, r.id, [plan.reference_id for plan in plans])),
        select(literal("collection"), c.id, as_json(session, collection_after), c.payment_reference_id, literal(1))
        .where(in_ids(session, c.id, [plan.collection_id for plan in plans])),
    ).subquery()
    session.execute(insert(AuditLog).from_select(
        ["entity", "entity_id", "action", "after", "actor", "at"],
        select(rows.c.entity, rows.c.entity_id, literal("created"), rows.c.after, literal(actor),
               literal(now, AuditLog.at.type)).order_by(rows.c.plan, rows.c.kind),
    ))


def _runs_for(
    session: Session, plans: list[_Plan], run_date: date, actor: str, now: datetime
) -> tuple[dict[tuple[int, date], int], list[dict[str, Any]]]:
    """The run of each (hub, collection date): a ``ready`` one of that day whose file is not waiting for finance's
    approval (the staged file is what finance approves and what the bank gets), or a new one."""
    systems = {s.id: s.code for s in session.scalars(select(FinancialSystem))}
    run_ids: dict[tuple[int, date], int] = {}
    audits = []
    staged = select(BankFileApproval.id).where(
        BankFileApproval.run_id == CollectionRun.id, BankFileApproval.status == ApprovalStatus.WAITING).exists()
    for hub_id, collection_date in sorted({(p.hub.id, p.collection_date) for p in plans}):
        existing = session.scalars(
            select(CollectionRun.id)
            .where(
                CollectionRun.hub_id == hub_id,
                CollectionRun.collection_date == collection_date,
                CollectionRun.status == RunStatus.READY,
                ~staged,
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
            loi=loi, hub_id=hub_id, collection_date=collection_date, run_date=run_date, status=RunStatus.READY,
            export_format=hub.export_format, created_at=now, created_by=actor,
        )
        session.add(run)
        session.flush()
        run_ids[(hub_id, collection_date)] = run.id
        audits.append(
            audit_row("collection_run", run.id, "created", actor,
                      after={"loi": loi, "status": RunStatus.READY, "collection_date": collection_date}, at=now)
        )
    return run_ids, audits


def _refresh_run_totals(session: Session, run_ids: set[int], actor: str, now: datetime) -> list[dict[str, Any]]:
    """Transaction count and total of each run, from its collections that are not cancelled (summed in exact
    cents): what its bank file holds."""
    audits = []
    for run in session.scalars(select(CollectionRun).where(CollectionRun.id.in_(run_ids))):
        totals = session.execute(
            select(func.count().label("transactions"), func.coalesce(func.sum(in_cents(Collection.amount)), 0).label("cents"))
            .where(Collection.run_id == run.id, Collection.status != CollectionStatus.CANCELLED)
        ).one()
        before = {"transactions": run.transaction_count, "total": run.total_amount}
        run.transaction_count = totals.transactions
        run.total_amount = from_cents(int(totals.cents))
        after = {"transactions": run.transaction_count, "total": run.total_amount}
        if before != after:
            audits.append(audit_row("collection_run", run.id, "collections_added", actor, before=before, after=after, at=now))
    session.flush()
    return audits
