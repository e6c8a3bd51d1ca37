"""POM's transaction feedback and the payer's return page (seed 000, 3.3), as one small FastAPI app.

Where it runs: inside the Airflow API server, mounted by our plugin at
``/innen`` (``make ui`` serves it on http://localhost:8080/innen/pom/...), so
an institution runs no extra process and the pages share Airflow's
deployment and TLS; the same app runs on its own with
``python -m include.pom.callbacks --port N`` (the demo and the tests do so).

``POST /pom/callback/{account}``: the body must carry a valid signature of
the account's callback secret over ``<timestamp>.<body>`` with a timestamp
within five minutes; anything else is answered 4xx and writes nothing (a body
above :data:`MAX_CALLBACK_BYTES` gets 413 before it is read in full). Each
event id is taken once; a payment is booked once, whether this callback or
the nightly reconciliation sees it first. A payment for a request we do not
know goes to the control list (``unmatched``, once per POM request), as no
reconciliation will ever ask about it.

``GET /pom/return/{account}/{loi}?t=…``: where POM sends the payer back; it
redirects to ``/pom/status/{account}/{loi}?t=…``, a page with the
reference's status (and its QR code while unpaid; the page then reloads every
five seconds, so a payment made with a smartphone shows within seconds, seed
000, 4.2; a code that expired or was cancelled is replaced by a fresh one first,
4.4) and a link to
``/pom/invoice/{account}/{loi}?t=…``, the invoice as PDF, made anew with a
fresh POM code when the printed one expired or was cancelled. The token ``t`` (an HMAC of
the reference) keeps strangers from reading references by guessing numbers.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, select_autoescape
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from include.errors import InnenError
from include.finance.audit import audit_row, record_many
from include.finance.db import get_engine, transaction
from include.finance.models import (
    LIVE_POM_REQUEST_STATUSES,
    ControlListItem,
    PaymentReference,
    PomEvent,
    PomPaymentRequest,
)
from include.finance.money import ZERO, money
from include.finance.reference_numbers import display_reference
from include.finance.statuses import ControlListKind, PomRequestStatus, ReferenceStatus
from include.invoices.facts import amount_text
from include.pom.accounts import accounts_from_env
from include.pom.booking import PaidAtPom, book_paid_requests
from include.pom.client import PomAccount, instant
from include.pom.payment_requests import qr_data_uri, return_token, safe_pay_url
from include.pom.signing import CallbackRejected, verify
from include.runtime import utc_aware

log = logging.getLogger(__name__)

ACTOR = "pom:callback"
# The largest callback body read. POM's events are a few hundred bytes; the endpoint is open to anyone, and the
# body must be read before its signature can be checked, so an unbounded read would let any caller fill memory.
MAX_CALLBACK_BYTES = 64 * 1024

_STATUS_PAGE = Environment(autoescape=select_autoescape(default=True, default_for_string=True)).from_string(
    """<!doctype html><html lang="nl"><head><meta charset="utf-8"><title>Betaling {{ loi }}</title>
{% if status in ("draft", "sealed") and (qr_image or pay_url) %}<meta http-equiv="refresh" content="5">{% endif %}
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:40rem}.paid{color:#176b1f}.open{color:#8a5a00}</style>
</head><body><h1>Betaling {{ communication }}</h1>
{% if status == "paid" %}<p class="paid">Betaald. Bedankt!</p>
{% elif status in ("draft", "sealed") %}<p class="open">Nog te betalen: € {{ open_amount }}.</p>
{% if qr_image %}<div><img alt="QR-code" src="{{ qr_image }}"></div>{% endif %}{% if pay_url %}<p><a href="{{ pay_url }}">Online betalen</a></p>{% endif %}
{% else %}<p>Deze betaalopdracht is niet meer te betalen ({{ status }}).</p>{% endif %}
<p>Referentie {{ loi }}, bedrag € {{ amount }}.</p>
{% if invoice_url %}<p><a href="{{ invoice_url }}">Factuur (PDF)</a></p>{% endif %}</body></html>"""
)


def create_app(
    *,
    engine_provider: Callable[[], Engine] = get_engine,
    accounts_provider: Callable[[], Mapping[str, PomAccount]] = accounts_from_env,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """The app; providers are called per request, so nothing is connected or read at import time."""
    app = FastAPI(title="Innen POM callbacks", docs_url=None, redoc_url=None, openapi_url=None)

    def secret_of(account: str) -> str | None:
        found = accounts_provider().get(account)
        return found.callback_secret if found is not None else None

    @app.post("/pom/callback/{account}")
    async def callback(account: str, request: Request) -> Response:
        body = await _capped_body(request, MAX_CALLBACK_BYTES)
        if body is None:
            return JSONResponse({"error": "body_too_large", "limit": MAX_CALLBACK_BYTES}, status_code=413)
        secret = secret_of(account)
        if not secret:
            return JSONResponse({"error": "unknown_account"}, status_code=404)
        try:
            verify(secret, request.headers.get("X-POM-Timestamp"), request.headers.get("X-POM-Signature"), body,
                   now=clock())
        except CallbackRejected as rejected:
            log.warning("POM callback for account %s rejected: %s", account, rejected)
            return JSONResponse({"error": "invalid_signature", "reason": str(rejected)}, status_code=401)
        try:
            event = json.loads(body, parse_float=Decimal)  # amounts exact, never through a float
            if not isinstance(event, dict) or not event.get("event_id") or not event.get("type"):
                raise ValueError("event_id and type are required")
        except ValueError as exc:
            return JSONResponse({"error": "malformed_event", "reason": str(exc)[:200]}, status_code=400)
        try:
            outcome = await run_in_threadpool(take_event, engine_provider(), account, event, datetime.now(timezone.utc))
        except _BadEvent as exc:
            return JSONResponse({"error": "malformed_event", "reason": str(exc)}, status_code=400)
        return JSONResponse({"status": "ok", "outcome": outcome})

    @app.get("/pom/return/{account}/{loi}")
    async def payer_returns(account: str, loi: str, t: str = "") -> Response:
        if not _token_ok(secret_of(account), loi, t):
            return HTMLResponse("<p>Onbekende betaalopdracht.</p>", status_code=404)
        return RedirectResponse(f"../../status/{account}/{loi}?t={t}", status_code=303)

    @app.get("/pom/status/{account}/{loi}")
    async def status_page(account: str, loi: str, t: str = "") -> Response:
        if not _token_ok(secret_of(account), loi, t):
            return HTMLResponse("<p>Onbekende betaalopdracht.</p>", status_code=404)
        engine = engine_provider()
        now = datetime.now(timezone.utc)
        facts = await run_in_threadpool(_reference_facts, engine, loi, now)
        if facts is None:
            return HTMLResponse("<p>Onbekende betaalopdracht.</p>", status_code=404)
        if facts.pop("needs_code"):  # seed 000, 4.4: viewed again online, it gets a new QR code
            known = accounts_provider()
            accounts = {name: found for name in (account,) if (found := known.get(name)) is not None}
            await run_in_threadpool(_fresh_code, engine, accounts, facts.pop("id"), now)
            facts = await run_in_threadpool(_reference_facts, engine, loi, now)
            assert facts is not None
            facts.pop("needs_code")
        facts.pop("id", None)
        return HTMLResponse(_STATUS_PAGE.render(**facts, invoice_url=f"../../invoice/{account}/{loi}?t={t}"))

    @app.get("/pom/invoice/{account}/{loi}")
    async def invoice(account: str, loi: str, t: str = "") -> Response:
        """The payer's invoice as PDF; made anew with a fresh POM code when the printed one no longer works."""
        if not _token_ok(secret_of(account), loi, t):
            return HTMLResponse("<p>Onbekende betaalopdracht.</p>", status_code=404)
        known = accounts_provider()
        # The return URL names the account of the reference's requests (its type's): the one a new code comes from.
        accounts = {name: found for name in (account,) if (found := known.get(name)) is not None}
        pdf = await run_in_threadpool(_invoice_pdf, engine_provider(), accounts, loi)
        if pdf is None:
            return HTMLResponse("<p>Voor deze betaalopdracht is geen factuur.</p>", status_code=404)
        name = "".join(c if c.isalnum() else "-" for c in loi)
        return Response(pdf, media_type="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="factuur-{name}.pdf"',
                                 "Cache-Control": "no-store"})

    return app


