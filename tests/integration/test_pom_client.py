"""The POM client against the simulator over real HTTP: retries, idempotency, auth, pacing, logs."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest

from include.errors import ConfigError
from include.pom.client import (
    ERROR_MAX_BYTES,
    IMAGE_MAX_BYTES,
    JSON_MAX_BYTES,
    REPORT_MAX_BYTES,
    PomAccount,
    PomAuthError,
    PomClient,
    PomDocument,
    PomError,
    PomNotFound,
    PomRecipient,
    PomRejected,
    PomRequest,
    PomUnavailable,
    RatePacer,
)
from sandbox.pom_simulator import RunningSimulator
from tests.integration.pom_fixtures import *  # noqa: F403
from tests.integration.pom_fixtures import ACCOUNTS, SimApi
from tests.integration.test_pom_simulator import invoice_pdf

OGM = "+++090/9337/55493+++"


def _create(client: PomClient, key: str = "fp:BIB:123:v1", **overrides: Any) -> PomRequest:
    arguments: dict[str, Any] = {
        "due_date": date(2026, 4, 15),
        "description": "Factuur 2026-000123",
        "reference": "fp:BIB:123",
        "return_url": "https://innen.example/pom/return/fp:BIB:123",
        "callback_url": None,
        "auto_cancel": False,
        "idempotency_key": key,
    }
    arguments.update(overrides)
    return client.create_request(Decimal("12.50"), OGM, **arguments)


# configuration


BASE_EXTRA = {"sender_id": "S1", "sender_contract_number": "C1", "callback_secret": "cb-secret"}


@pytest.mark.parametrize(
    ("host", "port", "schema", "extra", "expected"),
    [
        ("pom.example", None, "https", {}, ("https://pom.example", "prod", None, None)),
        ("pom.example", 8443, None, {"beta": True}, ("https://pom.example:8443", "beta", None, None)),
        ("http://127.0.0.1", 8077, None, {"beta": "false"}, ("http://127.0.0.1:8077", "prod", None, None)),
        ("http://127.0.0.1:9000/", None, None, {"env": "beta"}, ("http://127.0.0.1:9000", "beta", None, None)),
        (
            "pom.example",
            None,
            "http",
            {"rate_limit_per_second": "300", "auto_cancel": "true"},
            ("http://pom.example", "prod", 300.0, True),
        ),
    ],
)
def test_account_from_connection_fields(
    host: str, port: int | None, schema: str | None, extra: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    account = PomAccount.from_connection(
        "pom_bib", host=host, port=port, schema=schema, login="bib", password="pw-secret", extra={**BASE_EXTRA, **extra}
    )
    assert (account.base_url, account.env, account.rate_limit_per_second, account.auto_cancel) == expected
    assert (account.username, account.sender_id, account.sender_contract_number) == ("bib", "S1", "C1")
    assert "pw-secret" not in repr(account) and "cb-secret" not in repr(account)
    assert "pw-secret" not in repr(PomClient(account))


@pytest.mark.parametrize(
    ("login", "extra", "message"),
    [
        (None, {}, "lacks login"),
        ("bib", {"sender_id": None}, "lacks extra.sender_id"),
        ("bib", {"callback_secret": ""}, "lacks extra.callback_secret"),
        ("bib", {"env": "prod", "beta": True}, "contradicts"),
        ("bib", {"env": "staging"}, "env must be prod or beta"),
        ("bib", {"beta": "maybe"}, "must be true or false"),
        ("bib", {"rate_limit_per_second": "fast"}, "could not convert"),
        ("bib", {"rate_limit_per_second": 0}, "must be positive"),
    ],
)
def test_account_from_bad_connection_fields(login: str | None, extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PomAccount.from_connection(
            "pom_bib", host="pom.example", schema=None, login=login, password="pw", extra={**BASE_EXTRA, **extra}
        )


# the happy path


def test_create_get_cancel_renew_and_images(pom_client: PomClient, sim_api: SimApi) -> None:
    created = _create(pom_client)
    assert created.status == "open" and created.amount == Decimal("12.50") and isinstance(created.amount, Decimal)
    assert (created.communication, created.due_date, created.auto_cancel) == ("090933755493", date(2026, 4, 15), False)
    assert created.qr is not None and created.qr.status == "active" and created.payment is None
    assert (created.qr.expires_at - created.qr.created_at).days == 90
    renewed = pom_client.renew_qr(created.id)
    assert renewed.qr is not None and renewed.qr.id != created.qr.id
    assert pom_client.qr_image(renewed.qr.id, "png").startswith(b"\x89PNG")
    assert "+++090/9337/55493+++" in pom_client.qr_image(renewed.qr.id, "svg").decode()
    sim_api.control("POST", f"pay/{created.id}", {"channel": "payconiq", "callback": False})
    paid = pom_client.get_request(created.id)
    assert paid.status == "paid" and paid.payment is not None
    assert (paid.payment.amount, paid.payment.channel) == (Decimal("12.50"), "payconiq")
    other = _create(pom_client, key="fp:BIB:124:v1", reference="fp:BIB:124")
    cancelled = pom_client.cancel_request(other.id, "amount changed")
    assert (cancelled.status, cancelled.cancelled_reason) == ("cancelled", "amount changed")
    assert cancelled.cancelled_at is not None
    assert pom_client.cancel_request(other.id, "again") == cancelled


def test_account_auto_cancel_default_is_sent_when_the_call_leaves_it_open(pom_account: PomAccount) -> None:
    with PomClient(replace(pom_account, auto_cancel=True)) as client:
        assert _create(client, auto_cancel=None).auto_cancel is True
        assert _create(client, key="k2", auto_cancel=False).auto_cancel is False


def test_same_idempotency_key_gives_the_same_request(pom_client: PomClient, sim_api: SimApi) -> None:
    first = _create(pom_client)
    again = _create(pom_client)
    assert again.id == first.id
    with pytest.raises(PomRejected) as refused:
        _create(pom_client, description="another text")
    assert (refused.value.status, refused.value.code) == (422, "idempotency_key_reused")
    assert sim_api.request_count() == 1


# retries


def _fault(
    sim_api: SimApi,
    path_contains: str,
    kind: str,
    *,
    times: int | None = 1,
    status: int = 503,
    seconds: float = 0.0,
    method: str | None = None,
) -> None:
    fault = {"path_contains": path_contains, "kind": kind, "times": times, "status": status, "seconds": seconds}
    sim_api.control("POST", "faults", {**fault, "method": method})


@pytest.mark.parametrize(
    ("kind", "status", "times", "seconds"),
    [
        ("status", 503, 2, 0.0),
        ("status", 500, 1, 0.0),
        ("status", 429, 1, 2.0),
        ("malformed", 200, 2, 0.0),
        ("timeout", 200, 1, 1.5),
    ],
)
def test_reads_are_retried_until_they_succeed(
    pom_client: PomClient, sim_api: SimApi, sleeps: list[float], kind: str, status: int, times: int, seconds: float
) -> None:
    request = _create(pom_client)
    _fault(sim_api, request.id, kind, times=times, status=status, seconds=seconds, method="GET")
    assert pom_client.get_request(request.id).id == request.id
    assert sim_api.hits(request.id, "GET")["total"] == times + 1
    assert len(sleeps) == times
    assert sleeps == sorted(sleeps)  # exponential, jitter fixed at 0 here
    if status == 429:
        assert sleeps[0] >= 2.0  # Retry-After honoured


@pytest.mark.parametrize(
    ("kind", "status", "seconds"),
    [
        ("timeout", 200, 1.5),  # POM created it, the answer never came
        ("malformed", 201, 0.0),  # POM created it, the answer came garbled
        ("status", 503, 0.0),  # POM did not create it
        ("status", 429, 1.0),
    ],
)
def test_create_whose_answer_was_lost_is_not_created_twice(
    pom_client: PomClient, sim_api: SimApi, sleeps: list[float], kind: str, status: int, seconds: float
) -> None:
    _fault(sim_api, "/payment-requests", kind, status=status, seconds=seconds, method="POST")
    created = _create(pom_client)
    assert sim_api.request_count() == 1
    assert sim_api.hits("/api/prod/payment-requests", "POST")["total"] == 2
    assert pom_client.get_request(created.id).reference == "fp:BIB:123"
    assert len(sleeps) == 1


def test_cancel_is_retried_after_a_lost_answer(pom_client: PomClient, sim_api: SimApi) -> None:
    request = _create(pom_client)
    _fault(sim_api, "/cancel", "timeout", seconds=1.5)
    assert pom_client.cancel_request(request.id, "duplicate").status == "cancelled"
    assert sim_api.hits("/cancel")["total"] == 2


def test_renewing_a_qr_code_is_not_repeated_after_a_lost_answer(pom_client: PomClient, sim_api: SimApi) -> None:
    request = _create(pom_client)
    _fault(sim_api, "/qr-codes", "timeout", seconds=1.5, method="POST")
    with pytest.raises(PomUnavailable) as failure:
        pom_client.renew_qr(request.id)
    assert failure.value.attempts == 1
    assert sim_api.hits("/qr-codes", "POST")["total"] == 1
    _fault(sim_api, "/qr-codes", "status", status=503, method="POST")
    assert pom_client.renew_qr(request.id).qr is not None
    assert sim_api.hits("/qr-codes", "POST")["total"] == 3


def test_retries_stop_after_max_attempts(pom_client: PomClient, sim_api: SimApi, sleeps: list[float]) -> None:
    request = _create(pom_client)
    _fault(sim_api, request.id, "status", times=None, status=503)
    with pytest.raises(PomUnavailable, match=r"server error \(503\) after 4 attempt") as failure:
        pom_client.get_request(request.id)
    assert failure.value.attempts == 4
    assert sim_api.hits(request.id)["total"] == 4
    assert sleeps == [0.125, 0.25, 0.5]


@pytest.mark.parametrize(
    ("case", "error", "status", "code", "path"),
    [
        ("invalid_communication", PomRejected, 422, "invalid_request", "/payment-requests"),
        ("bad_request", PomRejected, 400, "injected_fault", "/payment-requests"),
        ("unknown_request", PomNotFound, 404, "not_found", "pr_424242"),
        ("paid_then_cancelled", PomRejected, 409, "already_paid", "/cancel"),
        ("wrong_sender", PomAuthError, 403, "sender_mismatch", "/payment-requests"),
        ("wrong_password", PomAuthError, 401, "invalid_credentials", "/auth/token"),
    ],
)
def test_refusals_are_never_retried(
    pom_client: PomClient,
    pom_account: PomAccount,
    sim_api: SimApi,
    sleeps: list[float],
    case: str,
    error: type[PomError],
    status: int,
    code: str | None,
    path: str,
) -> None:
    client = pom_client
    call = None
    if case == "invalid_communication":
        bad = "+++090/9337/55494+++"  # wrong check digits
        call = lambda: client.create_request(Decimal("1.00"), bad, reference="r", idempotency_key="k")  # noqa: E731
    elif case == "bad_request":
        _fault(sim_api, "/payment-requests", "status", status=400, method="POST")
        call = lambda: _create(client)  # noqa: E731
    elif case == "unknown_request":
        call = lambda: client.get_request("pr_424242")  # noqa: E731
    elif case == "paid_then_cancelled":
        request = _create(client)
        sim_api.control("POST", f"pay/{request.id}", {"callback": False})
        call = lambda: client.cancel_request(request.id, "too late")  # noqa: E731
    elif case == "wrong_sender":
        client = PomClient(replace(pom_account, sender_id="SENDER-OTHER"), sleep=sleeps.append)
        call = lambda: _create(client)  # noqa: E731
    else:
        client = PomClient(replace(pom_account, password="wrong"), sleep=sleeps.append)
        call = lambda: client.get_request("pr_000001")  # noqa: E731
    sim_api.control("DELETE", "hits")
    try:
        with pytest.raises(error) as refused:
            call()
    finally:
        if client is not pom_client:
            client.close()
    assert (refused.value.status, refused.value.code) == (status, code)  # type: ignore[attr-defined]
    assert sim_api.hits(path)["total"] == 1
    assert sleeps == []
    if case == "invalid_communication":
        assert isinstance(refused.value, PomRejected) and refused.value.field == "communication"


def test_expired_token_is_replaced_once(pom_client: PomClient, sim_api: SimApi) -> None:
    request = _create(pom_client)
    sim_api.control("POST", "clock", {"advance_seconds": 7200})
    assert pom_client.get_request(request.id).id == request.id
    assert sim_api.hits("/auth/token")["total"] == 2
    assert sim_api.hits(request.id)["statuses"] == {"401": 1, "200": 1}


def test_a_token_refused_twice_is_an_auth_error(pom_account: PomAccount) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path.endswith("/auth/token"):
            token = {"access_token": f"t{len(calls)}", "token_type": "Bearer", "expires_in": 3600}
            return httpx.Response(200, json=token)
        return httpx.Response(401, json={"error": "invalid_token"})

    with PomClient(pom_account, transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(PomAuthError, match="invalid_token"):
            client.get_request("pr_000001")
    assert calls == ["/api/prod/auth/token", "/api/prod/payment-requests/pr_000001"] * 2


def test_connection_errors_are_retried(pom_account: PomAccount, sim_api: SimApi, sleeps: list[float]) -> None:
    """The simulator cannot refuse a connection it has accepted, so a mock transport fails the first two."""
    real = httpx.HTTPTransport()
    failures = iter([httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), None, None, None])

    def handler(request: httpx.Request) -> httpx.Response:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        response = real.handle_request(request)
        response.read()
        return response

    transport = httpx.MockTransport(handler)
    with PomClient(pom_account, transport=transport, sleep=sleeps.append, jitter=lambda: 1.0) as client:
        assert _create(client).status == "open"
    assert sleeps == [0.25, 0.5]
    assert sim_api.request_count() == 1


@pytest.mark.parametrize("safe", [True, False])
def test_a_dropped_connection_is_retried_only_where_safe(
    pom_account: PomAccount, sleeps: list[float], safe: bool
) -> None:
    answered: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth/token"):
            return httpx.Response(200, json={"access_token": "t", "token_type": "Bearer", "expires_in": 3600})
        answered.append(request.url.path)
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")

    with PomClient(pom_account, transport=httpx.MockTransport(handler), sleep=sleeps.append, max_attempts=3) as client:
        with pytest.raises(PomUnavailable, match="RemoteProtocolError"):
            client.get_request("pr_000001") if safe else client.renew_qr("pr_000001")
    assert len(answered) == (3 if safe else 1)


def test_nobody_listening_is_unavailable_after_the_attempts(pom_account: PomAccount, sleeps: list[float]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    nowhere = replace(pom_account, base_url=f"http://127.0.0.1:{port}")
    with PomClient(nowhere, sleep=sleeps.append, max_attempts=3) as client:
        with pytest.raises(PomUnavailable, match="cannot connect") as failure:
            client.get_request("pr_000001")
    assert failure.value.attempts == 3 and len(sleeps) == 2


def test_server_rate_limit_is_waited_out(pom_account: PomAccount, sim_api: SimApi) -> None:
    """Without client pacing, a burst meets the server's 429s and still completes by honouring Retry-After."""
    sim_api.control("POST", "rate-limit", {"per_second": 4})
    with PomClient(pom_account, backoff_base=0.01) as client:
        started = time.monotonic()
        created = [_create(client, key=f"k{i}").id for i in range(3)]
        results = [client.get_request(request_id) for request_id in created * 2]
        elapsed = time.monotonic() - started
    assert len(results) == 6
    assert sim_api.hits("/api/prod")["statuses"].get("429", 0) >= 1
    assert elapsed >= 1.0


