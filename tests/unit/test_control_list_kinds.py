"""The kinds of control-list items (include.finance.statuses.ControlListKind): the strings stored, and what each allows."""

from __future__ import annotations

from include.finance.control_list_resolution import _WHY_NOT_BOOKABLE
from include.finance.statuses import BOOKABLE_ITEM, REFUND_ITEM, ControlListKind, values


def test_the_kinds_are_the_strings_stored() -> None:
    assert values(ControlListKind) == (
        "unmatched", "batch_mismatch", "partial", "overpaid", "closed_reference", "returned", "unknown_return",
        "unsplit", "unknown_account", "sequence_gap", "foreign_currency")


def test_money_received_can_be_booked_and_every_other_kind_says_why_not() -> None:
    assert sorted(BOOKABLE_ITEM) == ["closed_reference", "overpaid", "unmatched"]
    assert REFUND_ITEM == ("overpaid", "closed_reference")
    assert sorted(_WHY_NOT_BOOKABLE) == sorted(set(ControlListKind) - BOOKABLE_ITEM)
