"""The one POM client: payment requests, QR images and delivery reports over httpx.

It speaks the shape written down in ``include/pom/API.md``. What it adds to
plain HTTP is what a nightly job needs to be boring:

* a token obtained on first use and obtained again once when POM says it expired;
* retries with exponential backoff and jitter, only where repeating cannot do
  harm: connection failures, 5xx, 429 (waiting as long as ``Retry-After``
  says), and timeouts or garbled bodies on calls that are safe to repeat (reads,
  creates carrying an idempotency key, cancels, document batches). A 4xx answer
  is a decision by POM and is never retried;
* a client-side pacer at the account's rate limit, so that a reconciliation of
  100k requests runs close to the allowed rate instead of bouncing off 429s;
* logs that carry method, path and status only: never credentials, tokens,
  callback secrets or headers;
* answers read as a stream up to a limit per kind of call (:data:`JSON_MAX_BYTES`,
  :data:`IMAGE_MAX_BYTES`, a delivery report's :data:`REPORT_MAX_BYTES`), so a
  broken or hostile server cannot fill the worker's memory: a longer answer is
  dropped unread and raises :class:`PomUnavailable` at once (repeating would
  fetch it again).
"""

from __future__ import annotations

import base64
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Literal, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx

from include.errors import ConfigError, InnenError
from include.finance.money import format_amount, money
from include.pom.delivery_reader import MAX_BYTES as REPORT_MAX_BYTES

log = logging.getLogger(__name__)

ENVIRONMENTS = ("prod", "beta")
DEFAULT_MAX_ATTEMPTS = 4
# The most of an answer the client reads (see the module docstring). POM's JSON answers are a few KiB and its
# QR images some tens of KiB: the limits leave room for growth, not for a runaway body. A delivery report may be
# as large as the reader accepts (REPORT_MAX_BYTES, delivery_reader.MAX_BYTES); an error's body is only looked
# at for its code.
JSON_MAX_BYTES = 4 * 1024 * 1024
IMAGE_MAX_BYTES = 4 * 1024 * 1024
ERROR_MAX_BYTES = 64 * 1024

T = TypeVar("T")


LOCAL_ZONE = ZoneInfo("Europe/Brussels")


def instant(text: str) -> datetime:
    """A POM time as an aware UTC datetime: its offset kept in the instant (``Z`` accepted), none meaning
    Brussels time. UTC because SQLite stores a timestamp without its offset and we read stored ones as UTC.

    >>> instant("2026-03-29T03:30:00+02:00"), instant("2026-03-29T03:30:00")
    (datetime.datetime(2026, 3, 29, 1, 30, tzinfo=datetime.timezone.utc), datetime.datetime(2026, 3, 29, 1, 30, tzinfo=datetime.timezone.utc))
    """
    value = str(text).strip()
    moment = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LOCAL_ZONE)
    return moment.astimezone(timezone.utc)


class PomError(InnenError):
    """Root of the errors the POM client raises."""