# bulk reads


def test_get_many_paces_at_the_account_rate_without_429(pom_account: PomAccount, sim_api: SimApi) -> None:
    rate = 100.0
    sim_api.control("POST", "rate-limit", {"per_second": rate})
    seed = {"env": "prod", "username": "bib", "count": 250, "amount": "5.00"}
    ids = sim_api.control("POST", "seed-requests", seed)["ids"]
    with PomClient(replace(pom_account, rate_limit_per_second=rate, max_concurrency=8)) as client:
        client.get_request(ids[0])
        sim_api.control("DELETE", "hits")
        started = time.monotonic()
        results = dict(client.get_many([*ids, "pr_999999"]))
        elapsed = time.monotonic() - started
    assert len(results) == 251
    assert isinstance(results["pr_999999"], PomNotFound)
    assert all(isinstance(results[i], PomRequest) and results[i].status == "open" for i in ids)
    achieved = 251 / elapsed
    assert 0.8 * rate <= achieved <= 1.05 * rate, achieved
    assert sim_api.hits("/api/prod")["statuses"] == {"200": 250, "404": 1}


def test_get_many_raises_when_the_credentials_are_wrong(pom_account: PomAccount) -> None:
    with PomClient(replace(pom_account, password="wrong")) as client:
        with pytest.raises(PomAuthError):
            list(client.get_many(["pr_000001", "pr_000002"]))


