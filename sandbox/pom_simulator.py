"""POM simulator: a real HTTP server that serves the API of ``include/pom/API.md``.

POM publishes no API and has no sandbox we can script, so the demo and the
tests talk to this server instead, over real HTTP on loopback. It keeps its
state in memory, behaves as the seeds describe (QR codes that expire after 90
days, auto-cancel at the due date, signed callbacks, delivery reports with
POM's messages) and lets a test inject what a real service does on a bad day
(faults, rate limits, a moved clock) through the ``/_sim`` controls.

Handlers are coroutines that only touch dictionaries under one lock, so the
server keeps up with a paced reconciliation of 100k requests; QR images are
drawn only when one is asked for, callbacks go out from worker threads, and
the PDFs of a document batch are read in a worker thread as well.

Run it with ``python -m sandbox.pom_simulator --port 8077 --accounts-json accounts.json``
or, in tests, with :func:`run_in_thread`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import csv
import functools
import hashlib
import heapq
import hmac
import io
import itertools
import json
import math
import re
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx
import pypdf
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from include.errors import ReferenceNumberError
from include.finance.reference_numbers import format_ogm, ogm, parse_ogm, parse_rf
from include.pom import qr_layout
from include.pom.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

ENVIRONMENTS = ("prod", "beta")
CHANNELS = ("bancontact", "payconiq", "card")
QR_LIFETIME = timedelta(days=90)
TOKEN_TTL = timedelta(seconds=3600)
CALLBACK_ATTEMPTS = 3
BRUSSELS = ZoneInfo("Europe/Brussels")

MSG_RETRYING = "The email was rejected by the recipient's mail server. Retrying might result in a successful delivery."
MSG_BOUNCE_BLACKLISTED = (
    "The email was rejected by the recipient's mail server. It will be blacklisted to prevent further bounces."
)
MSG_BLACKLISTED = "EmailAddress of recipient is blacklisted."
MSG_MAILBOX_FULL = "The email was rejected by the recipient's mail server. The user's mailbox is full."
MSG_UNSUBSCRIBED = "User has unsubscribed from receiving pom mails."
MSG_DOCUMENT_ID_USED = "DocumentId already used."
DELIVERY_MESSAGES = (
    MSG_RETRYING,
    MSG_BOUNCE_BLACKLISTED,
    MSG_BLACKLISTED,
    MSG_MAILBOX_FULL,
    MSG_UNSUBSCRIBED,
    MSG_DOCUMENT_ID_USED,
)
REPORT_HEADER = ("Batch", "DocumentId", "RecipientName", "EmailAddress", "Status", "Description", "Timestamp")

_AMOUNT = re.compile(r"^(0|[1-9][0-9]{0,8})\.[0-9]{2}$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_URL = re.compile(r"^https?://[^\s]+$")

AccountKey = tuple[str, str]


class _Fail(Exception):
    """An API error answer; raised anywhere in a handler, turned into JSON by one exception handler."""

    def __init__(self, status: int, error: str, headers: Mapping[str, str] | None = None, **extra: Any) -> None:
        super().__init__(error)
        self.status = status
        self.body = {"error": error, **extra}
        self.headers = dict(headers or {})


def _invalid(field_name: str, message: str) -> _Fail:
    return _Fail(422, "invalid_request", field=field_name, message=message)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds")


@dataclass
class SimAccount:
    """One POM account in one environment, with what POM hands out for it."""

    env: str
    username: str
    password: str = field(repr=False)
    sender_id: str
    sender_contract_number: str
    callback_secret: str = field(repr=False)
    auto_cancel: bool = False

    @property
    def key(self) -> AccountKey:
        return (self.env, self.username)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SimAccount:
        """Build from the ``/_sim/accounts`` body (or an ``--accounts-json`` entry); ``ValueError`` names the field."""
        if data.get("env") not in ENVIRONMENTS:
            raise ValueError("env")
        for name in ("username", "password", "sender_id", "sender_contract_number", "callback_secret"):
            if not isinstance(data.get(name), str) or not data[name]:
                raise ValueError(name)
        auto_cancel = data.get("auto_cancel", False)
        if not isinstance(auto_cancel, bool):
            raise ValueError("auto_cancel")
        return cls(
            env=data["env"],
            username=data["username"],
            password=data["password"],
            sender_id=data["sender_id"],
            sender_contract_number=data["sender_contract_number"],
            callback_secret=data["callback_secret"],
            auto_cancel=auto_cancel,
        )


@dataclass(slots=True)
class _Qr:
    id: str
    request_id: str
    created_at: datetime
    expires_at: datetime
    cancelled: bool = False

    def status(self, now: datetime) -> str:
        if self.cancelled:
            return "cancelled"
        return "expired" if now >= self.expires_at else "active"


@dataclass(slots=True)
class _PaymentRequest:
    id: str
    account: AccountKey
    amount: str
    communication: str
    due_date: date | None
    description: str | None
    reference: str
    return_url: str | None
    callback_url: str | None
    auto_cancel: bool
    created_at: datetime
    qr_ids: list[str]
    status: str = "open"
    cancelled_at: datetime | None = None
    cancelled_reason: str | None = None
    payment: dict[str, str] | None = None

    @property
    def auto_cancel_at(self) -> datetime | None:
        """End of the due date in Brussels, when an auto-cancel request expires."""
        if not (self.auto_cancel and self.due_date):
            return None
        return datetime.combine(self.due_date + timedelta(days=1), day_time(0), BRUSSELS).astimezone(UTC)


@dataclass(slots=True)
class _Fault:
    path_contains: str
    kind: str
    times: int | None
    status: int
    seconds: float
    method: str | None


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


@dataclass(frozen=True, slots=True)
class _Pdf:
    """A document's PDF as received and read once: its bytes, their hash and its page count."""

    data: bytes
    sha256: str
    pages: int