class _BadEvent(ValueError):
    pass


async def _capped_body(request: Request, limit: int) -> bytes | None:
    """The request's body, or None once it is more than ``limit`` bytes (declared or as it arrives).

    The declared length refuses an honest large body before a byte of it is read; counting while streaming
    catches a chunked body (no length) and a length that lies.
    """
    declared = request.headers.get("content-length", "")
    if declared.strip().isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _token_ok(secret: str | None, loi: str, token: str) -> bool:
    return bool(secret) and hmac.compare_digest(return_token(secret or "", loi), token)


def take_event(engine: Engine, account: str, event: dict[str, Any], now: datetime) -> str:
    """Record one verified event and act on it in one transaction; the outcome says what happened."""
    event_id = str(event["event_id"])[:100]
    kind = str(event["type"])[:60]
    pom_id = str(event.get("request_id") or "")[:60] or None
    try:
        with transaction(engine) as session:
            if session.scalar(select(PomEvent.id).where(PomEvent.account == account, PomEvent.event_id == event_id)):
                return "duplicate"
            # No request id names no request: "pom_id == None" would be SQL's IS NULL, the rows still being created.
            row = None if pom_id is None else session.scalars(select(PomPaymentRequest).where(
                PomPaymentRequest.account == account, PomPaymentRequest.pom_id == pom_id)).one_or_none()
            unknown_payment = None
            if row is None:
                outcome = "unknown_request"
                if kind == "payment_request.paid":
                    unknown_payment = _unknown_payment(session, account, event, pom_id)
            elif kind == "payment_request.paid":
                amount = _paid_amount(event)
                paid_at = _moment(event.get("paid_at"))
                (booking,) = book_paid_requests(session, {row.id: PaidAtPom(amount, paid_at, event.get("channel"))},
                                                ACTOR, now, via="callback")
                outcome = booking.outcome
            elif kind in ("payment_request.cancelled", "payment_request.expired"):
                status = PomRequestStatus(kind.rsplit(".", 1)[1])
                outcome = "ignored"
                if row.status in LIVE_POM_REQUEST_STATUSES:
                    before = {"status": row.status}
                    row.status, row.cancelled_reason, row.updated_at = status, f"{status} at POM", now
                    record_many(session, [audit_row("pom_payment_request", row.id, status, ACTOR, before=before,
                                                    after={"status": status}, at=now)])
                    outcome = status
            else:
                outcome = "ignored"
            taken = PomEvent(account=account, event_id=event_id, event_type=kind, pom_id=pom_id, received_at=now,
                             outcome=outcome, body=event)
            session.add(taken)
            session.flush()
            if unknown_payment is not None:
                session.add(ControlListItem(**unknown_payment, pom_event_id=taken.id, created_at=now))
                session.flush()
    except IntegrityError:  # the same event, taken by a concurrent delivery
        return "duplicate"
    log.info("POM event %s (%s) for %s: %s", event_id, kind, pom_id, outcome)
    return outcome


