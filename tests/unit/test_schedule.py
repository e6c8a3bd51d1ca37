"""Mandate schedules: slots at whole periods from the first collection date, cut to month ends, never drifting.

The brute-force checks build the slot list with dateutil's relativedelta, added
to the anchor each time (not chained), which cuts to the month's last day the
same way the rulebook describes: 31 Jan + 1 month = 28/29 Feb, + 2 months = 31 Mar.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from dateutil.relativedelta import relativedelta

from include.sepa.schedule import Frequency, first_slot_after, is_final, last_slot_on_or_before, next_due_date, slot

MONTHLY = Frequency("month")
QUARTERLY = Frequency("month", 3)
YEARLY = Frequency("year")
DAILY = Frequency("day")
WEEKLY = Frequency("day", 7)


def reference_slot(anchor: date, unit: str, interval: int, k: int) -> date:
    if unit == "day":
        return anchor + timedelta(days=interval * k)
    if unit == "month":
        return anchor + relativedelta(months=interval * k)
    return anchor + relativedelta(years=interval * k)


def reference_slots(anchor: date, unit: str, interval: int, until: date) -> list[date]:
    out, k = [], 0
    while (s := reference_slot(anchor, unit, interval, k)) <= until:
        out.append(s)
        k += 1
    out.append(s)  # one past ``until``
    return out


# --- slot ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("anchor", "unit", "interval", "k", "expected"),
    [
        # k = 0 is the anchor itself
        (date(2026, 1, 31), "month", 1, 0, date(2026, 1, 31)),
        # month ends from 31 January: cut to each month's length, never drifting
        (date(2026, 1, 31), "month", 1, 1, date(2026, 2, 28)),
        (date(2026, 1, 31), "month", 1, 2, date(2026, 3, 31)),
        (date(2026, 1, 31), "month", 1, 3, date(2026, 4, 30)),
        (date(2026, 1, 31), "month", 1, 4, date(2026, 5, 31)),
        (date(2026, 1, 31), "month", 1, 11, date(2026, 12, 31)),
        (date(2026, 1, 31), "month", 1, 12, date(2027, 1, 31)),
        (date(2028, 1, 31), "month", 1, 1, date(2028, 2, 29)),  # leap year
        (date(2026, 1, 31), "month", 1, 25, date(2028, 2, 29)),  # 25 months later, leap February
        (date(2025, 12, 31), "month", 1, 2, date(2026, 2, 28)),  # across the year
        (date(2026, 1, 30), "month", 1, 1, date(2026, 2, 28)),
        (date(2026, 1, 30), "month", 1, 2, date(2026, 3, 30)),  # back to the 30th, not 28th
        (date(2026, 1, 15), "month", 1, 1, date(2026, 2, 15)),
        # every 3 months from 30 November
        (date(2025, 11, 30), "month", 3, 1, date(2026, 2, 28)),
        (date(2025, 11, 30), "month", 3, 2, date(2026, 5, 30)),
        (date(2025, 11, 30), "month", 3, 3, date(2026, 8, 30)),
        (date(2025, 11, 30), "month", 3, 4, date(2026, 11, 30)),
        # yearly from 29 February
        (date(2024, 2, 29), "year", 1, 1, date(2025, 2, 28)),
        (date(2024, 2, 29), "year", 1, 2, date(2026, 2, 28)),
        (date(2024, 2, 29), "year", 1, 4, date(2028, 2, 29)),
        (date(2024, 2, 29), "year", 2, 1, date(2026, 2, 28)),
        (date(2024, 2, 29), "year", 2, 2, date(2028, 2, 29)),
        (date(2026, 6, 15), "year", 1, 3, date(2029, 6, 15)),
        # daily and every N days
        (date(2026, 1, 30), "day", 1, 3, date(2026, 2, 2)),
        (date(2026, 2, 27), "day", 1, 2, date(2026, 3, 1)),  # 2026 is no leap year
        (date(2028, 2, 27), "day", 1, 2, date(2028, 2, 29)),
        (date(2026, 1, 5), "day", 7, 4, date(2026, 2, 2)),  # 28 days
        (date(2026, 1, 1), "day", 14, 26, date(2026, 12, 31)),  # 364 days
    ],
)
def test_slot(anchor: date, unit: str, interval: int, k: int, expected: date) -> None:
    assert slot(anchor, unit, interval, k) == expected
    assert reference_slot(anchor, unit, interval, k) == expected  # the table agrees with relativedelta


@pytest.mark.parametrize("unit", ["week", "months", "", "Month"])
def test_slot_unknown_unit(unit: str) -> None:
    with pytest.raises(ValueError):
        slot(date(2026, 1, 1), unit, 1, 1)


def test_month_end_slots_never_drift_over_ten_years() -> None:
    anchor = date(2026, 1, 31)
    for k in range(120):
        s = slot(anchor, "month", 1, k)
        next_month = (s.replace(day=1) + timedelta(days=32)).replace(day=1)
        assert s == next_month - timedelta(days=1), (k, s)  # always the last day of its month


# --- first_slot_after / last_slot_on_or_before ----------------------------------


@pytest.mark.parametrize(
    ("anchor", "unit", "interval", "day", "after", "on_or_before"),
    [
        # day before the anchor: the anchor is next, nothing lies behind
        (date(2026, 1, 31), "month", 1, date(2026, 1, 30), date(2026, 1, 31), None),
        (date(2026, 1, 31), "month", 1, date(2025, 6, 1), date(2026, 1, 31), None),
        # day equal to the anchor
        (date(2026, 1, 31), "month", 1, date(2026, 1, 31), date(2026, 2, 28), date(2026, 1, 31)),
        # day equal to a cut slot
        (date(2026, 1, 31), "month", 1, date(2026, 2, 28), date(2026, 3, 31), date(2026, 2, 28)),
        # between slots
        (date(2026, 1, 31), "month", 1, date(2026, 2, 27), date(2026, 2, 28), date(2026, 1, 31)),
        (date(2026, 1, 31), "month", 1, date(2026, 3, 1), date(2026, 3, 31), date(2026, 2, 28)),
        (date(2026, 1, 31), "month", 1, date(2026, 3, 30), date(2026, 3, 31), date(2026, 2, 28)),
        (date(2026, 1, 31), "month", 1, date(2026, 3, 31), date(2026, 4, 30), date(2026, 3, 31)),
        (date(2026, 1, 31), "month", 1, date(2028, 2, 28), date(2028, 2, 29), date(2028, 1, 31)),
        # every two months from the 15th
        (date(2026, 1, 15), "month", 2, date(2026, 2, 20), date(2026, 3, 15), date(2026, 1, 15)),
        (date(2026, 1, 15), "month", 2, date(2026, 3, 14), date(2026, 3, 15), date(2026, 1, 15)),
        (date(2026, 1, 15), "month", 2, date(2026, 3, 15), date(2026, 5, 15), date(2026, 3, 15)),
        # yearly from 29 February 2024
        (date(2024, 2, 29), "year", 1, date(2025, 2, 28), date(2026, 2, 28), date(2025, 2, 28)),
        (date(2024, 2, 29), "year", 1, date(2025, 3, 1), date(2026, 2, 28), date(2025, 2, 28)),
        (date(2024, 2, 29), "year", 1, date(2028, 2, 28), date(2028, 2, 29), date(2027, 2, 28)),
        (date(2024, 2, 29), "year", 1, date(2028, 2, 29), date(2029, 2, 28), date(2028, 2, 29)),
        # daily and weekly
        (date(2026, 1, 1), "day", 1, date(2026, 1, 10), date(2026, 1, 11), date(2026, 1, 10)),
        (date(2026, 1, 5), "day", 7, date(2026, 1, 12), date(2026, 1, 19), date(2026, 1, 12)),
        (date(2026, 1, 5), "day", 7, date(2026, 1, 18), date(2026, 1, 19), date(2026, 1, 12)),
        (date(2026, 1, 5), "day", 7, date(2026, 1, 4), date(2026, 1, 5), None),
    ],
)
def test_slot_neighbours(
    anchor: date, unit: str, interval: int, day: date, after: date, on_or_before: date | None
) -> None:
    assert first_slot_after(anchor, unit, interval, day) == after
    assert last_slot_on_or_before(anchor, unit, interval, day) == on_or_before


@pytest.mark.parametrize(
    ("anchor", "unit", "interval"),
    [
        (date(2026, 1, 31), "month", 1),
        (date(2025, 11, 30), "month", 3),
        (date(2026, 1, 29), "month", 1),
        (date(2026, 8, 31), "month", 6),
        (date(2024, 2, 29), "year", 1),
        (date(2024, 2, 29), "year", 2),
        (date(2026, 3, 3), "day", 1),
        (date(2026, 3, 3), "day", 10),
    ],
)
def test_slot_neighbours_match_brute_force(anchor: date, unit: str, interval: int) -> None:
    start, stop = anchor - timedelta(days=40), anchor + timedelta(days=3 * 366)
    slots = reference_slots(anchor, unit, interval, stop)
    day = start
    while day <= stop:
        behind = [s for s in slots if s <= day]
        ahead = [s for s in slots if s > day]
        assert last_slot_on_or_before(anchor, unit, interval, day) == (behind[-1] if behind else None), day
        assert first_slot_after(anchor, unit, interval, day) == ahead[0], day
        day += timedelta(days=1)


def _d(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text)


def due(
    name: str,
    first: str,
    frequency: Frequency | None,
    last: str | None,
    horizon: str,
    end: str | None,
    expected: str | None,
) -> object:
    return pytest.param(_d(first), frequency, _d(last), _d(horizon), _d(end), _d(expected), id=name)


def final(name: str, first: str, due_: str, frequency: Frequency | None, end: str | None, expected: bool) -> object:
    return pytest.param(_d(first), _d(due_), frequency, _d(end), expected, id=name)


# --- next_due_date --------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "frequency", "last_collected", "horizon", "end", "expected"),
    [
        # one-off: its only slot is ``first``, once
        due("ooff-first-time-future", "2026-03-10", None, None, "2026-03-01", None, "2026-03-10"),
        due("ooff-first-time-past", "2026-03-10", None, None, "2026-06-01", None, "2026-03-10"),
        due("ooff-collected", "2026-03-10", None, "2026-03-10", "2026-06-01", None, None),
        due("ooff-after-end", "2026-03-10", None, None, "2026-03-01", "2026-03-09", None),
        due("ooff-on-end", "2026-03-10", None, None, "2026-03-01", "2026-03-10", "2026-03-10"),
        # recurring, never collected: the first date, or the latest slot once it lies behind the horizon
        due("rcur-new-future", "2026-03-10", MONTHLY, None, "2026-03-01", None, "2026-03-10"),
        due("rcur-new-at-horizon", "2026-03-10", MONTHLY, None, "2026-03-10", None, "2026-03-10"),
        due("rcur-new-one-slot-behind", "2026-03-10", MONTHLY, None, "2026-04-09", None, "2026-03-10"),
        due("rcur-new-missed-collapse", "2026-01-31", MONTHLY, None, "2026-05-15", None, "2026-04-30"),
        due("rcur-new-collapse-onto-horizon", "2026-01-31", MONTHLY, None, "2026-05-31", None, "2026-05-31"),
        # recurring, collected before: the slot after the last collection
        due("rcur-next", "2026-01-31", MONTHLY, "2026-01-31", "2026-02-10", None, "2026-02-28"),
        due("rcur-next-month-end", "2026-01-31", MONTHLY, "2026-02-28", "2026-03-05", None, "2026-03-31"),
        due("rcur-next-at-horizon", "2026-01-31", MONTHLY, "2026-02-28", "2026-03-31", None, "2026-03-31"),
        # several slots missed: only the latest slot not after the horizon
        due("rcur-collapse", "2026-01-31", MONTHLY, "2026-02-28", "2026-06-05", None, "2026-05-31"),
        due("rcur-collapse-year", "2026-01-31", MONTHLY, "2026-01-31", "2027-03-01", None, "2027-02-28"),
        due("weekly-collapse", "2026-01-05", WEEKLY, "2026-01-05", "2026-02-04", None, "2026-02-02"),
        due("daily-collapse", "2026-01-01", DAILY, "2026-01-01", "2026-01-09", None, "2026-01-09"),
        due("yearly-next", "2024-02-29", YEARLY, "2024-02-29", "2025-01-01", None, "2025-02-28"),
        due("yearly-collapse-leap", "2024-02-29", YEARLY, "2025-02-28", "2028-03-01", None, "2028-02-29"),
        # converted mandate: "last collection" carried over
        due("converted-before-first", "2026-04-15", MONTHLY, "2026-02-01", "2026-03-01", None, "2026-04-15"),
        due("converted-off-slot", "2026-01-31", MONTHLY, "2026-03-15", "2026-03-20", None, "2026-03-31"),
        due("converted-quarterly", "2026-01-15", QUARTERLY, "2026-02-01", "2026-02-02", None, "2026-04-15"),
        # end date
        due("end-before-next", "2026-01-31", MONTHLY, "2026-03-31", "2026-04-10", "2026-04-29", None),
        due("end-on-next", "2026-01-31", MONTHLY, "2026-03-31", "2026-04-10", "2026-04-30", "2026-04-30"),
        due("end-far", "2026-01-31", MONTHLY, "2026-03-31", "2026-04-10", "2026-12-31", "2026-04-30"),
        due("end-before-first", "2026-01-31", MONTHLY, None, "2026-01-01", "2026-01-30", None),
    ],
)
def test_next_due_date(
    first: date,
    frequency: Frequency | None,
    last_collected: date | None,
    horizon: date,
    end: date | None,
    expected: date | None,
) -> None:
    result = next_due_date(first=first, frequency=frequency, last_collected=last_collected, horizon=horizon, end=end)
    assert result == expected


@pytest.mark.parametrize(
    ("frequency", "first"),
    [
        (MONTHLY, date(2026, 1, 31)),
        (QUARTERLY, date(2025, 11, 30)),
        (YEARLY, date(2024, 2, 29)),
        (WEEKLY, date(2026, 1, 5)),
    ],
)
def test_next_due_date_collects_at_most_once_per_period(frequency: Frequency, first: date) -> None:
    """Whatever was collected last, the due date is a slot after it and the latest such slot not after the horizon."""
    slots = reference_slots(first, frequency.unit, frequency.interval, first + timedelta(days=5 * 366))
    for last in [s for s in slots if s <= first + timedelta(days=3 * 366)][::3]:
        for horizon in (last + timedelta(days=d) for d in range(0, 400, 11)):
            result = next_due_date(first=first, frequency=frequency, last_collected=last, horizon=horizon)
            assert result in slots and result > last
            candidates = [s for s in slots if last < s <= horizon]
            assert result == (candidates[-1] if candidates else next(s for s in slots if s > last)), (last, horizon)


# --- is_final -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "due", "frequency", "end", "expected"),
    [
        final("no-end", "2026-01-31", "2026-04-30", MONTHLY, None, False),
        final("one-off-is-never-fnal", "2026-03-10", "2026-03-10", None, "2026-03-10", False),
        final("end-on-due", "2026-01-31", "2026-04-30", MONTHLY, "2026-04-30", True),
        final("end-a-day-before-next", "2026-01-31", "2026-04-30", MONTHLY, "2026-05-30", True),
        final("end-on-next", "2026-01-31", "2026-04-30", MONTHLY, "2026-05-31", False),
        final("one-more-to-go", "2026-01-31", "2026-03-31", MONTHLY, "2026-04-30", False),
        final("first-is-also-last", "2026-01-31", "2026-01-31", MONTHLY, "2026-02-27", True),
        final("feb-28-still-to-come", "2026-01-31", "2026-01-31", MONTHLY, "2026-02-28", False),
        final("yearly-leap-slot-after-end", "2024-02-29", "2027-02-28", YEARLY, "2028-02-28", True),
        final("yearly-leap-slot-on-end", "2024-02-29", "2027-02-28", YEARLY, "2028-02-29", False),
        final("weekly-final", "2026-01-05", "2026-01-12", WEEKLY, "2026-01-18", True),
        final("weekly-not-final", "2026-01-05", "2026-01-12", WEEKLY, "2026-01-19", False),
        final("daily-final", "2026-01-01", "2026-01-09", DAILY, "2026-01-09", True),
    ],
)
def test_is_final(first: date, due: date, frequency: Frequency | None, end: date | None, expected: bool) -> None:
    assert is_final(first, due, frequency, end) is expected


def test_frequency_defaults_to_interval_one() -> None:
    assert Frequency("month").interval == 1
    assert Frequency("month") == Frequency("month", 1)
