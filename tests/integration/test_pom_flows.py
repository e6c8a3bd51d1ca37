"""Payment requests, callbacks, reconciliation and expiry against the POM simulator over real HTTP.

Each test runs on SQLite and on PostgreSQL (the ``engine`` fixture).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from include.config import reports_dir
from include.errors import ConfigError
from include.finance.db import transaction
from include.finance.models import (
    AuditLog,
    ControlListItem,
    DebtLine,
    Payment,
    PaymentReference,
    PaymentReferenceType,
    PomEvent,
    PomPaymentRequest,
)
from include.finance.payments import Ledger
from include.pom.accounts import PomClients
from include.pom.callbacks import MAX_CALLBACK_BYTES, RunningApp, _BadEvent, create_app, take_event
from include.pom.client import PomAccount, PomClient, PomRequest
from include.pom.expiry import expire_references
from include.pom.payment_requests import PomSyncIncomplete, invoice_qr, return_token, sync_payment_requests
from include.pom.reconciliation import reconcile
from include.pom.signing import sign
from tests.factories import make_institution, make_mandate, make_reference, make_user
from tests.integration.pom_fixtures import *  # noqa: F403
from tests.integration.pom_fixtures import ACCOUNTS, SimApi, eventually

pytestmark = pytest.mark.usefixtures("known_control_list_kinds")  # every item's kind is a ControlListKind
ACTOR = "test"
PROD = ACCOUNTS["prod"]


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture
def accounts(pom_sim: Any) -> dict[str, PomAccount]:
    return {"default": PomAccount(
        name="default", base_url=pom_sim.base_url, env="prod", username=PROD["username"], password=PROD["password"],
        sender_id=PROD["sender_id"], sender_contract_number=PROD["sender_contract_number"],
        callback_secret=PROD["callback_secret"], rate_limit_per_second=None, timeout_seconds=2,
    )}


@pytest.fixture
def clients(accounts: dict[str, PomAccount]) -> Iterator[PomClients]:
    factory = lambda account: PomClient(account, max_attempts=4, sleep=lambda _s: None, jitter=lambda: 0.0)  # noqa: E731
    with PomClients(accounts, factory=factory) as opened:
        yield opened


@pytest.fixture
def callbacks(engine: Any, accounts: dict[str, PomAccount], monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningApp]:
    """Our callback app on a free port; INNEN_PUBLIC_URL points POM at it."""
    app = create_app(engine_provider=lambda: engine, accounts_provider=lambda: accounts)
    with RunningApp(app) as running:
        monkeypatch.setenv("INNEN_PUBLIC_URL", running.base_url)
        yield running


@pytest.fixture
def books(engine: Any, var_dir: Any) -> dict[str, Any]:
    """An institution with an online type (lifetime 7 days) and three sealed references on it."""
    with transaction(engine) as session:
        inst = make_institution(session)
        online = PaymentReferenceType(code="ONLINE", name="Online", allowed_online=True, lifetime_seconds=7 * 86400,
                                      pom_account="default")
        session.add(online)
        session.flush()
        refs = []
        for n, amounts in enumerate((("20.00",), ("12.50", "7.50"), ("40.00",)), 1):
            ref = make_reference(session, inst, make_user(session), amounts, number=n)
            ref.type_id, ref.due_date, ref.created_at = online.id, date.today() + timedelta(days=20), _now() - timedelta(days=1)
            refs.append(ref.id)
        return {"inst": inst, "type_id": online.id, "refs": refs}


def _requests(engine: Any, **where: Any) -> list[PomPaymentRequest]:
    with transaction(engine, readonly=True) as session:
        query = select(PomPaymentRequest).order_by(PomPaymentRequest.id)
        for key, value in where.items():
            query = query.where(getattr(PomPaymentRequest, key) == value)
        return list(session.scalars(query))


def _reference(engine: Any, ref_id: int) -> PaymentReference:
    with transaction(engine, readonly=True) as session:
        ref = session.get(PaymentReference, ref_id)
        assert ref is not None
        return ref


def _pom_payments(engine: Any) -> list[tuple[int, Decimal]]:
    with transaction(engine, readonly=True) as session:
        return list(session.execute(select(Payment.payment_reference_id, Payment.amount).where(Payment.source == "pom")))


# -- creating, replacing, renewing --------------------------------------------------------------


def test_one_open_request_per_reference_with_its_qr_code(engine, books, clients, sim_api: SimApi) -> None:
    summary = sync_payment_requests(engine, clients, ACTOR, _now())
    assert summary.counts["created"] == 3
    rows = _requests(engine, status="open")
    assert sorted(r.payment_reference_id for r in rows) == sorted(books["refs"])
    assert {r.amount for r in rows} == {Decimal("20.00"), Decimal("20.00"), Decimal("40.00")}
    assert all(r.qr_svg and "<svg" in r.qr_svg and r.pay_url and r.qr_expires_at for r in rows)
    assert sim_api.request_count() == 3
    again = sync_payment_requests(engine, clients, ACTOR, _now())
    assert again.counts == {"unchanged": 3}
    assert sim_api.request_count() == 3
    assert len(_requests(engine)) == 3
    loi = _reference(engine, books["refs"][0]).loi
    assert 'src="data:image/svg+xml;base64,' in invoice_qr(engine, loi)


def test_references_that_must_not_get_a_request(engine, books, clients, sim_api: SimApi) -> None:
    with transaction(engine) as session:
        first, second, third = (session.get(PaymentReference, i) for i in books["refs"])
        owner = make_user(session)
        first.mandate_id = make_mandate(session, books["inst"], owner, first=date(2026, 12, 1)).id  # collected by the bank
        second.status = "draft"
        third.type_id = books["inst"].recurring.id  # a type that does not allow online payment
    summary = sync_payment_requests(engine, clients, ACTOR, _now())
    assert summary.counts.get("created", 0) == 0
    assert sim_api.request_count() == 0


def test_amount_change_cancels_and_recreates(engine, books, clients, sim_api: SimApi) -> None:
    sync_payment_requests(engine, clients, ACTOR, _now())
    ref_id = books["refs"][1]
    (old,) = _requests(engine, payment_reference_id=ref_id)
    with transaction(engine) as session:  # 7.50 paid by transfer meanwhile
        ledger = Ledger(session, ACTOR, _now())
        ledger.pay(ledger.load([ref_id])[ref_id], Decimal("7.50"), source="manual")
        ledger.flush()
    summary = sync_payment_requests(engine, clients, ACTOR, _now())
    assert summary.counts["replaced"] == 1
    rows = _requests(engine, payment_reference_id=ref_id)
    assert [(r.status, r.amount) for r in rows] == [("cancelled", Decimal("20.00")), ("open", Decimal("12.50"))]
    assert "amount changed from 20.00 to 12.50" in rows[0].cancelled_reason
    assert sim_api.get(old.pom_id).json()["status"] == "cancelled"
    assert sim_api.get(rows[1].pom_id).json()["amount"] == "12.50"


def test_qr_code_renewed_before_the_90_day_limit(engine, books, clients, sim_api: SimApi) -> None:
    sync_payment_requests(engine, clients, ACTOR, _now())
    before = {r.id: (r.qr_id, r.qr_expires_at) for r in _requests(engine)}
    sim_api.control("POST", "clock", {"advance_days": 80})
    later = _now() + timedelta(days=80)
    summary = sync_payment_requests(engine, clients, ACTOR, later, renew_within_days=14)
    assert summary.counts["renewed"] == 3
    for row in _requests(engine):
        assert row.status == "open" and row.qr_id != before[row.id][0]
        assert row.qr_expires_at.replace(tzinfo=timezone.utc) > later + timedelta(days=80)
    assert sim_api.request_count() == 3  # the same requests, new QR codes
    assert sync_payment_requests(engine, clients, ACTOR, later).counts == {"unchanged": 3}


def test_reference_paid_by_transfer_gets_its_request_cancelled(engine, books, clients, sim_api: SimApi) -> None:
    sync_payment_requests(engine, clients, ACTOR, _now())
    ref_id = books["refs"][0]
    with transaction(engine) as session:
        ledger = Ledger(session, ACTOR, _now())
        ledger.pay(ledger.load([ref_id])[ref_id], Decimal("20.00"), source="manual")
        ledger.flush()
    summary = sync_payment_requests(engine, clients, ACTOR, _now())
    assert summary.counts["cancelled"] == 1
    (row,) = _requests(engine, payment_reference_id=ref_id)
    assert row.status == "cancelled" and sim_api.get(row.pom_id).json()["status"] == "cancelled"


def test_no_request_below_the_accounts_minimum_and_one_that_falls_below_it_is_cancelled(
    engine, books, accounts, sim_api: SimApi,
) -> None:
    """Seed 004, 2.5.6 "Minimum bedrag": online payment is offered from the account's minimum amount on."""
    factory = lambda account: PomClient(account, max_attempts=4, sleep=lambda _s: None, jitter=lambda: 0.0)  # noqa: E731
    with PomClients(accounts, factory=factory) as clients:  # no minimum: every reference (20.00, 20.00, 40.00)
        assert sync_payment_requests(engine, clients, ACTOR, _now()).counts == {"created": 3}
    first, _, third = books["refs"]
    with transaction(engine) as session:  # 15.00 of 40.00 paid by transfer: 25.00 left
        ledger = Ledger(session, ACTOR, _now())
        ledger.pay(ledger.load([third])[third], Decimal("15.00"), source="manual")
        ledger.flush()
    minimum = {"default": replace(accounts["default"], min_amount=Decimal("25.00"))}
    with PomClients(minimum, factory=factory) as clients:
        summary = sync_payment_requests(engine, clients, ACTOR, _now())
    # 20.00 is below 25.00: those requests are cancelled; 25.00 is not, its request is made anew for it.
    assert (summary.counts["cancelled"], summary.counts["replaced"], summary.counts.get("below_minimum", 0)) == (2, 1, 0)
    assert [(r.status, r.amount) for r in _requests(engine, payment_reference_id=third)] == [
        ("cancelled", Decimal("40.00")), ("open", Decimal("25.00"))]
    (row,) = _requests(engine, payment_reference_id=first)
    assert row.status == "cancelled" and "below the account's minimum 25.00" in row.cancelled_reason
    assert sim_api.get(row.pom_id).json()["status"] == "cancelled"
    with PomClients(minimum, factory=factory) as clients:  # and none is made again
        assert sync_payment_requests(engine, clients, ACTOR, _now()).counts == {"below_minimum": 2, "unchanged": 1}
    assert len(_requests(engine, status="open")) == 1


