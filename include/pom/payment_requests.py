"""Keeping exactly one open POM payment request per sealed, unpaid reference that may be paid online.

Which references want a request: sealed, an open amount left, their type
allows online payment, not collected by direct debit (a reference with a
mandate: the bank collects it, a QR code would invite paying twice), not
overdue when their type auto-cancels (seed 000, 4.4: those are cancelled,
not renewed), and an open amount no less than their POM account's
``min_amount`` when it sets one (seed 004, 2.5.6 "Minimum bedrag"; a
request whose reference fell below it, e.g. after a partial payment, is
cancelled). For each of them, per night:

* no request yet → create one;
* a request for another amount (the reference was partly paid, or its lines
  changed) → cancel it at POM ("amount changed") and create a new one (4.4);
* a QR code older than 90 days, or expiring within ``renew_within_days`` →
  ask POM for a new QR code on the same request (4.4: POM ends a QR code's
  life after 90 days);
* a live request for a reference that no longer wants one (paid another
  way, deleted, expired, now collected by direct debit) → cancel it; if POM
  says it was paid meanwhile, the payment is booked (or reported, when the
  reference was already closed).

Every step is its own small transaction, audited; a create is journalled
first (``creating``, with its idempotency key) so a crash or retry never
makes two requests at POM. POM unreachable for some references, or an
account it refuses (or without a Connection): the others go on, and the run
ends in :class:`PomSyncIncomplete` so Airflow retries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import ipaddress
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from include.config import public_url
from include.errors import ConfigError, InnenError
from include.finance.audit import audit_row, record_many
from include.finance.db import transaction
from include.finance.models import (
    LIVE_POM_REQUEST_STATUSES,
    PaymentReference,
    PaymentReferenceType,
    PomPaymentRequest,
)
from include.finance.reference_numbers import display_reference
from include.finance.statuses import (
    ENDED_UNPAID_POM_REQUEST,
    SYNC_FOUND,
    SYNC_RECEIVED,
    PomRequestStatus,
    Received,
    ReferenceStatus,
    RequestSync,
)
from include.pom.accounts import PomClients, accounts_from_connections
from include.pom.booking import PaidAtPom, book_paid_requests
from include.pom.client import PomAuthError, PomError, PomRejected, PomRequest, PomUnavailable

log = logging.getLogger(__name__)

QR_LIFETIME = timedelta(days=90)
DEFAULT_RENEW_WITHIN_DAYS = 14
LOCAL_ZONE = ZoneInfo("Europe/Brussels")


def overdue(due: date | None, auto_cancel: bool | None, now: datetime) -> bool:
    """Whether a reference of a type that auto-cancels is past its due date at ``now``.

    POM ends such a request at the end of its due date in Brussels (API.md), so the day that counts is the
    Brussels one, not the UTC one (which lags behind it an hour or two every night).

    >>> overdue(date(2026, 4, 15), True, datetime(2026, 4, 15, 22, 30, tzinfo=timezone.utc))  # 00:30 on the 16th
    True
    >>> overdue(date(2026, 4, 15), True, datetime(2026, 4, 15, 21, 59, tzinfo=timezone.utc))
    False
    """
    if not auto_cancel or due is None:
        return False
    moment = now if now.tzinfo else now.replace(tzinfo=timezone.utc)
    return due < moment.astimezone(LOCAL_ZONE).date()


def paid_with_payment(request: PomRequest) -> bool:
    """Whether POM's answer is a payment Innen books: status paid, with a payment above zero (as a callback's)."""
    return request.status == PomRequestStatus.PAID and request.payment is not None and request.payment.amount > 0


def unknown_status(request: PomRequest) -> str:
    """How to name a POM answer Innen cannot act on: a status API.md does not list, or "paid" without a payment
    above zero.

    >>> from types import SimpleNamespace as Answer
    >>> unknown_status(Answer(status="pending", payment=None)), unknown_status(Answer(status="paid", payment=None))
    ("status 'pending', which Innen does not know", "status 'paid' without its payment")
    >>> unknown_status(Answer(status="paid", payment=Answer(amount=Decimal("-5.00"))))
    "status 'paid' with a payment of -5.00, not above zero"
    """
    if request.status == PomRequestStatus.PAID:
        if request.payment is None:
            return f"status {request.status!r} without its payment"
        return f"status {request.status!r} with a payment of {request.payment.amount}, not above zero"
    return f"status {request.status!r}, which Innen does not know"


class PomSyncIncomplete(InnenError):
    """POM could not be reached for some references; what could be done is done, a rerun finishes it."""


@dataclass
class SyncSummary:
    counts: Counter[RequestSync] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"counts": dict(sorted(self.counts.items())), "problems": self.problems}


def return_token(secret: str, loi: str) -> str:
    """The token in a reference's return URL: only POM's redirect (and we) know it.

    >>> return_token("s3cret", "fp:BIB:1") == return_token("s3cret", "fp:BIB:1")
    True
    >>> len(return_token("s3cret", "fp:BIB:1"))
    22
    """
    digest = hmac.new(secret.encode(), loi.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:22]


def callback_url(account: str) -> str:
    return f"{public_url()}/pom/callback/{account}"


def return_url(account: str, secret: str, loi: str) -> str:
    return f"{public_url()}/pom/return/{account}/{loi}?t={return_token(secret, loi)}"


@dataclass(frozen=True, slots=True)
class _Wanted:
    reference_id: int
    loi: str
    open_amount: Decimal
    reference_number: str
    due_date: date | None
    description: str | None
    account: str
    auto_cancel: bool


def _wanted(session: Any, now: datetime) -> dict[int, _Wanted]:
    rows = session.execute(
        select(PaymentReference.id, PaymentReference.loi, PaymentReference.open_amount, PaymentReference.reference_number,
               PaymentReference.due_date, PaymentReference.description, PaymentReferenceType.pom_account,
               PaymentReferenceType.pom_auto_cancel)
        .join(PaymentReferenceType, PaymentReferenceType.id == PaymentReference.type_id)
        .where(PaymentReference.status == ReferenceStatus.SEALED, PaymentReference.open_amount > 0,
               PaymentReferenceType.allowed_online.is_(True), PaymentReference.mandate_id.is_(None),
               PaymentReference.reference_number.is_not(None))
    )
    wanted = {}
    for ref_id, loi, open_amount, number, due, description, account, auto_cancel in rows:
        if overdue(due, auto_cancel, now):
            continue
        wanted[ref_id] = _Wanted(ref_id, loi, open_amount, number, due, description, account or "default", auto_cancel)
    return wanted


def sync_payment_requests(
    engine: Engine, clients: PomClients, actor: str, now: datetime, *,
    renew_within_days: int = DEFAULT_RENEW_WITHIN_DAYS, reference_ids: set[int] | None = None,
) -> SyncSummary:
    """Bring POM in line with the references (see the module docstring); returns what was done."""
    summary = SyncSummary()
    with transaction(engine, readonly=True) as session:
        wanted = _wanted(session, now)
        live = {row.payment_reference_id: row for row in session.scalars(
            select(PomPaymentRequest).where(PomPaymentRequest.status.in_(LIVE_POM_REQUEST_STATUSES)))}
        session.expunge_all()
    if reference_ids is not None:
        wanted = {k: v for k, v in wanted.items() if k in reference_ids}
        live = {k: v for k, v in live.items() if k in reference_ids}
    below = _below_minimum(wanted, clients)
    renew_before = now + timedelta(days=renew_within_days)
    sync = RequestSteps(engine, clients, actor, now, summary)
    for ref_id, request in sorted(live.items()):
        if ref_id in below:
            sync.guarded(sync.retire, request, f"the open amount is below the account's minimum {below[ref_id]}")
        elif ref_id not in wanted:
            sync.guarded(sync.retire, request, "the reference no longer waits for an online payment")
    for ref_id in below:
        del wanted[ref_id]
        if ref_id not in live:
            summary.counts[RequestSync.BELOW_MINIMUM] += 1
    for ref_id, want in sorted(wanted.items()):
        request = live.get(ref_id)
        if request is None:
            sync.guarded(sync.create, want)
        elif request.status == PomRequestStatus.CREATING:
            sync.guarded(sync.resume, request)
        elif request.amount != want.open_amount or request.account != want.account:
            sync.guarded(sync.replace, request, want)
        elif (request.qr_expires_at is not None and _aware(request.qr_expires_at) <= renew_before) or (
            request.qr_created_at is not None and _aware(request.qr_created_at) + QR_LIFETIME <= renew_before
        ):
            sync.guarded(sync.renew, request)
        else:
            summary.counts[RequestSync.UNCHANGED] += 1
    failed = summary.counts.get(RequestSync.UNAVAILABLE, 0)
    if failed:
        raise PomSyncIncomplete(
            f"POM could not be reached for {failed} reference(s); the rest is done: {summary.as_dict()}"
        )
    return summary


def _below_minimum(wanted: dict[int, _Wanted], clients: PomClients) -> dict[int, Decimal]:
    """Reference id → its account's minimum, for the wanted references whose open amount is below it (seed 004,
    2.5.6 ``minamount``: online payment is offered from that amount on). An account not configured here sets
    no minimum: its steps fail on their own, naming the Connection to define."""
    below = {}
    for ref_id, want in wanted.items():
        account = clients.accounts.get(want.account)
        minimum = account.min_amount if account is not None else None
        if minimum is not None and want.open_amount < minimum:
            below[ref_id] = minimum
    return below


def _aware(moment: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class RequestSteps:
    """The steps on one request (create, resume, replace, renew, retire, cancel), each its own transaction;
    shared by the sync, the reconciliation and the expiry."""

    def __init__(self, engine: Engine, clients: PomClients, actor: str, now: datetime, summary: SyncSummary) -> None:
        self.engine, self.clients, self.actor, self.now, self.summary = engine, clients, actor, now, summary
        # Accounts POM refused (401/403) or without a Connection in this run: their other references are left
        # alone (asking again would only repeat the refusal, and a login refused over and over may lock the
        # account), the other accounts' go on.
        self.broken_accounts: dict[str, str] = {}

    def guarded(self, step: Any, *args: Any) -> None:
        account = getattr(args[0], "account", None)
        if account in self.broken_accounts:
            self.summary.counts[RequestSync.UNAVAILABLE] += 1
            return
        try:
            step(*args)
        except (PomAuthError, ConfigError) as exc:
            self.broken_accounts[account or "?"] = str(exc)
            self.summary.counts[RequestSync.UNAVAILABLE] += 1
            self.summary.problems.append(f"POM account {account}: {exc}; its references wait for the next run")
            log.error("POM account %s refused or not configured: %s", account, exc)
        except PomUnavailable as exc:
            self.summary.counts[RequestSync.UNAVAILABLE] += 1
            self.summary.problems.append(f"{_name(args[0])}: POM unavailable: {exc}")
            log.warning("POM unavailable for %s: %s", _name(args[0]), exc)
        except PomRejected as exc:
            self.summary.counts[RequestSync.REFUSED] += 1
            self.summary.problems.append(f"{_name(args[0])}: refused by POM: {exc}")
            log.warning("POM refused a step for %s: %s", _name(args[0]), exc)

    # -- steps ------------------------------------------------------------------------------

    def create(self, want: _Wanted) -> None:
        try:
            with transaction(self.engine) as session:
                made = session.scalar(select(func.count()).where(PomPaymentRequest.payment_reference_id == want.reference_id))
                row = PomPaymentRequest(
                    payment_reference_id=want.reference_id, account=want.account,
                    idempotency_key=f"innen:{want.account}:{want.loi}:{made + 1}", amount=want.open_amount,
                    communication=want.reference_number, due_date=want.due_date, status=PomRequestStatus.CREATING,
                    created_at=self.now, updated_at=self.now,
                )
                session.add(row)
                session.flush()
                record_many(session, [audit_row("pom_payment_request", row.id, "creating", self.actor,
                                                after={"reference": want.loi, "amount": want.open_amount,
                                                       "account": want.account}, at=self.now)])
                session.expunge(row)
        except IntegrityError:  # another run journalled one for this reference meanwhile
            self.summary.counts[RequestSync.SKIPPED_CONCURRENT] += 1
            return
        self.resume(row, description=want.description, auto_cancel=want.auto_cancel, loi=want.loi)

    def resume(self, row: PomPaymentRequest, *, description: str | None = None, auto_cancel: bool | None = None,
               loi: str | None = None) -> None:
        if loi is None:
            with transaction(self.engine, readonly=True) as session:
                ref = session.get(PaymentReference, row.payment_reference_id)
                assert ref is not None
                loi, description = ref.loi, ref.description
                auto_cancel = session.scalar(select(PaymentReferenceType.pom_auto_cancel).where(
                    PaymentReferenceType.id == ref.type_id))
        account = self.clients.account(row.account)
        client = self.clients.client(row.account)
        try:
            made = client.create_request(
                row.amount, display_reference(row.communication), due_date=row.due_date,
                description=(description or f"Betaling {loi}")[:140], reference=loi,
                return_url=return_url(row.account, account.callback_secret or "", loi),
                callback_url=callback_url(row.account), auto_cancel=auto_cancel,
                idempotency_key=row.idempotency_key,
            )
        except PomRejected as exc:
            self.close_here(row, PomRequestStatus.CANCELLED, f"refused by POM: {exc}"[:200], RequestSync.REFUSED)
            raise
        svg = self._svg(row.account, made)
        with transaction(self.engine) as session:
            current = session.get(PomPaymentRequest, row.id)
            assert current is not None
            before = {"status": current.status}
            current.pom_id, current.status, current.updated_at = made.id, PomRequestStatus.OPEN, self.now
            _set_qr(current, made, svg)
            record_many(session, [audit_row("pom_payment_request", current.id, "created", self.actor, before=before,
                                            after={"status": PomRequestStatus.OPEN, "pom_id": made.id,
                                                   "qr_id": current.qr_id,
                                                   "qr_expires_at": current.qr_expires_at}, at=self.now)])
        self.summary.counts[RequestSync.CREATED] += 1
        # POM knew the key: the request was made before, and has moved on since
        if made.status != PomRequestStatus.OPEN:
            self.follow(row.id, made)

    def replace(self, row: PomPaymentRequest, want: _Wanted) -> None:
        reason = (f"amount changed from {row.amount} to {want.open_amount}" if row.amount != want.open_amount
                  else f"account changed from {row.account} to {want.account}")
        if self.cancel(row, reason):
            self.create(want)
            self.summary.counts[RequestSync.REPLACED] += 1

    def renew(self, row: PomPaymentRequest) -> None:
        client = self.clients.client(row.account)
        try:
            renewed = client.renew_qr(row.pom_id or "")
        except PomRejected as exc:
            if exc.code != "not_open":
                raise
            self.follow(row.id, client.get_request(row.pom_id or ""))
            return
        svg = self._svg(row.account, renewed)
        with transaction(self.engine) as session:
            current = session.get(PomPaymentRequest, row.id)
            assert current is not None
            before = {"qr_id": current.qr_id, "qr_expires_at": current.qr_expires_at}
            _set_qr(current, renewed, svg)
            current.updated_at = self.now
            record_many(session, [audit_row("pom_payment_request", current.id, "qr_renewed", self.actor, before=before,
                                            after={"qr_id": current.qr_id, "qr_expires_at": current.qr_expires_at},
                                            at=self.now)])
        self.summary.counts[RequestSync.RENEWED] += 1

    def retire(self, row: PomPaymentRequest, reason: str) -> None:
        if row.status == PomRequestStatus.CREATING:
            self.resume(row)
            with transaction(self.engine, readonly=True) as session:
                row = session.get(PomPaymentRequest, row.id)  # type: ignore[assignment]
                session.expunge(row)
            if row.status != PomRequestStatus.OPEN:
                return
        if self.cancel(row, reason):
            self.summary.counts[RequestSync.CANCELLED] += 1

    def cancel(self, row: PomPaymentRequest, reason: str) -> bool:
        """Cancel at POM, then here; False when POM says it was paid (then booked or reported)."""
        client = self.clients.client(row.account)
        try:
            cancelled = client.cancel_request(row.pom_id or "", reason)
        except PomRejected as exc:
            if exc.code != "already_paid":
                raise
            self.follow(row.id, client.get_request(row.pom_id or ""))
            return False
        if cancelled.status == PomRequestStatus.PAID:
            self.follow(row.id, cancelled)
            return False
        self.close_here(row, PomRequestStatus.CANCELLED, reason, None)
        return True

    # -- helpers ----------------------------------------------------------------------------

    def _svg(self, account: str, request: PomRequest) -> str | None:
        if request.qr is None:
            return None
        try:
            return self.clients.client(account).qr_image(request.qr.id, "svg").decode("utf-8")
        except PomError as exc:  # the image can be fetched again later; the request itself is made
            log.warning("QR image of %s not fetched: %s", request.id, exc)
            return None

    def close_here(self, row: PomPaymentRequest, status: str, reason: str, count: RequestSync | None) -> None:
        with transaction(self.engine) as session:
            current = session.get(PomPaymentRequest, row.id)
            assert current is not None
            if current.status not in LIVE_POM_REQUEST_STATUSES:
                return
            before = {"status": current.status}
            current.status, current.cancelled_reason, current.updated_at = status, reason[:200], self.now
            record_many(session, [audit_row("pom_payment_request", current.id, status, self.actor, before=before,
                                            after={"status": status, "reason": reason}, at=self.now)])
        if count:
            self.summary.counts[count] += 1

    def follow(self, request_id: int, request: PomRequest) -> None:
        """POM's request is no longer open: book a payment, or record the cancellation or expiry."""
        if paid_with_payment(request):
            assert request.payment is not None
            with transaction(self.engine) as session:
                (booking,) = book_paid_requests(
                    session, {request_id: PaidAtPom(request.payment.amount, request.payment.paid_at,
                                                    request.payment.channel)},
                    self.actor, self.now, via="pom_payment_requests")
            self.summary.counts[SYNC_RECEIVED[booking.outcome]] += 1
            if booking.outcome in (Received.CLOSED_REFERENCE, Received.OVERPAID):
                self.summary.problems.append(
                    f"{booking.reference_loi}: paid at POM {booking.paid}, booked {booking.booked}: refund {booking.excess}")
        elif request.status in ENDED_UNPAID_POM_REQUEST:
            with transaction(self.engine, readonly=True) as session:
                row = session.get(PomPaymentRequest, request_id)
                assert row is not None
                session.expunge(row)
            self.close_here(row, request.status, request.cancelled_reason or f"{request.status} at POM",
                            SYNC_FOUND[request.status])
        elif request.status != PomRequestStatus.OPEN:
            self.summary.problems.append(f"POM request {request.id}: POM reports {unknown_status(request)}; left as it is")


