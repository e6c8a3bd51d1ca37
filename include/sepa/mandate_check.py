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

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import String, case, func, select, type_coerce
from sqlalchemy.orm import Session, aliased

from include.finance.bulk import in_ids, stream_records
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

    def __init__(self, row: Any, patterns: tuple[str, ...]) -> None:
        """The facts of ``row`` (one record of :func:`_mandate_rows`); the check fills in the rest."""
        self.id, self.loi, self.reference, self.active = row.id, row.loi, row.reference, bool(row.active)
        self.end_user_id, self.debtor_id, self.hub_id, self.type_id = row.end_user_id, row.debtor_id, row.hub_id, row.type_id
        self.debtor_iban, self.debtor_bic, self.owner_eloi, self.patterns = row.debtor_iban, row.debtor_bic, row.owner_eloi, patterns
        first, last = row.debtor_first_name, row.debtor_last_name
        self.debtor_name = f"{first} {last}" if first else (last or "")
        self.hub_code = ""
        self.eligible_amount: Decimal | None = None
        self.reasons: list[str] = []
        self.next_due_date: date | None = None
        self.next_collection_date: date | None = None
        self.due = False  # the next due date lies within the hub's lead time: execute today
        self.note = ""

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


class _Dates(NamedTuple):
    """What a mandate's dates (as read) tell, the same for every mandate with the same dates."""

    first: date | None
    end: date | None
    last_collected: date | None
    reasons: list[str]
    lapsed: str | None


class _Lookups:
    """Small metadata tables, read once per check, and the answers of the pure rules for values seen before.

    Mandates share accounts, dates and schedules: each distinct combination is worked out once per check.
    """

    def __init__(self, session: Session, run_date: date) -> None:
        self.run_date = run_date
        self.hubs = hub_facts(session)
        self.types = {
            type_.id: (type_.code, type_.default_sequence_type == "OOFF")
            for type_ in session.scalars(select(PaymentReferenceType))
        }
        self.frequencies = {f.id: (f.code, Schedule(f.unit, f.every)) for f in session.scalars(select(Frequency))}
        self._accounts: dict[tuple[str | None, str | None], list[str]] = {}
        self._days: dict[Any, date | None] = {None: None}
        self._dates: dict[tuple[Any, ...], _Dates] = {}
        self._next: dict[tuple[Any, ...], tuple[date | None, date | None, bool, str]] = {}

    def account_reasons(self, iban: str | None, bic: str | None) -> list[str]:
        key = (iban, bic)
        reasons = self._accounts.get(key)
        if reasons is None:
            problems = (debtor_iban_problem(iban), bic_problem(bic))
            reasons = self._accounts[key] = ["debtor " + problem for problem in problems if problem is not None]
        return reasons

    def day(self, value: date | str | None) -> date | None:
        """Dates arrive as ``date`` (PostgreSQL) or ISO text (SQLite, read raw: much faster than SQLAlchemy's parser)."""
        try:
            return self._days[value]
        except KeyError:
            day = self._days[value] = value if isinstance(value, date) else date.fromisoformat(value)  # type: ignore[arg-type]
            return day

    def dates(self, row: Any) -> _Dates:
        key = (row.signature_date, row.first_collection_date, row.end_date, row.last_collection_date, row.last_due,
               row.last_presented)
        dates = self._dates.get(key)
        if dates is None:
            day = self.day
            first, end, converted_last = day(row.first_collection_date), day(row.end_date), day(row.last_collection_date)
            presented = [value for value in (day(row.last_presented), converted_last) if value is not None]
            dates = self._dates[key] = _Dates(
                first, end, day(row.last_due) or converted_last, _date_reasons(day(row.signature_date), first, end),
                _lapsed(max(presented, default=None), self.run_date),
            )
        return dates

    def next_dates(self, m: MandateStatus, frequency_id: int | None, hub: HubFacts) -> tuple[date | None, date | None, bool, str]:
        key = (m.first_collection_date, frequency_id, m.one_off, m.last_collected, m.end_date, hub.lead_days)
        dates = self._next.get(key)
        if dates is None:
            dates = self._next[key] = _next_dates(
                m.first_collection_date, m.schedule, m.one_off, m.last_collected, m.end_date,  # type: ignore[arg-type]
                hub.lead_days, self.run_date,
            )
        return dates


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