def test_the_minimum_is_read_from_the_connection() -> None:
    base = {"sender_id": "S", "sender_contract_number": "C", "callback_secret": "cs"}

    def account(**extra: Any) -> PomAccount:
        return PomAccount.from_connection("default", host="pom.example", login="u", password="p",
                                          extra={**base, **extra})

    assert account().min_amount is None and account(min_amount="").min_amount is None
    assert account(min_amount="1.5").min_amount == Decimal("1.50")
    assert account(min_amount=2).min_amount == Decimal("2.00")
    for wrong in ("one euro", "0.001", True, "-1.00"):
        with pytest.raises(ConfigError, match="min_amount"):
            account(min_amount=wrong)


def test_crash_after_pom_answered_does_not_make_a_second_request(engine, books, accounts, sim_api: SimApi) -> None:
    """The create reached POM but its answer was lost three times: the row stays 'creating'; the rerun finds it."""
    answered = {"n": 0}

    def losing(request: httpx.Request) -> httpx.Response:
        with httpx.Client(base_url=accounts["default"].base_url) as real:
            response = real.send(real.build_request(request.method, request.url, headers=request.headers,
                                                    content=request.content))
        if request.method == "POST" and request.url.path.endswith("/payment-requests"):
            answered["n"] += 1
            raise httpx.ReadTimeout("answer lost", request=request)
        return response

    def factory(account: PomAccount) -> PomClient:
        return PomClient(account, max_attempts=3, sleep=lambda _s: None, jitter=lambda: 0.0,
                         transport=httpx.MockTransport(losing))

    with PomClients(accounts, factory=factory) as lossy, pytest.raises(PomSyncIncomplete):
        sync_payment_requests(engine, lossy, ACTOR, _now())
    assert answered["n"] == 9  # three references, three attempts each
    assert {r.status for r in _requests(engine)} == {"creating"}
    assert sim_api.request_count() == 3  # POM made each once, whatever the retries
    with PomClients(accounts, factory=lambda a: PomClient(a, sleep=lambda _s: None)) as working:
        summary = sync_payment_requests(engine, working, ACTOR, _now())
    assert summary.counts["created"] == 3
    assert sim_api.request_count() == 3
    assert {r.status for r in _requests(engine)} == {"open"}


# -- paying: callback and reconciliation ------------------------------------------------------


def test_callback_books_the_payment_once(engine, books, clients, callbacks, sim_api: SimApi) -> None:
    sync_payment_requests(engine, clients, ACTOR, _now())
    (row,) = _requests(engine, payment_reference_id=books["refs"][0])
    sim_api.control("POST", f"pay/{row.pom_id}", {"channel": "bancontact", "callback": True})
    eventually(lambda: _requests(engine, payment_reference_id=books["refs"][0])[0].status == "paid")
    assert _reference(engine, books["refs"][0]).status == "paid"
    assert _pom_payments(engine) == [(books["refs"][0], Decimal("20.00"))]
    report = reconcile(engine, clients, ACTOR, _now())  # the backstop sees the same payment: nothing more
    assert report.counts.get("paid", 0) == 0
    assert _pom_payments(engine) == [(books["refs"][0], Decimal("20.00"))]
    with transaction(engine, readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(PomEvent)) == 1


def test_reconciliation_books_what_the_callback_missed_then_cancels_overdue(engine, books, clients, sim_api: SimApi) -> None:
    with transaction(engine) as session:
        session.get(PaymentReferenceType, books["type_id"]).pom_auto_cancel = True
        overdue = session.get(PaymentReference, books["refs"][2])
        overdue.due_date = date.today() + timedelta(days=3)
    sync_payment_requests(engine, clients, ACTOR, _now())
    rows = {r.payment_reference_id: r for r in _requests(engine)}
    sim_api.control("POST", f"pay/{rows[books['refs'][0]].pom_id}", {"channel": "bancontact", "callback": False})
    later = _now() + timedelta(days=5)  # reference 3 is overdue now; its payer did not pay
    report = reconcile(engine, clients, ACTOR, later)
    assert report.counts["paid"] == 1 and report.counts["cancelled_overdue"] == 1
    assert _reference(engine, books["refs"][0]).status == "paid"
    statuses = {r.payment_reference_id: r.status for r in _requests(engine)}
    assert statuses == {books["refs"][0]: "paid", books["refs"][1]: "open", books["refs"][2]: "cancelled"}
    assert sim_api.get(rows[books["refs"][2]].pom_id).json()["status"] == "cancelled"
    text = open(report.csv, encoding="utf-8-sig").read()
    assert _reference(engine, books["refs"][0]).loi in text and "cancelled_overdue" in text
    assert sync_payment_requests(engine, clients, ACTOR, later).counts.get("created", 0) == 0  # overdue: not renewed


