"""Callback signatures: what a receiver accepts and why it refuses the rest."""

from __future__ import annotations

import pytest

from include.errors import InnenError
from include.pom.signing import CallbackRejected, sign, verify

SECRET = "cb-secret-prod-bib"
SENT_AT = 1_773_648_000
BODY = b'{"event_id":"ev_000001","type":"payment_request.paid","request_id":"pr_000001","amount":"12.50"}'
GOOD = sign(SECRET, SENT_AT, BODY)


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), f"{SENT_AT}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert GOOD == f"sha256={expected}"
    assert sign(SECRET, SENT_AT + 1, BODY) != GOOD
    assert sign(SECRET, SENT_AT, BODY + b" ") != GOOD


@pytest.mark.parametrize(
    ("timestamp", "signature", "body", "now"),
    [
        (str(SENT_AT), GOOD, BODY, SENT_AT),
        (str(SENT_AT), GOOD, BODY, SENT_AT + 300),
        (str(SENT_AT), GOOD, BODY, SENT_AT - 300),
        (f" {SENT_AT} ", GOOD.upper().replace("SHA256=", "sha256="), BODY, SENT_AT + 1.5),
    ],
)
def test_genuine_callbacks_are_accepted(timestamp: str, signature: str, body: bytes, now: float) -> None:
    verify(SECRET, timestamp, signature, body, now=now)


@pytest.mark.parametrize(
    ("case", "secret", "timestamp", "signature", "body", "now", "reason"),
    [
        ("tampered body", SECRET, str(SENT_AT), GOOD, BODY.replace(b"12.50", b"1250.00"), SENT_AT, "bad_signature"),
        ("wrong secret", "another", str(SENT_AT), GOOD, BODY, SENT_AT, "bad_signature"),
        ("timestamp swapped", SECRET, str(SENT_AT + 10), GOOD, BODY, SENT_AT, "bad_signature"),
        ("missing timestamp", SECRET, None, GOOD, BODY, SENT_AT, "missing_header"),
        ("empty timestamp", SECRET, "", GOOD, BODY, SENT_AT, "missing_header"),
        ("missing signature", SECRET, str(SENT_AT), None, BODY, SENT_AT, "missing_header"),
        ("no scheme", SECRET, str(SENT_AT), GOOD.removeprefix("sha256="), BODY, SENT_AT, "bad_format"),
        ("other scheme", SECRET, str(SENT_AT), GOOD.replace("sha256=", "sha1="), BODY, SENT_AT, "bad_format"),
        ("short hex", SECRET, str(SENT_AT), GOOD[:-2], BODY, SENT_AT, "bad_format"),
        ("timestamp in ms words", SECRET, "yesterday", GOOD, BODY, SENT_AT, "bad_format"),
        ("negative timestamp", SECRET, "-5", GOOD, BODY, SENT_AT, "bad_format"),
        ("stale", SECRET, str(SENT_AT), GOOD, BODY, SENT_AT + 301, "stale"),
        ("replayed a day later", SECRET, str(SENT_AT), GOOD, BODY, SENT_AT + 86_400, "stale"),
        ("from the future", SECRET, str(SENT_AT), GOOD, BODY, SENT_AT - 301, "future"),
    ],
)
def test_forged_or_stale_callbacks_are_rejected(
    case: str, secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float, reason: str
) -> None:
    with pytest.raises(CallbackRejected) as rejected:
        verify(secret, timestamp, signature, body, now=now)
    assert rejected.value.reason == reason, case
    assert isinstance(rejected.value, InnenError)


def test_tolerance_can_be_narrowed() -> None:
    verify(SECRET, str(SENT_AT), GOOD, BODY, now=SENT_AT + 30, tolerance=60)
    with pytest.raises(CallbackRejected, match="stale"):
        verify(SECRET, str(SENT_AT), GOOD, BODY, now=SENT_AT + 61, tolerance=60)
