"""Mandate check (seed 2.3.3.1): every mandate on one of four lists, each error with its reason.

* ``active-ok``: active and complete, with its next due date and the date the
  bank would collect if the mandate were executed today; these are executed;
* ``active-err``: active with errors, each with its reason; never collected;
* ``nonactive-ok`` and ``nonactive-err``: the same for inactive mandates.

The check reads the database only; :mod:`include.sepa.mandate_reports` writes
the lists, :mod:`include.sepa.mandate_execution` acts on ``active-ok``.
Mandates are streamed in id order, so a million of them never sit in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from include.finance.business_days import roll_forward
from include.finance.models import (
    BankHub,
    Collection,
    DebtLine,
    EndUser,
    Frequency,
    Mandate,
    MandateTransactionCode,
    PaymentReferenceType,
)
from include.sepa.hubs import hub_problems
from include.sepa.identifiers import bic_problem, iban_problem
from include.sepa.schedule import Frequency as Schedule
from include.sepa.schedule import next_due_date
from include.sepa.transaction_codes import matcher

STREAM_BATCH = 10_000


class MandateList(StrEnum):
    ACTIVE_OK = "active-ok"
    ACTIVE_ERR = "active-err"
    NONACTIVE_OK = "nonactive-ok"
    NONACTIVE_ERR = "nonactive-err"


@dataclass(slots=True)
class HubFacts:
    id: int
    code: str
    financial_system_id: int
    lead_days: int
    rcur_only: bool
    problems: list[str]


@dataclass(slots=True)
class MandateStatus:
    """One mandate as the check sees it: its facts, its list and why."""

    id: int
    loi: str
    reference: str
    active: bool
    end_user_id: int
    debtor_id: int | None
    hub_id: int | None
    type_id: int | None
    first_collection_date: date | None
    end_date: date | None
    schedule: Schedule | None
    one_off: bool
    last_collected: date | None
    has_prior: bool
    patterns: tuple[str, ...]
    owner_eloi: str = ""
    debtor_name: str = ""
    debtor_iban: str | None = None
    hub_code: str = ""
    type_code: str = ""
    frequency_code: str = ""
    eligible_amount: Decimal | None = None
    reasons: list[str] = field(default_factory=list)
    next_due_date: date | None = None
    next_collection_date: date | None = None
    due: bool = False  # the next due date lies within the hub's lead time: execute today
    note: str = ""

    @property
    def list(self) -> MandateList:
        if self.active:
            return MandateList.ACTIVE_ERR if self.reasons else MandateList.ACTIVE_OK
        return MandateList.NONACTIVE_ERR if self.reasons else MandateList.NONACTIVE_OK


class _Lookups:
    """Small metadata tables, read once per check."""

    def __init__(self, session: Session) -> None:
        self.hubs = {
            hub.id: HubFacts(hub.id, hub.code, hub.financial_system_id, hub.lead_days, hub.rcur_only, hub_problems(hub))
            for hub in session.scalars(select(BankHub))
        }
        self.types = {
            type_.id: (type_.code, type_.default_sequence_type == "OOFF")
            for type_ in session.scalars(select(PaymentReferenceType))
        }
        self.frequencies = {f.id: (f.code, Schedule(f.unit, f.every)) for f in session.scalars(select(Frequency))}
        self._iban: dict[str, str | None] = {}
        self._bic: dict[str, str | None] = {}

    def iban_problem(self, value: str | None) -> str | None:
        key = value or ""
        if key not in self._iban:
            self._iban[key] = iban_problem(value)
        return self._iban[key]

    def bic_problem(self, value: str | None) -> str | None:
        key = value or ""
        if key not in self._bic:
            self._bic[key] = bic_problem(value)
        return self._bic[key]


def _date_reasons(m: MandateStatus, signature: date | None) -> list[str]:
    reasons = []
    first, end = m.first_collection_date, m.end_date
    if signature is None:
        reasons.append("signature date missing")
    if first is None:
        reasons.append("first collection date missing")
    if signature and first and signature > first:
        reasons.append(f"signed on {signature}, after the first collection date {first}")
    if signature and end and signature > end:
        reasons.append(f"signed on {signature}, after the end date {end}")
    if first and end and first > end:
        reasons.append(f"first collection date {first} is after the end date {end}")
    return reasons


def _stream_patterns(session: Session) -> Iterator[tuple[int, tuple[str, ...]]]:
    rows = session.execute(
        select(MandateTransactionCode.mandate_id, MandateTransactionCode.pattern).order_by(
            MandateTransactionCode.mandate_id, MandateTransactionCode.pattern
        ),
        execution_options={"yield_per": STREAM_BATCH},
    )
    current, patterns = None, []
    for mandate_id, pattern in rows:
        if mandate_id != current:
            if current is not None:
                yield current, tuple(patterns)
            current, patterns = mandate_id, []
        patterns.append(pattern)
    if current is not None:
        yield current, tuple(patterns)


def _eligible_debt(session: Session) -> dict[tuple[int, int], list[tuple[str, Decimal]]]:
    """Open debt in no open reference, per (end user, financial system), summed per transaction code."""
    totals: dict[tuple[int, int], list[tuple[str, Decimal]]] = {}
    rows = session.execute(
        select(DebtLine.end_user_id, DebtLine.financial_system_id, DebtLine.transaction_code, func.sum(DebtLine.open_amount))
        .where(DebtLine.payment_reference_id.is_(None), DebtLine.open_amount > 0)
        .group_by(DebtLine.end_user_id, DebtLine.financial_system_id, DebtLine.transaction_code),
        execution_options={"yield_per": STREAM_BATCH},
    )
    for user, system, code, amount in rows:
        totals.setdefault((user, system), []).append((code, amount))
    return totals


def check_mandates(session: Session, run_date: date, *, with_amounts: bool = False) -> Iterator[MandateStatus]:
    """Every mandate, in id order, with its list, reasons and (active-ok) next dates.

    ``with_amounts`` also computes each active-ok mandate's eligible open debt
    (what it would collect now), as the seed's check does for its lists.
    """
    lookups = _Lookups(session)
    debts = _eligible_debt(session) if with_amounts else None
    owner, debtor = aliased(EndUser), aliased(EndUser)
    collected = (
        select(Collection.mandate_id, func.max(Collection.due_date).label("last_due"))
        .where(Collection.status != "returned")
        .group_by(Collection.mandate_id)
        .subquery()
    )
    rows = session.execute(
        select(
            Mandate.id,
            Mandate.loi,
            Mandate.reference,
            Mandate.active,
            Mandate.end_user_id,
            Mandate.debtor_id,
            Mandate.hub_id,
            Mandate.type_id,
            Mandate.signature_date,
            Mandate.first_collection_date,
            Mandate.last_collection_date,
            Mandate.end_date,
            Mandate.frequency_id,
            Mandate.debtor_iban,
            Mandate.debtor_bic,
            collected.c.last_due,
            owner.eloi.label("owner_eloi"),
            debtor.first_name.label("debtor_first_name"),
            debtor.last_name.label("debtor_last_name"),
        )
        .join(owner, owner.id == Mandate.end_user_id)
        .outerjoin(debtor, debtor.id == Mandate.debtor_id)
        .outerjoin(collected, collected.c.mandate_id == Mandate.id)
        .order_by(Mandate.id),
        execution_options={"yield_per": STREAM_BATCH},
    )
    patterns = _stream_patterns(session)
    pending = next(patterns, None)
    for row in rows:
        while pending is not None and pending[0] < row.id:
            pending = next(patterns, None)
        row_patterns: tuple[str, ...] = ()
        if pending is not None and pending[0] == row.id:
            row_patterns = pending[1]
        status = _check_one(row, row_patterns, lookups, run_date)
        if debts is not None and status.list is MandateList.ACTIVE_OK:
            hub = lookups.hubs[status.hub_id]  # type: ignore[index]
            matches = matcher(status.patterns)
            status.eligible_amount = sum(
                (amount for code, amount in debts.get((status.end_user_id, hub.financial_system_id), ()) if matches(code)),
                Decimal("0.00"),
            )
        yield status


def _check_one(row, patterns: tuple[str, ...], lookups: _Lookups, run_date: date) -> MandateStatus:  # type: ignore[no-untyped-def]
    type_code, one_off = lookups.types.get(row.type_id, ("", False))
    frequency_code, schedule = lookups.frequencies.get(row.frequency_id, ("", None))
    if one_off:
        schedule = None
    last_collected = row.last_due or row.last_collection_date
    m = MandateStatus(
        id=row.id,
        loi=row.loi,
        reference=row.reference,
        active=row.active,
        end_user_id=row.end_user_id,
        debtor_id=row.debtor_id,
        hub_id=row.hub_id,
        type_id=row.type_id,
        first_collection_date=row.first_collection_date,
        end_date=row.end_date,
        schedule=schedule,
        one_off=one_off,
        last_collected=last_collected,
        has_prior=last_collected is not None,
        patterns=patterns,
        owner_eloi=row.owner_eloi,
        debtor_name=" ".join(p for p in (row.debtor_first_name, row.debtor_last_name) if p),
        debtor_iban=row.debtor_iban,
        type_code=type_code,
        frequency_code=frequency_code,
    )
    reasons = m.reasons
    if (problem := lookups.iban_problem(row.debtor_iban)) is not None:
        reasons.append("debtor " + problem)
    if (problem := lookups.bic_problem(row.debtor_bic)) is not None:
        reasons.append("debtor " + problem)
    reasons.extend(_date_reasons(m, row.signature_date))
    hub = lookups.hubs.get(row.hub_id) if row.hub_id is not None else None
    if hub is not None:
        m.hub_code = hub.code
    if hub is None:
        reasons.append("no bank hub")
    elif hub.problems:
        reasons.append(f"bank hub {hub.code} incomplete: " + "; ".join(hub.problems))
    if row.debtor_id is None:
        reasons.append("no debtor")
    if row.type_id is None:
        reasons.append("no payment reference type")
    elif not one_off and row.frequency_id is None:
        reasons.append("no frequency (the type is not one-off)")
    if not patterns:
        reasons.append("no transaction-code pattern")
    if m.active and not reasons and hub is not None and m.first_collection_date is not None:
        _schedule_next(m, hub, run_date)
    return m


def _schedule_next(m: MandateStatus, hub: HubFacts, run_date: date) -> None:
    earliest = run_date + timedelta(days=hub.lead_days)
    due = next_due_date(
        first=m.first_collection_date,  # type: ignore[arg-type]
        frequency=m.schedule,
        last_collected=m.last_collected,
        horizon=earliest,
        end=m.end_date,
    )
    if due is None:
        m.note = "collected once (one-off)" if m.one_off else f"ended on {m.end_date}"
        return
    collection_date = roll_forward(max(due, earliest))
    if m.end_date is not None and collection_date > m.end_date:
        m.note = f"ended: the next collection date {collection_date} falls after the end date {m.end_date}"
        return
    m.next_due_date, m.next_collection_date = due, collection_date
    m.due = due <= earliest