@dataclass(frozen=True, slots=True)
class _Document:
    """One document as the simulator received it, kept for ``GET /_sim/documents``."""

    account: AccountKey
    batch: str
    document_id: str
    communication: str | None
    pdf: _Pdf | None
    recipients: tuple[tuple[str, str], ...]

    def to_json(self) -> dict[str, Any]:
        pdf = self.pdf
        return {
            "env": self.account[0],
            "username": self.account[1],
            "batch": self.batch,
            "document_id": self.document_id,
            "communication": self.communication,
            "sha256": pdf.sha256 if pdf else None,
            "pages": pdf.pages if pdf else None,
            "pdf": base64.b64encode(pdf.data).decode("ascii") if pdf else None,
            "recipients": [{"name": name, "email": email} for name, email in self.recipients],
        }


@dataclass(slots=True)
class _Batch:
    name: str
    account: AccountKey
    fingerprint: str
    documents: int
    sent_at: datetime
    lines: list[tuple[str, str, str, str, str, str, datetime]]


class SimulatorState:
    """Everything the simulator knows, behind one lock (handlers run on the loop, callbacks in threads)."""

    def __init__(
        self,
        accounts: Iterable[SimAccount] = (),
        *,
        rate_limit_per_second: float | None = None,
        callback_retry_delays: tuple[float, ...] = (1.0, 5.0),
        callback_timeout: float = 5.0,
        now: datetime | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self._initial_accounts = [replace(account) for account in accounts]
        self._initial_rate_limit = rate_limit_per_second
        self._initial_now = now
        self.callback_retry_delays = callback_retry_delays
        self._callback_timeout = callback_timeout
        self._callback_pool: ThreadPoolExecutor | None = None
        self._callback_http: httpx.Client | None = None
        self.generation = 0
        self.reset()

    def reset(self) -> None:
        """Forget everything but the accounts, rate limit and clock the simulator started with.

        Lets one server process serve a whole test session (starting uvicorn per
        test costs more than the test); callbacks still in flight finish into
        records nobody reads any more.
        """
        with self.lock:
            self.generation += 1
            now = self._initial_now
            self._offset = timedelta(0) if now is None else now - datetime.now(UTC)
            self.accounts: dict[AccountKey, SimAccount] = {a.key: replace(a) for a in self._initial_accounts}
            self._tokens: dict[str, tuple[AccountKey, datetime]] = {}
            self.requests: dict[str, _PaymentRequest] = {}
            self.qrs: dict[str, _Qr] = {}
            self._by_account: dict[AccountKey, list[str]] = {}
            self._idempotency: dict[tuple[AccountKey, str], tuple[str, str]] = {}
            self._expiring: list[tuple[datetime, str]] = []
            self._request_ids = itertools.count(1)
            self._qr_ids = itertools.count(1)
            self._event_ids = itertools.count(1)
            self.rate_limit: float | None = self._initial_rate_limit
            self._buckets: dict[AccountKey, _Bucket] = {}
            self.faults: list[_Fault] = []
            self.arrivals: Counter[tuple[str, str]] = Counter()
            self.statuses: Counter[tuple[str, str, int]] = Counter()
            self.callbacks: list[dict[str, Any]] = []
            self.batches: dict[tuple[AccountKey, str], _Batch] = {}
            self._document_ids: dict[AccountKey, set[str]] = {}
            self.documents: list[_Document] = []
            self._blacklisted: set[str] = set()
            self._unsubscribed: set[str] = set()
            self._delivery_rules: list[tuple[str, list[tuple[str, str, float]]]] = []

    # clock

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def move_clock(self, *, to: datetime | None = None, advance: timedelta | None = None) -> datetime:
        """Set or advance the clock, then apply what the new time implies (auto-cancel expiries)."""
        with self.lock:
            if to is not None:
                self._offset = to - datetime.now(UTC)
            if advance is not None:
                self._offset += advance
            self.sweep()
            return self.now()

    def sweep(self) -> None:
        """Expire the auto-cancel requests whose due date has ended (cheap: a heap keyed by expiry)."""
        with self.lock:
            now = self.now()
            while self._expiring and self._expiring[0][0] <= now:
                _, request_id = heapq.heappop(self._expiring)
                self._refresh(self.requests[request_id], now)

    def _refresh(self, req: _PaymentRequest, now: datetime) -> None:
        expiry = req.auto_cancel_at
        if req.status == "open" and expiry is not None and now >= expiry:
            req.status = "expired"
            req.cancelled_at = expiry
            req.cancelled_reason = "due date passed (auto_cancel)"
            for qr_id in req.qr_ids:
                self.qrs[qr_id].cancelled = True
            self._emit(req, "payment_request.expired")

    # accounts and tokens

    def add_account(self, account: SimAccount) -> None:
        with self.lock:
            self.accounts[account.key] = account

    def credentials_valid(self, env: str, username: str, password: str) -> bool:
        with self.lock:
            account = self.accounts.get((env, username))
        return account is not None and hmac.compare_digest(account.password.encode(), password.encode())

    def issue_token(self, key: AccountKey) -> str:
        token = secrets.token_urlsafe(24)
        with self.lock:
            self._tokens[token] = (key, self.now() + TOKEN_TTL)
        return token

    def account_for_token(self, env: str, token: str) -> SimAccount | None:
        with self.lock:
            entry = self._tokens.get(token)
            if entry is None or entry[0][0] != env:
                return None
            if self.now() >= entry[1]:
                del self._tokens[token]
                return None
            return self.accounts.get(entry[0])

    def take_rate(self, key: AccountKey) -> int | None:
        """None when the account may make a request now, else the whole seconds to wait (token bucket, burst R)."""
        rate = self.rate_limit
        if rate is None:
            return None
        with self.lock:
            moment = time.monotonic()
            bucket = self._buckets.get(key)
            capacity = max(1.0, rate)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(capacity, moment)
            bucket.tokens = min(capacity, bucket.tokens + (moment - bucket.updated) * rate)
            bucket.updated = moment
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return None
            return max(1, math.ceil((1.0 - bucket.tokens) / rate))

    def set_rate_limit(self, per_second: float | None) -> None:
        with self.lock:
            self.rate_limit = per_second
            self._buckets.clear()

    # payment requests

    def create_request(
        self, account: SimAccount, key: str, fingerprint: str, fields: Mapping[str, Any]
    ) -> tuple[_PaymentRequest, bool]:
        """The request for this idempotency key: ``(request, True)`` when new, ``(request, False)`` on a replay."""
        with self.lock:
            seen = self._idempotency.get((account.key, key))
            if seen is not None:
                if seen[0] != fingerprint:
                    raise _Fail(422, "idempotency_key_reused", message="this Idempotency-Key came with another body")
                return self.get_request(account, seen[1]), False
            req = self._new_request(account, **fields)
            self._idempotency[(account.key, key)] = (fingerprint, req.id)
            return req, True

    def _new_request(
        self,
        account: SimAccount,
        *,
        amount: str,
        communication: str,
        due_date: date | None,
        description: str | None,
        reference: str,
        return_url: str | None,
        callback_url: str | None,
        auto_cancel: bool | None,
    ) -> _PaymentRequest:
        now = self.now()
        req = _PaymentRequest(
            id=f"pr_{next(self._request_ids):06d}",
            account=account.key,
            amount=amount,
            communication=communication,
            due_date=due_date,
            description=description,
            reference=reference,
            return_url=return_url,
            callback_url=callback_url,
            auto_cancel=account.auto_cancel if auto_cancel is None else auto_cancel,
            created_at=now,
            qr_ids=[],
        )
        self.requests[req.id] = req
        self._by_account.setdefault(account.key, []).append(req.id)
        self._add_qr(req, now)
        expiry = req.auto_cancel_at
        if expiry is not None:
            heapq.heappush(self._expiring, (expiry, req.id))
        return req

    def _add_qr(self, req: _PaymentRequest, now: datetime) -> _Qr:
        qr = _Qr(f"qr_{next(self._qr_ids):06d}", req.id, now, now + QR_LIFETIME)
        self.qrs[qr.id] = qr
        req.qr_ids.append(qr.id)
        return qr

    def get_request(self, account: SimAccount, request_id: str) -> _PaymentRequest:
        with self.lock:
            req = self.requests.get(request_id)
            if req is None or req.account != account.key:
                raise _Fail(404, "not_found")
            self._refresh(req, self.now())
            return req

    def cancel(self, account: SimAccount, request_id: str, reason: str | None) -> _PaymentRequest:
        with self.lock:
            req = self.get_request(account, request_id)
            if req.status == "paid":
                raise _Fail(409, "already_paid")
            if req.status == "open":
                req.status = "cancelled"
                req.cancelled_at = self.now()
                req.cancelled_reason = reason
                for qr_id in req.qr_ids:
                    self.qrs[qr_id].cancelled = True
                self._emit(req, "payment_request.cancelled")
            return req

    def renew_qr(self, account: SimAccount, request_id: str) -> _PaymentRequest:
        with self.lock:
            req = self.get_request(account, request_id)
            if req.status != "open":
                raise _Fail(409, "not_open")
            self._add_qr(req, self.now())
            return req

    def pay_qr(self, qr_id: str, channel: str, *, callback: bool = True) -> _PaymentRequest:
        """Pay through a QR code as a banking app would; 410 when the code or its request cannot be paid."""
        with self.lock:
            qr = self.qrs.get(qr_id)
            if qr is None:
                raise _Fail(404, "not_found")
            req = self.requests[qr.request_id]
            now = self.now()
            self._refresh(req, now)
            if req.status != "open" or qr.status(now) != "active":
                raise _Fail(410, "not_payable")
            req.status = "paid"
            req.payment = {"amount": req.amount, "paid_at": _iso(now) or "", "channel": channel}
            if callback:
                self._emit(req, "payment_request.paid")
            return req

    def pay_request(self, request_id: str, channel: str, *, callback: bool) -> _PaymentRequest:
        with self.lock:
            req = self.requests.get(request_id)
            if req is None:
                raise _Fail(404, "not_found")
            return self.pay_qr(req.qr_ids[-1], channel, callback=callback)

    def qr_for_account(self, account: SimAccount, qr_id: str) -> tuple[_Qr, _PaymentRequest]:
        with self.lock:
            qr = self.qrs.get(qr_id)
            if qr is None or self.requests[qr.request_id].account != account.key:
                raise _Fail(404, "not_found")
            return qr, self.requests[qr.request_id]

    def seed(self, account: SimAccount, count: int, amount: str, start_counter: int) -> list[str]:
        """``count`` open requests with consecutive OGMs, made in one go for benchmarks."""
        with self.lock:
            ids = []
            for counter in range(start_counter, start_counter + count):
                req = self._new_request(
                    account,
                    amount=amount,
                    communication=ogm("", counter),
                    due_date=None,
                    description=None,
                    reference=f"seed:{counter}",
                    return_url=None,
                    callback_url=None,
                    auto_cancel=False,
                )
                ids.append(req.id)
            return ids

    def request_ids(self, key: AccountKey) -> list[str]:
        with self.lock:
            return list(self._by_account.get(key, ()))

    def request_json(self, req: _PaymentRequest, base_url: str) -> dict[str, Any]:
        with self.lock:
            now = self.now()
            qr = self.qrs[req.qr_ids[-1]]
            env = req.account[0]
            pay_url = f"{base_url}/pay/{qr.id}"
            return {
                "id": req.id,
                "status": req.status,
                "amount": req.amount,
                "currency": "EUR",
                "communication": req.communication,
                "due_date": req.due_date.isoformat() if req.due_date else None,
                "description": req.description,
                "reference": req.reference,
                "auto_cancel": req.auto_cancel,
                "created_at": _iso(req.created_at),
                "cancelled_at": _iso(req.cancelled_at),
                "cancelled_reason": req.cancelled_reason,
                "payment": dict(req.payment) if req.payment else None,
                "qr": {
                    "id": qr.id,
                    "payload": pay_url,
                    "pay_url": pay_url,
                    "png_url": f"/api/{env}/qr-codes/{qr.id}.png",
                    "svg_url": f"/api/{env}/qr-codes/{qr.id}.svg",
                    "created_at": _iso(qr.created_at),
                    "expires_at": _iso(qr.expires_at),
                    "status": qr.status(now),
                },
            }

    # callbacks

    def _emit(self, req: _PaymentRequest, event_type: str) -> None:
        if not req.callback_url:
            return
        account = self.accounts[req.account]
        payment = req.payment or {}
        event = {
            "event_id": f"ev_{next(self._event_ids):06d}",
            "type": event_type,
            "request_id": req.id,
            "reference": req.reference,
            "status": req.status,
            "amount": req.amount,
            "paid_at": payment.get("paid_at"),
            "channel": payment.get("channel"),
            "communication": req.communication,
        }
        record: dict[str, Any] = {
            "event": event,
            "url": req.callback_url,
            "attempts": [],
            "delivered": False,
            "done": False,
        }
        self.callbacks.append(record)
        body = json.dumps(event, separators=(",", ":")).encode()
        if self._callback_pool is None:
            self._callback_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="pom-sim-callback")
            self._callback_http = httpx.Client(timeout=self._callback_timeout, trust_env=False)
        self._callback_pool.submit(self._deliver, record, body, account.callback_secret)

    def _deliver(self, record: dict[str, Any], body: bytes, secret: str) -> None:
        http = self._callback_http
        assert http is not None
        for attempt in range(1, CALLBACK_ATTEMPTS + 1):
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                TIMESTAMP_HEADER: str(timestamp),
                SIGNATURE_HEADER: sign(secret, timestamp, body),
            }
            outcome: dict[str, Any] = {"at": time.time()}
            try:
                outcome["status"] = http.post(record["url"], content=body, headers=headers).status_code
            except httpx.HTTPError as error:
                outcome["error"] = type(error).__name__
            except RuntimeError:
                return
            with self.lock:
                record["attempts"].append(outcome)
                if 200 <= outcome.get("status", 0) < 300:
                    record["delivered"] = True
                    break
            if attempt < CALLBACK_ATTEMPTS:
                time.sleep(self.callback_retry_delays[min(attempt - 1, len(self.callback_retry_delays) - 1)])
        with self.lock:
            record["done"] = True

    def close(self) -> None:
        if self._callback_pool is not None:
            self._callback_pool.shutdown(wait=False, cancel_futures=True)
        if self._callback_http is not None:
            self._callback_http.close()

    # faults and counters

    def take_fault(self, method: str, path: str) -> _Fault | None:
        if not self.faults:
            return None
        with self.lock:
            for index, fault in enumerate(self.faults):
                if fault.path_contains in path and (fault.method is None or fault.method == method):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            del self.faults[index]
                    return fault
            return None

    # delivery reports

    def is_replay(self, account: SimAccount, batch: str, fingerprint: str) -> bool:
        """Whether this batch name was stored with this very body (so its PDFs need not be read again)."""
        with self.lock:
            existing = self.batches.get((account.key, batch))
            return existing is not None and existing.fingerprint == fingerprint

    def send_batch(
        self,
        account: SimAccount,
        batch: str,
        documents: list[dict[str, Any]],
        fingerprint: str,
        pdfs: list[_Pdf | None],
    ) -> bool:
        """Store a batch, keep its documents and decide its report lines now; False when it is a replay.

        ``pdfs`` are the documents' PDFs as :func:`_read_pdfs` checked them, one
        per document, so that nothing of a batch is stored unless all of it is valid.
        """
        with self.lock:
            existing = self.batches.get((account.key, batch))
            if existing is not None:
                if existing.fingerprint != fingerprint:
                    raise _Fail(409, "batch_exists", message="this batch name was sent with other documents")
                return False
            now = self.now()
            used = self._document_ids.setdefault(account.key, set())
            lines: list[tuple[str, str, str, str, str, str, datetime]] = []
            for document, pdf in zip(documents, pdfs, strict=True):
                document_id = document["document_id"]
                duplicate = document_id in used
                used.add(document_id)
                self.documents.append(
                    _Document(
                        account=account.key,
                        batch=batch,
                        document_id=document_id,
                        communication=document.get("communication"),
                        pdf=pdf,
                        recipients=tuple((r["name"], r["email"]) for r in document["recipients"]),
                    )
                )
                for recipient in document["recipients"]:
                    for status, text, hours in self._outcomes(recipient["email"], duplicate):
                        stamp = now + timedelta(hours=hours)
                        lines.append((batch, document_id, recipient["name"], recipient["email"], status, text, stamp))
            self.batches[(account.key, batch)] = _Batch(batch, account.key, fingerprint, len(documents), now, lines)
            return True

    def _outcomes(self, email: str, duplicate: bool) -> list[tuple[str, str, float]]:
        address = email.lower()
        if duplicate:
            return [("FAILED", MSG_DOCUMENT_ID_USED, 0)]
        if address in self._unsubscribed:
            return [("FAILED", MSG_UNSUBSCRIBED, 0)]
        if address in self._blacklisted:
            return [("FAILED", MSG_BLACKLISTED, 0)]
        outcomes = next(
            (rule for contains, rule in self._delivery_rules if contains.lower() in address),
            [("DELIVERED", "", 0.0)],
        )
        for _, text, _ in outcomes:
            if text == MSG_BOUNCE_BLACKLISTED:
                self._blacklisted.add(address)
            if text == MSG_UNSUBSCRIBED:
                self._unsubscribed.add(address)
        return outcomes

    def add_delivery_rule(self, email_contains: str, outcomes: list[tuple[str, str, float]]) -> None:
        with self.lock:
            self._delivery_rules.insert(0, (email_contains, outcomes))

    def clear_delivery_rules(self) -> None:
        with self.lock:
            self._delivery_rules.clear()

    def received_documents(self, batch: str | None = None) -> list[dict[str, Any]]:
        """The documents received so far (of one batch name, if given), in the order they came."""
        with self.lock:
            kept = [d for d in self.documents if batch is None or d.batch == batch]
        return [document.to_json() for document in kept]

    def batch_names(self, account: SimAccount, since: date) -> list[str]:
        with self.lock:
            mine = [b for (key, _), b in self.batches.items() if key == account.key]
            mine.sort(key=lambda b: b.sent_at)
            return [b.name for b in mine if b.sent_at.astimezone(BRUSSELS).date() >= since]

    def report_csv(self, account: SimAccount, batch: str) -> str:
        """The report as it stands now: attempts whose time has not come yet are not in it."""
        with self.lock:
            found = self.batches.get((account.key, batch))
            if found is None:
                raise _Fail(404, "not_found")
            now = self.now()
            lines = sorted((line for line in found.lines if line[6] <= now), key=lambda line: line[6])
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(REPORT_HEADER)
        for line in lines:
            writer.writerow((*line[:6], _iso(line[6])))
        return out.getvalue()


