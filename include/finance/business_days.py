"""TARGET2 business days: the days on which euro payments settle.

TARGET2 is closed on Saturdays, Sundays, New Year's Day, Good Friday, Easter
Monday, 1 May, 25 and 26 December. ``holidays`` publishes that calendar as the
financial market ``XECB``.

>>> from datetime import date
>>> roll_forward(date(2026, 12, 25))   # Christmas (Friday) -> Monday 28th
datetime.date(2026, 12, 28)
>>> is_business_day(date(2026, 4, 3))  # Good Friday
False
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import holidays


@lru_cache(maxsize=None)
def _closing_days(year: int) -> frozenset[date]:
    return frozenset(holidays.financial_holidays("XECB", years=year).keys())


def is_business_day(day: date) -> bool:
    """True when TARGET2 settles on ``day``."""
    return day.weekday() < 5 and day not in _closing_days(day.year)


def roll_forward(day: date) -> date:
    """The first TARGET2 business day on or after ``day``."""
    while not is_business_day(day):
        day += timedelta(days=1)
    return day