def test_pacer_spaces_callers_evenly() -> None:
    now = [100.0]
    waits: list[float] = []
    pacer = RatePacer(10, clock=lambda: now[0], sleep=waits.append)
    for _ in range(4):
        pacer.wait()
    assert waits == pytest.approx([0.1, 0.2, 0.3])
    pacer.hold_off(2.0)
    pacer.wait()
    assert waits[-1] == pytest.approx(2.0)


# delivery reports


def test_send_batch_and_read_its_report(pom_client: PomClient, sim_api: SimApi) -> None:
    sim_api.control("POST", "clock", {"now": "2026-03-16T08:00:00+00:00"})
    documents = [
        PomDocument("INV-1", (PomRecipient("Ouder A", "a@example.be"), PomRecipient("Ouder B", "b@example.be"))),
        PomDocument("INV-2", (PomRecipient("Ouder C", "c@example.be"),)),
    ]
    assert pom_client.send_batch("B-2026-03-16", documents) == 2
    assert pom_client.send_batch("B-2026-03-16", documents) == 2
    assert pom_client.delivery_report_batches(date(2026, 3, 16)) == ["B-2026-03-16"]
    assert pom_client.delivery_report_batches(date(2026, 3, 17)) == []
    rows = list(csv.DictReader(io.StringIO(pom_client.delivery_report("B-2026-03-16").decode())))
    assert [(r["DocumentId"], r["EmailAddress"], r["Status"]) for r in rows] == [
        ("INV-1", "a@example.be", "DELIVERED"),
        ("INV-1", "b@example.be", "DELIVERED"),
        ("INV-2", "c@example.be", "DELIVERED"),
    ]
    with pytest.raises(PomNotFound):
        pom_client.delivery_report("B-unknown")