def test_overdue_is_judged_by_the_brussels_date_not_the_utc_one(engine, books, clients, sim_api: SimApi) -> None:
    """POM ends an auto-cancel request at midnight in Brussels: at 23:30 UTC (00:30 or 01:30 the next day in
    Brussels) the reference is overdue, though the UTC date is still its due date."""
    due = date.today() + timedelta(days=1)
    before_midnight = datetime.combine(due, datetime.min.time(), timezone.utc).replace(hour=21, minute=30)
    after_midnight = before_midnight.replace(hour=23)
    with transaction(engine) as session:
        session.get(PaymentReferenceType, books["type_id"]).pom_auto_cancel = True
        for ref_id in books["refs"]:
            session.get(PaymentReference, ref_id).due_date = due
    sync_payment_requests(engine, clients, ACTOR, _now(), reference_ids={books["refs"][0]})
    report = reconcile(engine, clients, ACTOR, before_midnight)
    assert report.counts.get("cancelled_overdue", 0) == 0
    report = reconcile(engine, clients, ACTOR, after_midnight)
    assert report.counts["cancelled_overdue"] == 1
    assert sync_payment_requests(engine, clients, ACTOR, after_midnight).counts.get("created", 0) == 0
    assert sync_payment_requests(engine, clients, ACTOR, before_midnight).counts["created"] == 3  # all still due


@pytest.mark.parametrize(("moment", "day"), [
    (datetime(2026, 3, 28, 23, 30, tzinfo=timezone.utc), "2026-03-29"),  # 00:30 CET, the night summer time starts
    (datetime(2026, 10, 24, 22, 30, tzinfo=timezone.utc), "2026-10-25"),  # 00:30 CEST, the night it ends
    (datetime(2026, 12, 31, 23, 45, tzinfo=timezone.utc), "2027-01-01"),
    (datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc), "2026-11-20"),
])
def test_the_reconciliation_report_is_filed_under_the_day_in_brussels(engine, clients, var_dir, moment, day) -> None:
    report = reconcile(engine, clients, ACTOR, moment)
    assert report.csv is not None and Path(report.csv).parent.name == day


def test_paid_before_cancelled_when_the_payer_paid_at_the_last_minute(engine, books, clients, sim_api: SimApi) -> None:
    with transaction(engine) as session:
        session.get(PaymentReferenceType, books["type_id"]).pom_auto_cancel = True
        session.get(PaymentReference, books["refs"][0]).due_date = date.today() + timedelta(days=1)
    sync_payment_requests(engine, clients, ACTOR, _now())
    (row,) = _requests(engine, payment_reference_id=books["refs"][0])
    sim_api.control("POST", f"pay/{row.pom_id}", {"channel": "bancontact", "callback": False})
    report = reconcile(engine, clients, ACTOR, _now() + timedelta(days=3))
    assert report.counts["paid"] == 1 and report.counts.get("cancelled_overdue", 0) == 0
    assert _reference(engine, books["refs"][0]).status == "paid"


def test_paid_twice_is_reported_for_a_refund(engine, books, clients, sim_api: SimApi) -> None:
    sync_payment_requests(engine, clients, ACTOR, _now())
    ref_id = books["refs"][0]
    (row,) = _requests(engine, payment_reference_id=ref_id)
    sim_api.control("POST", f"pay/{row.pom_id}", {"channel": "bancontact", "callback": False})
    with transaction(engine) as session:  # the same debt also paid by transfer
        ledger = Ledger(session, ACTOR, _now())
        ledger.pay(ledger.load([ref_id])[ref_id], Decimal("20.00"), source="manual")
        ledger.flush()
    report = reconcile(engine, clients, ACTOR, _now())
    assert report.counts["closed_reference"] == 1
    assert _pom_payments(engine) == []
    assert "refund" in open(report.csv, encoding="utf-8-sig").read()


# -- callback endpoint ---------------------------------------------------------------------------


def _post(url: str, body: bytes, secret: str | None, *, timestamp: int | None = None, signature: str | None = None,
          headers: dict[str, str] | None = None) -> httpx.Response:
    stamp = int(time.time()) if timestamp is None else timestamp
    sent = {"Content-Type": "application/json", **(headers or {})}
    if secret is not None:
        sent["X-POM-Timestamp"] = str(stamp)
        sent["X-POM-Signature"] = signature or sign(secret, stamp, body)
    return httpx.post(url, content=body, headers=sent, timeout=5)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("tampered", 401),
        ("wrong_secret", 401),
        ("missing_header", 401),
        ("stale", 401),
        ("future", 401),
        ("unknown_account", 404),
        ("not_json", 400),
    ],
)
def test_callback_refusals_write_nothing(engine, books, clients, callbacks, case: str, expected: int) -> None:
    sync_payment_requests(engine, clients, ACTOR, _now())
    (row,) = _requests(engine, payment_reference_id=books["refs"][0])
    event = {"event_id": "ev-1", "type": "payment_request.paid", "request_id": row.pom_id, "amount": "20.00",
             "paid_at": _now().isoformat(), "channel": "bancontact"}
    body = json.dumps(event).encode()
    secret = PROD["callback_secret"]
    url = f"{callbacks.base_url}/pom/callback/default"
    if case == "tampered":
        response = _post(url, body.replace(b"20.00", b"2.00"), secret, signature=sign(secret, int(time.time()), body))
    elif case == "wrong_secret":
        response = _post(url, body, "not-the-secret")
    elif case == "missing_header":
        response = _post(url, body, None)
    elif case == "stale":
        response = _post(url, body, secret, timestamp=int(time.time()) - 3600)
    elif case == "future":
        response = _post(url, body, secret, timestamp=int(time.time()) + 3600)
    elif case == "unknown_account":
        response = _post(f"{callbacks.base_url}/pom/callback/nobody", body, secret)
    else:
        response = _post(url, b"not json", secret)
    assert response.status_code == expected
    with transaction(engine, readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(PomEvent)) == 0
        assert session.scalar(select(func.count()).select_from(Payment)) == 0


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_huge_callback_body_is_refused_unread(engine, books, clients, callbacks, declared: bool) -> None:
    # Whoever can reach the endpoint can post; a 10 MiB body (valid JSON, signed, so only its size is wrong)
    # must be refused without being kept in memory or written.
    sync_payment_requests(engine, clients, ACTOR, _now())
    (row,) = _requests(engine, payment_reference_id=books["refs"][0])
    event = {"event_id": "ev-big", "type": "payment_request.paid", "request_id": row.pom_id, "amount": "20.00",
             "padding": "x" * (10 * 1024 * 1024)}
    body = json.dumps(event).encode()
    stamp = int(time.time())
    headers = {"Content-Type": "application/json", "X-POM-Timestamp": str(stamp),
               "X-POM-Signature": sign(PROD["callback_secret"], stamp, body)}
    # Without a length httpx sends the body chunked: the stream cap must catch it.
    content = body if declared else (body[i:i + 65536] for i in range(0, len(body), 65536))
    response = httpx.post(f"{callbacks.base_url}/pom/callback/default", content=content, headers=headers, timeout=30)
    assert response.status_code == 413
    assert response.json()["limit"] == MAX_CALLBACK_BYTES
    with transaction(engine, readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(PomEvent)) == 0
    assert _pom_payments(engine) == []


def test_a_declared_length_above_the_limit_is_refused_before_a_byte_is_read() -> None:
    # Straight through the ASGI interface: a receive() that fails shows the body was never asked for.
    import asyncio

    def no_engine() -> Any:
        raise AssertionError("the database was reached")

    app = create_app(engine_provider=no_engine, accounts_provider=lambda: {})
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/pom/callback/default", "raw_path": b"/pom/callback/default", "query_string": b"",
             "root_path": "", "headers": [(b"content-length", str(10 * 1024 * 1024).encode())],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        raise AssertionError("the body was read")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413


def test_same_event_twice_is_taken_once(engine, books, clients, callbacks) -> None:
    sync_payment_requests(engine, clients, ACTOR, _now())
    (row,) = _requests(engine, payment_reference_id=books["refs"][0])
    body = json.dumps({"event_id": "ev-9", "type": "payment_request.paid", "request_id": row.pom_id,
                       "amount": "20.00", "paid_at": _now().isoformat(), "channel": "bancontact"}).encode()
    url = f"{callbacks.base_url}/pom/callback/default"
    first = _post(url, body, PROD["callback_secret"])
    second = _post(url, body, PROD["callback_secret"])
    assert (first.status_code, first.json()["outcome"]) == (200, "paid")
    assert (second.status_code, second.json()["outcome"]) == (200, "duplicate")
    assert _pom_payments(engine) == [(books["refs"][0], Decimal("20.00"))]


