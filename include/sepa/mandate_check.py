"""Mandate check (seed 2.3.3.1): every mandate on one of four lists, each error with its reason.

* ``active-ok``: active and complete, with its next due date and the date the
  bank would collect if the mandate were executed today; these are executed;
* ``active-err``: active with errors, each with its reason; never collected;
* ``nonactive-ok`` and ``nonactive-err``: the same for inactive mandates.

The check reads the database only; :mod:`include.sepa.mandate_reports` writes
the lists, :mod:`include.sepa.mandate_execution` acts on ``active-ok``.
Mandates are streamed in id order, so a million of them never sit in memory:
one statement per check, which also sums each mandate's collectable debt
(the patterns' SQL twin, :func:`_collectable`). The pure rules answer once
per distinct account and per distinct shape (hub, type, frequency, dates).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import partial
from itertools import repeat
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, String, and_, case, cast, false, func, select, type_coerce
from sqlalchemy.orm import Session, aliased

from include.finance.bulk import Memo, in_ids, stream_records
from include.finance.business_days import roll_forward
from include.finance.models import (
    BankHub,
    Collection,
    CollectionRun,
    DebtLine,
    EndUser,
    Frequency,
    Mandate,
    MandateTransactionCode,
    PaymentReferenceType,
    in_cents,
)
from include.finance.money import from_cents
from include.finance.statuses import CollectionStatus
from include.sepa.hubs import hub_problems
from include.sepa.identifiers import bic_problem, debtor_iban_problem, mandate_reference_problem
from include.sepa.schedule import Frequency as Schedule
from include.sepa.schedule import next_due_date, slot
from include.sepa.transaction_codes import meaning, sql_matches, sql_meanings

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


class MandateStatus(NamedTuple):
    """One mandate as the check sees it: its facts, its list and why (a plain record: a million of them are made)."""

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
    has_patterns: bool  # at least one transaction-code pattern that is not blank (which debt matches, SQL tells: _collectable)
    owner_eloi: str
    debtor_name: str
    debtor_iban: str | None
    debtor_bic: str | None
    hub_code: str
    type_code: str
    frequency_code: str
    eligible_amount: Decimal | None  # with_amounts: what an active-ok mandate would collect now
    reasons: list[str]
    next_due_date: date | None
    next_collection_date: date | None
    due: bool  # the next due date lies within the hub's lead time: execute today
    note: str
    list: MandateList


_status = partial(tuple.__new__, MandateStatus)  # a MandateStatus from a tuple of its fields, without a Python call


def hub_facts(session: Session) -> dict[int, HubFacts]:
    """Every hub as plain values, with what it lacks for collecting."""
    return {
        hub.id: HubFacts(hub.id, hub.code, hub.financial_system_id, hub.lead_days, hub.rcur_only, hub_problems(hub))
        for hub in session.scalars(select(BankHub))
    }


class _Shape:
    """What a mandate's hub, payment reference type, frequency and dates (as read) tell, the same for every
    mandate with the same ones: its reasons among them, and the next dates if it is active-ok."""

    __slots__ = ("hub", "hub_code", "type_code", "one_off", "frequency_code", "schedule", "first", "end",
                 "last_collected", "early_reasons", "type_reasons", "lapsed", "next_dates")

    def __init__(self, hub: HubFacts | None, type_: tuple[str, bool] | None, frequency: tuple[str, Schedule] | None,
                 type_id: int | None, frequency_id: int | None, dates: tuple[date | None, ...], run_date: date) -> None:
        signature, first, end, last_collection, last_due, last_presented = dates
        self.hub = hub
        self.hub_code = hub.code if hub is not None else ""
        self.type_code, self.one_off = type_ or ("", False)
        self.frequency_code, schedule = frequency or ("", None)
        self.schedule = None if self.one_off else schedule
        self.first, self.end = first, end
        # the latest collection that counts (not returned), or a converted mandate's last collection date
        self.last_collected = last_due or last_collection
        # the dates' reasons, then the hub's: they come before the debtor's
        self.early_reasons = _date_reasons(signature, first, end, run_date)
        if hub is None:
            self.early_reasons.append("no bank hub")
        elif hub.problems:
            self.early_reasons.append(f"bank hub {hub.code} incomplete: " + "; ".join(hub.problems))
        if type_id is None:
            self.type_reasons = ["no payment reference type"]
        elif not self.one_off and frequency_id is None:
            self.type_reasons = ["no frequency (the type is not one-off)"]
        else:
            self.type_reasons = []
        presented = [value for value in (last_presented, last_collection) if value is not None]
        self.lapsed = _lapsed(max(presented, default=None), run_date)
        self.next_dates: tuple[date | None, date | None, bool, str] | None = None  # see next_of

    def next_of(self, run_date: date) -> tuple[date | None, date | None, bool, str]:
        """(next due date, its collection date, due now, note) of an active-ok mandate of this shape."""
        if self.next_dates is None:
            if self.hub is None or self.first is None:
                self.next_dates = _NOT_DUE
            else:
                self.next_dates = _next_dates(self.first, self.schedule, self.one_off, self.last_collected, self.end,
                                              self.hub.lead_days, run_date)
        return self.next_dates


_NOT_DUE: tuple[date | None, date | None, bool, str] = (None, None, False, "")
NOTHING_OWED = "no open debt to collect: nothing is collected this time"


class _Lookups:
    """Small metadata tables, read once per check, and the answers of the pure rules for values seen before.

    Mandates share accounts, dates, hubs, types and schedules: each distinct combination is worked out once per
    check, and found in a :class:`~include.finance.bulk.Memo` after that.
    """

    def __init__(self, session: Session, run_date: date, with_amounts: bool) -> None:
        self.run_date = run_date
        self.with_amounts = with_amounts
        self.hubs = hub_facts(session)
        self.types = {
            type_.id: (type_.code, type_.default_sequence_type == "OOFF")
            for type_ in session.scalars(select(PaymentReferenceType))
        }
        self.frequencies = {f.id: (f.code, Schedule(f.unit, f.every)) for f in session.scalars(select(Frequency))}
        self.accounts = Memo(self._account_reasons)
        self.days = Memo(_day)
        self.days[None] = None
        self.shapes = Memo(self._shape)
        self.amounts = Memo(from_cents)  # many mandates owe the same

    @staticmethod
    def _account_reasons(key: tuple[str | None, str | None]) -> list[str]:
        problems = (debtor_iban_problem(key[0]), bic_problem(key[1]))
        return ["debtor " + problem for problem in problems if problem is not None]

    def _shape(self, key: tuple[Any, ...]) -> _Shape:
        """(hub, type, frequency, then the dates as read: signature, first collection, end, last collection,
        last due, last presented)."""
        hub_id, type_id, frequency_id = key[:3]
        return _Shape(self.hubs.get(hub_id) if hub_id is not None else None, self.types.get(type_id),  # type: ignore[arg-type]
                      self.frequencies.get(frequency_id), type_id, frequency_id,  # type: ignore[arg-type]
                      tuple(self.days[value] for value in key[3:]), self.run_date)


def _day(value: date | str) -> date:
    """Dates arrive as ``date`` (PostgreSQL) or ISO text (SQLite, read raw: much faster than SQLAlchemy's parser)."""
    return value if isinstance(value, date) else date.fromisoformat(value)


MANDATE_LIFE_MONTHS = 36
_LIFE_DAYS_AT_LEAST = 1095  # 36 months are never fewer days than three common years


def _lapsed(last_presented: date | None, run_date: date) -> str | None:
    """Why the mandate has lapsed (SDD rulebook: no collection presented for 36 months), or None.

    The months run from the latest collection presented, returned ones
    included (its collection date, or a converted mandate's last collection date).

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


def _date_reasons(signature: date | None, first: date | None, end: date | None, run_date: date) -> list[str]:
    reasons = []
    if signature is None:
        reasons.append("signature date missing")
    elif signature > run_date:  # nothing may be presented to the banks under a mandate not signed yet
        reasons.append(f"signed on {signature}, after the run date {run_date}: not collected before it is signed")
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


def _mandate_rows(session: Session, ids: Sequence[int] | None, with_amounts: bool) -> Iterator[Any]:
    """Each mandate (or those of ``ids``) in id order, with what the check needs: its owner and debtor, its latest
    collections, whether it has patterns, and with ``with_amounts`` the open debt it could collect in whole cents."""
    owner, debtor = aliased(EndUser), aliased(EndUser)
    patterns = set(session.scalars(select(MandateTransactionCode.pattern).distinct()))
    has_patterns = select(MandateTransactionCode.id).where(MandateTransactionCode.mandate_id == Mandate.id)
    if blank := sorted(pattern for pattern in patterns if meaning(pattern) == (None, None)):
        has_patterns = has_patterns.where(MandateTransactionCode.pattern.not_in(blank))  # a blank one matches nothing
    collected = (
        select(
            Collection.mandate_id,
            # the latest collection that counts for the sequence type: a returned one does not
            func.max(case((Collection.status != CollectionStatus.RETURNED, _raw(Collection.due_date)))).label("last_due"),
            # the latest one presented to the banks, returned or not: the 36 months of a mandate's life run from
            # the day it was collected (its run's collection date: a slot collected late is later than the slot)
            func.max(_raw(CollectionRun.collection_date)).label("last_presented"),
        )
        .join(CollectionRun, CollectionRun.id == Collection.run_id)
        .where(Collection.status != CollectionStatus.CANCELLED)
        .group_by(Collection.mandate_id)
        .subquery()
    )
    columns = [
        Mandate.id, Mandate.loi, Mandate.reference, Mandate.active, Mandate.end_user_id, Mandate.debtor_id,
        Mandate.hub_id, Mandate.financial_system_id, Mandate.type_id, _raw(Mandate.signature_date).label("signature_date"),
        _raw(Mandate.first_collection_date).label("first_collection_date"),
        _raw(Mandate.last_collection_date).label("last_collection_date"), _raw(Mandate.end_date).label("end_date"),
        Mandate.frequency_id, Mandate.debtor_iban,
        Mandate.debtor_bic, collected.c.last_due, collected.c.last_presented, owner.eloi.label("owner_eloi"),
        debtor.first_name.label("debtor_first_name"), debtor.last_name.label("debtor_last_name"),
        Mandate.blocked_reason,
        has_patterns.exists().label("has_patterns"),
    ]
    statement = (
        select(*columns)
        .join(owner, owner.id == Mandate.end_user_id)
        .outerjoin(debtor, debtor.id == Mandate.debtor_id)
        .outerjoin(collected, collected.c.mandate_id == Mandate.id)
        .order_by(Mandate.id)
    )
    if with_amounts:
        statement = statement.add_columns(_eligible_cents(session, patterns).label("eligible_cents")).outerjoin(
            BankHub, BankHub.id == Mandate.hub_id)
    if ids is not None:
        statement = statement.where(in_ids(session, Mandate.id, ids))
    return stream_records(session, statement, STREAM_BATCH)


def _collectable(session: Session, patterns: Iterable[str] | None = None) -> Any:
    """SQL: the debt line ``DebtLine`` is one the mandate ``Mandate`` (of hub ``BankHub``) could collect now: its
    owner's, in its hub's financial system, open, in no open reference, and matching one of its patterns as
    :func:`~include.sepa.transaction_codes.matcher` decides (:func:`sql_matches`; a rule without a pattern to
    compare with matches nothing). ``patterns``: every distinct pattern, when the caller has read them already."""
    open_line = and_(DebtLine.end_user_id == Mandate.end_user_id, DebtLine.financial_system_id == BankHub.financial_system_id,
                     DebtLine.payment_reference_id.is_(None), DebtLine.open_amount > 0)
    if patterns is None:
        patterns = session.scalars(select(MandateTransactionCode.pattern).distinct())
    meanings = sql_meanings(patterns)
    if meanings is None:
        return and_(open_line, false())
    pattern = aliased(MandateTransactionCode)
    matches = (
        select(pattern.id)
        .where(pattern.mandate_id == Mandate.id, sql_matches(meanings, pattern.pattern, DebtLine.transaction_code))
        .correlate(Mandate, DebtLine)
        .exists()
    )
    return and_(open_line, matches)


def _eligible_cents(session: Session, patterns: Iterable[str] | None = None) -> Any:
    """SQL: the debt the mandate could collect now (:func:`_collectable`), in whole cents (0 for none)."""
    return (
        select(func.coalesce(cast(func.sum(in_cents(DebtLine.open_amount)), BigInteger), 0))
        .where(_collectable(session, patterns))
        .scalar_subquery()
    )


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


def open_debt_by_mandate(session: Session, ids: Sequence[int] | None) -> Iterator[tuple[int, list[Any]]]:
    """(mandate id, the debt lines it could collect now (:func:`_collectable`)), in mandate id order; each line
    oldest first with its ``id``, ``transaction_code`` and open amount in whole ``cents`` (exact on both databases).
    A line two mandates could collect is listed for both: which one takes it is the caller's to tell."""
    statement = (
        select(Mandate.id.label("mandate_id"), DebtLine.id, DebtLine.transaction_code,
               in_cents(DebtLine.open_amount).label("cents"))
        .join(BankHub, BankHub.id == Mandate.hub_id)
        .join(DebtLine, _collectable(session))
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
    lookups = _Lookups(session, run_date, with_amounts)
    ids = None if mandate_ids is None else sorted(set(mandate_ids))
    return map(_check_one, _mandate_rows(session, ids, with_amounts), repeat(lookups))


def _check_one(row: Any, lookups: _Lookups) -> MandateStatus:
    shape = lookups.shapes[row.hub_id, row.type_id, row.frequency_id, row.signature_date, row.first_collection_date,
                           row.end_date, row.last_collection_date, row.last_due, row.last_presented]
    first, last = row.debtor_first_name, row.debtor_last_name
    debtor_name = f"{first} {last}" if first else (last or "")
    reasons = []
    if (problem := mandate_reference_problem(row.reference)) is not None:
        reasons.append(problem)
    if account := lookups.accounts[row.debtor_iban, row.debtor_bic]:
        reasons += account
    if shape.early_reasons:
        reasons += shape.early_reasons
    if shape.hub is not None and shape.hub.financial_system_id != row.financial_system_id:
        reasons.append(f"bank hub {shape.hub_code} collects the debt of another financial system than the mandate's")
    if row.debtor_id is None:
        reasons.append("no debtor")
    elif not debtor_name.strip():
        reasons.append("debtor has no name (the bank file needs one)")
    if shape.type_reasons:
        reasons += shape.type_reasons
    if not row.has_patterns:
        reasons.append("no transaction-code pattern")
    if row.blocked_reason:
        reasons.append(f"blocked: {row.blocked_reason}; a new mandate is needed")
    if shape.lapsed is not None:
        reasons.append(shape.lapsed)
    amount = None
    if not row.active:
        listed = MandateList.NONACTIVE_ERR if reasons else MandateList.NONACTIVE_OK
        next_dates = _NOT_DUE
    elif reasons:
        listed, next_dates = MandateList.ACTIVE_ERR, _NOT_DUE
    else:
        listed, next_dates = MandateList.ACTIVE_OK, shape.next_dates or shape.next_of(lookups.run_date)
        if lookups.with_amounts:
            amount = lookups.amounts[row.eligible_cents]
            if next_dates[2] and not row.eligible_cents:  # due, yet execution will find nothing to collect
                next_dates = (*next_dates[:3], NOTHING_OWED)
    return _status((
        row.id, row.loi, row.reference, bool(row.active), row.end_user_id, row.debtor_id, row.hub_id, row.type_id,
        shape.first, shape.end, shape.schedule, shape.one_off, shape.last_collected, shape.last_collected is not None,
        bool(row.has_patterns), row.owner_eloi, debtor_name, row.debtor_iban, row.debtor_bic, shape.hub_code, shape.type_code,
        shape.frequency_code, amount, reasons, *next_dates, listed,
    ))


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