def test_send_batch_carries_each_documents_pdf_and_communication(pom_client: PomClient, sim_api: SimApi) -> None:
    ogm_pdf = invoice_pdf("Factuur 2026-000123\nMededeling: +++090/9337/55493+++")
    rf_pdf = invoice_pdf("Factuur 2026-000124", "Mededeling: RF18 5390 0754 7034")
    documents = [
        PomDocument("INV-1", (PomRecipient("Ouder A", "a@example.be"),), ogm_pdf, OGM),
        PomDocument("INV-2", (PomRecipient("Ouder B", "b@example.be"),), pdf=rf_pdf, communication="RF18539007547034"),
        PomDocument("INV-3", (PomRecipient("Ouder C", "c@example.be"),), pdf=ogm_pdf),
    ]
    assert "%PDF" not in repr(documents[0]) and OGM in repr(documents[0])
    assert pom_client.send_batch("B-pdf", documents) == 3
    assert pom_client.send_batch("B-pdf", documents) == 3
    kept = sim_api.control("GET", "documents", batch="B-pdf")["documents"]
    assert [(d["document_id"], d["communication"], d["pages"]) for d in kept] == [
        ("INV-1", OGM, 1),
        ("INV-2", "RF18539007547034", 2),
        ("INV-3", None, 1),
    ]
    for document, sent in zip(kept, (ogm_pdf, rf_pdf, ogm_pdf), strict=True):
        assert document["pdf"] == base64.b64encode(sent).decode()
        assert document["sha256"] == hashlib.sha256(sent).hexdigest()