def test_return_page_redirects_to_the_reference_status(engine, books, clients, callbacks) -> None:
    sync_payment_requests(engine, clients, ACTOR, _now())
    loi = _reference(engine, books["refs"][0]).loi
    token = return_token(PROD["callback_secret"], loi)
    response = httpx.get(f"{callbacks.base_url}/pom/return/default/{loi}", params={"t": token}, follow_redirects=True)
    assert response.status_code == 200 and "Nog te betalen: € 20,00." in response.text  # as on the invoice
    assert response.history and response.history[0].status_code == 303
    guessed = httpx.get(f"{callbacks.base_url}/pom/return/default/{loi}", params={"t": "guess"})
    assert guessed.status_code == 404


@pytest.mark.parametrize(
    ("pay_url", "shown"),
    [("javascript:alert(document.cookie)", False), ("data:text/html,<script>alert(1)</script>", False),
     ("http://pom.example/pay/qr_1", False), ("https://pom.example/pay/qr_1", True), (None, True)],
    ids=["javascript", "data", "http-remote", "https", "simulator-loopback-http"],
)
def test_the_status_page_shows_pom_s_svg_only_as_an_image_and_a_pay_link_only_when_safe(
        engine, books, clients, callbacks, pay_url: str | None, shown: bool) -> None:
    # The page is public and served from Airflow's origin: what POM sent must not run there.
    sync_payment_requests(engine, clients, ACTOR, _now())
    (row,) = _requests(engine, payment_reference_id=books["refs"][0])
    hostile = '<svg xmlns="http://www.w3.org/2000/svg"><script>alert("pwned")</script><rect/></svg>'
    with transaction(engine) as session:
        stored = session.get(PomPaymentRequest, row.id)
        stored.qr_svg = hostile
        stored.pay_url = pay_url or row.pay_url  # None: the simulator's own link, http://127.0.0.1:…
    loi = _reference(engine, books["refs"][0]).loi
    page = httpx.get(f"{callbacks.base_url}/pom/status/default/{loi}", params={"t": return_token(PROD["callback_secret"], loi)})
    assert page.status_code == 200 and "Nog te betalen" in page.text
    assert "<script" not in page.text and "pwned" not in page.text
    assert f'src="data:image/svg+xml;base64,{base64.b64encode(hostile.encode()).decode()}"' in page.text
    expected = pay_url or row.pay_url
    assert (f'href="{expected}"' in page.text) is shown
    assert ("Online betalen" in page.text) is shown
    assert "javascript:" not in page.text
    assert (f'href="{expected}"' in invoice_qr(engine, loi)) is shown  # the invoice's HTML takes the same care


def _control_items(engine: Any) -> list[ControlListItem]:
    with transaction(engine, readonly=True) as session:
        return list(session.scalars(select(ControlListItem).order_by(ControlListItem.id)))


def test_take_event_for_an_unknown_request_is_recorded_not_booked(engine, books) -> None:
    outcome = take_event(engine, "default", {"event_id": "ev-x", "type": "payment_request.paid", "request_id": "pr_nope",
                                             "amount": "5.00"}, _now())
    assert outcome == "unknown_request"
    assert _pom_payments(engine) == []


@pytest.mark.parametrize("paid_at", ["2026-03-29T03:30:00+02:00", "2026-03-29T01:30:00Z", "2026-03-29T03:30:00"])
def test_pom_times_are_stored_as_the_instant_they_name(engine, books, clients, paid_at: str) -> None:
    """POM's times with a Brussels offset (or none: Brussels time), on the day summer time starts: stored as the
    same instant (SQLite keeps no offset; a stored time is read as UTC), and so are the QR code's times."""
    sync_payment_requests(engine, clients, ACTOR, _now())
    (row,) = _requests(engine, payment_reference_id=books["refs"][0])
    event = {"event_id": "ev-tz", "type": "payment_request.paid", "request_id": row.pom_id, "amount": "20.00",
             "paid_at": paid_at, "channel": "bancontact"}
    assert take_event(engine, "default", event, _now()) == "paid"
    (after,) = _requests(engine, payment_reference_id=books["refs"][0])
    stored = after.paid_at if after.paid_at.tzinfo else after.paid_at.replace(tzinfo=timezone.utc)
    assert stored == datetime(2026, 3, 29, 1, 30, tzinfo=timezone.utc)
    body = {"id": "pr_1", "status": "open", "amount": "1.00", "communication": "090933755493", "reference": "x",
            "auto_cancel": False, "created_at": "2026-10-25T02:30:00+02:00",
            "qr": {"id": "q", "payload": "p", "pay_url": "u", "png_url": "g", "svg_url": "s", "status": "active",
                   "created_at": "2026-10-25T02:30:00+01:00", "expires_at": "2027-01-23T02:30:00+01:00"}}
    parsed = PomRequest.from_json(body)
    assert parsed.created_at.utcoffset() == parsed.qr.expires_at.utcoffset() == timedelta(0)
    assert (parsed.created_at.hour, parsed.qr.created_at.hour, parsed.qr.expires_at.hour) == (0, 1, 1)


def test_money_paid_for_an_unknown_request_reaches_the_control_list_once(engine, books) -> None:
    """Nobody else would see it (the reconciliation asks only about requests we know): the money goes to a person,
    once, however often POM reports it; but not while our own request for the reference is still being created
    (the next sync asks POM with the same key and books it)."""
    event = {"event_id": "ev-1", "type": "payment_request.paid", "request_id": "pr_nope", "reference": "fp:OTHER:9",
             "amount": "5.00", "paid_at": _now().isoformat(), "channel": "payconiq", "communication": "090933755493"}
    assert take_event(engine, "default", event, _now()) == "unknown_request"
    assert take_event(engine, "default", {**event, "event_id": "ev-2"}, _now()) == "unknown_request"  # POM again
    assert take_event(engine, "default", {**event, "type": "payment_request.cancelled", "event_id": "ev-3"},
                      _now()) == "unknown_request"
    (item,) = _control_items(engine)
    assert (item.kind, item.source, item.amount, item.statement_id) == ("unmatched", "pom", Decimal("5.00"), None)
    assert item.details["pom_id"] == "pr_nope" and item.pom_event_id is not None and "fp:OTHER:9" in item.reason
    assert _pom_payments(engine) == []
    loi = _reference(engine, books["refs"][1]).loi
    with transaction(engine) as session:  # our request for it reached POM, its answer not yet stored
        session.add(PomPaymentRequest(payment_reference_id=books["refs"][1], account="default", pom_id=None,
                                      idempotency_key="k-creating", amount=Decimal("20.00"), communication="1",
                                      status="creating", created_at=_now(), updated_at=_now()))
    assert take_event(engine, "default", {**event, "event_id": "ev-4", "request_id": "pr_new", "reference": loi},
                      _now()) == "unknown_request"
    assert len(_control_items(engine)) == 1


@pytest.mark.parametrize("amount", ["-5", "0.00", "NaN", "Infinity", "1.234", "abc", None])
def test_a_signed_paid_event_with_an_insane_amount_is_refused_and_changes_nothing(
        engine, books, clients, callbacks, amount: str | None) -> None:
    sync_payment_requests(engine, clients, ACTOR, _now())
    (row,) = _requests(engine, payment_reference_id=books["refs"][0])
    event = {"event_id": "ev-bad", "type": "payment_request.paid", "request_id": row.pom_id, "amount": amount,
             "paid_at": _now().isoformat(), "channel": "bancontact"}
    with pytest.raises(_BadEvent):
        take_event(engine, "default", event, _now())
    answer = _post(f"{callbacks.base_url}/pom/callback/default", json.dumps(event).encode(), PROD["callback_secret"])
    assert (answer.status_code, answer.json()["error"]) == (400, "malformed_event")
    (after,) = _requests(engine, payment_reference_id=books["refs"][0])
    assert (after.status, after.paid_amount) == ("open", None)
    assert _reference(engine, books["refs"][0]).status == "sealed"
    assert _pom_payments(engine) == []
    with transaction(engine, readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(PomEvent)) == 0
    good = take_event(engine, "default", {**event, "event_id": "ev-good", "amount": "12.50"}, _now())
    assert good == "partial"  # the reference asks 20.00
    assert _pom_payments(engine) == [(books["refs"][0], Decimal("12.50"))]


