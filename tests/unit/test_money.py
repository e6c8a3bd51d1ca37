"""money(): two-place Decimals only; floats, bools and fractions of a cent are refused."""

from __future__ import annotations

from decimal import Decimal

import pytest

from include.finance.money import CENT, ZERO, format_amount, money


def test_constants() -> None:
    assert CENT == Decimal("0.01") and str(CENT) == "0.01"
    assert ZERO == 0 and str(ZERO) == "0.00"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # strings: the printed form must carry exactly two places
        ("12.5", "12.50"),
        ("12.50", "12.50"),
        ("12.340", "12.34"),  # a trailing zero is no fraction of a cent
        ("0", "0.00"),
        ("0.01", "0.01"),
        ("-3.5", "-3.50"),
        ("1234567890.12", "1234567890.12"),
        (" 7.1 ", "7.10"),  # Decimal() accepts surrounding blanks
        ("1E+2", "100.00"),  # 1E+2 = 100
        # ints
        (3, "3.00"),
        (0, "0.00"),
        (-42, "-42.00"),
        (10**9, "1000000000.00"),
        # Decimals, whatever their exponent
        (Decimal("12.5"), "12.50"),
        (Decimal("12"), "12.00"),
        (Decimal("12.000"), "12.00"),
        (Decimal("0.10"), "0.10"),
    ],
)
def test_money_accepts_decimal_int_str(value: Decimal | int | str, expected: str) -> None:
    result = money(value)
    assert type(result) is Decimal
    assert str(result) == expected
    assert result.as_tuple().exponent == -2


@pytest.mark.parametrize("value", [0.1, 12.5, 1.0, 0.0, float("nan"), float("inf"), True, False])
def test_money_refuses_floats_and_bools(value: object) -> None:
    with pytest.raises(TypeError):
        money(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        "12.345",  # half a cent and more
        "0.001",
        "0.005",  # would round to 0.00 or 0.01: still a fraction of a cent
        "-1.999",
        Decimal("12.341"),
        Decimal("0.0001"),
        "1E-3",
    ],
)
def test_money_refuses_fractions_of_a_cent(value: Decimal | str) -> None:
    with pytest.raises(ValueError, match="fractions of a cent"):
        money(value)


@pytest.mark.parametrize(
    "value",
    ["", "abc", "12,50", "1.2.3", "€5", "NaN", "sNaN", "Infinity", "-Infinity", Decimal("NaN"), Decimal("Infinity")],
)
def test_money_refuses_what_is_no_amount(value: Decimal | str) -> None:
    with pytest.raises(ValueError, match="not an amount"):
        money(value)


def test_money_too_large_for_the_decimal_context_is_a_value_error() -> None:
    # 10**26 has 27 digits; with two places that is 29 > the default context
    # precision of 28, so quantize() cannot represent it. money() promises a
    # TypeError or ValueError for anything it refuses, never a bare
    # decimal.InvalidOperation (an ArithmeticError, not a ValueError).
    with pytest.raises(ValueError):
        money("1" + "0" * 26)


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        (Decimal("1234.5"), "1234.50"),
        (Decimal("0"), "0.00"),
        (Decimal("0.1"), "0.10"),
        (Decimal("12.30"), "12.30"),
        (Decimal("-12.3"), "-12.30"),
        (Decimal("1E+6"), "1000000.00"),  # never scientific notation
        (Decimal("1.5E+3"), "1500.00"),
        (Decimal("99999999.99"), "99999999.99"),
    ],
)
def test_format_amount(amount: Decimal, expected: str) -> None:
    assert format_amount(amount) == expected


@pytest.mark.parametrize("value", ["12.5", 3, "0.07", Decimal("1E+2"), "-0.5"])
def test_format_amount_of_money_round_trips(value: Decimal | int | str) -> None:
    text = format_amount(money(value))
    assert "E" not in text and text.count(".") == 1 and len(text.split(".")[1]) == 2
    assert Decimal(text) == Decimal(value)
