"""Diagnosing POM delivery reports (seed 003): every message, the order of attempts, the 48 hours, the missing flags."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from include.finance import models
from include.pom.delivery_diagnosis import (
    ACTIONS,
    DIAGNOSES,
    MESSAGE_KINDS,
    SEED_MESSAGES,
    Attempt,
    RecipientSetup,
    classify_message,
    diagnose_attempts,
    diagnose_not_attempted,
    expected_recipient,
    line_kind,
    missing_flags,
    normalise_message,
    normalise_status,
    what_to_do,
)

T0 = datetime(2026, 3, 16, 8, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)

# The seed's six FAILED messages, each under its diagnosis and action.
SEED_CASES = [
    ("temporary", "retrying", "wait"),
    ("mailbox_full", "retrying", "wait"),
    ("rejected_blacklisted", "rejected_blacklisted", "correct_address"),
    ("blacklisted", "blacklisted", "correct_address"),
    ("unsubscribed", "unsubscribed", "send_another_way"),
    ("document_id_used", "document_id_used", "contact_support"),
]


def test_the_seed_has_six_messages_and_each_is_tested() -> None:
    assert sorted(SEED_MESSAGES) == sorted(kind for kind, _, _ in SEED_CASES)


def variants(text: str) -> list[str]:
    """What a portal export or a retyped message does to a text: case, spacing, quotes, punctuation."""
    bare = text.rstrip(".")
    return [
        text,
        text.upper(),
        text.lower(),
        "  " + text.replace(" ", "   ") + "  ",
        text.replace(" ", "\u00a0", 2),
        text.replace("’", "'"),
        bare,
        bare + "!",
        bare + " .",
        f'"{text}"',
        text.replace("email", "e-mail").replace("Email", "E-mail"),
        text + "\n",
    ]


@pytest.mark.parametrize(("kind", "diagnosis", "action"), SEED_CASES, ids=[c[0] for c in SEED_CASES])
def test_every_seed_message_and_its_variants_are_recognised(kind: str, diagnosis: str, action: str) -> None:
    for text in variants(SEED_MESSAGES[kind]):
        assert classify_message(text) == kind, repr(text)
        assert line_kind("FAILED", text) == kind
    result = diagnose_attempts([Attempt(T0, 2, kind, "FAILED", SEED_MESSAGES[kind])], T0 + HOUR)
    assert (result.diagnosis, result.action) == (diagnosis, action)


@pytest.mark.parametrize(("text", "kind"), [
    ("The email was rejected by the recipient’s mail server. EmailAddress of recipient is blacklisted.", "blacklisted"),
    ("550 5.1.1: EmailAddress of recipient is blacklisted", "blacklisted"),
    ("Email address of the recipient has been blacklisted.", "blacklisted"),
    ("The recipient's email address is blacklisted.", "blacklisted"),
    ("Error: DocumentId already used.", "document_id_used"),
    ("DocumentId has already been used.", "document_id_used"),
    ("Document ID is already in use", "document_id_used"),
    ("The email was rejected by the recipient’s mail server. It will be blacklisted to prevent further bounces.",
     "rejected_blacklisted"),
])
def test_a_seed_message_inside_a_longer_or_reworded_text_is_recognised(text: str, kind: str) -> None:
    assert classify_message(text) == kind


@pytest.mark.parametrize("text", [
    "The email was rejected by the recipient’s mail server.",  # the common first sentence alone says nothing
    "Mail server timeout",
    "blacklisted",
    "User has subscribed to pom mails.",
    "DocumentId used",
    "",
    None,
])
def test_other_texts_are_unknown(text: str | None) -> None:
    assert classify_message(text) == "unknown"


def test_a_delivered_line_is_delivered_whatever_its_description() -> None:
    assert line_kind("DELIVERED", SEED_MESSAGES["blacklisted"]) == "delivered"
    assert line_kind("DELIVERED", "") == "delivered"


@pytest.mark.parametrize(("raw", "status"), [
    ("DELIVERED", "DELIVERED"), (" delivered ", "DELIVERED"), ("Bezorgd", "DELIVERED"), ("failed", "FAILED"),
    ("MISLUKT", "FAILED"), ("pending", "PENDING"), ("", ""),
])
def test_statuses(raw: str, status: str) -> None:
    assert normalise_status(raw) == status


def test_normalisation() -> None:
    assert normalise_message("  The user’s  MAILBOX\tis full... ") == "the user's mailbox is full"
    assert normalise_message("E-mail Address") == "email address"


def test_the_model_constants_follow_the_diagnosis_module() -> None:
    assert models.DELIVERY_MESSAGE_KINDS == MESSAGE_KINDS
    assert models.DELIVERY_DIAGNOSES == tuple(DIAGNOSES)
    assert models.DELIVERY_ACTIONS == tuple(ACTIONS)
    assert {action for action, _, _ in DIAGNOSES.values()} == set(ACTIONS)


# -- the order of attempts and the 48 hours ---------------------------------------------------------


def failed(hours: float, kind: str = "temporary", line: int = 2) -> Attempt:
    return Attempt(T0 + timedelta(hours=hours), line, kind, "FAILED", SEED_MESSAGES[kind])


def delivered(hours: float, line: int = 3) -> Attempt:
    return Attempt(T0 + timedelta(hours=hours), line, "delivered", "DELIVERED", "")


def test_delivered_after_a_temporary_failure_is_delivered() -> None:
    result = diagnose_attempts([failed(0), delivered(3)], now=T0 + 100 * HOUR)
    assert result.diagnosis == "delivered" and result.action == "none"
    assert "pom.be" in result.what_to_do() and "safe senders" in result.what_to_do()


def test_the_latest_attempt_decides_whatever_the_file_order() -> None:
    # The portal sorts by any column: the DELIVERED line may come first in the file.
    result = diagnose_attempts([delivered(3, line=2), failed(0, line=3)], now=T0 + 4 * HOUR)
    assert result.diagnosis == "delivered"
    # A later failure after a delivery (the invoice sent again) decides too.
    again = diagnose_attempts([delivered(0, line=2), failed(30, "unsubscribed", line=3)], now=T0 + 31 * HOUR)
    assert again.diagnosis == "unsubscribed"


def test_attempts_at_the_same_second_are_ordered_by_their_line() -> None:
    assert diagnose_attempts([failed(1, line=5), delivered(1, line=4)], T0 + 2 * HOUR).diagnosis == "retrying"
    assert diagnose_attempts([failed(1, line=4), delivered(1, line=5)], T0 + 2 * HOUR).diagnosis == "delivered"


@pytest.mark.parametrize("kind", ["temporary", "mailbox_full"])
def test_a_temporary_failure_is_retried_for_48_hours(kind: str) -> None:
    young = diagnose_attempts([failed(0, kind)], now=T0 + 47 * HOUR)
    assert young.diagnosis == "retrying" and young.action == "wait"
    assert young.retry_until == T0 + 48 * HOUR
    assert "2026-03-18 09:00" in young.what_to_do()  # Brussels time
    old = diagnose_attempts([failed(0, kind)], now=T0 + 48 * HOUR)
    assert old.diagnosis == "given_up" and old.action == "send_another_way"
    assert "2026-03-16 09:00" in (old.detail or "")


def test_two_failures_across_48_hours_are_given_up_from_the_first() -> None:
    attempts = [failed(0, line=2), failed(49, line=3)]
    assert diagnose_attempts(attempts, now=T0 + 49 * HOUR).diagnosis == "given_up"
    # Even when "now" is behind POM's clock: the report itself shows 48 hours passed.
    assert diagnose_attempts(attempts, now=T0).diagnosis == "given_up"
    # Two failures within 48 hours: still retrying, counted from the first.
    within = diagnose_attempts([failed(0, line=2), failed(20, "mailbox_full", line=3)], now=T0 + 30 * HOUR)
    assert within.diagnosis == "retrying" and within.retry_until == T0 + 48 * HOUR


def test_the_retry_window_restarts_after_a_delivery() -> None:
    # Delivered once, then a new sending failing temporarily: 48 hours from that new failure.
    result = diagnose_attempts([failed(0, line=2), delivered(1, line=3), failed(60, line=4)], now=T0 + 70 * HOUR)
    assert result.diagnosis == "retrying" and result.retry_until == T0 + 108 * HOUR


def test_an_unknown_message_keeps_its_raw_text() -> None:
    result = diagnose_attempts([Attempt(T0, 2, "unknown", "FAILED", " Quota exceeded for sender 42 ")], T0)
    assert result.diagnosis == "unknown" and result.action == "contact_support"
    assert result.detail == "'Quota exceeded for sender 42'"
    assert "Quota exceeded for sender 42" in result.what_to_do()
    status = diagnose_attempts([Attempt(T0, 2, "unknown", "QUEUED", "")], T0)
    assert status.detail == "'status 'QUEUED': (no description)'"


def test_no_attempts_is_not_a_diagnosis_of_attempts() -> None:
    with pytest.raises(ValueError):
        diagnose_attempts([], T0)


# -- no line: the flags in the customer data -----------------------------------------------------------


def setup(**fields: object) -> RecipientSetup:
    values: dict[str, object] = {"email": "ouder@example.be", "email_recipient": True}
    values.update(fields)
    return RecipientSetup(**values)  # type: ignore[arg-type]


LATER = {"address_position": 2, "first_position": 1, "address_label": "Dorp 2, 3001 Heverlee", "journal": "VK (Verkoop)"}


@pytest.mark.parametrize(("fields", "diagnosis", "missing", "named"), [
    ({"email_recipient": False}, "not_attempted_email_recipient_off", ["contact"], ["'E-mail ontvanger'", "ouder@example.be"]),
    (LATER, "not_attempted_copy_per_address_off", ["address", "journal"],
     ["'Exemplaar per adres' on sales journal VK (Verkoop)", "'Exemplaar factuur/aanmaning' on address 2 (Dorp 2, 3001 Heverlee)",
      "both are needed"]),
    ({**LATER, "journal_copy_per_address": True}, "not_attempted_copy_per_address_off", ["address"],
     ["'Exemplaar factuur/aanmaning' on address 2", "the sales journal already has its flag"]),
    ({**LATER, "address_copy_per_address": True}, "not_attempted_copy_per_address_off", ["journal"],
     ["'Exemplaar per adres' on sales journal VK (Verkoop)", "the address already has its flag"]),
    ({**LATER, "journal": None, "address_copy_per_address": True}, "not_attempted_copy_per_address_off", ["journal"],
     ["the invoice's sales journal (none recorded)"]),
    ({**LATER, "email_recipient": False}, "not_attempted_email_recipient_off", ["contact", "address", "journal"],
     ["'E-mail ontvanger'", "'Exemplaar per adres'", "'Exemplaar factuur/aanmaning'"]),
], ids=["recipient-flag-off", "later-address-no-flags", "later-address-journal-only", "later-address-address-only",
        "later-address-no-journal", "everything-off"])
def test_each_cause_of_no_attempt_names_the_flags_to_set(
    fields: dict[str, object], diagnosis: str, missing: list[str], named: list[str]
) -> None:
    recipient = setup(**fields)
    assert missing_flags(recipient) == missing and not expected_recipient(recipient)
    result = diagnose_not_attempted(recipient)
    assert result.diagnosis == diagnosis and result.action == "fix_customer_record"
    text = result.what_to_do()
    for words in named:
        assert words in text, (words, text)
    assert "send this invoice again" in text


@pytest.mark.parametrize("fields", [
    {},  # no address: the customer record's own
    {"address_position": 1, "first_position": None},
    {"address_position": 2, "first_position": 2},  # the lowest position is the first address
    {**LATER, "address_copy_per_address": True, "journal_copy_per_address": True},
])
def test_a_contact_pom_should_reach_without_a_line_is_unexplained(fields: dict[str, object]) -> None:
    recipient = setup(**fields)
    assert expected_recipient(recipient)
    result = diagnose_not_attempted(recipient)
    assert result.diagnosis == "not_attempted_unexplained" and result.action == "contact_support"


def test_a_customer_without_an_e_mail_address() -> None:
    result = diagnose_not_attempted(None)
    assert result.diagnosis == "not_attempted_no_email_address" and result.action == "fix_customer_record"


def test_every_diagnosis_has_words_for_finance() -> None:
    for code in DIAGNOSES:
        text = what_to_do(code, "x", T0)
        assert text and "{" not in text