def test_a_callback_amount_is_read_exactly_not_through_a_float(engine, books, clients, callbacks) -> None:
    """A JSON number with a fraction of a cent is refused; as a float it passed as 12.50 (money is never a float)."""
    sync_payment_requests(engine, clients, ACTOR, _now())
    (row,) = _requests(engine, payment_reference_id=books["refs"][0])
    event = {"event_id": "ev-exact", "type": "payment_request.paid", "request_id": row.pom_id, "amount": 0,
             "paid_at": _now().isoformat(), "channel": "bancontact"}
    body = json.dumps(event).replace('"amount": 0', '"amount": 12.500000000000000001').encode()
    answer = _post(f"{callbacks.base_url}/pom/callback/default", body, PROD["callback_secret"])
    assert (answer.status_code, answer.json()["error"]) == (400, "malformed_event")
    assert _pom_payments(engine) == []
    exact = json.dumps(event).replace('"amount": 0', '"amount": 12.50').encode()
    answer = _post(f"{callbacks.base_url}/pom/callback/default", exact, PROD["callback_secret"])
    assert answer.status_code == 200 and _pom_payments(engine) == [(books["refs"][0], Decimal("12.50"))]


# -- expiry --------------------------------------------------------------------------------------


def test_expiry_asks_pom_first_then_cancels_and_reopens_the_debt(engine, books, clients, sim_api: SimApi) -> None:
    sync_payment_requests(engine, clients, ACTOR, _now())
    rows = {r.payment_reference_id: r for r in _requests(engine)}
    paid_ref, open_ref, young_ref = books["refs"]
    sim_api.control("POST", f"pay/{rows[paid_ref].pom_id}", {"channel": "bancontact", "callback": False})
    with transaction(engine) as session:  # the third reference is young: not past its 7 days
        session.get(PaymentReference, young_ref).created_at = _now() + timedelta(days=5)
    summary = expire_references(engine, clients, ACTOR, _now() + timedelta(days=7))
    assert summary.counts["expired"] == 1 and summary.counts["paid_before_expiry"] == 1
    assert _reference(engine, paid_ref).status == "paid"
    assert _reference(engine, open_ref).status == "expired"
    assert _reference(engine, young_ref).status == "sealed"
    assert sim_api.get(rows[open_ref].pom_id).json()["status"] == "cancelled"
    with transaction(engine, readonly=True) as session:
        lines = session.scalars(select(DebtLine.payment_reference_id).where(DebtLine.end_user_id == _reference(engine, open_ref).end_user_id))
        assert list(lines) == [None, None]
        actions = set(session.scalars(select(AuditLog.action).where(AuditLog.entity == "payment_reference",
                                                                    AuditLog.entity_id == open_ref)))
        assert {"expired", "debt_released"} <= actions
    again = expire_references(engine, clients, ACTOR, _now() + timedelta(days=7))
    assert again.counts["expired"] == 0


def test_expiry_leaves_a_reference_alone_when_pom_cannot_confirm(engine, books, clients, sim_api: SimApi) -> None:
    sync_payment_requests(engine, clients, ACTOR, _now())
    sim_api.control("POST", "faults", {"path_contains": "/payment-requests/", "times": 50, "kind": "status", "status": 503})
    with pytest.raises(PomSyncIncomplete):
        expire_references(engine, clients, ACTOR, _now() + timedelta(days=8))
    assert {_reference(engine, ref).status for ref in books["refs"]} == {"sealed"}


# -- the invoice downloaded again (seed 000, 4.4) -----------------------------------------------


def _download(callbacks: RunningApp, loi: str, token: str) -> httpx.Response:
    return httpx.get(f"{callbacks.base_url}/pom/invoice/default/{loi}", params={"t": token}, timeout=30)


def test_an_invoice_below_the_accounts_minimum_is_downloaded_as_it_is(
    engine, books, accounts, callbacks, sim_api: SimApi,
) -> None:
    """No POM code is made for it, so there is none to renew: the payer gets the printed invoice every time."""
    from include.finance.models import Invoice
    from include.invoices.making import make_invoices

    accounts["default"] = replace(accounts["default"], min_amount=Decimal("25.00"))  # the callback app's too
    with PomClients(accounts) as clients:
        assert sync_payment_requests(engine, clients, ACTOR, _now()).counts == {"below_minimum": 2, "created": 1}
    make_invoices(engine, ACTOR, _now())
    ref_id = books["refs"][0]  # 20.00
    loi = _reference(engine, ref_id).loi
    token = return_token(PROD["callback_secret"], loi)
    first = _download(callbacks, loi, token)
    assert first.status_code == 200 and _download(callbacks, loi, token).content == first.content
    with transaction(engine, readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(Invoice).where(Invoice.payment_reference_id == ref_id)) == 1
    assert _requests(engine, payment_reference_id=ref_id) == [] and sim_api.request_count() == 1


def test_an_invoice_made_at_once_downloaded_before_its_print_night_stays_in_that_nights_printing(
    engine, books, clients, sim_api: SimApi,
) -> None:
    """A type printed at once: its invoice, made today without a POM code yet, belongs to tomorrow's printing. The
    payer downloading it today gets it with a fresh code, made anew; the new version must take the old one's place
    in tomorrow's printing: filed under today, whose print run is over, the paper letter was never printed."""
    from include.finance.models import Invoice
    from include.invoices.download import invoice_pdf
    from include.invoices.making import make_invoices, next_print_day
    from include.runtime import brussels_day
    from tests.qr_reading import qr_payloads

    now = _now()
    tomorrow = next_print_day(brussels_day(now))
    ref_id = books["refs"][0]
    make_invoices(engine, ACTOR, now, print_day=tomorrow, reference_ids={ref_id})  # as sealing a direct type does
    pdf = invoice_pdf(engine, clients, _reference(engine, ref_id).loi, now)
    (request,) = _requests(engine, payment_reference_id=ref_id, status="open")
    assert pdf is not None and request.pay_url in qr_payloads(pdf)
    with transaction(engine, readonly=True) as session:
        versions = session.execute(select(Invoice.version, Invoice.print_day, Invoice.withdrawn_at.is_(None))
                                   .where(Invoice.payment_reference_id == ref_id).order_by(Invoice.version)).all()
    assert [tuple(v) for v in versions] == [(1, tomorrow, False), (2, tomorrow, True)]
    # A download of an invoice whose day was printed already still files the new version under today.
    with transaction(engine) as session:
        session.get(PomPaymentRequest, request.id).qr_expires_at = now - timedelta(minutes=1)
    later = now + timedelta(days=2)
    assert invoice_pdf(engine, clients, _reference(engine, ref_id).loi, later) is not None
    with transaction(engine, readonly=True) as session:
        current = session.scalar(select(Invoice.print_day).where(Invoice.payment_reference_id == ref_id,
                                                                 Invoice.withdrawn_at.is_(None)))
    assert current == brussels_day(later)