# HTTP layer


def _json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(json.dumps(data).encode(), status, headers=dict(headers or {}), media_type="application/json")


async def _json_body(request: Request, *, optional: bool = False) -> dict[str, Any]:
    raw = await request.body()
    if optional and not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _Fail(400, "malformed_json") from None
    if not isinstance(data, dict):
        raise _invalid("body", "expected a JSON object")
    return data


def _base_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"


def _optional_text(body: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise _invalid(name, f"expected text of at most {limit} characters or null")
    return value


def _optional_url(body: Mapping[str, Any], name: str) -> str | None:
    value = _optional_text(body, name, 2000)
    if value is not None and not _URL.match(value):
        raise _invalid(name, "expected an http(s) URL or null")
    return value


def _validate_create(body: Mapping[str, Any]) -> dict[str, Any]:
    """The create body checked field by field; the first bad field gives the 422."""
    amount = body.get("amount")
    if not isinstance(amount, str) or not _AMOUNT.match(amount):
        raise _invalid("amount", "expected a decimal string with two decimals, e.g. \"12.50\"")
    if all(ch in "0." for ch in amount):
        raise _invalid("amount", "amount must be positive")
    if body.get("currency") != "EUR":
        raise _invalid("currency", "only EUR")
    compact = _compact_communication(body.get("communication"), "communication")
    due = body.get("due_date")
    due_date: date | None = None
    if due is not None:
        if not isinstance(due, str) or not _DATE.match(due):
            raise _invalid("due_date", "expected YYYY-MM-DD or null")
        try:
            due_date = date.fromisoformat(due)
        except ValueError:
            raise _invalid("due_date", "not a calendar date") from None
    reference = body.get("reference")
    if not isinstance(reference, str) or not reference or len(reference) > 100:
        raise _invalid("reference", "expected text of 1 to 100 characters")
    auto_cancel = body.get("auto_cancel")
    if auto_cancel is not None and not isinstance(auto_cancel, bool):
        raise _invalid("auto_cancel", "expected true, false or null")
    return {
        "amount": amount,
        "communication": compact,
        "due_date": due_date,
        "description": _optional_text(body, "description", 140),
        "reference": reference,
        "return_url": _optional_url(body, "return_url"),
        "callback_url": _optional_url(body, "callback_url"),
        "auto_cancel": auto_cancel,
    }


def _compact_communication(communication: Any, field_name: str) -> str:
    """The compact form (12 digits or ``RF…``) of an OGM or RF reference; 422 naming ``field_name`` otherwise."""
    if not isinstance(communication, str):
        raise _invalid(field_name, "expected an OGM or an RF reference")
    try:
        if communication.strip().upper().startswith("RF"):
            return parse_rf(communication)
        return parse_ogm(communication)
    except ReferenceNumberError as error:
        raise _invalid(field_name, str(error)) from None


def _fingerprint(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _validate_documents(body: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    batch = body.get("batch")
    if not isinstance(batch, str) or not batch or len(batch) > 100 or "/" in batch:
        raise _invalid("batch", "expected a name of 1 to 100 characters without /")
    documents = body.get("documents")
    if not isinstance(documents, list):
        raise _invalid("documents", "expected a list")
    for index, document in enumerate(documents):
        document_id = document.get("document_id") if isinstance(document, dict) else None
        if not isinstance(document_id, str) or not document_id:
            raise _invalid(f"documents[{index}].document_id", "expected text")
        recipients = document.get("recipients")
        if not isinstance(recipients, list):
            raise _invalid(f"documents[{index}].recipients", "expected a list")
        for r_index, recipient in enumerate(recipients):
            if not (
                isinstance(recipient, dict)
                and isinstance(recipient.get("name"), str)
                and isinstance(recipient.get("email"), str)
                and "@" in recipient["email"]
            ):
                raise _invalid(f"documents[{index}].recipients[{r_index}]", "expected {name, email}")
        pdf = document.get("pdf")
        if pdf is not None and not isinstance(pdf, str):
            raise _invalid(f"documents[{index}].pdf", "expected the PDF in base64 or null")
        communication = document.get("communication")
        if communication is not None:
            _compact_communication(communication, f"documents[{index}].communication")
            if pdf is None:
                raise _invalid(f"documents[{index}].pdf", "a communication needs the PDF that shows it")
    return batch, documents


def _read_pdfs(documents: list[dict[str, Any]]) -> list[_Pdf | None]:
    """Decode and read each document's PDF once; the first one that is not fit gives the 422.

    Fit means: base64 of a PDF that pypdf opens and extracts text from, and
    whose text shows the document's communication when it has one. Reading a
    PDF costs milliseconds rather than microseconds, so the handler runs this
    in a worker thread; each page's text is extracted once and the search for
    the communication is one pass over the whole text, so a large batch costs
    in proportion to its size.
    """
    read: list[_Pdf | None] = []
    for index, document in enumerate(documents):
        encoded = document.get("pdf")
        if encoded is None:
            read.append(None)
            continue
        field_name = f"documents[{index}].pdf"
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise _invalid(field_name, "not valid base64") from None
        if not data.startswith(b"%PDF-"):
            raise _invalid(field_name, "not a PDF (it does not start with %PDF-)")
        try:
            reader = pypdf.PdfReader(io.BytesIO(data))
            texts = [page.extract_text() or "" for page in reader.pages]
        except Exception as error:  # a damaged file can fail anywhere inside pypdf, with any kind of error
            raise _invalid(field_name, f"not a readable PDF ({type(error).__name__})") from None
        if not texts:
            raise _invalid(field_name, "the PDF has no pages")
        communication = document.get("communication")
        if communication is not None and not _shows_communication("\n".join(texts), communication):
            raise _invalid(field_name, f"the structured communication {communication} is missing from the PDF's text")
        read.append(_Pdf(data, hashlib.sha256(data).hexdigest(), len(texts)))
    return read


def _shows_communication(text: str, communication: str) -> bool:
    """Whether the text shows the communication, whitespace ignored.

    An OGM counts as its 12 digits or as ``+++ddd/dddd/ddddd+++``; an RF
    reference is compared in upper case, so groups of four match it too.
    """
    compact = _compact_communication(communication, "communication")
    flat = "".join(text.split())
    if compact.startswith("RF"):
        return compact in flat.upper()
    return compact in flat or format_ogm(compact) in flat


class _FaultsAndCounters:
    """Pure ASGI middleware: counts every request and applies injected faults outside ``/_sim``.

    Pure ASGI (not a BaseHTTPMiddleware) because it sits on every request of a
    100k-request run and must cost next to nothing when no fault is set.
    """

    def __init__(self, app: Callable[..., Awaitable[None]], state: SimulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = self.state
        method, path = scope["method"], scope["path"]
        simulated = path.startswith("/_sim")
        generation = state.generation
        if not simulated:
            with state.lock:
                state.arrivals[(method, path)] += 1

        async def counting_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and not simulated:
                with state.lock:
                    if state.generation == generation:
                        state.statuses[(method, path, message["status"])] += 1
            await send(message)

        fault = None if simulated else state.take_fault(method, path)
        if fault is None:
            await self.app(scope, receive, counting_send)
        elif fault.kind == "status":
            headers = {"Retry-After": str(max(1, math.ceil(fault.seconds or 1)))} if fault.status == 429 else {}
            response = _json_response({"error": "injected_fault", "status": fault.status}, fault.status, headers)
            await response(scope, receive, counting_send)
        elif fault.kind == "latency":
            await asyncio.sleep(fault.seconds)
            await self.app(scope, receive, counting_send)
        else:
            messages: list[dict[str, Any]] = []

            async def buffer(message: dict[str, Any]) -> None:
                messages.append(message)

            await self.app(scope, receive, buffer)
            if fault.kind == "timeout":
                await asyncio.sleep(fault.seconds)
            else:
                body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
                garbled = body[: max(1, len(body) // 2)] or b"{"
                start = next(m for m in messages if m["type"] == "http.response.start")
                headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(garbled)).encode()))
                messages = [
                    {**start, "headers": headers},
                    {"type": "http.response.body", "body": garbled, "more_body": False},
                ]
            for message in messages:
                await counting_send(message)


def create_app(
    accounts: Iterable[SimAccount | Mapping[str, Any]] = (),
    *,
    rate_limit_per_second: float | None = None,
    callback_retry_delays: tuple[float, ...] = (1.0, 5.0),
    callback_timeout: float = 5.0,
    now: datetime | None = None,
) -> FastAPI:
    """The simulator as an ASGI app; its :class:`SimulatorState` is ``app.state.pom``."""
    state = SimulatorState(
        (a if isinstance(a, SimAccount) else SimAccount.from_json(a) for a in accounts),
        rate_limit_per_second=rate_limit_per_second,
        callback_retry_delays=callback_retry_delays,
        callback_timeout=callback_timeout,
        now=now,
    )
    app = FastAPI(title="POM simulator", description="Serves include/pom/API.md", openapi_url=None)
    app.state.pom = state

    @app.exception_handler(_Fail)
    async def _fail(_: Request, error: _Fail) -> Response:
        return _json_response(error.body, error.status, error.headers)

    def authorize(env: str, request: Request) -> SimAccount:
        if env not in ENVIRONMENTS:
            raise _Fail(404, "not_found")
        state.sweep()
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        account = state.account_for_token(env, token) if token else None
        if account is None:
            raise _Fail(401, "invalid_token", headers={"WWW-Authenticate": "Bearer"})
        wait = state.take_rate(account.key)
        if wait is not None:
            raise _Fail(429, "rate_limited", headers={"Retry-After": str(wait)})
        if (
            request.headers.get("x-pom-sender-id") != account.sender_id
            or request.headers.get("x-pom-sender-contract-number") != account.sender_contract_number
        ):
            raise _Fail(403, "sender_mismatch")
        return account

    @app.post("/api/{env}/auth/token")
    async def token(env: str, request: Request) -> Response:
        if env not in ENVIRONMENTS:
            raise _Fail(404, "not_found")
        body = await _json_body(request)
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise _Fail(401, "invalid_credentials")
        if not state.credentials_valid(env, username, password):
            raise _Fail(401, "invalid_credentials")
        wait = state.take_rate((env, username))
        if wait is not None:
            raise _Fail(429, "rate_limited", headers={"Retry-After": str(wait)})
        issued = state.issue_token((env, username))
        lifetime = int(TOKEN_TTL.total_seconds())
        return _json_response({"access_token": issued, "token_type": "Bearer", "expires_in": lifetime})

    @app.post("/api/{env}/payment-requests")
    async def create(env: str, request: Request) -> Response:
        account = authorize(env, request)
        key = request.headers.get("idempotency-key", "")
        if not key or len(key) > 100:
            raise _invalid("Idempotency-Key", "header required, at most 100 characters")
        body = await _json_body(request)
        fields = _validate_create(body)
        req, created = state.create_request(account, key, _fingerprint(body), fields)
        return _json_response(state.request_json(req, _base_url(request)), 201 if created else 200)

    @app.get("/api/{env}/payment-requests/{request_id}")
    async def get(env: str, request_id: str, request: Request) -> Response:
        account = authorize(env, request)
        return _json_response(state.request_json(state.get_request(account, request_id), _base_url(request)))

    @app.post("/api/{env}/payment-requests/{request_id}/cancel")
    async def cancel(env: str, request_id: str, request: Request) -> Response:
        account = authorize(env, request)
        body = await _json_body(request, optional=True)
        reason = _optional_text(body, "reason", 200)
        return _json_response(state.request_json(state.cancel(account, request_id, reason), _base_url(request)))

    @app.post("/api/{env}/payment-requests/{request_id}/qr-codes")
    async def renew(env: str, request_id: str, request: Request) -> Response:
        account = authorize(env, request)
        return _json_response(state.request_json(state.renew_qr(account, request_id), _base_url(request)), 201)

    @app.get("/api/{env}/qr-codes/{filename}")
    async def qr_image(env: str, filename: str, request: Request) -> Response:
        account = authorize(env, request)
        qr_id, _, kind = filename.rpartition(".")
        if kind not in ("png", "svg"):
            raise _Fail(404, "not_found")
        qr, req = state.qr_for_account(account, qr_id)
        communication = format_ogm(req.communication) if req.communication.isdigit() else req.communication
        layout = qr_layout.QrLayout(
            payload=f"{_base_url(request)}/pay/{qr.id}",
            amount=req.amount,
            communication=communication,
            due_date=req.due_date.isoformat() if req.due_date else None,
            test_mode=env == "beta",
        )
        if kind == "png":
            return Response(_png(layout), media_type="image/png")
        return Response(_svg(layout), media_type="image/svg+xml")

    @app.post("/pay/{qr_id}")
    async def pay(qr_id: str, request: Request) -> Response:
        body = await _json_body(request, optional=True)
        channel = body.get("channel", "bancontact")
        if channel not in CHANNELS:
            raise _invalid("channel", f"one of {', '.join(CHANNELS)}")
        req = state.pay_qr(qr_id, channel)
        return _json_response({"request_id": req.id, **(req.payment or {})})

    @app.get("/pay/{qr_id}")
    async def pay_in_browser(qr_id: str) -> Response:
        req = state.pay_qr(qr_id, "card")
        if req.return_url:
            separator = "&" if "?" in req.return_url else "?"
            query = urlencode({"request_id": req.id, "status": "paid"})
            return RedirectResponse(f"{req.return_url}{separator}{query}", status_code=303)
        return HTMLResponse(f"<!doctype html><title>POM</title><p>Betaling geslaagd: {req.amount} EUR.</p>")

    @app.post("/api/{env}/document-batches")
    async def send_documents(env: str, request: Request) -> Response:
        account = authorize(env, request)
        body = await _json_body(request)
        batch, documents = _validate_documents(body)
        fingerprint = _fingerprint(body)
        if state.is_replay(account, batch, fingerprint):
            return _json_response({"batch": batch, "documents": len(documents)})
        pdfs = await asyncio.to_thread(_read_pdfs, documents)
        created = state.send_batch(account, batch, documents, fingerprint, pdfs)
        return _json_response({"batch": batch, "documents": len(documents)}, 201 if created else 200)

    @app.get("/api/{env}/delivery-reports")
    async def report_list(env: str, request: Request, sent_since: str = "1970-01-01") -> Response:
        account = authorize(env, request)
        if not _DATE.match(sent_since):
            raise _invalid("sent_since", "expected YYYY-MM-DD")
        try:
            since = date.fromisoformat(sent_since)
        except ValueError:
            raise _invalid("sent_since", "not a calendar date") from None
        return _json_response({"batches": state.batch_names(account, since)})

    @app.get("/api/{env}/delivery-reports/{batch}")
    async def report(env: str, batch: str, request: Request) -> Response:
        account = authorize(env, request)
        return Response(state.report_csv(account, batch).encode(), media_type="text/csv; charset=utf-8")

    _add_controls(app, state)
    app.add_middleware(_FaultsAndCounters, state=state)
    return app


@functools.lru_cache(maxsize=512)
def _png(layout: qr_layout.QrLayout) -> bytes:
    return qr_layout.png(layout)


@functools.lru_cache(maxsize=512)
def _svg(layout: qr_layout.QrLayout) -> bytes:
    return qr_layout.svg(layout).encode()


def _add_controls(app: FastAPI, state: SimulatorState) -> None:
    """The ``/_sim`` routes: what a test does to the simulated world (never part of POM)."""

    @app.post("/_sim/reset")
    async def reset() -> Response:
        state.reset()
        return _json_response({"reset": True})

    @app.post("/_sim/accounts")
    async def add_account(request: Request) -> Response:
        body = await _json_body(request)
        try:
            account = SimAccount.from_json(body)
        except ValueError as error:
            raise _invalid(str(error), "missing or invalid") from None
        state.add_account(account)
        return _json_response({"env": account.env, "username": account.username}, 201)

    @app.get("/_sim/clock")
    async def get_clock() -> Response:
        return _json_response({"now": _iso(state.now())})

    @app.post("/_sim/clock")
    async def set_clock(request: Request) -> Response:
        body = await _json_body(request)
        try:
            if "now" in body:
                target = datetime.fromisoformat(body["now"])
                moved = state.move_clock(to=target if target.tzinfo else target.replace(tzinfo=UTC))
            else:
                seconds = float(body.get("advance_days", 0)) * 86400 + float(body.get("advance_seconds", 0))
                moved = state.move_clock(advance=timedelta(seconds=seconds))
        except (TypeError, ValueError):
            raise _invalid("now", "expected now (ISO 8601), advance_days or advance_seconds") from None
        return _json_response({"now": _iso(moved)})

    @app.post("/_sim/rate-limit")
    async def rate_limit(request: Request) -> Response:
        body = await _json_body(request)
        per_second = body.get("per_second")
        number = isinstance(per_second, (int, float)) and not isinstance(per_second, bool)
        if per_second is not None and (not number or per_second <= 0):
            raise _invalid("per_second", "expected a positive number or null")
        state.set_rate_limit(None if per_second is None else float(per_second))
        return _json_response({"per_second": state.rate_limit})

    @app.post("/_sim/faults")
    async def add_fault(request: Request) -> Response:
        body = await _json_body(request)
        kind = body.get("kind", "status")
        if kind not in ("status", "latency", "timeout", "malformed"):
            raise _invalid("kind", "status, latency, timeout or malformed")
        times = body.get("times", 1)
        if times is not None and (not isinstance(times, int) or times < 1):
            raise _invalid("times", "a positive integer or null for always")
        fault = _Fault(
            path_contains=str(body.get("path_contains", "")),
            kind=kind,
            times=times,
            status=int(body.get("status", 503)),
            seconds=float(body.get("seconds", 30.0 if kind == "timeout" else 0.0)),
            method=body.get("method"),
        )
        with state.lock:
            state.faults.append(fault)
        return _json_response(asdict(fault), 201)

    @app.delete("/_sim/faults")
    async def clear_faults() -> Response:
        with state.lock:
            state.faults.clear()
        return _json_response({"faults": 0})

    @app.post("/_sim/pay/{request_id}")
    async def sim_pay(request_id: str, request: Request) -> Response:
        body = await _json_body(request, optional=True)
        channel = body.get("channel", "bancontact")
        if channel not in CHANNELS:
            raise _invalid("channel", f"one of {', '.join(CHANNELS)}")
        req = state.pay_request(request_id, channel, callback=bool(body.get("callback", True)))
        return _json_response(state.request_json(req, _base_url(request)))

    @app.get("/_sim/documents")
    async def documents(batch: str | None = None) -> Response:
        return _json_response({"documents": state.received_documents(batch)})

    @app.get("/_sim/callbacks")
    async def callbacks() -> Response:
        with state.lock:
            records = [{**record, "attempts": list(record["attempts"])} for record in state.callbacks]
        return _json_response({"callbacks": records})

    @app.post("/_sim/delivery-outcomes")
    async def delivery_outcomes(request: Request) -> Response:
        body = await _json_body(request)
        contains = body.get("email_contains")
        outcomes = body.get("outcomes")
        if not isinstance(contains, str) or not contains:
            raise _invalid("email_contains", "expected text")
        try:
            parsed = [(str(status), str(text), float(hours)) for status, text, hours in outcomes]
        except (TypeError, ValueError):
            raise _invalid("outcomes", "expected [[status, text, hours], …]") from None
        if not parsed or any(status not in ("DELIVERED", "FAILED") for status, _, _ in parsed):
            raise _invalid("outcomes", "status is DELIVERED or FAILED")
        state.add_delivery_rule(contains, parsed)
        return _json_response({"email_contains": contains, "outcomes": parsed}, 201)

    @app.delete("/_sim/delivery-outcomes")
    async def clear_delivery_outcomes() -> Response:
        state.clear_delivery_rules()
        return _json_response({"rules": 0})

    @app.post("/_sim/seed-requests")
    async def seed(request: Request) -> Response:
        body = await _json_body(request)
        account = state.accounts.get((body.get("env"), body.get("username")))
        if account is None:
            raise _Fail(404, "not_found", message="no such account")
        count, amount, start = body.get("count"), body.get("amount", "10.00"), body.get("start_counter", 1)
        if not isinstance(count, int) or not 1 <= count <= 1_000_000:
            raise _invalid("count", "1 to 1000000")
        if not isinstance(amount, str) or not _AMOUNT.match(amount) or amount == "0.00":
            raise _invalid("amount", "a positive decimal string with two decimals")
        if not isinstance(start, int) or start < 0 or start + count > 10**10:
            raise _invalid("start_counter", "a counter that fits ten OGM digits")
        return _json_response({"ids": state.seed(account, count, amount, start)}, 201)

    @app.get("/_sim/requests")
    async def requests_of(env: str, username: str) -> Response:
        ids = state.request_ids((env, username))
        return _json_response({"count": len(ids), "ids": ids})

    @app.get("/_sim/hits")
    async def hits(path_contains: str = "", method: str | None = None) -> Response:
        with state.lock:
            paths = {
                f"{m} {p}": n
                for (m, p), n in state.arrivals.items()
                if path_contains in p and (method is None or m == method)
            }
            statuses: Counter[str] = Counter()
            for (m, p, status), n in state.statuses.items():
                if path_contains in p and (method is None or m == method):
                    statuses[str(status)] += n
        return _json_response({"total": sum(paths.values()), "paths": paths, "statuses": dict(statuses)})

    @app.delete("/_sim/hits")
    async def clear_hits() -> Response:
        with state.lock:
            state.arrivals.clear()
            state.statuses.clear()
        return _json_response({"total": 0})


class RunningSimulator:
    """A simulator serving on loopback from a background thread; stop it (or leave the ``with``) when done."""

    def __init__(self, app: FastAPI, server: uvicorn.Server, thread: threading.Thread, base_url: str) -> None:
        self.app = app
        self.state: SimulatorState = app.state.pom
        self.base_url = base_url
        self._server = server
        self._thread = thread

    def stop(self) -> None:
        """Stop serving; requests held by a timeout fault are cut after one second."""
        self._server.should_exit = True
        self._thread.join(timeout=3)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout=3)
        self.state.close()

    def __enter__(self) -> RunningSimulator:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def run_in_thread(
    host: str = "127.0.0.1",
    port: int = 0,
    accounts: Iterable[SimAccount | Mapping[str, Any]] = (),
    **app_options: Any,
) -> RunningSimulator:
    """Start the simulator on ``host:port`` (0 = a free port) and return once it answers."""
    app = create_app(accounts, **app_options)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
        backlog=2048,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="pom-simulator", daemon=True)
    thread.start()
    running = RunningSimulator(app, server, thread, f"http://{host}:{bound_port}")
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            running.stop()
            raise RuntimeError("the POM simulator did not start")
        time.sleep(0.005)
    with httpx.Client(base_url=running.base_url, timeout=2, trust_env=False) as http:
        http.get("/_sim/clock").raise_for_status()
    return running


def main(argv: list[str] | None = None) -> None:
    """Command line: serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.pom_simulator", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8077)
    parser.add_argument("--accounts-json", type=Path, help="a JSON list of accounts as POST /_sim/accounts takes them")
    parser.add_argument("--rate-limit", type=float, default=None, help="requests per second per account")
    args = parser.parse_args(argv)
    accounts = json.loads(args.accounts_json.read_text()) if args.accounts_json else []
    app = create_app(accounts, rate_limit_per_second=args.rate_limit)
    print(f"POM simulator on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False, backlog=2048)


if __name__ == "__main__":
    main()
