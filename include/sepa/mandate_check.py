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

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import String, case, func, select, type_coerce
from sqlalchemy.orm import Session, aliased

from include.finance.bulk import stream_rows
from include.finance.business_days import roll_forward
from include.finance.money import from_cents
from include.finance.models import (
    BankHub,
    Collection,
    DebtLine,
    EndUser,
    Frequency,
    Mandate,
    MandateTransactionCode,
    PaymentReferenceType,
    in_cents,
)
from include.sepa.hubs import hub_problems
from include.sepa.identifiers import bic_problem, debtor_iban_problem, mandate_reference_problem
from include.sepa.schedule import Frequency as Schedule
from include.sepa.schedule import next_due_date, slot
from include.sepa.transaction_codes import cached_matcher

STREAM_BATCH = 10_000
ID_BATCH = 5_000


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


class MandateStatus:
    """One mandate as the check sees it: its facts, its list and why."""

    __slots__ = (
        "id", "loi", "reference", "active", "end_user_id", "debtor_id", "hub_id", "type_id",
        "first_collection_date", "end_date", "schedule", "one_off", "last_collected", "has_prior", "patterns",
        "owner_eloi", "debtor_name", "debtor_iban", "debtor_bic", "hub_code", "type_code", "frequency_code", "eligible_amount",
        "reasons", "next_due_date", "next_collection_date", "due", "note", "list",
    )

    def __init__(
        self, id: int, loi: str, reference: str, active: bool, end_user_id: int, debtor_id: int | None,
        hub_id: int | None, type_id: int | None, first_collection_date: date | None, end_date: date | None,
        schedule: Schedule | None, one_off: bool, last_collected: date | None, patterns: tuple[str, ...],
        owner_eloi: str = "", debtor_name: str = "", debtor_iban: str | None = None, type_code: str = "",
        frequency_code: str = "",
    ) -> None:
        self.id, self.loi, self.reference, self.active = id, loi, reference, active
        self.end_user_id, self.debtor_id, self.hub_id, self.type_id = end_user_id, debtor_id, hub_id, type_id
        self.first_collection_date, self.end_date, self.schedule = first_collection_date, end_date, schedule
        self.one_off, self.last_collected, self.has_prior = one_off, last_collected, last_collected is not None
        self.patterns, self.owner_eloi, self.debtor_name, self.debtor_iban = patterns, owner_eloi, debtor_name, debtor_iban
        self.debtor_bic: str | None = None
        self.type_code, self.frequency_code, self.hub_code = type_code, frequency_code, ""
        self.eligible_amount: Decimal | None = None
        self.reasons: list[str] = []
        self.next_due_date: date | None = None
        self.next_collection_date: date | None = None
        self.due = False  # the next due date lies within the hub's lead time: execute today
        self.note = ""
        self.list = MandateList.ACTIVE_OK

    def classify(self) -> None:
        if self.active:
            self.list = MandateList.ACTIVE_ERR if self.reasons else MandateList.ACTIVE_OK
        else:
            self.list = MandateList.NONACTIVE_ERR if self.reasons else MandateList.NONACTIVE_OK


def hub_facts(session: Session) -> dict[int, HubFacts]:
    """Every hub as plain values, with what it lacks for collecting."""
    return {
        hub.id: HubFacts(hub.id, hub.code, hub.financial_system_id, hub.lead_days, hub.rcur_only, hub_problems(hub))
        for hub in session.scalars(select(BankHub))
    }


class _Lookups:
    """Small metadata tables, read once per check."""

    def __init__(self, session: Session) -> None:
        self.hubs = hub_facts(session)
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
            self._iban[key] = debtor_iban_problem(value)
        return self._iban[key]

    def bic_problem(self, value: str | None) -> str | None:
        key = value or ""
        if key not in self._bic:
            self._bic[key] = bic_problem(value)
        return self._bic[key]


MANDATE_LIFE_MONTHS = 36
_LIFE_DAYS_AT_LEAST = 1095  # 36 months are never fewer days than three common years