def test_a_downloaded_invoice_gets_a_fresh_pom_code_once_the_printed_one_no_longer_works(
    engine, books, clients, callbacks, sim_api: SimApi,
) -> None:
    from include.finance.models import Invoice
    from include.invoices.making import make_invoices
    from tests.qr_reading import qr_payloads

    sync_payment_requests(engine, clients, ACTOR, _now())
    make_invoices(engine, ACTOR, _now())
    ref_id = books["refs"][0]
    loi = _reference(engine, ref_id).loi
    token = return_token(PROD["callback_secret"], loi)
    (request,) = _requests(engine, payment_reference_id=ref_id)
    first = _download(callbacks, loi, token)
    assert first.status_code == 200 and first.headers["content-type"] == "application/pdf"
    assert request.pay_url in qr_payloads(first.content)
    assert _download(callbacks, loi, "guess").status_code == 404
    assert _download(callbacks, loi, token).content == first.content  # the code still works: the same file

    with transaction(engine) as session:  # the printed code's 90 days are over
        session.get(PomPaymentRequest, request.id).qr_expires_at = _now() - timedelta(minutes=1)
    renewed = _download(callbacks, loi, token)
    (same_request,) = _requests(engine, payment_reference_id=ref_id)
    assert same_request.pom_id == request.pom_id and same_request.qr_id != request.qr_id
    assert same_request.pay_url in qr_payloads(renewed.content) and request.pay_url not in qr_payloads(renewed.content)

    sim_api.cancel(request.pom_id, "lapsed")
    with transaction(engine) as session:  # POM's cancellation reached us as a callback does
        session.get(PomPaymentRequest, request.id).status = "cancelled"
    again = _download(callbacks, loi, token)
    live = _requests(engine, payment_reference_id=ref_id, status="open")
    assert len(live) == 1 and live[0].pom_id != request.pom_id
    assert live[0].pay_url in qr_payloads(again.content)
    with transaction(engine, readonly=True) as session:
        versions = session.scalars(select(Invoice.document_id).where(Invoice.payment_reference_id == ref_id)
                                   .order_by(Invoice.version)).all()
        current = session.scalars(select(Invoice.version).where(Invoice.payment_reference_id == ref_id,
                                                                Invoice.withdrawn_at.is_(None))).all()
    assert len(versions) == 3 and current == [3]


def test_a_callback_and_the_reconciliation_booking_the_same_payment_at_once_book_it_once(
        engine, books, clients, callbacks, sim_api: SimApi) -> None:
    # The payer paid; POM's callback and the nightly reconciliation see the payment at the same moment.
    import threading

    sync_payment_requests(engine, clients, ACTOR, _now())
    rows = {r.payment_reference_id: r for r in _requests(engine)}
    paid = [rows[ref] for ref in books["refs"][:2]]
    for row in paid:
        sim_api.control("POST", f"pay/{row.pom_id}", {"channel": "bancontact", "callback": False})
    start = threading.Barrier(1 + len(paid))
    answers: list[Any] = []
    errors: list[BaseException] = []

    def callback(row: PomPaymentRequest, n: int) -> None:
        body = json.dumps({"event_id": f"ev-race-{n}", "type": "payment_request.paid", "request_id": row.pom_id,
                           "amount": str(row.amount), "paid_at": _now().isoformat(),
                           "channel": "bancontact"}).encode()
        start.wait()
        answers.append(_post(f"{callbacks.base_url}/pom/callback/default", body, PROD["callback_secret"]))

    def reconciliation() -> None:
        start.wait()
        try:
            reconcile(engine, clients, ACTOR, _now())
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=callback, args=(row, n)) for n, row in enumerate(paid)]
    threads.append(threading.Thread(target=reconciliation))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and all(answer.status_code == 200 for answer in answers), (errors, answers)
    payments = _pom_payments(engine)
    assert sorted(ref for ref, _ in payments) == sorted(books["refs"][:2])  # one payment each, whoever came first
    assert {_reference(engine, ref).status for ref in books["refs"][:2]} == {"paid"}
    assert {r.status for r in _requests(engine) if r.payment_reference_id in books["refs"][:2]} == {"paid"}


@pytest.mark.parametrize("kind", ["payment_request.paid", "payment_request.cancelled", "payment_request.expired"])
def test_an_event_without_a_request_id_never_lands_on_a_request_still_being_created(engine, books, kind: str) -> None:
    """A request being created has no POM id yet; an event naming none (signed, but incomplete) is not its event:
    cancelling it here would leave its request open at POM while the next sync makes a second one."""
    with transaction(engine) as session:
        session.add(PomPaymentRequest(payment_reference_id=books["refs"][0], account="default", pom_id=None,
                                      idempotency_key="k-creating", amount=Decimal("20.00"), communication="1",
                                      status="creating", created_at=_now(), updated_at=_now()))
    event = {"event_id": "ev-no-id", "type": kind, "amount": "20.00", "paid_at": _now().isoformat(),
             "channel": "bancontact"}
    assert take_event(engine, "default", event, _now()) == "unknown_request"
    (row,) = _requests(engine, payment_reference_id=books["refs"][0])
    assert (row.status, row.paid_amount) == ("creating", None)
    assert _pom_payments(engine) == []
    assert _reference(engine, books["refs"][0]).status == "sealed"


def _sim_account(pom_sim: Any, name: str, data: dict[str, Any], **changes: Any) -> PomAccount:
    fields = {"name": name, "base_url": pom_sim.base_url, "env": data["env"], "username": data["username"],
              "password": data["password"], "sender_id": data["sender_id"],
              "sender_contract_number": data["sender_contract_number"], "callback_secret": data["callback_secret"],
              "timeout_seconds": 2}
    return PomAccount(**{**fields, **changes})


@pytest.mark.parametrize("broken", ["refused", "no_connection"])
def test_one_pom_account_failing_does_not_stop_the_reconciliation_of_the_others(
        engine, books, pom_sim, sim_api: SimApi, broken: str) -> None:
    """Seed 000, 3: several POM accounts. The one whose credentials POM refuses (or whose Connection is gone) is
    named in the report and fails the run; the others are still read, booked and their overdue requests cancelled."""
    with transaction(engine) as session:
        tickets = PaymentReferenceType(code="TICKETS", name="Tickets", allowed_online=True, pom_account="tickets",
                                       pom_auto_cancel=True)
        session.add(tickets)
        session.flush()
        for ref_id in books["refs"][1:]:
            session.get(PaymentReference, ref_id).type_id = tickets.id
        session.get(PaymentReference, books["refs"][2]).due_date = date.today() + timedelta(days=2)
    good = {"default": _sim_account(pom_sim, "default", PROD), "tickets": _sim_account(pom_sim, "tickets", ACCOUNTS["tickets"])}
    quick = lambda account: PomClient(account, max_attempts=2, sleep=lambda _s: None, jitter=lambda: 0.0)  # noqa: E731
    with PomClients(good, factory=quick) as clients:
        assert sync_payment_requests(engine, clients, ACTOR, _now()).counts["created"] == 3
    rows = {r.payment_reference_id: r for r in _requests(engine)}
    sim_api.control("POST", f"pay/{rows[books['refs'][1]].pom_id}", {"channel": "payconiq", "callback": False})
    later = _now() + timedelta(days=4)  # the third reference is overdue
    damaged = {"tickets": good["tickets"]}
    if broken == "refused":
        damaged["default"] = _sim_account(pom_sim, "default", PROD, password="changed-at-pom")
    with PomClients(damaged, factory=quick) as clients, pytest.raises(PomSyncIncomplete, match="default"):
        reconcile(engine, clients, ACTOR, later)
    assert _reference(engine, books["refs"][1]).status == "paid"
    statuses = {r.payment_reference_id: r.status for r in _requests(engine)}
    assert statuses == {books["refs"][0]: "open", books["refs"][1]: "paid", books["refs"][2]: "cancelled"}
    assert sim_api.get(rows[books["refs"][2]].pom_id, "tickets").json()["status"] == "cancelled"
    report = reports_dir() / "pom_reconciliation" / later.date().isoformat() / "pom_reconciliation.csv"
    lines = report.read_text(encoding="utf-8-sig").splitlines()
    assert any("default" in line and "not reconciled" in line for line in lines)


