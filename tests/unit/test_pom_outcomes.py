"""What the POM sync counts and the reconciliation reports: enums whose strings stay the ones finance and XCom read."""

from __future__ import annotations

from include.finance.statuses import (
    ENDED_UNPAID_POM_REQUEST,
    SYNC_FOUND,
    SYNC_RECEIVED,
    ReconciliationOutcome,
    RequestSync,
    values,
)
from include.pom.reconciliation import ACTIONS, FOUND, NEEDS_A_PERSON


def test_a_reconciliations_first_outcomes_are_receiveds() -> None:
    assert values(ReconciliationOutcome)[:4] == ("paid", "partial", "overpaid", "closed_reference")


def test_every_reconciliation_outcome_says_what_to_do() -> None:
    assert set(ACTIONS) == set(ReconciliationOutcome)
    assert all(ACTIONS[outcome] for outcome in ReconciliationOutcome)
    assert ACTIONS[ReconciliationOutcome.NOTE] == "read the note"  # the words the report always had
    assert not any(ACTIONS[outcome].startswith("none") for outcome in NEEDS_A_PERSON)


def test_a_request_found_ended_at_pom_is_named_after_its_status() -> None:
    for status in ENDED_UNPAID_POM_REQUEST:
        assert FOUND[status] == SYNC_FOUND[status] == f"found_{status}"
        assert FOUND[str(status)] is FOUND[status]  # POM's answer is a plain string


def test_the_sync_counts_keep_their_names() -> None:
    assert values(RequestSync) == (
        "unchanged", "unavailable", "refused", "skipped_concurrent", "created", "replaced", "renewed", "cancelled",
        "below_minimum", "received_paid", "received_partial", "received_overpaid", "received_closed_reference",
        "received_already_booked", "found_cancelled", "found_expired",
    )
    assert {f"received_{outcome}" for outcome in SYNC_RECEIVED} == {str(count) for count in SYNC_RECEIVED.values()}
    assert set(SYNC_RECEIVED) == set(values(ReconciliationOutcome)[:5])  # what a booking's outcome can be