def _date_reasons(signature: date | None, first: date | None, end: date | None) -> list[str]:
    reasons = []
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


def _raw(column):  # type: ignore[no-untyped-def]
    return type_coerce(column, String)


def _mandate_rows(session: Session, ids: Sequence[int] | None) -> Iterator[Any]:
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
            Mandate.hub_id, Mandate.type_id, _raw(Mandate.signature_date).label("signature_date"),
            _raw(Mandate.first_collection_date).label("first_collection_date"),
            _raw(Mandate.last_collection_date).label("last_collection_date"), _raw(Mandate.end_date).label("end_date"),
            Mandate.frequency_id, Mandate.debtor_iban,
            Mandate.debtor_bic, collected.c.last_due, collected.c.last_presented, owner.eloi.label("owner_eloi"),
            debtor.first_name.label("debtor_first_name"), debtor.last_name.label("debtor_last_name"),
            Mandate.blocked_reason,
        )
        .join(owner, owner.id == Mandate.end_user_id)
        .outerjoin(debtor, debtor.id == Mandate.debtor_id)
        .outerjoin(collected, collected.c.mandate_id == Mandate.id)
        .order_by(Mandate.id)
    )
    if ids is not None:
        statement = statement.where(in_ids(session, Mandate.id, ids))
    return stream_records(session, statement, STREAM_BATCH)


def _per_mandate(rows: Iterator[Any]) -> Iterator[tuple[int, list[Any]]]:
    """(mandate id, its rows), from rows in mandate id order."""
    current, group = None, []
    for row in rows:
        if row.mandate_id != current:
            if group:
                yield current, group  # type: ignore[misc]
            current, group = row.mandate_id, []
        group.append(row)
    if group:
        yield current, group  # type: ignore[misc]


def by_mandate(groups: Iterator[tuple[int, Any]], default: Any) -> Callable[[int], Any]:
    """For ascending mandate ids, asked one after the other: what ``groups`` holds for that id, or ``default``."""
    next_id, held = next(groups, (None, default))

    def of(mandate_id: int) -> Any:
        nonlocal next_id, held
        while next_id is not None and next_id < mandate_id:
            next_id, held = next(groups, (None, default))
        return held if next_id == mandate_id else default

    return of


def _pattern_rows(session: Session, ids: Sequence[int] | None) -> Iterator[tuple[int, tuple[str, ...]]]:
    """(mandate id, its patterns), in mandate id order."""
    statement = select(MandateTransactionCode.mandate_id, MandateTransactionCode.pattern).order_by(
        MandateTransactionCode.mandate_id, MandateTransactionCode.pattern
    )
    if ids is not None:
        statement = statement.where(in_ids(session, MandateTransactionCode.mandate_id, ids))
    shared: dict[tuple[str, ...], tuple[str, ...]] = {}  # one tuple per set of patterns: hashed and matched once
    for mandate_id, rows in _per_mandate(stream_records(session, statement, STREAM_BATCH)):
        patterns = tuple(row.pattern for row in rows)
        yield mandate_id, shared.setdefault(patterns, patterns)


def open_debt_by_mandate(session: Session, ids: Sequence[int] | None) -> Iterator[tuple[int, list[Any]]]:
    """(mandate id, the open debt lines it could collect), in mandate id order; each line oldest first with its
    ``id``, ``transaction_code`` and open amount in whole ``cents`` (exact on both databases).

    A mandate could collect its owner's lines in its hub's financial system that are in no open reference; which
    of them match its patterns is for the caller to tell.
    """
    statement = (
        select(Mandate.id.label("mandate_id"), DebtLine.id, DebtLine.transaction_code,
               in_cents(DebtLine.open_amount).label("cents"))
        .join(BankHub, BankHub.id == Mandate.hub_id)
        .join(DebtLine, (DebtLine.end_user_id == Mandate.end_user_id)
              & (DebtLine.financial_system_id == BankHub.financial_system_id))
        .where(DebtLine.payment_reference_id.is_(None), DebtLine.open_amount > 0)
        .order_by(Mandate.id, DebtLine.id)
    )
    if ids is not None:
        statement = statement.where(in_ids(session, Mandate.id, ids))
    return _per_mandate(stream_records(session, statement, STREAM_BATCH))