def _set_qr(row: PomPaymentRequest, request: PomRequest, svg: str | None) -> None:
    qr = request.qr
    if qr is None:
        return
    row.qr_id, row.qr_payload, row.pay_url = qr.id, qr.payload, qr.pay_url
    row.qr_created_at, row.qr_expires_at = qr.created_at, qr.expires_at
    if svg is not None:
        row.qr_svg = svg


def _name(thing: Any) -> str:
    return getattr(thing, "loi", None) or f"request {getattr(thing, 'id', '?')}"


def invoice_qr(engine: Engine, reference_loi: str) -> str:
    """HTML for an invoice template's ``{invoice_qr}``: the current QR code with its pay link, or nothing."""
    with transaction(engine, readonly=True) as session:
        row = session.execute(
            select(PomPaymentRequest.qr_svg, PomPaymentRequest.pay_url)
            .join(PaymentReference, PaymentReference.id == PomPaymentRequest.payment_reference_id)
            .where(PaymentReference.loi == reference_loi, PomPaymentRequest.status == PomRequestStatus.OPEN)
        ).one_or_none()
    if row is None or not row.qr_svg:
        return ""
    pay_url = safe_pay_url(row.pay_url)
    link = f'<a href="{html.escape(pay_url)}">Online betalen</a>' if pay_url else ""
    return f'<div class="invoice-qr"><img alt="POM QR code" src="{qr_data_uri(row.qr_svg)}">{link}</div>'