def test_send_batch_whose_pdf_lacks_the_communication_is_rejected(pom_client: PomClient, sim_api: SimApi) -> None:
    recipients = (PomRecipient("Ouder A", "a@example.be"),)
    wrong = PomDocument("INV-1", recipients, pdf=invoice_pdf("Factuur zonder mededeling"), communication=OGM)
    with pytest.raises(PomRejected) as rejected:
        pom_client.send_batch("B-wrong", [PomDocument("INV-0", recipients), wrong])
    assert (rejected.value.status, rejected.value.code, rejected.value.field) == (
        422,
        "invalid_request",
        "documents[1].pdf",
    )
    assert sim_api.hits("/document-batches")["total"] == 1
    assert sim_api.control("GET", "documents") == {"documents": []}


def test_send_batch_without_pdfs_sends_the_body_it_always_sent(pom_client: PomClient, sim_api: SimApi) -> None:
    old_body = {
        "batch": "B-old",
        "documents": [{"document_id": "INV-1", "recipients": [{"name": "Ouder A", "email": "a@example.be"}]}],
    }
    assert sim_api.call("POST", "/document-batches", json=old_body).status_code == 201
    documents = [PomDocument("INV-1", (PomRecipient("Ouder A", "a@example.be"),))]
    assert pom_client.send_batch("B-old", documents) == 1
    assert sim_api.hits("/document-batches")["statuses"] == {"201": 1, "200": 1}
    kept = sim_api.control("GET", "documents")["documents"]
    assert [(d["document_id"], d["pdf"], d["communication"]) for d in kept] == [("INV-1", None, None)]