def check_mandates(
    session: Session, run_date: date, *, with_amounts: bool = False, mandate_ids: Iterable[int] | None = None
) -> Iterator[MandateStatus]:
    """Every mandate (or those in ``mandate_ids``), in id order, with its list, reasons and next dates.

    ``with_amounts`` also computes each active-ok mandate's eligible open debt
    (what it would collect now), as the seed's check does for its lists.
    """
    lookups = _Lookups(session, run_date)
    ids = None if mandate_ids is None else sorted(set(mandate_ids))
    patterns = by_mandate(_pattern_rows(session, ids), ())
    debt = by_mandate(open_debt_by_mandate(session, ids), ()) if with_amounts else None
    amounts: dict[int, Decimal] = {}  # of cents: many mandates owe the same
    for row in _mandate_rows(session, ids):
        status = _check_one(row, patterns(row.id), lookups)
        if debt is not None and status.list is MandateList.ACTIVE_OK:
            matches = cached_matcher(status.patterns)
            cents = sum(line.cents for line in debt(row.id) if matches(line.transaction_code))
            if cents not in amounts:
                amounts[cents] = from_cents(cents)
            status.eligible_amount = amounts[cents]
        yield status


def _check_one(row: Any, patterns: tuple[str, ...], lookups: _Lookups) -> MandateStatus:
    m = MandateStatus(row, patterns)
    m.type_code, m.one_off = lookups.types.get(row.type_id, ("", False))
    m.frequency_code, schedule = lookups.frequencies.get(row.frequency_id, ("", None))
    m.schedule = None if m.one_off else schedule
    dates = lookups.dates(row)
    m.first_collection_date, m.end_date, m.last_collected = dates.first, dates.end, dates.last_collected
    m.has_prior = dates.last_collected is not None
    reasons = m.reasons
    if (problem := mandate_reference_problem(row.reference)) is not None:
        reasons.append(problem)
    reasons += lookups.account_reasons(row.debtor_iban, row.debtor_bic)
    reasons += dates.reasons
    hub = lookups.hubs.get(row.hub_id) if row.hub_id is not None else None
    if hub is None:
        reasons.append("no bank hub")
    else:
        m.hub_code = hub.code
        if hub.problems:
            reasons.append(f"bank hub {hub.code} incomplete: " + "; ".join(hub.problems))
    if row.debtor_id is None:
        reasons.append("no debtor")
    elif not m.debtor_name.strip():
        reasons.append("debtor has no name (the bank file needs one)")
    if row.type_id is None:
        reasons.append("no payment reference type")
    elif not m.one_off and row.frequency_id is None:
        reasons.append("no frequency (the type is not one-off)")
    if not patterns:
        reasons.append("no transaction-code pattern")
    if row.blocked_reason:
        reasons.append(f"blocked: {row.blocked_reason}; a new mandate is needed")
    if dates.lapsed is not None:
        reasons.append(dates.lapsed)
    m.classify()
    if m.list is MandateList.ACTIVE_OK and hub is not None and dates.first is not None:
        m.next_due_date, m.next_collection_date, m.due, m.note = lookups.next_dates(m, row.frequency_id, hub)
    return m


def _next_dates(
    first: date, schedule: Schedule | None, one_off: bool, last_collected: date | None, end: date | None,
    lead_days: int, run_date: date,
) -> tuple[date | None, date | None, bool, str]:
    """(next due date, its collection date, due now, note) of an active-ok mandate collected through a hub."""
    earliest = run_date + timedelta(days=lead_days)
    due = next_due_date(first=first, frequency=schedule, last_collected=last_collected, horizon=earliest, end=end)
    if due is None:
        return None, None, False, "collected once (one-off)" if one_off else f"ended on {end}"
    collection_date = roll_forward(max(due, earliest))
    if end is not None and collection_date > end:
        return None, None, False, f"ended: the next collection date {collection_date} falls after the end date {end}"
    return due, collection_date, due <= earliest, ""