def _unknown_payment(session: Any, account: str, event: dict[str, Any], pom_id: str | None) -> dict[str, Any] | None:
    """The control-list item of money POM received for a request we do not know, or None.

    None when a request of ours for the event's reference is still being created (its POM id not yet stored:
    the next sync asks POM again with the same idempotency key and books the payment), or when an earlier
    event already reported this payment. Otherwise the money reaches a person (nobody else will see it: the
    reconciliation only asks about requests we know)."""
    amount = _paid_amount(event)
    reference = str(event.get("reference") or "")[:100]
    if reference and session.scalar(
        select(PomPaymentRequest.id).join(PaymentReference, PaymentReference.id == PomPaymentRequest.payment_reference_id)
        .where(PomPaymentRequest.account == account, PomPaymentRequest.status == PomRequestStatus.CREATING,
               PomPaymentRequest.pom_id.is_(None), PaymentReference.loi == reference)
    ) is not None:
        return None
    if pom_id and session.scalar(select(PomEvent.id).where(
            PomEvent.account == account, PomEvent.pom_id == pom_id, PomEvent.event_type == "payment_request.paid",
            PomEvent.outcome == "unknown_request").limit(1)) is not None:
        return None
    channel = str(event.get("channel") or "unknown channel")[:20]
    return {
        "statement_id": None, "bank_entry_id": None, "kind": ControlListKind.UNMATCHED, "amount": amount,
        "reason": f"{amount} paid through POM {pom_id or '(no request id)'} ({channel}, via callback) on account "
                  f"{account} for reference {reference or '(none given)'}: a request Innen does not know; nothing booked",
        "action": "identify the payer: book the amount on their open reference, or refund it",
        "details": {"reference": reference or None, "pom_id": pom_id, "account": account, "channel": event.get("channel"),
                    "communication": event.get("communication"), "paid_at": event.get("paid_at"), "via": "callback"},
        "source": "pom",
    }


