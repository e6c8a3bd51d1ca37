"""Signed POM callbacks: HMAC-SHA256 over ``"<timestamp>.<raw body>"``.

POM (and the simulator) signs each callback with the account's callback
secret so that a receiver can tell a real transaction feedback from a forged
or replayed one. The timestamp is part of what is signed, so an old signed
body cannot be replayed with a fresh timestamp, and the receiver refuses
timestamps too far from its own clock.

>>> body = b'{"request_id": "pr_000001", "status": "paid"}'
>>> header = sign("s3cret", 1773648000, body)
>>> header
'sha256=b59c275a5f740d03d8ab4feaef0126d4ec81220f0c96ff8896160310f017cc41'
>>> verify("s3cret", "1773648000", header, body, now=1773648000.5)
"""

from __future__ import annotations

import hashlib
import hmac
import re

from include.errors import InnenError

TIMESTAMP_HEADER = "X-POM-Timestamp"
SIGNATURE_HEADER = "X-POM-Signature"
DEFAULT_TOLERANCE_SECONDS = 300

_SIGNATURE = re.compile(r"^sha256=([0-9a-f]{64})$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")


class CallbackRejected(InnenError):
    """A callback whose signature or timestamp does not hold; ``reason`` is a short code for the receiver's log.

    Codes: ``missing_header``, ``bad_format``, ``stale``, ``future``, ``bad_signature``.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"callback rejected ({reason}): {detail}")
        self.reason = reason
        self.detail = detail


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-POM-Signature`` header value for ``body`` sent at ``timestamp`` (unix seconds).

    >>> sign("s3cret", 1773648000, b"{}")
    'sha256=65ccdd95be16feb93a3d21ca0cc9543a331a92a8636f4150beea7cda453cc606'
    """
    message = str(int(timestamp)).encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify(
    secret: str,
    timestamp_header: str | None,
    signature_header: str | None,
    body: bytes,
    *,
    now: float,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Accept a callback or raise :class:`CallbackRejected` saying why.

    ``body`` must be the raw bytes as received: re-encoding parsed JSON changes
    them and breaks the signature. ``now`` is the receiver's clock (passed in so
    that tests and replays are deterministic).

    >>> body = b'{"status": "paid"}'
    >>> verify("s3cret", "1773648000", sign("s3cret", 1773648000, body), body, now=1773648010)
    >>> verify("s3cret", "1773648000", sign("other", 1773648000, body), body, now=1773648010)
    Traceback (most recent call last):
    ...
    include.pom.signing.CallbackRejected: callback rejected (bad_signature): signature does not match the body
    >>> verify("s3cret", "1773648000", sign("s3cret", 1773648000, body), body, now=1773649000)
    Traceback (most recent call last):
    ...
    include.pom.signing.CallbackRejected: callback rejected (stale): timestamp is 1000 s old (tolerance 300 s)
    """
    if not timestamp_header:
        raise CallbackRejected("missing_header", f"no {TIMESTAMP_HEADER} header")
    if not signature_header:
        raise CallbackRejected("missing_header", f"no {SIGNATURE_HEADER} header")
    if not _TIMESTAMP.match(timestamp_header.strip()):
        raise CallbackRejected("bad_format", f"{TIMESTAMP_HEADER} is not unix seconds")
    match = _SIGNATURE.match(signature_header.strip().lower())
    if not match:
        raise CallbackRejected("bad_format", f"{SIGNATURE_HEADER} is not sha256=<64 hex digits>")
    timestamp = int(timestamp_header.strip())
    age = now - timestamp
    if age > tolerance:
        raise CallbackRejected("stale", f"timestamp is {age:.0f} s old (tolerance {tolerance} s)")
    if -age > tolerance:
        raise CallbackRejected("future", f"timestamp is {-age:.0f} s ahead (tolerance {tolerance} s)")
    expected = sign(secret, timestamp, body)
    if not hmac.compare_digest(expected, "sha256=" + match.group(1)):
        raise CallbackRejected("bad_signature", "signature does not match the body")