def qr_data_uri(svg: str) -> str:
    """POM's SVG as a ``data:`` URI for an ``<img>``: a browser runs no script and loads nothing an image holds."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def safe_pay_url(url: str | None) -> str | None:
    """POM's pay link if it may become an ``href``, else None (no link shown).

    It comes from POM's answer and lands on pages served from Innen's origin, so only ``https`` passes (never
    ``javascript:``, ``data:`` and the like); plain ``http`` only for a loopback host, which is the simulator
    of the tests and the demo (http://127.0.0.1:…): it never leaves the machine, and nothing real is paid
    there. A URL with whitespace or control characters is refused whole rather than cleaned, as browsers
    clean such URLs in their own ways.

    >>> safe_pay_url("https://pom.example/pay/qr_1"), safe_pay_url("http://127.0.0.1:8077/pay/qr_1")
    ('https://pom.example/pay/qr_1', 'http://127.0.0.1:8077/pay/qr_1')
    >>> [safe_pay_url(u) for u in ("javascript:alert(1)", "http://pom.example/pay", "java\tscript:x", "https:///x")]
    [None, None, None, None]
    """
    if not url or any(ch <= " " or ch == "\x7f" for ch in url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if not host:
        return None
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and _loopback(host):
        return url
    return None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def live_request_accounts(engine: Engine, reference_lois: list[str]) -> dict[int, str]:
    """Reference id → account of the references in ``reference_lois`` that still have a live POM request."""
    if not reference_lois:
        return {}
    with transaction(engine, readonly=True) as session:
        return dict(session.execute(
            select(PomPaymentRequest.payment_reference_id, PomPaymentRequest.account)
            .join(PaymentReference, PaymentReference.id == PomPaymentRequest.payment_reference_id)
            .where(PaymentReference.loi.in_(reference_lois), PomPaymentRequest.status.in_(LIVE_POM_REQUEST_STATUSES))
        ).all())


def retire_requests_of_lois(engine: Engine, reference_lois: list[str], actor: str, now: datetime,
                            get_connection: Any) -> dict[str, Any]:
    """Cancel at once the live POM requests of references just deleted or unsealed (accounts from
    ``get_connection``, Airflow's ``Connection.get``); what was done, for the task's log."""
    live = live_request_accounts(engine, reference_lois)
    if not live:
        return {RequestSync.CANCELLED: 0}
    with PomClients(accounts_from_connections(set(live.values()), get_connection)) as clients:
        return retire_requests_of(engine, clients, actor, now, set(live)).as_dict()


def retire_requests_of(engine: Engine, clients: PomClients, actor: str, now: datetime, reference_ids: set[int]) -> SyncSummary:
    """Right after references were deleted: cancel their POM requests now rather than at the next night's sync."""
    return sync_payment_requests(engine, clients, actor, now, reference_ids=reference_ids)


def stale_request_accounts(engine: Engine) -> dict[int, str]:
    """Reference id → account of live requests that no longer fit their reference (paid, closed, other amount)."""
    with transaction(engine, readonly=True) as session:
        return dict(session.execute(
            select(PomPaymentRequest.payment_reference_id, PomPaymentRequest.account)
            .join(PaymentReference, PaymentReference.id == PomPaymentRequest.payment_reference_id)
            .where(PomPaymentRequest.status == PomRequestStatus.OPEN,
                   (PaymentReference.status != ReferenceStatus.SEALED)
                   | (PaymentReference.open_amount != PomPaymentRequest.amount))
        ).all())
