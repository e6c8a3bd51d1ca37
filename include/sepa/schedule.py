"""When a mandate collects: its schedule slots and its next due date.

A recurring mandate's slots are its first collection date plus whole periods
(every ``interval`` days, months or years). Month ends: the day of the month
comes from the first collection date and is cut to the month's length, so a
mandate first collected on 31 January is collected on 28 (29) February,
31 March, 30 April; a yearly mandate from 29 February falls on 28 February in
other years. Slots never drift: 31 March follows 28 February, not 28 March.

>>> from datetime import date
>>> slot(date(2026, 1, 31), "month", 1, 1)
datetime.date(2026, 2, 28)
>>> slot(date(2026, 1, 31), "month", 1, 2)
datetime.date(2026, 3, 31)
>>> first_slot_after(date(2026, 1, 31), "month", 1, date(2026, 2, 28))
datetime.date(2026, 3, 31)
>>> slot(date(2024, 2, 29), "year", 1, 1)
datetime.date(2025, 2, 28)
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta


_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _add_months(anchor: date, months: int) -> date:
    year, month = divmod(anchor.year * 12 + anchor.month - 1 + months, 12)
    day = anchor.day
    if day > 28:
        last_day = 29 if month == 1 and calendar.isleap(year) else _MONTH_DAYS[month]
        day = min(day, last_day)
    return date(year, month + 1, day)


def slot(anchor: date, unit: str, interval: int, k: int) -> date:
    """The k-th slot (k = 0 is the anchor itself)."""
    if unit == "day":
        return anchor + timedelta(days=interval * k)
    if unit == "month":
        return _add_months(anchor, interval * k)
    if unit == "year":
        return _add_months(anchor, 12 * interval * k)
    raise ValueError(f"unknown frequency unit {unit!r}")


def _estimate_index(anchor: date, unit: str, interval: int, day: date) -> int:
    if unit == "day":
        return (day - anchor).days // interval
    months = (day.year - anchor.year) * 12 + day.month - anchor.month
    return months // (interval * (12 if unit == "year" else 1))


def last_slot_on_or_before(anchor: date, unit: str, interval: int, day: date) -> date | None:
    """The latest slot that is not after ``day`` (None before the anchor)."""
    if day < anchor:
        return None
    k = max(_estimate_index(anchor, unit, interval, day) + 1, 0)
    while slot(anchor, unit, interval, k) > day:
        k -= 1
    return slot(anchor, unit, interval, k)


def first_slot_after(anchor: date, unit: str, interval: int, day: date) -> date:
    """The earliest slot strictly after ``day`` (the anchor when ``day`` is before it)."""
    if day < anchor:
        return anchor
    k = max(_estimate_index(anchor, unit, interval, day), 0)
    while slot(anchor, unit, interval, k) <= day:
        k += 1
    return slot(anchor, unit, interval, k)


@dataclass(frozen=True, slots=True)
class Frequency:
    unit: str
    interval: int = 1


def next_due_date(
    *,
    first: date,
    frequency: Frequency | None,
    last_collected: date | None,
    horizon: date,
    end: date | None = None,
) -> date | None:
    """The schedule slot the mandate collects next, or None when it has none left.

    ``frequency`` None means a one-off mandate: its only slot is ``first``.
    ``last_collected`` is the slot of the latest collection that was not
    returned, or for a converted mandate without one, its "last collection"
    date. ``horizon`` is how far ahead we collect (run date + the hub's lead
    days). Slots missed while nothing could be collected are not made up: when
    several slots lie in the past, the mandate is due for the latest of them,
    so it never collects more than once per period.
    """
    if frequency is None:
        due = first if last_collected is None else None
    else:
        due = first if last_collected is None else first_slot_after(first, frequency.unit, frequency.interval, last_collected)
        if due <= horizon:
            latest = last_slot_on_or_before(first, frequency.unit, frequency.interval, horizon)
            if latest is not None and latest > due:
                due = latest
    if due is not None and end is not None and due > end:
        return None
    return due


def is_final(first: date, due: date, frequency: Frequency | None, end: date | None) -> bool:
    """True when the slot after ``due`` lies beyond the mandate's end date."""
    if frequency is None or end is None:
        return False
    return first_slot_after(first, frequency.unit, frequency.interval, due) > end
