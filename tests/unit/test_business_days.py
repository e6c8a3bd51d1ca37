"""TARGET2 business days: closed on weekends, 1 Jan, Good Friday, Easter Monday, 1 May, 25 and 26 Dec."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from include.finance.business_days import is_business_day, roll_forward

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


def easter_sunday(year: int) -> date:
    """Gregorian Easter, anonymous (Meeus/Jones/Butcher) algorithm."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return date(year, month, day + 1)


def target2_closing_days(year: int) -> set[date]:
    easter = easter_sunday(year)
    return {
        date(year, 1, 1),
        easter - timedelta(days=2),  # Good Friday
        easter + timedelta(days=1),  # Easter Monday
        date(year, 5, 1),
        date(year, 12, 25),
        date(year, 12, 26),
    }


@pytest.mark.parametrize(
    ("year", "easter"),
    [
        (2024, date(2024, 3, 31)),
        (2025, date(2025, 4, 20)),
        (2026, date(2026, 4, 5)),
        (2027, date(2027, 3, 28)),
        (2028, date(2028, 4, 16)),
    ],
)
def test_easter_helper_matches_published_dates(year: int, easter: date) -> None:
    assert easter_sunday(year) == easter


# Each TARGET2 closing day of 2025-2027 with its weekday (checked by the test too).
CLOSING_DAYS = [
    (date(2025, 1, 1), WED),
    (date(2025, 4, 18), FRI),  # Good Friday (Easter 20 April)
    (date(2025, 4, 21), MON),  # Easter Monday
    (date(2025, 5, 1), THU),
    (date(2025, 12, 25), THU),
    (date(2025, 12, 26), FRI),
    (date(2026, 1, 1), THU),
    (date(2026, 4, 3), FRI),  # Good Friday (Easter 5 April)
    (date(2026, 4, 6), MON),
    (date(2026, 5, 1), FRI),
    (date(2026, 12, 25), FRI),
    (date(2026, 12, 26), SAT),
    (date(2027, 1, 1), FRI),
    (date(2027, 3, 26), FRI),  # Good Friday (Easter 28 March)
    (date(2027, 3, 29), MON),
    (date(2027, 5, 1), SAT),
    (date(2027, 12, 25), SAT),
    (date(2027, 12, 26), SUN),
]


@pytest.mark.parametrize(("day", "weekday"), CLOSING_DAYS)
def test_closing_days_are_not_business_days(day: date, weekday: int) -> None:
    assert day.weekday() == weekday
    assert day in target2_closing_days(day.year)
    assert not is_business_day(day)


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 3, 7),  # Saturday
        date(2026, 3, 8),  # Sunday
        date(2025, 6, 14),  # Saturday
        date(2027, 8, 1),  # Sunday
    ],
)
def test_weekends_are_not_business_days(day: date) -> None:
    assert day.weekday() in (SAT, SUN)
    assert not is_business_day(day)


@pytest.mark.parametrize(
    ("day", "why"),
    [
        (date(2026, 3, 9), "ordinary Monday"),
        (date(2026, 12, 24), "Christmas Eve is open"),
        (date(2026, 12, 31), "New Year's Eve (Thursday) is open"),
        (date(2026, 12, 28), "Monday after Christmas weekend"),
        (date(2026, 4, 2), "Maundy Thursday"),
        (date(2026, 4, 7), "Tuesday after Easter Monday"),
        (date(2026, 5, 14), "Ascension (Easter + 39): Belgian holiday, TARGET2 open"),
        (date(2026, 5, 25), "Whit Monday (Easter + 50): Belgian holiday, TARGET2 open"),
        (date(2026, 7, 21), "Belgian National Day, TARGET2 open"),
        (date(2025, 8, 15), "Assumption, TARGET2 open"),
        (date(2027, 11, 1), "All Saints, TARGET2 open"),
        (date(2025, 11, 11), "Armistice, TARGET2 open"),
        (date(2027, 12, 24), "Friday before the Christmas weekend"),
        (date(2027, 12, 27), "Monday after Christmas on a weekend"),
        (date(2025, 1, 2), "day after New Year"),
    ],
)
def test_business_days(day: date, why: str) -> None:
    assert day.weekday() < SAT, why
    assert day not in target2_closing_days(day.year), why
    assert is_business_day(day), why


@pytest.mark.parametrize("year", [2025, 2026, 2027])
def test_every_day_of_the_year_agrees_with_the_definition(year: int) -> None:
    closing = target2_closing_days(year)
    day = date(year, 1, 1)
    while day.year == year:
        expected = day.weekday() < SAT and day not in closing
        assert is_business_day(day) is expected, day
        day += timedelta(days=1)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 3, 9), date(2026, 3, 9)),  # already a business day
        (date(2026, 3, 7), date(2026, 3, 9)),  # Sat -> Mon
        (date(2026, 3, 8), date(2026, 3, 9)),  # Sun -> Mon
        (date(2026, 12, 25), date(2026, 12, 28)),  # Fri Christmas, Sat 26th (holiday+weekend), Sun -> Mon 28
        (date(2026, 12, 26), date(2026, 12, 28)),
        (date(2026, 12, 31), date(2026, 12, 31)),  # Thursday, open
        (date(2027, 1, 1), date(2027, 1, 4)),  # Fri New Year -> Sat, Sun -> Mon 4
        (date(2027, 12, 25), date(2027, 12, 27)),  # Sat, 26th is a Sunday -> Mon 27 is open
        (date(2027, 12, 24), date(2027, 12, 24)),
        (date(2025, 12, 25), date(2025, 12, 29)),  # Thu 25, Fri 26, Sat, Sun -> Mon 29
        (date(2025, 4, 18), date(2025, 4, 22)),  # Good Friday -> Tue after Easter Monday
        (date(2026, 4, 3), date(2026, 4, 7)),
        (date(2027, 3, 26), date(2027, 3, 30)),
        (date(2027, 3, 27), date(2027, 3, 30)),
        (date(2026, 5, 1), date(2026, 5, 4)),  # Fri 1 May -> Mon 4
        (date(2027, 5, 1), date(2027, 5, 3)),  # Sat 1 May -> Mon 3
        (date(2025, 5, 1), date(2025, 5, 2)),  # Thu 1 May -> Fri 2
        (date(2022, 12, 31), date(2023, 1, 2)),  # across the year: Sat, Sun 1 Jan -> Mon 2 Jan
        (date(2028, 1, 1), date(2028, 1, 3)),  # Sat 1 Jan 2028 -> Mon 3
    ],
)
def test_roll_forward(day: date, expected: date) -> None:
    assert roll_forward(day) == expected


@pytest.mark.parametrize("year", [2025, 2026, 2027])
def test_roll_forward_is_the_first_business_day_on_or_after(year: int) -> None:
    closing = target2_closing_days(year) | target2_closing_days(year + 1)

    def open_(d: date) -> bool:
        return d.weekday() < SAT and d not in closing

    day = date(year, 1, 1)
    while day.year == year:
        expected = day
        while not open_(expected):
            expected += timedelta(days=1)
        assert roll_forward(day) == expected, day
        day += timedelta(days=1)
