"""include.runtime: the run parameters a person types, read strictly, refused with the param's name."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from include.runtime import ParamError, as_of, parse_date_param, parse_moment_param, run_date

UTC = timezone.utc


@pytest.mark.parametrize(("value", "expected"), [
    (None, None),
    ("", None),
    ("   ", None),
    ("2026-03-01", date(2026, 3, 1)),
    (" 2026-03-01 ", date(2026, 3, 1)),
    ("2026-03-01\n", date(2026, 3, 1)),
])
def test_a_date_param_is_read(value, expected) -> None:  # type: ignore[no-untyped-def]
    assert parse_date_param("run_date", value) == expected


@pytest.mark.parametrize("value", [
    "20260301",  # date.fromisoformat takes it (3.11)
    "2026-W09-7",  # so does this
    "2026-02-30",
    "01/03/2026",
    "2026-03-01T10:00",
    "yesterday",
    "２０２６-03-01",  # full-width digits
])
def test_a_malformed_date_param_is_refused_by_name(value: str) -> None:
    with pytest.raises(ParamError, match=r"^param run_date: .* is not a date YYYY-MM-DD$"):
        parse_date_param("run_date", value)


@pytest.mark.parametrize(("value", "expected"), [
    (None, None),
    ("", None),
    (" ", None),
    ("2026-11-20T02:00:00+01:00", datetime(2026, 11, 20, 1, tzinfo=UTC)),
    (" 2026-11-20T02:00:00Z ", datetime(2026, 11, 20, 2, tzinfo=UTC)),
    ("2026-11-20T02:00", datetime(2026, 11, 20, 2, tzinfo=UTC)),  # no offset: UTC
    ("2026-11-20 02:00:00.123456+00:00", datetime(2026, 11, 20, 2, 0, 0, 123456, tzinfo=UTC)),
    ("2026-11-20T02:00:00.123Z", datetime(2026, 11, 20, 2, 0, 0, 123000, tzinfo=UTC)),
])
def test_a_moment_param_is_read(value, expected) -> None:  # type: ignore[no-untyped-def]
    assert parse_moment_param("as_of", value) == expected


@pytest.mark.parametrize("value", ["garbage", "2026-11-20", "20261120T0200", "2026-11-20T25:00", "now"])
def test_a_malformed_moment_param_is_refused_by_name(value: str) -> None:
    with pytest.raises(ParamError, match=r"^param as_of: .* is not a date-time"):
        parse_moment_param("as_of", value)


def test_a_long_bad_value_is_not_repeated_whole() -> None:
    with pytest.raises(ParamError) as caught:
        parse_date_param("day", "x" * 10_000)
    assert len(str(caught.value)) < 150


def test_the_context_readers_refuse_a_bad_param_by_name() -> None:
    with pytest.raises(ParamError, match="param run_date: '2026-13-01'"):
        run_date({"params": {"run_date": "2026-13-01"}})
    with pytest.raises(ParamError, match="param day: 'tomorrow'"):
        run_date({"params": {"day": "tomorrow"}}, "day")
    with pytest.raises(ParamError, match="param as_of: 'garbage'"):
        as_of({"params": {"as_of": "garbage"}})


def test_the_context_readers_take_spaces_and_fall_back_when_empty() -> None:
    logical = datetime(2026, 11, 19, 23, 30, tzinfo=UTC)  # already the 20th in Brussels
    assert run_date({"params": {"run_date": " 2026-03-01 "}, "logical_date": logical}) == date(2026, 3, 1)
    assert run_date({"params": {"run_date": "  "}, "logical_date": logical}) == date(2026, 11, 20)
    assert run_date({"params": {"day": None}, "logical_date": logical}, "day") == date(2026, 11, 20)
    assert as_of({"params": {"as_of": " 2026-11-20T02:00:00Z"}}) == datetime(2026, 11, 20, 2, tzinfo=UTC)
    assert abs(as_of({"params": {"as_of": " "}}) - datetime.now(UTC)) < timedelta(minutes=1)
