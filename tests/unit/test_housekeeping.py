"""The retention rules, table by table: when something is past keep_days, whose keep_days, which day it counts from."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from include.housekeeping import (
    DEFAULT_KEEP_DAYS,
    Claim,
    archived_names,
    compact_account,
    date_in_name,
    decisive,
    expired,
    folder_name,
    keep_days_of,
    local_day,
    shared_keep_days,
)


@pytest.mark.parametrize(
    ("made_on", "keep_days", "today", "gone"),
    [
        (date(2025, 1, 1), 365, date(2025, 1, 1), False),  # made today
        (date(2025, 1, 1), 365, date(2025, 12, 31), False),
        (date(2025, 1, 1), 365, date(2026, 1, 1), False),  # the 365th day after: still kept
        (date(2025, 1, 1), 365, date(2026, 1, 2), True),  # the day after that: gone
        (date(2024, 1, 1), 365, date(2024, 12, 31), False),  # a leap year: 365 days end on 31 December
        (date(2024, 1, 1), 365, date(2025, 1, 1), True),
        (date(2025, 1, 8), 730, date(2027, 1, 8), False),
        (date(2025, 1, 8), 730, date(2027, 1, 9), True),
        (date(2025, 1, 1), 1, date(2025, 1, 2), False),
        (date(2025, 1, 1), 1, date(2025, 1, 3), True),
        (date(2026, 6, 1), 365, date(2026, 1, 1), False),  # made after "today" (a replayed run_date): kept
    ],
)
def test_expired(made_on: date, keep_days: int, today: date, gone: bool) -> None:
    assert expired(made_on, keep_days, today) is gone
    assert Claim("H", keep_days, made_on, "x").expired(today) is gone


@pytest.mark.parametrize(
    ("value", "keep"),
    [(None, 365), (0, 365), (-5, 365), (1, 1), (365, 365), (730, 730), (3650, 3650)],
)
def test_keep_days_of_a_hub(value: int | None, keep: int) -> None:
    """Seed 2.5.3: "Empty=365"; zero or less would remove everything at once, so it counts as empty."""
    assert keep_days_of(value) == keep


@pytest.mark.parametrize(
    ("hubs", "shared"),
    [
        ([], DEFAULT_KEEP_DAYS),  # no hub at all
        ([730], 730),
        ([365, 730], 365),  # files of no single hub: the smallest
        ([730, None], 365),  # an empty keep_days is 365
        ([400, 1000, 90], 90),
    ],
)
def test_files_of_no_single_hub_keep_the_smallest(hubs: list[int | None], shared: int) -> None:
    assert shared_keep_days(hubs) == shared


A = Claim("A", 365, date(2025, 1, 1), "a")  # kept until 2026-01-01
B = Claim("B", 730, date(2024, 6, 1), "b")  # kept until 2026-06-01
C = Claim(None, 30, date(2025, 12, 15), "c")  # kept until 2026-01-14


@pytest.mark.parametrize(
    ("claims", "winner"),
    [([A], A), ([A, B], B), ([B, A], B), ([A, C], C), ([A, B, C], B)],
)
def test_a_file_of_several_hubs_stays_until_the_last_lets_it_go(claims: list[Claim], winner: Claim) -> None:
    assert decisive(claims) == winner


@pytest.mark.parametrize(
    ("name", "day"),
    [
        ("2026-11-20", date(2026, 11, 20)),  # mandate_check/, pom_reconciliation/, invoice_run/, housekeeping/
        ("VERKOOP-BIB-2026-11-20-1", date(2026, 11, 20)),  # pom_delivery/<journal>-<day>-<n>
        ("EENMALIG-SKA-2026-11-20-12", date(2026, 11, 20)),
        ("2026-02-30", None),  # not a day
        ("2026-13-01-2026-01-05", date(2026, 1, 5)),  # the first that is a day
        ("12026-11-20", None),  # part of a longer number
        ("fj-BIB-12", None),
        ("references", None),
        ("", None),
    ],
)
def test_date_in_a_folder_name(name: str, day: date | None) -> None:
    assert date_in_name(name) == day


@pytest.mark.parametrize(
    ("file_name", "sha256", "names"),
    [
        ("one.xml", "1b88e714c8df" + "a" * 52, ("one.xml", "one.1b88e714c8df.xml")),
        ("KBC-BIB_2026-11-23.xml", "f" * 64, ("KBC-BIB_2026-11-23.xml", "KBC-BIB_2026-11-23.ffffffffffff.xml")),
        ("statement", "0" * 64, ("statement", "statement.000000000000")),
    ],
)
def test_the_names_an_imported_file_has_in_the_archive(file_name: str, sha256: str, names: tuple[str, str]) -> None:
    """include.files.move_into adds the checksum's first twelve digits when the name is taken."""
    assert archived_names(file_name, sha256) == names


@pytest.mark.parametrize(
    ("value", "compact"),
    [("BE68 5390 0754 7034", "BE68539007547034"), ("be68539007547034", "BE68539007547034"), (None, ""), ("", "")],
)
def test_accounts_compare_compact(value: str | None, compact: str) -> None:
    assert compact_account(value) == compact


@pytest.mark.parametrize(
    ("loi", "folder"),
    [("fj:BIB:12", "fj-BIB-12"), ("fj:SKA:1", "fj-SKA-1"), ("fp:BIB:30, fp:BIB:31", "fp-BIB-30-fp-BIB-31")],
)
def test_run_report_folder_names(loi: str, folder: str) -> None:
    assert folder_name(loi) == folder


@pytest.mark.parametrize(
    ("moment", "day"),
    [
        (datetime(2026, 3, 1, 22, 59, tzinfo=timezone.utc), date(2026, 3, 1)),  # 23:59 in Brussels (CET)
        (datetime(2026, 3, 1, 23, 0, tzinfo=timezone.utc), date(2026, 3, 2)),  # midnight in Brussels
        (datetime(2026, 7, 1, 22, 0, tzinfo=timezone.utc), date(2026, 7, 2)),  # CEST
        (datetime(2026, 7, 1, 21, 59), date(2026, 7, 1)),  # naive (SQLite): UTC
    ],
)
def test_days_are_brussels_days(moment: datetime, day: date) -> None:
    assert local_day(moment) == day