# logs


def test_logs_name_method_path_and_status_but_no_secret(
    pom_client: PomClient, sim_api: SimApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    request = _create(pom_client)
    first_token = pom_client._token
    sim_api.control("POST", "clock", {"advance_seconds": 7200})
    _fault(sim_api, request.id, "status", status=503)
    pom_client.get_request(request.id)
    with pytest.raises(PomRejected):
        pom_client.create_request(Decimal("1.00"), "nonsense", reference="r", idempotency_key="k")
    text = caplog.text + json.dumps([r.args for r in caplog.records], default=str)
    assert first_token and pom_client._token and first_token != pom_client._token
    for secret in (ACCOUNTS["prod"]["password"], ACCOUNTS["prod"]["callback_secret"], first_token, pom_client._token):
        assert secret not in text
    assert "authorization" not in text.lower()
    assert f"GET /api/prod/payment-requests/{request.id} -> 503" in caplog.text
    assert "POST /api/prod/auth/token -> 200" in caplog.text


def test_simulator_fixture_is_reset_between_tests(pom_sim: RunningSimulator, sim_api: SimApi) -> None:
    assert sim_api.request_count() == 0 and sim_api.control("GET", "callbacks") == {"callbacks": []}


# -- answers too long to read ---------------------------------------------------------------------------
# The simulator cannot serve a runaway body, so a mock transport does: a long stream (chunked, no length)
# or a declared length whose body must never be asked for.

CHUNK = b"x" * 65536


class _Long(httpx.SyncByteStream):
    """An answer four chunks longer than ``limit`` (finite, so a client without the limit fails, not hangs)."""

    def __init__(self, limit: int) -> None:
        self.total = limit + 4 * len(CHUNK)
        self.served = 0

    def __iter__(self) -> Iterator[bytes]:
        while self.served < self.total:
            self.served += len(CHUNK)
            yield CHUNK


class _Untouchable(httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        raise AssertionError("the body of an answer declared too long was read")


def _serving(answer: Callable[[], httpx.Response]) -> tuple[httpx.MockTransport, list[str]]:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth/token"):
            return httpx.Response(200, json={"access_token": "tok-SECRET", "token_type": "Bearer", "expires_in": 3600})
        asked.append(f"{request.method} {request.url.path}")
        return answer()

    return httpx.MockTransport(handler), asked


@pytest.mark.parametrize(
    ("call", "path", "limit"),
    [
        (lambda client: client.get_request("pr_1"), "GET /api/prod/payment-requests/pr_1", JSON_MAX_BYTES),
        (lambda client: client.qr_image("qr_1", "svg"), "GET /api/prod/qr-codes/qr_1.svg", IMAGE_MAX_BYTES),
        (lambda client: client.delivery_report_batches(date(2026, 3, 16)), "GET /api/prod/delivery-reports",
         JSON_MAX_BYTES),
    ],
    ids=["json", "qr-image", "report-list"],
)
def test_a_long_answer_is_dropped_past_its_limit(
    pom_account: PomAccount, sleeps: list[float], call: Callable[[PomClient], Any], path: str, limit: int
) -> None:
    stream = _Long(limit)
    transport, asked = _serving(lambda: httpx.Response(200, stream=stream))
    with PomClient(pom_account, transport=transport, sleep=sleeps.append) as client:
        with pytest.raises(PomUnavailable) as refused:
            call(client)
    message = str(refused.value)
    assert message.startswith(path) and f"limit of {limit} bytes" in message
    assert pom_account.password not in message and "SECRET" not in message
    assert limit < stream.served <= limit + len(CHUNK)  # read as a stream and left at the limit
    assert asked == [path] and sleeps == []  # not fetched again: it would be as long the next time


def test_a_delivery_report_declared_longer_than_the_reader_takes_is_not_read_nor_kept(
    pom_account: PomAccount, var_dir: Any
) -> None:
    from include.config import archive_dir, quarantine_dir
    from include.pom.delivery_files import analyse_recent_batches

    def answer() -> httpx.Response:
        if stream_listing[0]:
            stream_listing[0] = False
            return httpx.Response(200, json={"batches": ["B-huge"]})
        return httpx.Response(200, headers={"Content-Length": str(REPORT_MAX_BYTES + 1)}, stream=_Untouchable())

    stream_listing = [True]
    transport, asked = _serving(answer)
    with PomClient(pom_account, transport=transport) as client:
        with pytest.raises(PomUnavailable, match=f"limit of {REPORT_MAX_BYTES} bytes"):
            analyse_recent_batches(client, date(2026, 3, 16), "test")
    assert asked == ["GET /api/prod/delivery-reports", "GET /api/prod/delivery-reports/B-huge"]
    kept = [p for root in (archive_dir(), quarantine_dir()) if root.exists() for p in root.rglob("*") if p.is_file()]
    assert kept == []


def test_a_chunked_delivery_report_is_dropped_at_the_limit(
    pom_account: PomAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real limit is 1 GiB; a smaller one shows the same counting without holding a gigabyte in the test.
    import include.pom.client as client_module

    monkeypatch.setattr(client_module, "REPORT_MAX_BYTES", 1024 * 1024)
    stream = _Long(1024 * 1024)
    transport, _ = _serving(lambda: httpx.Response(200, stream=stream))
    with PomClient(pom_account, transport=transport) as client:
        with pytest.raises(PomUnavailable, match="GET /api/prod/delivery-reports/B1: .*limit of 1048576 bytes"):
            client.delivery_report("B1")
    assert 1024 * 1024 < stream.served <= 1024 * 1024 + len(CHUNK)


def test_a_long_error_body_is_not_read_for_its_code(pom_account: PomAccount) -> None:
    stream = _Long(ERROR_MAX_BYTES)
    transport, _ = _serving(lambda: httpx.Response(422, stream=stream))
    with PomClient(pom_account, transport=transport) as client:
        with pytest.raises(PomRejected, match=r"\(422 None\)"):
            client.get_request("pr_1")
    assert stream.served <= ERROR_MAX_BYTES + len(CHUNK)