class PomAuthError(PomError):
    """POM refused the credentials (401) or the sender id / contract number (403): fix the Connection."""

    def __init__(self, message: str, status: int, code: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class PomRejected(PomError):
    """POM answered a 4xx other than 401/403: it decided, so repeating the call would not help."""

    def __init__(self, message: str, status: int, code: str | None, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.field = field


class PomNotFound(PomRejected):
    """The payment request (or QR code, or batch) does not exist for this account."""


class PomUnavailable(PomError):
    """POM could not be reached or kept failing (connection, timeout, 5xx, 429, garbled body) after the retries."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


def _flag(value: Any, name: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise ConfigError(f"POM connection extra {name!r} must be true or false, got {value!r}")


def _amount_or_none(value: Any, name: str) -> Decimal | None:
    """An amount from a Connection extra: a string like ``"1.00"`` (a JSON number is read through its text)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ConfigError(f"POM connection extra {name!r} must be an amount like 1.00, got {value!r}")
    try:
        return money(str(value).strip())
    except ValueError:
        raise ConfigError(f"POM connection extra {name!r} must be an amount like 1.00, got {value!r}") from None


@dataclass(frozen=True)
class PomAccount:
    """One POM account: where it lives, who it is, and how hard we may call it.

    ``password`` and ``callback_secret`` are left out of ``repr`` so that an
    account can be logged or shown in a traceback without leaking them.
    """

    name: str
    base_url: str
    env: str
    username: str
    password: str = field(repr=False)
    sender_id: str
    sender_contract_number: str
    callback_secret: str = field(repr=False)
    rate_limit_per_second: float | None = None
    timeout_seconds: float = 10
    max_concurrency: int = 8
    auto_cancel: bool | None = None
    # Seed 004, 2.5.6 ``minamount``: the least open amount offered for online payment (None: any).
    min_amount: Decimal | None = None

    def __post_init__(self) -> None:
        if self.env not in ENVIRONMENTS:
            raise ConfigError(f"POM account {self.name!r}: env must be prod or beta, got {self.env!r}")
        if self.rate_limit_per_second is not None and self.rate_limit_per_second <= 0:
            raise ConfigError(f"POM account {self.name!r}: rate_limit_per_second must be positive")
        if self.max_concurrency < 1:
            raise ConfigError(f"POM account {self.name!r}: max_concurrency must be at least 1")
        if self.min_amount is not None and self.min_amount < 0:
            raise ConfigError(f"POM account {self.name!r}: min_amount must not be negative")

    @classmethod
    def from_connection(
        cls,
        name: str,
        *,
        host: str | None,
        port: int | None = None,
        schema: str | None = None,
        login: str | None,
        password: str | None,
        extra: Mapping[str, Any] | None = None,
    ) -> PomAccount:
        """Build from the fields of an Airflow Connection (passed in, so this module never imports Airflow).

        ``host`` may carry the scheme (``http://127.0.0.1``); otherwise ``schema``
        names it (default https). ``extra`` holds ``env`` ("prod"/"beta") or
        ``beta`` (the seed's "Testmodus" checkbox), ``sender_id``,
        ``sender_contract_number``, ``callback_secret`` and optionally
        ``rate_limit_per_second``, ``auto_cancel``, ``timeout_seconds``,
        ``max_concurrency``, ``min_amount`` (the least open amount a request
        is made for, e.g. ``"1.00"``; seed 004, 2.5.6 "Minimum bedrag").

        >>> account = PomAccount.from_connection(
        ...     "pom_gemeente", host="pom.example", port=None, schema="https", login="gemeente", password="pw",
        ...     extra={"beta": True, "sender_id": "S1", "sender_contract_number": "C1", "callback_secret": "cs"})
        >>> account.base_url, account.env
        ('https://pom.example', 'beta')
        >>> "pw" in repr(account) or "cs" in repr(account)
        False
        """
        extra = dict(extra or {})
        missing = [
            label
            for label, value in (
                ("host", host),
                ("login", login),
                ("password", password),
                ("extra.sender_id", extra.get("sender_id")),
                ("extra.sender_contract_number", extra.get("sender_contract_number")),
                ("extra.callback_secret", extra.get("callback_secret")),
            )
            if not value
        ]
        if missing:
            raise ConfigError(f"POM connection {name!r} lacks {', '.join(missing)}")
        assert host is not None and login is not None and password is not None
        beta = _flag(extra.get("beta"), "beta")
        env = extra.get("env")
        if env is None:
            env = "beta" if beta else "prod"
        elif beta is not None and (env == "beta") != beta:
            raise ConfigError(f"POM connection {name!r}: extra env={env!r} contradicts beta={beta!r}")
        base = host.rstrip("/") if "://" in host else f"{schema or 'https'}://{host.rstrip('/')}"
        if port and base.count(":") < 2:
            base = f"{base}:{port}"
        rate = extra.get("rate_limit_per_second")
        try:
            return cls(
                name=name,
                base_url=base,
                env=str(env),
                username=login,
                password=password,
                sender_id=str(extra["sender_id"]),
                sender_contract_number=str(extra["sender_contract_number"]),
                callback_secret=str(extra["callback_secret"]),
                rate_limit_per_second=None if rate in (None, "") else float(rate),
                timeout_seconds=float(extra.get("timeout_seconds", 10)),
                max_concurrency=int(extra.get("max_concurrency", 8)),
                auto_cancel=_flag(extra.get("auto_cancel"), "auto_cancel"),
                min_amount=_amount_or_none(extra.get("min_amount"), "min_amount"),
            )
        except (TypeError, ValueError) as error:
            raise ConfigError(f"POM connection {name!r}: {error}") from None


@dataclass(frozen=True)
class PomQr:
    """The current QR code of a request; ``status`` is active, expired or cancelled."""

    id: str
    payload: str
    pay_url: str
    png_url: str
    svg_url: str
    created_at: datetime
    expires_at: datetime
    status: str


@dataclass(frozen=True)
class PomPayment:
    """What POM says was paid, when and through which channel."""

    amount: Decimal
    paid_at: datetime
    channel: str


@dataclass(frozen=True)
class PomRequest:
    """A payment request as POM reports it; ``communication`` is in compact form."""

    id: str
    status: str
    amount: Decimal
    communication: str
    due_date: date | None
    reference: str
    auto_cancel: bool
    created_at: datetime
    cancelled_reason: str | None
    payment: PomPayment | None
    qr: PomQr | None
    description: str | None = None
    cancelled_at: datetime | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PomRequest:
        """Parse POM's JSON; a missing or mistyped field raises KeyError/TypeError/ValueError (a garbled answer)."""
        payment = data.get("payment")
        qr = data.get("qr")
        return cls(
            id=str(data["id"]),
            status=str(data["status"]),
            amount=money(str(data["amount"])),
            communication=str(data["communication"]),
            due_date=date.fromisoformat(data["due_date"]) if data.get("due_date") else None,
            reference=str(data["reference"]),
            auto_cancel=bool(data["auto_cancel"]),
            created_at=instant(data["created_at"]),
            cancelled_reason=data.get("cancelled_reason"),
            payment=None
            if not payment
            else PomPayment(
                amount=money(str(payment["amount"])),
                paid_at=instant(payment["paid_at"]),
                channel=str(payment["channel"]),
            ),
            qr=None
            if not qr
            else PomQr(
                id=str(qr["id"]),
                payload=str(qr["payload"]),
                pay_url=str(qr["pay_url"]),
                png_url=str(qr["png_url"]),
                svg_url=str(qr["svg_url"]),
                created_at=instant(qr["created_at"]),
                expires_at=instant(qr["expires_at"]),
                status=str(qr["status"]),
            ),
            description=data.get("description"),
            cancelled_at=instant(data["cancelled_at"]) if data.get("cancelled_at") else None,
        )


@dataclass(frozen=True)
class PomRecipient:
    """One addressee of an e-mailed document."""

    name: str
    email: str


@dataclass(frozen=True)
class PomDocument:
    """One document of a batch (an invoice PDF) and who receives it.

    ``pdf`` is the invoice itself (sent base64-encoded) and ``communication``
    the structured communication printed on it (``+++090/9337/55493+++`` or
    ``RF18 5390 0754 7034``), so that the receiving side can check that the PDF
    shows the reference the payer must use. Both default to None, which keeps
    the body of a batch without them exactly as it was. ``pdf`` stays out of
    ``repr`` so that a traceback does not print a whole invoice.
    """

    document_id: str
    recipients: tuple[PomRecipient, ...]
    pdf: bytes | None = field(default=None, repr=False)
    communication: str | None = None


class RatePacer:
    """Spaces request starts ``1/R`` seconds apart across all threads of one client.

    Pacing at the server's limit (rather than sending as fast as possible and
    backing off on 429) keeps a long reconciliation at close to R requests per
    second: every 429 costs at least a whole second of ``Retry-After``.
    """

    def __init__(
        self,
        per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / per_second
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self) -> None:
        """Block until this caller's slot comes."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            self._sleep(slot - now)

    def hold_off(self, seconds: float) -> None:
        """Let no request start for ``seconds`` (after a 429)."""
        with self._lock:
            self._next = max(self._next, self._clock() + seconds)


def _error_fields(body: bytes | None) -> dict[str, Any]:
    if body is None:  # longer than ERROR_MAX_BYTES: not an error body of POM's
        return {}
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _read_capped(response: httpx.Response, limit: int) -> bytes | None:
    """The (decoded) body of a streamed response, or None as soon as it is known to be longer than ``limit``.

    A declared length above the limit refuses before a byte is read; counting as the body arrives catches a
    chunked body, a lying length and a compressed body that inflates. What was read so far is dropped.
    """
    declared = response.headers.get("Content-Length", "")
    if declared.strip().isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _retry_after(response: httpx.Response) -> float:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.strip().isdigit() else 1.0


class PomClient:
    """A client for one :class:`PomAccount`; use as a context manager so its connections are closed.

    ``transport`` replaces the network (an ``httpx.MockTransport`` in tests),
    ``sleep``, ``clock`` and ``jitter`` make backoff and pacing testable
    without waiting.
    """

    def __init__(
        self,
        account: PomAccount,
        *,
        transport: httpx.BaseTransport | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff_base: float = 0.25,
        backoff_max: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.account = account
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._sleep = sleep
        self._jitter = jitter
        self._prefix = f"/api/{account.env}"
        connections = account.max_concurrency + 2
        self._http = httpx.Client(
            base_url=account.base_url,
            timeout=httpx.Timeout(account.timeout_seconds),
            transport=transport,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            follow_redirects=False,
        )
        self._sender_headers = {
            "X-POM-Sender-Id": account.sender_id,
            "X-POM-Sender-Contract-Number": account.sender_contract_number,
        }
        self._token: str | None = None
        self._token_lock = threading.RLock()
        rate = account.rate_limit_per_second
        self._pacer = RatePacer(rate, clock=clock, sleep=sleep) if rate else None

    def __repr__(self) -> str:
        return f"PomClient({self.account!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PomClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # payment requests

    def create_request(
        self,
        amount: Decimal,
        communication: str,
        *,
        due_date: date | None = None,
        description: str | None = None,
        reference: str,
        return_url: str | None = None,
        callback_url: str | None = None,
        auto_cancel: bool | None = None,
        idempotency_key: str,
    ) -> PomRequest:
        """Create a payment request; the idempotency key makes a repeated call return the first request.

        Use a key derived from what the request is for (reference, amount,
        version), so that a run that died after POM answered cannot create a
        second request when it runs again. ``auto_cancel=None`` takes the
        account's setting, and if that is None too, POM's default.
        """
        body = {
            "amount": format_amount(money(amount)),
            "currency": "EUR",
            "communication": communication,
            "due_date": due_date.isoformat() if due_date else None,
            "description": description,
            "reference": reference,
            "return_url": return_url,
            "callback_url": callback_url,
            "auto_cancel": self.account.auto_cancel if auto_cancel is None else auto_cancel,
        }
        return self._call(
            "POST",
            f"{self._prefix}/payment-requests",
            json_body=body,
            headers={"Idempotency-Key": idempotency_key},
            safe_to_repeat=True,
            parse=_parse_request,
        )

    def get_request(self, request_id: str) -> PomRequest:
        """The request as POM has it now (status, payment, current QR code)."""
        path = f"{self._prefix}/payment-requests/{quote(request_id, safe='')}"
        return self._call("GET", path, safe_to_repeat=True, parse=_parse_request)

    def cancel_request(self, request_id: str, reason: str | None = None) -> PomRequest:
        """Cancel a request and its QR codes; cancelling twice is harmless, a paid one raises PomRejected (409)."""
        return self._call(
            "POST",
            f"{self._prefix}/payment-requests/{quote(request_id, safe='')}/cancel",
            json_body={"reason": reason},
            safe_to_repeat=True,
            parse=_parse_request,
        )

    def renew_qr(self, request_id: str) -> PomRequest:
        """A new current QR code (before the 90-day limit); not repeated on a lost answer, which would add another."""
        return self._call(
            "POST",
            f"{self._prefix}/payment-requests/{quote(request_id, safe='')}/qr-codes",
            safe_to_repeat=False,
            parse=_parse_request,
        )

    def qr_image(self, qr_id: str, kind: Literal["png", "svg"] = "png") -> bytes:
        """The QR code in POM's layout, as PNG or SVG bytes."""
        if kind not in ("png", "svg"):
            raise ValueError(f"kind must be png or svg, not {kind!r}")
        return self._call(
            "GET",
            f"{self._prefix}/qr-codes/{quote(qr_id, safe='')}.{kind}",
            safe_to_repeat=True,
            parse=lambda body: body,
            max_bytes=IMAGE_MAX_BYTES,
        )

    def get_many(self, request_ids: Iterable[str]) -> Iterator[tuple[str, PomRequest | PomError]]:
        """``(id, request or error)`` for every id, in completion order, fetched by up to ``max_concurrency`` threads.

        One id's failure (not found, unavailable after retries) is yielded, not
        raised, so a nightly reconciliation books what it could read. An
        authentication failure is raised: no further id would succeed.
        Requests are paced at the account's rate limit.
        """
        workers = self.account.max_concurrency
        pending: dict[Future[PomRequest | PomError], str] = {}
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pom-get")
        try:
            for request_id in request_ids:
                if len(pending) >= 2 * workers:
                    yield from self._drain(pending)
                pending[pool.submit(self._get_or_error, request_id)] = request_id
            while pending:
                yield from self._drain(pending)
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)

    @staticmethod
    def _drain(pending: dict[Future[PomRequest | PomError], str]) -> Iterator[tuple[str, PomRequest | PomError]]:
        done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
        for future in done:
            request_id = pending.pop(future)
            yield request_id, future.result()

    def _get_or_error(self, request_id: str) -> PomRequest | PomError:
        try:
            return self.get_request(request_id)
        except PomAuthError:
            raise
        except PomError as error:
            return error

    # delivery reports

    def send_batch(self, batch: str, documents: Sequence[PomDocument]) -> int:
        """Hand POM a batch of documents to e-mail; the batch name makes a repeat harmless. Returns the count.

        A document's ``pdf`` (base64) and ``communication`` go along only when
        given, so a batch without them has the same body as before they existed.
        """
        sent: list[dict[str, Any]] = []
        for document in documents:
            item: dict[str, Any] = {
                "document_id": document.document_id,
                "recipients": [{"name": r.name, "email": r.email} for r in document.recipients],
            }
            if document.pdf is not None:
                item["pdf"] = base64.b64encode(document.pdf).decode("ascii")
            if document.communication is not None:
                item["communication"] = document.communication
            sent.append(item)
        body = {"batch": batch, "documents": sent}
        return self._call(
            "POST",
            f"{self._prefix}/document-batches",
            json_body=body,
            safe_to_repeat=True,
            parse=lambda body: int(json.loads(body)["documents"]),
        )

    def delivery_report_batches(self, sent_since: date) -> list[str]:
        """Names of the batches sent on or after ``sent_since``, oldest first."""
        return self._call(
            "GET",
            f"{self._prefix}/delivery-reports",
            params={"sent_since": sent_since.isoformat()},
            safe_to_repeat=True,
            parse=lambda body: [str(name) for name in json.loads(body)["batches"]],
        )

    def delivery_report(self, batch: str) -> bytes:
        """The CSV report of one batch: one line per e-mail attempt; PomUnavailable past REPORT_MAX_BYTES."""
        return self._call(
            "GET",
            f"{self._prefix}/delivery-reports/{quote(batch, safe='')}",
            safe_to_repeat=True,
            parse=lambda body: body,
            max_bytes=REPORT_MAX_BYTES,
        )

    # plumbing

    def _login(self) -> str:
        return self._call(
            "POST",
            f"{self._prefix}/auth/token",
            json_body={"username": self.account.username, "password": self.account.password},
            safe_to_repeat=True,
            parse=lambda body: str(json.loads(body)["access_token"]),
            authenticated=False,
        )

    def _current_token(self) -> str:
        with self._token_lock:
            if self._token is None:
                self._token = self._login()
            return self._token

    def _forget_token(self, token: str) -> None:
        with self._token_lock:
            if self._token == token:
                self._token = None

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return ceiling / 2 + self._jitter() * ceiling / 2

    def _call(
        self,
        method: str,
        path: str,
        *,
        parse: Callable[[bytes], T],
        safe_to_repeat: bool,
        max_bytes: int = JSON_MAX_BYTES,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        authenticated: bool = True,
    ) -> T:
        """One API call with the retry rules of the module docstring; logs method, path and status only.

        ``parse`` gets the body of a 2xx answer, read up to ``max_bytes``.
        """
        logged_in_again = False
        attempt = 0
        while True:
            attempt += 1
            if self._pacer is not None:
                self._pacer.wait()
            request_headers = dict(headers or {})
            token = ""
            if authenticated:
                token = self._current_token()
                request_headers.update(self._sender_headers)
                request_headers["Authorization"] = f"Bearer {token}"
            wait_at_least = 0.0
            try:
                with self._http.stream(
                    method, path, json=json_body, params=params, headers=request_headers
                ) as response:
                    status = response.status_code
                    limit = max_bytes if 200 <= status < 300 else ERROR_MAX_BYTES
                    body = _read_capped(response, limit)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
                retry, problem = True, f"cannot connect ({type(error).__name__})"
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as error:
                retry, problem = safe_to_repeat, f"no answer ({type(error).__name__})"
            else:
                log.debug("%s %s -> %s", method, path, status)
                if 200 <= status < 300:
                    if body is None:
                        raise PomUnavailable(
                            f"{method} {path}: the {status} answer is longer than the limit of {limit} bytes; "
                            "dropped unread",
                            attempt,
                        )
                    try:
                        return parse(body)
                    except (ValueError, KeyError, TypeError, ArithmeticError):
                        retry, problem = safe_to_repeat, f"garbled {status} answer"
                elif status == 401:
                    code = _error_fields(body).get("error")
                    if authenticated and code == "invalid_token" and not logged_in_again:
                        logged_in_again = True
                        self._forget_token(token)
                        attempt -= 1
                        continue
                    raise PomAuthError(f"{method} {path}: POM refused the credentials ({code})", status, code)
                elif status == 403:
                    code = _error_fields(body).get("error")
                    raise PomAuthError(f"{method} {path}: POM refused the sender id or contract ({code})", status, code)
                elif status == 429:
                    wait_at_least = _retry_after(response)
                    if self._pacer is not None:
                        self._pacer.hold_off(wait_at_least)
                    retry, problem = True, "rate limited (429)"
                elif status >= 500:
                    retry, problem = True, f"server error ({status})"
                else:
                    raise _rejection(method, path, status, body)
            if not retry or attempt >= self.max_attempts:
                raise PomUnavailable(f"{method} {path}: {problem} after {attempt} attempt(s)", attempt)
            delay = max(wait_at_least, self._backoff(attempt))
            log.warning(
                "%s %s: %s; attempt %d of %d, again in %.2f s", method, path, problem, attempt, self.max_attempts, delay
            )
            self._sleep(delay)


def _parse_request(body: bytes) -> PomRequest:
    return PomRequest.from_json(json.loads(body, parse_float=Decimal))  # amounts exact, never through a float


def _rejection(method: str, path: str, status: int, body: bytes | None) -> PomRejected:
    fields = _error_fields(body)
    code, field_name, message = fields.get("error"), fields.get("field"), fields.get("message")
    text = f"{method} {path}: POM rejected the call ({status} {code}"
    text += f", field {field_name}" if field_name else ""
    text += f": {message})" if message else ")"
    kind = PomNotFound if status == 404 else PomRejected
    return kind(text, status, code, field_name)