def _lapsed(last_presented: date | None, run_date: date) -> str | None:
    """Why the mandate has lapsed (SDD rulebook: no collection presented for 36 months), or None.

    The months run from the latest collection presented, returned ones
    included (its due date, or a converted mandate's last collection date).

    >>> print(_lapsed(date(2023, 11, 20), date(2026, 11, 21)))
    lapsed: no collection presented since 2023-11-20, more than 36 months ago (SDD rulebook); a new mandate must be signed
    >>> _lapsed(date(2023, 11, 21), date(2026, 11, 21)) is None
    True
    """
    if last_presented is None or (run_date - last_presented).days <= _LIFE_DAYS_AT_LEAST:
        return None  # the common case, without month arithmetic
    if run_date <= slot(last_presented, "month", MANDATE_LIFE_MONTHS, 1):
        return None
    return (f"lapsed: no collection presented since {last_presented}, more than {MANDATE_LIFE_MONTHS} months ago "
            "(SDD rulebook); a new mandate must be signed")


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


def _day(value: date | str | None) -> date | None:
    """Dates arrive as ``date`` (PostgreSQL) or ISO text (SQLite, read raw: much faster than SQLAlchemy's parser)."""
    return value if value is None or isinstance(value, date) else date.fromisoformat(value)


def _raw(column):  # type: ignore[no-untyped-def]
    return type_coerce(column, String)


def _mandate_rows(session: Session, ids: Sequence[int] | None) -> Iterator[Sequence[Any]]:
    owner, debtor = aliased(EndUser), aliased(EndUser)
    collected = (
        select(
            Collection.mandate_id,
            # the latest collection that counts for the sequence type: a returned one does not
            func.max(case((Collection.status != "returned", _raw(Collection.due_date)))).label("last_due"),
            # the latest one presented to the banks, returned or not: the 36 months of a mandate's life run from it
            func.max(_raw(Collection.due_date)).label("last_presented"),
        )
        .where(Collection.status != "cancelled")
        .group_by(Collection.mandate_id)
        .subquery()
    )
    statement = (
        select(
            Mandate.id, Mandate.loi, Mandate.reference, Mandate.active, Mandate.end_user_id, Mandate.debtor_id,
            Mandate.hub_id, Mandate.type_id, _raw(Mandate.signature_date), _raw(Mandate.first_collection_date),
            _raw(Mandate.last_collection_date), _raw(Mandate.end_date), Mandate.frequency_id, Mandate.debtor_iban,
            Mandate.debtor_bic, collected.c.last_due, collected.c.last_presented, owner.eloi, debtor.first_name, debtor.last_name,
            Mandate.blocked_reason,
        )
        .join(owner, owner.id == Mandate.end_user_id)
        .outerjoin(debtor, debtor.id == Mandate.debtor_id)
        .outerjoin(collected, collected.c.mandate_id == Mandate.id)
        .order_by(Mandate.id)
    )
    if ids is None:
        yield from stream_rows(session, statement, STREAM_BATCH)
        return
    for start in range(0, len(ids), ID_BATCH):
        yield from stream_rows(session, statement.where(Mandate.id.in_(ids[start : start + ID_BATCH])), STREAM_BATCH)


def _pattern_rows(session: Session, ids: Sequence[int] | None) -> Iterator[tuple[int, tuple[str, ...]]]:
    """(mandate id, its patterns), in mandate id order."""
    statement = select(MandateTransactionCode.mandate_id, MandateTransactionCode.pattern).order_by(
        MandateTransactionCode.mandate_id, MandateTransactionCode.pattern
    )
    if ids is None:
        rows: Iterable[Sequence[Any]] = stream_rows(session, statement, STREAM_BATCH)
    else:
        rows = (
            row
            for start in range(0, len(ids), ID_BATCH)
            for row in stream_rows(
                session, statement.where(MandateTransactionCode.mandate_id.in_(ids[start : start + ID_BATCH]))
            )
        )
    for mandate_id, group in groupby(rows, key=itemgetter(0)):
        yield mandate_id, tuple(row[1] for row in group)


def eligible_debt_cents(session: Session) -> dict[tuple[int, int], list[tuple[str, int]]]:
    """Open debt in no open reference, per (end user, financial system): (transaction code, cents) pairs.

    Summed in SQL as integer cents, which is exact on both databases.
    """
    totals: dict[tuple[int, int], list[tuple[str, int]]] = {}
    rows = stream_rows(
        session,
        select(DebtLine.end_user_id, DebtLine.financial_system_id, DebtLine.transaction_code, func.sum(in_cents(DebtLine.open_amount)))
        .where(DebtLine.payment_reference_id.is_(None), DebtLine.open_amount > 0)
        .group_by(DebtLine.end_user_id, DebtLine.financial_system_id, DebtLine.transaction_code),
        STREAM_BATCH,
    )
    for user, system, code, cents in rows:
        totals.setdefault((user, system), []).append((code, int(cents)))
    return totals