def _rewriting(accounts: dict[str, PomAccount], patches: dict[str, dict[str, Any]]) -> PomClients:
    """Clients that talk to the simulator but see the requests in ``patches`` with those fields changed (what POM
    may send one day that the simulator does not: another status, an odd payment)."""

    def forward(request: httpx.Request) -> httpx.Response:
        with httpx.Client(base_url=accounts["default"].base_url) as real:
            answer = real.send(real.build_request(request.method, request.url, headers=request.headers,
                                                  content=request.content))
        body = answer.content
        if answer.headers.get("content-type", "").startswith("application/json"):
            data = json.loads(body)
            if isinstance(data, dict) and data.get("id") in patches:
                data.update(patches[data["id"]])
                body = json.dumps(data).encode()
        return httpx.Response(answer.status_code, headers={"content-type": answer.headers.get("content-type", "")},
                              content=body)

    return PomClients(accounts, factory=lambda account: PomClient(
        account, max_attempts=2, sleep=lambda _s: None, jitter=lambda: 0.0, transport=httpx.MockTransport(forward)))


@pytest.mark.parametrize("status", ["pending", "refunded", "paid"])
def test_a_status_pom_reports_that_we_do_not_know_is_left_to_a_person_never_cancelled(
        engine, books, clients, accounts, sim_api: SimApi, status: str) -> None:
    """A payment in progress (or any status the API does not name, or "paid" without its payment) is not "open":
    cancelling it as overdue could cancel what the payer is paying. It is reported, and left as it is."""
    with transaction(engine) as session:
        session.get(PaymentReferenceType, books["type_id"]).pom_auto_cancel = True
        for ref_id in books["refs"]:
            session.get(PaymentReference, ref_id).due_date = date.today() + timedelta(days=1)
    sync_payment_requests(engine, clients, ACTOR, _now())
    rows = {r.payment_reference_id: r for r in _requests(engine)}
    odd = rows[books["refs"][0]]
    with _rewriting(accounts, {odd.pom_id: {"status": status}}) as seen:
        report = reconcile(engine, seen, ACTOR, _now() + timedelta(days=3))
    assert report.counts["cancelled_overdue"] == 2 and report.counts["error"] == 1
    assert sim_api.get(odd.pom_id).json()["status"] == "open"
    (after,) = _requests(engine, payment_reference_id=books["refs"][0])
    assert after.status == "open"
    text = open(report.csv, encoding="utf-8-sig").read()
    assert repr(status) in text and _reference(engine, books["refs"][0]).loi in text


@pytest.mark.parametrize("status", ["pending", "refunded", "paid"])
def test_expiry_leaves_a_reference_alone_while_pom_reports_a_status_we_do_not_know(
        engine, books, clients, accounts, sim_api: SimApi, status: str) -> None:
    sync_payment_requests(engine, clients, ACTOR, _now())
    rows = {r.payment_reference_id: r for r in _requests(engine)}
    odd = rows[books["refs"][0]]
    with _rewriting(accounts, {odd.pom_id: {"status": status}}) as seen, pytest.raises(PomSyncIncomplete, match=repr(status)):
        expire_references(engine, seen, ACTOR, _now() + timedelta(days=8))
    assert _reference(engine, books["refs"][0]).status == "sealed"
    assert {_reference(engine, ref).status for ref in books["refs"][1:]} == {"expired"}
    assert sim_api.get(odd.pom_id).json()["status"] == "open"
    (after,) = _requests(engine, payment_reference_id=books["refs"][0])
    assert after.status == "open"


def test_the_status_page_reloads_itself_until_the_payment_is_in(engine, books, clients, callbacks, sim_api: SimApi) -> None:
    """Seed 000, 4.2: once paid with the smartphone, the page showing the QR code reloads within a few seconds and
    shows the new status; a paid reference's page stays still."""
    sync_payment_requests(engine, clients, ACTOR, _now())
    (row,) = _requests(engine, payment_reference_id=books["refs"][0])
    loi = _reference(engine, books["refs"][0]).loi
    url = f"{callbacks.base_url}/pom/status/default/{loi}"
    token = {"t": return_token(PROD["callback_secret"], loi)}
    waiting = httpx.get(url, params=token)
    assert "Nog te betalen" in waiting.text
    assert '<meta http-equiv="refresh" content="5">' in waiting.text
    sim_api.control("POST", f"pay/{row.pom_id}", {"channel": "bancontact", "callback": True})
    eventually(lambda: _reference(engine, books["refs"][0]).status == "paid")
    paid = httpx.get(url, params=token)
    assert "Betaald" in paid.text and "refresh" not in paid.text


@pytest.mark.parametrize("amount", ["0.00", "-20.00"])
def test_a_payment_of_nothing_or_less_read_from_pom_is_refused_not_booked(
        engine, books, clients, accounts, sim_api: SimApi, amount: str) -> None:
    """As for a callback (``_paid_amount``): a "paid" request whose payment is not above zero is not a payment
    Innen can book; taking it marked the request paid with nothing booked (on a closed reference: a "refund" of a
    negative amount on the control list)."""
    sync_payment_requests(engine, clients, ACTOR, _now())
    odd = _requests(engine, payment_reference_id=books["refs"][0])[0]
    payment = {"amount": amount, "paid_at": _now().isoformat(), "channel": "bancontact"}
    with _rewriting(accounts, {odd.pom_id: {"status": "paid", "payment": payment}}) as seen:
        report = reconcile(engine, seen, ACTOR, _now())
    assert report.counts["error"] == 1 and report.counts.get("paid", 0) + report.counts.get("partial", 0) == 0
    (after,) = _requests(engine, payment_reference_id=books["refs"][0])
    assert (after.status, after.paid_amount) == ("open", None)
    assert _pom_payments(engine) == [] and _control_items(engine) == []


def test_a_reconciliation_hit_by_pom_errors_books_what_it_read_and_a_rerun_finishes_it(
        engine, books, clients, sim_api: SimApi) -> None:
    """5xx on one read until the retries run out, a 429 and a lost cancel answer mid-run: what could be read is
    booked, what could not is reported and neither booked nor cancelled; the rerun books it once."""
    with transaction(engine) as session:
        session.get(PaymentReferenceType, books["type_id"]).pom_auto_cancel = True
        session.get(PaymentReference, books["refs"][2]).due_date = date.today() + timedelta(days=1)
        session.get(PaymentReference, books["refs"][1]).due_date = date.today() + timedelta(days=1)
    sync_payment_requests(engine, clients, ACTOR, _now())
    rows = {r.payment_reference_id: r for r in _requests(engine)}
    paid, unread, overdue = (rows[ref] for ref in books["refs"])
    for row in (paid, unread):
        sim_api.control("POST", f"pay/{row.pom_id}", {"channel": "bancontact", "callback": False})
    sim_api.control("POST", "faults", {"path_contains": f"/payment-requests/{unread.pom_id}", "method": "GET",
                                       "times": 4, "kind": "status", "status": 503})
    sim_api.control("POST", "faults", {"path_contains": f"/payment-requests/{paid.pom_id}", "method": "GET",
                                       "times": 1, "kind": "status", "status": 429, "seconds": 1})
    sim_api.control("POST", "faults", {"path_contains": f"/{overdue.pom_id}/cancel", "times": 1, "kind": "timeout",
                                       "seconds": 3})
    later = _now() + timedelta(days=3)
    first = reconcile(engine, clients, ACTOR, later)
    assert (first.counts["paid"], first.counts["error"], first.counts["cancelled_overdue"]) == (1, 1, 1)
    statuses = {r.payment_reference_id: r.status for r in _requests(engine)}
    assert statuses == {books["refs"][0]: "paid", books["refs"][1]: "open", books["refs"][2]: "cancelled"}
    assert sim_api.get(unread.pom_id).json()["status"] == "paid"  # read nothing, so cancelled nothing
    second = reconcile(engine, clients, ACTOR, later)
    assert second.counts["paid"] == 1 and second.counts.get("error", 0) == 0
    assert sorted(_pom_payments(engine)) == sorted([(books["refs"][0], Decimal("20.00")),
                                                    (books["refs"][1], Decimal("20.00"))])
    assert reconcile(engine, clients, ACTOR, later).counts.get("paid", 0) == 0


