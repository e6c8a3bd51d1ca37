"""Money received against an open amount: one rule for statements, POM and confirmations by hand."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from include.finance import models
from include.finance.payments import receipt
from include.finance.statuses import (
    ApprovalStatus,
    CollectionStatus,
    EntryOutcome,
    PomRequestStatus,
    Received,
    ReferenceStatus,
    RunStatus,
)

# status, open amount, received -> outcome, booked, excess (refund or credit), left open
CASES = [
    ("sealed", "20.00", "20.00", Received.PAID, "20.00", "0.00", "0.00"),
    ("draft", "20.00", "20.00", Received.PAID, "20.00", "0.00", "0.00"),
    ("sealed", "20.00", "5.00", Received.PARTIAL, "5.00", "0.00", "15.00"),
    ("sealed", "20.00", "0.01", Received.PARTIAL, "0.01", "0.00", "19.99"),
    ("sealed", "20.00", "25.50", Received.OVERPAID, "20.00", "5.50", "0.00"),
    ("paid", "0.00", "20.00", Received.CLOSED_REFERENCE, "0.00", "20.00", "0.00"),
    ("deleted", "20.00", "20.00", Received.CLOSED_REFERENCE, "0.00", "20.00", "20.00"),
    ("expired", "12.00", "3.00", Received.CLOSED_REFERENCE, "0.00", "3.00", "12.00"),
    ("sealed", "0.00", "3.00", Received.CLOSED_REFERENCE, "0.00", "3.00", "0.00"),
]


@pytest.mark.parametrize(("status", "open_amount", "amount", "outcome", "booked", "excess", "left"), CASES)
def test_receipt(status: str, open_amount: str, amount: str, outcome: Received, booked: str, excess: str,
                 left: str) -> None:
    got = receipt(status, D(open_amount), D(amount))
    assert (got.outcome, got.booked, got.excess, got.left) == (outcome, D(booked), D(excess), D(left))
    assert got.received == D(amount) and got.open_before == D(open_amount)


def test_received_outcomes_are_bank_entry_outcomes() -> None:
    assert {str(member) for member in Received} <= {str(member) for member in EntryOutcome}


@pytest.mark.parametrize(("stored", "enum"), [
    (models.REFERENCE_STATUSES, ReferenceStatus), (models.RUN_STATUSES, RunStatus),
    (models.COLLECTION_STATUSES, CollectionStatus), (models.POM_REQUEST_STATUSES, PomRequestStatus),
    (models.APPROVAL_STATUSES, ApprovalStatus), (models.ENTRY_OUTCOMES, EntryOutcome),
])
def test_the_tables_check_the_enums_values(stored: tuple[str, ...], enum: type) -> None:
    assert stored == tuple(member.value for member in enum)
    assert all(type(value) is str for value in stored)  # plain strings in the CHECK constraints' DDL


def test_open_and_live_statuses() -> None:
    assert models.OPEN_REFERENCE_STATUSES == ("draft", "sealed")
    assert models.LIVE_POM_REQUEST_STATUSES == ("creating", "open")