def _paid_amount(event: dict[str, Any]) -> Decimal:
    """The amount of a paid event: finite, above zero, whole cents; anything else is a :class:`_BadEvent` (400).

    A valid signature says the event came from POM, not that it is sane: "NaN" would fail deep in the booking
    (a 500 and POM's retries), and "-5" would mark the request paid while booking nothing.
    """
    if "amount" not in event:
        raise _BadEvent("a paid event needs its amount")
    try:
        amount = money(str(event["amount"]))
    except (ValueError, TypeError):  # money's refusals: not a number, not finite, fractions of a cent, too large
        raise _BadEvent("a paid event's amount must be a decimal with at most two places") from None
    if amount <= ZERO:
        raise _BadEvent("a paid event's amount must be above zero")
    return amount


def _invoice_pdf(engine: Engine, accounts: dict[str, PomAccount], loi: str) -> bytes | None:
    from include.invoices.download import invoice_pdf
    from include.pom.accounts import PomClients

    with PomClients(accounts) as clients:
        return invoice_pdf(engine, clients, loi, datetime.now(timezone.utc))


def _moment(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return instant(str(value))
    except ValueError:
        return None


def _fresh_code(engine: Engine, accounts: dict[str, PomAccount], ref_id: int, now: datetime) -> None:
    """A new QR code (or request) for the reference; POM unavailable: the page goes without one this time."""
    from include.pom.accounts import PomClients
    from include.pom.payment_requests import sync_payment_requests

    with PomClients(accounts) as clients:
        try:
            sync_payment_requests(engine, clients, "payer:status_page", now, reference_ids={ref_id}, renew_within_days=0)
        except InnenError as exc:  # POM's errors and ConfigError alike
            log.warning("no fresh POM code for reference %s: %s", ref_id, exc)


def _reference_facts(engine: Engine, loi: str, now: datetime) -> dict[str, Any] | None:
    """What the status page shows; ``needs_code``: it may be paid online, but has no QR code that still works."""
    from include.finance.models import PaymentReferenceType
    from include.pom.payment_requests import overdue

    with transaction(engine, readonly=True) as session:
        ref = session.scalars(select(PaymentReference).where(PaymentReference.loi == loi)).one_or_none()
        if ref is None:
            return None
        kind = session.get(PaymentReferenceType, ref.type_id)
        request = session.execute(
            select(PomPaymentRequest.qr_svg, PomPaymentRequest.pay_url, PomPaymentRequest.qr_expires_at).where(
                PomPaymentRequest.payment_reference_id == ref.id, PomPaymentRequest.status == PomRequestStatus.OPEN)
        ).one_or_none()
        expires = utc_aware(request.qr_expires_at) if request and request.qr_expires_at else None
        works = request is not None and (expires is None or expires > now)
        online = (ref.status == ReferenceStatus.SEALED and ref.open_amount > 0 and ref.mandate_id is None
                  and kind is not None and kind.allowed_online and not overdue(ref.due_date, kind.pom_auto_cancel, now))
        if not works:
            request = None
        return {
            "id": ref.id, "needs_code": online and not works,
            # Amounts the Belgian way, as on the payer's invoice: € 1.234,50.
            "loi": ref.loi, "status": ref.status, "amount": amount_text(ref.amount),
            "open_amount": amount_text(ref.open_amount),
            "communication": display_reference(ref.reference_number) if ref.reference_number else ref.loi,
            # POM's SVG and link reach a public page of Innen's origin: the SVG only as an image (its scripts never
            # run), the link only when it is https (or http on loopback: the simulator).
            "qr_image": qr_data_uri(request.qr_svg) if request and request.qr_svg else None,
            "pay_url": safe_pay_url(request.pay_url) if request else None,
        }


class RunningApp:
    """An ASGI app served on loopback from a background thread (demo and tests)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        import socket
        import threading

        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        self.base_url = f"http://{host}:{sock.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                                     timeout_graceful_shutdown=1))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, name="innen-callbacks",
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the callback app did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)

    def __enter__(self) -> RunningApp:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def main() -> None:  # pragma: no cover - a thin command line around uvicorn
    import argparse

    import uvicorn

    parser = argparse.ArgumentParser(description="Innen's POM callback and return pages on their own")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