def check_mandates(
    session: Session, run_date: date, *, with_amounts: bool = False, mandate_ids: Iterable[int] | None = None
) -> Iterator[MandateStatus]:
    """Every mandate (or those in ``mandate_ids``), in id order, with its list, reasons and next dates.

    ``with_amounts`` also computes each active-ok mandate's eligible open debt
    (what it would collect now), as the seed's check does for its lists.
    """
    lookups = _Lookups(session)
    debts = eligible_debt_cents(session) if with_amounts else None
    ids = None if mandate_ids is None else sorted(set(mandate_ids))
    patterns = _pattern_rows(session, ids)
    pending = next(patterns, None)
    for row in _mandate_rows(session, ids):
        mandate_id = row[0]
        while pending is not None and pending[0] < mandate_id:
            pending = next(patterns, None)
        row_patterns: tuple[str, ...] = ()
        if pending is not None and pending[0] == mandate_id:
            row_patterns = pending[1]
        status = _check_one(row, row_patterns, lookups, run_date)
        if debts is not None and status.list is MandateList.ACTIVE_OK:
            hub = lookups.hubs[status.hub_id]  # type: ignore[index]
            matches = cached_matcher(status.patterns)
            cents = sum(c for code, c in debts.get((status.end_user_id, hub.financial_system_id), ()) if matches(code))
            status.eligible_amount = from_cents(cents)
        yield status


def _check_one(row: Sequence[Any], patterns: tuple[str, ...], lookups: _Lookups, run_date: date) -> MandateStatus:
    (mandate_id, loi, reference, active, owner_id, debtor_id, hub_id, type_id, signed, first, converted_last, end,
     frequency_id, iban, bic, last_due, last_presented, owner_eloi, debtor_first, debtor_last, blocked) = row
    type_code, one_off = lookups.types.get(type_id, ("", False))
    frequency_code, schedule = lookups.frequencies.get(frequency_id, ("", None))
    last_collected = _day(last_due) or _day(converted_last)
    m = MandateStatus(
        mandate_id, loi, reference, bool(active), owner_id, debtor_id, hub_id, type_id, _day(first), _day(end),
        None if one_off else schedule, one_off, last_collected, patterns, owner_eloi,
        f"{debtor_first} {debtor_last}" if debtor_first else (debtor_last or ""), iban, type_code, frequency_code,
    )
    m.debtor_bic = bic
    reasons = m.reasons
    if (problem := mandate_reference_problem(reference)) is not None:
        reasons.append(problem)
    if (problem := lookups.iban_problem(iban)) is not None:
        reasons.append("debtor " + problem)
    if (problem := lookups.bic_problem(bic)) is not None:
        reasons.append("debtor " + problem)
    reasons.extend(_date_reasons(m, _day(signed)))
    hub = lookups.hubs.get(hub_id) if hub_id is not None else None
    if hub is None:
        reasons.append("no bank hub")
    else:
        m.hub_code = hub.code
        if hub.problems:
            reasons.append(f"bank hub {hub.code} incomplete: " + "; ".join(hub.problems))
    if debtor_id is None:
        reasons.append("no debtor")
    elif not m.debtor_name.strip():
        reasons.append("debtor has no name (the bank file needs one)")
    if type_id is None:
        reasons.append("no payment reference type")
    elif not one_off and frequency_id is None:
        reasons.append("no frequency (the type is not one-off)")
    if not patterns:
        reasons.append("no transaction-code pattern")
    if blocked:
        reasons.append(f"blocked: {blocked}; a new mandate is needed")
    presented = [day for day in (_day(last_presented), _day(converted_last)) if day is not None]
    if (lapsed := _lapsed(max(presented, default=None), run_date)) is not None:
        reasons.append(lapsed)
    m.classify()
    if m.list is MandateList.ACTIVE_OK and hub is not None and m.first_collection_date is not None:
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
