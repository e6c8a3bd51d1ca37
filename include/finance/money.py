"""Money is :class:`~decimal.Decimal` with two places, never a float.

>>> money("12.5")
Decimal('12.50')
>>> money(3)
Decimal('3.00')
>>> format_amount(money("1234.5"))
'1234.50'
>>> money(0.1)
Traceback (most recent call last):
...
TypeError: money must be Decimal, int or str, not float (0.1)
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def money(value: Decimal | int | str) -> Decimal:
    """The amount as a two-place Decimal; refuses floats and fractions of a cent."""
    if type(value) is Decimal and value.as_tuple().exponent == -2:  # already two places: the common case
        return value
    if isinstance(value, float) or isinstance(value, bool):
        raise TypeError(f"money must be Decimal, int or str, not {type(value).__name__} ({value!r})")
    try:
        amount = Decimal(value) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    try:
        quantized = amount.quantize(CENT)
    except InvalidOperation:
        raise ValueError(f"amount {value!r} is too large") from None
    if quantized != amount:
        raise ValueError(f"amount {value!r} has fractions of a cent")
    return quantized


def format_amount(amount: Decimal) -> str:
    """Plain decimal notation with two places and a dot, as banks and CSV readers expect."""
    return f"{amount.quantize(CENT):f}"


def from_cents(cents: int) -> Decimal:
    """The amount of a whole number of cents.

    >>> from_cents(1250)
    Decimal('12.50')
    """
    return Decimal(cents).scaleb(-2)