@pytest.mark.parametrize("broken", ["refused", "no_connection"])
def test_one_pom_account_failing_does_not_stop_the_requests_of_the_others(
        engine, books, pom_sim, sim_api: SimApi, broken: str) -> None:
    """A test-mode account whose password changed (or whose Connection is gone) must not keep the production
    account's references from their QR codes; it is named, asked once, and the run ends incomplete."""
    with transaction(engine) as session:
        tickets = PaymentReferenceType(code="TICKETS", name="Tickets", allowed_online=True, pom_account="tickets")
        session.add(tickets)
        session.flush()
        session.get(PaymentReference, books["refs"][1]).type_id = tickets.id
    accounts = {"tickets": _sim_account(pom_sim, "tickets", ACCOUNTS["tickets"])}
    if broken == "refused":
        accounts["default"] = _sim_account(pom_sim, "default", PROD, password="changed-at-pom")
    sim_api.control("DELETE", "hits")
    quick = lambda account: PomClient(account, max_attempts=2, sleep=lambda _s: None, jitter=lambda: 0.0)  # noqa: E731
    with PomClients(accounts, factory=quick) as clients, pytest.raises(PomSyncIncomplete, match="default"):
        sync_payment_requests(engine, clients, ACTOR, _now())
    opened = {r.payment_reference_id for r in _requests(engine, status="open")}
    assert opened == {books["refs"][1]}
    assert sim_api.request_count("tickets") == 1
    assert sim_api.hits("/auth/token")["statuses"].get("401", 0) == (1 if broken == "refused" else 0)
    with PomClients({**accounts, "default": _sim_account(pom_sim, "default", PROD)}, factory=quick) as clients:
        assert sync_payment_requests(engine, clients, ACTOR, _now()).counts["created"] == 2
    assert {r.status for r in _requests(engine)} == {"open"} and len(_requests(engine)) == 3


@pytest.mark.parametrize("broken", ["refused", "no_connection"])
def test_expiry_goes_on_for_the_other_accounts_when_one_fails(engine, books, pom_sim, sim_api: SimApi, broken: str) -> None:
    with transaction(engine) as session:
        tickets = PaymentReferenceType(code="TICKETS", name="Tickets", allowed_online=True, pom_account="tickets",
                                       lifetime_seconds=7 * 86400)
        session.add(tickets)
        session.flush()
        session.get(PaymentReference, books["refs"][1]).type_id = tickets.id
    good = {"default": _sim_account(pom_sim, "default", PROD), "tickets": _sim_account(pom_sim, "tickets", ACCOUNTS["tickets"])}
    quick = lambda account: PomClient(account, max_attempts=2, sleep=lambda _s: None, jitter=lambda: 0.0)  # noqa: E731
    with PomClients(good, factory=quick) as clients:
        sync_payment_requests(engine, clients, ACTOR, _now())
    damaged = {"tickets": good["tickets"]}
    if broken == "refused":
        damaged["default"] = _sim_account(pom_sim, "default", PROD, password="changed-at-pom")
    sim_api.control("DELETE", "hits")
    with PomClients(damaged, factory=quick) as clients, pytest.raises(PomSyncIncomplete):
        expire_references(engine, clients, ACTOR, _now() + timedelta(days=8))
    statuses = {ref: _reference(engine, ref).status for ref in books["refs"]}
    assert statuses == {books["refs"][0]: "sealed", books["refs"][1]: "expired", books["refs"][2]: "sealed"}
    assert sim_api.hits("/auth/token")["statuses"].get("401", 0) == (1 if broken == "refused" else 0)


def test_the_status_page_viewed_again_gets_a_fresh_code_once_the_old_one_no_longer_works(
        engine, books, clients, callbacks, sim_api: SimApi) -> None:
    """Seed 000, 4.4: viewed again online, a reference whose QR code expired (90 days) gets a new one on the same
    request, and one whose request was cancelled gets a new request; an expired code is never shown."""
    sync_payment_requests(engine, clients, ACTOR, _now())
    (request,) = _requests(engine, payment_reference_id=books["refs"][0])
    loi = _reference(engine, books["refs"][0]).loi
    url = f"{callbacks.base_url}/pom/status/default/{loi}"
    token = {"t": return_token(PROD["callback_secret"], loi)}

    with transaction(engine) as session:  # the code's 90 days are over
        session.get(PomPaymentRequest, request.id).qr_expires_at = _now() - timedelta(minutes=1)
    page = httpx.get(url, params=token, timeout=30)
    (renewed,) = _requests(engine, payment_reference_id=books["refs"][0])
    assert renewed.pom_id == request.pom_id and renewed.qr_id != request.qr_id
    assert renewed.pay_url in page.text and request.pay_url not in page.text
    assert sim_api.request_count() == 3  # the same requests: a new code, not a new request

    sim_api.cancel(request.pom_id, "lapsed")
    with transaction(engine) as session:  # POM's cancellation reached us as a callback does
        session.get(PomPaymentRequest, request.id).status = "cancelled"
    page = httpx.get(url, params=token, timeout=30)
    (fresh,) = _requests(engine, payment_reference_id=books["refs"][0], status="open")
    assert fresh.pom_id != request.pom_id and fresh.pay_url in page.text
    assert "Nog te betalen" in page.text


def _forgetting(accounts: dict[str, PomAccount], forgotten: set[str] | None) -> PomClients:
    """Clients to the simulator for which POM no longer knows the requests ``forgotten`` (None: any request)."""

    def forward(request: httpx.Request) -> httpx.Response:
        request_id = request.url.path.rsplit("/", 1)[-1]
        if request.method == "GET" and "/payment-requests/" in request.url.path and (
                forgotten is None or request_id in forgotten):
            return httpx.Response(404, json={"error": "not_found"})
        with httpx.Client(base_url=accounts["default"].base_url) as real:
            answer = real.send(real.build_request(request.method, request.url, headers=request.headers,
                                                  content=request.content))
        return httpx.Response(answer.status_code, headers={"content-type": answer.headers.get("content-type", "")},
                              content=answer.content)

    return PomClients(accounts, factory=lambda account: PomClient(
        account, max_attempts=2, sleep=lambda _s: None, jitter=lambda: 0.0, transport=httpx.MockTransport(forward)))


def test_a_request_pom_no_longer_knows_is_closed_here_and_made_anew(engine, books, clients, accounts,
                                                                    sim_api: SimApi) -> None:
    """POM answers 404 for one request while it reads the account's others: its QR code can never be paid, so it
    is closed here (on the report, for a person to see once) and the next sync makes a new request, instead of an
    error every night and a dead code on the reference for good."""
    sync_payment_requests(engine, clients, ACTOR, _now())
    rows = {r.payment_reference_id: r for r in _requests(engine)}
    gone = rows[books["refs"][0]]
    with _forgetting(accounts, {gone.pom_id}) as forgetful:
        report = reconcile(engine, forgetful, ACTOR, _now())
    assert report.counts["found_cancelled"] == 1 and report.counts.get("error", 0) == 0
    (closed,) = _requests(engine, payment_reference_id=books["refs"][0])
    assert closed.status == "cancelled" and "404" in closed.cancelled_reason
    text = open(report.csv, encoding="utf-8-sig").read()
    assert "no longer knows" in text and _reference(engine, books["refs"][0]).loi in text
    assert sync_payment_requests(engine, clients, ACTOR, _now()).counts["created"] == 1
    (fresh,) = _requests(engine, payment_reference_id=books["refs"][0], status="open")
    assert fresh.pom_id != gone.pom_id


def test_an_account_pom_answers_404_for_every_request_is_not_closed(engine, books, clients, accounts) -> None:
    """Every request unknown: more likely the Connection names another account than POM forgetting them all, so
    nothing is closed; each is reported."""
    sync_payment_requests(engine, clients, ACTOR, _now())
    with _forgetting(accounts, None) as forgetful:
        report = reconcile(engine, forgetful, ACTOR, _now())
    assert report.counts["error"] == 3 and report.counts.get("found_cancelled", 0) == 0
    assert {r.status for r in _requests(engine)} == {"open"}
