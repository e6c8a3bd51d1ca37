"""The POM simulator over real HTTP: the contract of include/pom/API.md, case by case."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import socket
import struct
import subprocess
import sys
import time
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import segno

from include.pom import qr_layout
from include.pom.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, CallbackRejected, verify
from sandbox import pom_simulator as simulator
from tests.integration.pom_fixtures import *  # noqa: F403
from tests.integration.pom_fixtures import ACCOUNTS, CallbackReceiver, SimApi, eventually

ROOT = Path(__file__).resolve().parents[2]


# authentication


def test_token_is_issued_for_the_right_password_only(sim_api: SimApi) -> None:
    for password, status in (("pw-prod-bib", 200), ("wrong", 401), ("pw-beta-bib", 401)):
        response = sim_api.http.post("/api/prod/auth/token", json={"username": "bib", "password": password})
        assert response.status_code == status
        if status == 401:
            assert response.json() == {"error": "invalid_credentials"}
        else:
            assert response.json()["token_type"] == "Bearer" and response.json()["expires_in"] == 3600


@pytest.mark.parametrize(
    ("case", "status", "error"),
    [
        ("no_token", 401, "invalid_token"),
        ("unknown_token", 401, "invalid_token"),
        ("beta_token_on_prod", 401, "invalid_token"),
        ("wrong_sender_id", 403, "sender_mismatch"),
        ("wrong_contract", 403, "sender_mismatch"),
        ("other_accounts_sender", 403, "sender_mismatch"),
        ("valid", 201, None),
    ],
)
def test_calls_need_a_token_and_the_accounts_sender(sim_api: SimApi, case: str, status: int, error: str | None) -> None:
    headers = {**sim_api.headers("prod"), "Idempotency-Key": "k"}
    if case == "no_token":
        del headers["Authorization"]
    elif case == "unknown_token":
        headers["Authorization"] = "Bearer not-a-token"
    elif case == "beta_token_on_prod":
        headers["Authorization"] = f"Bearer {sim_api.token('beta')}"
    elif case == "wrong_sender_id":
        headers["X-POM-Sender-Id"] = "SENDER-OTHER"
    elif case == "wrong_contract":
        headers["X-POM-Sender-Contract-Number"] = "CONTRACT-OTHER"
    elif case == "other_accounts_sender":
        headers["X-POM-Sender-Id"] = ACCOUNTS["tickets"]["sender_id"]
        headers["X-POM-Sender-Contract-Number"] = ACCOUNTS["tickets"]["sender_contract_number"]
    response = sim_api.http.post("/api/prod/payment-requests", json=create_body(), headers=headers)  # noqa: F405
    assert response.status_code == status, response.text
    if error:
        assert response.json()["error"] == error
    assert sim_api.request_count("prod") == (1 if case == "valid" else 0)


def test_token_expires_after_an_hour_of_the_simulators_clock(sim_api: SimApi) -> None:
    headers = sim_api.headers("prod")
    assert sim_api.http.get("/api/prod/payment-requests/pr_999999", headers=headers).status_code == 404
    sim_api.control("POST", "clock", {"advance_seconds": 3601})
    response = sim_api.http.get("/api/prod/payment-requests/pr_999999", headers=headers)
    assert (response.status_code, response.json()["error"]) == (401, "invalid_token")


def test_prod_and_beta_are_separate_worlds(sim_api: SimApi) -> None:
    prod_request = sim_api.created("prod")
    beta_request = sim_api.created("beta")
    assert sim_api.get(prod_request["id"], "beta").status_code == 404
    assert sim_api.get(beta_request["id"], "prod").status_code == 404
    assert sim_api.get(prod_request["id"], "tickets").status_code == 404
    assert sim_api.get(prod_request["id"], "prod").status_code == 200
    assert beta_request["qr"]["png_url"].startswith("/api/beta/")
    response = sim_api.http.post("/api/beta/auth/token", json={"username": "bib", "password": "pw-prod-bib"})
    assert response.status_code == 401


def test_unknown_environment_is_not_found(sim_api: SimApi) -> None:
    response = sim_api.http.post("/api/staging/auth/token", json={"username": "bib", "password": "pw-prod-bib"})
    assert response.status_code == 404


# creating


def test_create_returns_the_request_with_a_qr_code_valid_90_days(sim_api: SimApi) -> None:
    response = sim_api.create(key="fp:BIB:123:v1")
    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("pr_") and body["status"] == "open"
    assert (body["amount"], body["currency"], body["communication"]) == ("12.50", "EUR", "090933755493")
    assert (body["due_date"], body["reference"], body["auto_cancel"]) == ("2026-04-15", "fp:BIB:123", False)
    assert body["payment"] is None and body["cancelled_at"] is None
    qr = body["qr"]
    created = datetime.fromisoformat(qr["created_at"])
    assert datetime.fromisoformat(qr["expires_at"]) - created == timedelta(days=90)
    assert qr["status"] == "active"
    assert qr["pay_url"] == f"{sim_api.base_url}/pay/{qr['id']}" == qr["payload"]
    assert qr["png_url"] == f"/api/prod/qr-codes/{qr['id']}.png"


def test_same_idempotency_key_and_body_gives_the_same_request(sim_api: SimApi) -> None:
    first = sim_api.create(key="fp:BIB:123:v1")
    again = sim_api.create(key="fp:BIB:123:v1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    other = sim_api.create(key="fp:BIB:123:v1", amount="13.00")
    assert (other.status_code, other.json()["error"]) == (422, "idempotency_key_reused")
    assert sim_api.request_count() == 1
    assert sim_api.create(key="fp:BIB:123:v2", amount="13.00").status_code == 201
    assert sim_api.request_count() == 2


def test_idempotency_keys_belong_to_one_account(sim_api: SimApi) -> None:
    prod = sim_api.create("prod", key="shared-key").json()
    tickets = sim_api.create("tickets", key="shared-key").json()
    assert prod["id"] != tickets["id"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", "12.5"),
        ("amount", "0.00"),
        ("amount", "-1.00"),
        ("amount", 12.5),
        ("amount", "12,50"),
        ("amount", "abc"),
        ("currency", "USD"),
        ("currency", None),
        ("communication", "+++090/9337/55494+++"),
        ("communication", "RF19 5390 0754 7034"),
        ("communication", "hello"),
        ("communication", 90933755493),
        ("due_date", "2026-13-01"),
        ("due_date", "20260415"),
        ("due_date", "15/04/2026"),
        ("reference", ""),
        ("reference", None),
        ("reference", "x" * 101),
        ("description", "x" * 141),
        ("return_url", "ftp://innen.example/r"),
        ("callback_url", "innen.example/cb"),
        ("auto_cancel", "yes"),
    ],
)
def test_invalid_field_is_refused_with_its_name(sim_api: SimApi, field: str, value: Any) -> None:
    response = sim_api.create(**{field: value})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_request"
    assert response.json()["field"] == field
    assert sim_api.request_count() == 0


@pytest.mark.parametrize(
    ("communication", "stored"),
    [
        ("+++090/9337/55493+++", "090933755493"),
        ("***090/9337/55493***", "090933755493"),
        ("090933755493", "090933755493"),
        ("RF18 5390 0754 7034", "RF18539007547034"),
        ("RF18539007547034", "RF18539007547034"),
        ("rf18 5390 0754 7034", "RF18539007547034"),
    ],
)
def test_communication_comes_back_compact(sim_api: SimApi, communication: str, stored: str) -> None:
    response = sim_api.create(communication=communication)
    assert response.status_code == 201, response.text
    assert response.json()["communication"] == stored


def test_bodies_that_are_not_json_or_not_objects(sim_api: SimApi) -> None:
    headers = {**sim_api.headers(), "Idempotency-Key": "k", "Content-Type": "application/json"}
    response = sim_api.http.post("/api/prod/payment-requests", content=b'{"amount": "12.50",', headers=headers)
    assert (response.status_code, response.json()) == (400, {"error": "malformed_json"})
    response = sim_api.http.post("/api/prod/payment-requests", content=b"[1, 2]", headers=headers)
    assert (response.status_code, response.json()["field"]) == (422, "body")
    without_key = {k: v for k, v in headers.items() if k != "Idempotency-Key"}
    response = sim_api.http.post("/api/prod/payment-requests", json=create_body(), headers=without_key)  # noqa: F405
    assert (response.status_code, response.json()["field"]) == (422, "Idempotency-Key")
    response = sim_api.http.post("/api/prod/auth/token", content=b"username=bib")
    assert response.status_code == 400


def test_account_default_decides_auto_cancel_when_null(sim_api: SimApi) -> None:
    assert sim_api.created("tickets", auto_cancel=None)["auto_cancel"] is True
    assert sim_api.created("tickets", auto_cancel=False)["auto_cancel"] is False
    assert sim_api.created("prod", auto_cancel=None)["auto_cancel"] is False


# cancel and renew


def test_cancel_cancels_every_qr_code_and_is_idempotent(sim_api: SimApi) -> None:
    request = sim_api.created()
    old_qr = request["qr"]["id"]
    renewed = sim_api.renew(request['id'])
    assert renewed.status_code == 201
    first = sim_api.cancel(request["id"], "amount changed")
    assert first.status_code == 200
    assert (first.json()["status"], first.json()["cancelled_reason"]) == ("cancelled", "amount changed")
    assert first.json()["qr"]["status"] == "cancelled"
    again = sim_api.cancel(request["id"], "other")
    assert again.status_code == 200 and again.json() == first.json()
    for qr_id in (old_qr, renewed.json()["qr"]["id"]):
        response = sim_api.http.post(f"/pay/{qr_id}", json={"channel": "bancontact"})
        assert (response.status_code, response.json()["error"]) == (410, "not_payable")


def test_cancel_of_paid_or_unknown_requests(sim_api: SimApi) -> None:
    request = sim_api.created()
    assert sim_api.http.post(f"/pay/{request['qr']['id']}", json={"channel": "payconiq"}).status_code == 200
    response = sim_api.cancel(request['id'])
    assert (response.status_code, response.json()["error"]) == (409, "already_paid")
    response = sim_api.cancel("pr_424242")
    assert (response.status_code, response.json()["error"]) == (404, "not_found")


def test_renewing_adds_a_current_qr_and_keeps_the_old_one_payable(sim_api: SimApi) -> None:
    request = sim_api.created()
    renewed = sim_api.renew(request['id'])
    assert renewed.status_code == 201
    assert renewed.json()["qr"]["id"] != request["qr"]["id"]
    paid = sim_api.http.post(f"/pay/{request['qr']['id']}", json={"channel": "bancontact"})
    assert paid.status_code == 200
    assert paid.json() == {
        "request_id": request["id"],
        "amount": "12.50",
        "paid_at": paid.json()["paid_at"],
        "channel": "bancontact",
    }
    again = sim_api.renew(request['id'])
    assert (again.status_code, again.json()["error"]) == (409, "not_open")


# time rules


def test_qr_code_expires_after_90_days_and_a_renewed_one_can_be_paid(sim_api: SimApi) -> None:
    sim_api.control("POST", "clock", {"now": "2026-03-16T08:00:00+00:00"})
    request = sim_api.created(due_date=None)
    old_qr = request["qr"]["id"]
    sim_api.control("POST", "clock", {"advance_days": 89})
    assert sim_api.get(request["id"]).json()["qr"]["status"] == "active"
    sim_api.control("POST", "clock", {"advance_days": 1})
    current = sim_api.get(request["id"]).json()
    assert (current["status"], current["qr"]["status"]) == ("open", "expired")
    assert sim_api.http.post(f"/pay/{old_qr}", json={}).status_code == 410
    renewed = sim_api.renew(request['id']).json()
    assert renewed["qr"]["status"] == "active"
    assert renewed["qr"]["created_at"] == "2026-06-14T08:00:00+00:00"
    assert sim_api.http.post(f"/pay/{renewed['qr']['id']}", json={}).status_code == 200
    assert sim_api.get(request["id"]).json()["status"] == "paid"


def test_auto_cancel_request_expires_at_the_end_of_its_due_date_in_brussels(
    sim_api: SimApi, callback_receiver: CallbackReceiver
) -> None:
    sim_api.control("POST", "clock", {"now": "2026-03-16T08:00:00+00:00"})
    expiring = sim_api.created(due_date="2026-03-20", auto_cancel=True, callback_url=callback_receiver.url)
    staying = sim_api.created(due_date="2026-03-20", auto_cancel=False)
    sim_api.control("POST", "clock", {"now": "2026-03-20T22:59:00+00:00"})  # 23:59 in Brussels (CET)
    assert sim_api.get(expiring["id"]).json()["status"] == "open"
    sim_api.control("POST", "clock", {"now": "2026-03-20T23:00:01+00:00"})
    callbacks = eventually(lambda: sim_api.control("GET", "callbacks")["callbacks"])
    assert [c["event"]["type"] for c in callbacks] == ["payment_request.expired"]
    expired = sim_api.get(expiring["id"]).json()
    assert (expired["status"], expired["qr"]["status"]) == ("expired", "cancelled")
    assert expired["cancelled_at"] == "2026-03-20T23:00:00+00:00"
    assert sim_api.http.post(f"/pay/{expiring['qr']['id']}", json={}).status_code == 410
    assert sim_api.get(staying["id"]).json()["status"] == "open"
    cancel = sim_api.cancel(expiring['id'])
    assert cancel.status_code == 200 and cancel.json()["status"] == "expired"


# paying and callbacks


def test_browser_payment_redirects_to_the_return_url(sim_api: SimApi) -> None:
    with_return = sim_api.created(return_url="https://innen.example/pom/return?lang=nl")
    response = sim_api.http.get(f"/pay/{with_return['qr']['id']}")
    assert response.status_code == 303
    assert response.headers["location"] == (
        f"https://innen.example/pom/return?lang=nl&request_id={with_return['id']}&status=paid"
    )
    assert sim_api.get(with_return["id"]).json()["payment"]["channel"] == "card"
    without_return = sim_api.created(return_url=None)
    page = sim_api.http.get(f"/pay/{without_return['qr']['id']}")
    assert page.status_code == 200 and "12.50" in page.text
    assert sim_api.http.get(f"/pay/{without_return['qr']['id']}").status_code == 410
    assert sim_api.http.get("/pay/qr_999999").status_code == 404


def test_payment_sends_a_signed_callback_that_verifies(sim_api: SimApi, callback_receiver: CallbackReceiver) -> None:
    request = sim_api.created(callback_url=callback_receiver.url)
    paid = sim_api.http.post(f"/pay/{request['qr']['id']}", json={"channel": "bancontact"})
    assert paid.status_code == 200
    headers, body = eventually(lambda: callback_receiver.received)[0]
    verify(
        ACCOUNTS["prod"]["callback_secret"],
        headers.get(TIMESTAMP_HEADER),
        headers.get(SIGNATURE_HEADER),
        body,
        now=time.time(),
    )
    event = json.loads(body)
    assert event == {
        "event_id": event["event_id"],
        "type": "payment_request.paid",
        "request_id": request["id"],
        "reference": "fp:BIB:123",
        "status": "paid",
        "amount": "12.50",
        "paid_at": paid.json()["paid_at"],
        "channel": "bancontact",
        "communication": "090933755493",
    }
    with pytest.raises(CallbackRejected, match="bad_signature"):
        verify("another secret", headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], body, now=time.time())
    record = eventually(lambda: [c for c in sim_api.control("GET", "callbacks")["callbacks"] if c["done"]])[0]
    assert record["delivered"] is True and [a["status"] for a in record["attempts"]] == [200]


@pytest.mark.parametrize(
    ("statuses", "delivered", "attempts"),
    [
        ([500, 503], True, [500, 503, 200]),
        ([500, 500, 500], False, [500, 500, 500]),
        ([404], True, [404, 200]),
    ],
)
def test_callback_is_tried_three_times_at_most(
    sim_api: SimApi, callback_receiver: CallbackReceiver, statuses: list[int], delivered: bool, attempts: list[int]
) -> None:
    callback_receiver.statuses = list(statuses)
    request = sim_api.created(callback_url=callback_receiver.url)
    sim_api.control("POST", f"pay/{request['id']}", {"channel": "payconiq"})
    record = eventually(lambda: [c for c in sim_api.control("GET", "callbacks")["callbacks"] if c["done"]])[0]
    assert record["delivered"] is delivered
    assert [a["status"] for a in record["attempts"]] == attempts
    assert len(callback_receiver.received) == len(attempts)
    for headers, body in callback_receiver.received:
        secret = ACCOUNTS["prod"]["callback_secret"]
        verify(secret, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], body, now=time.time())
    assert len({body for _, body in callback_receiver.received}) == 1


def test_callback_to_nobody_is_recorded_as_failed(sim_api: SimApi) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    request = sim_api.created(callback_url=f"http://127.0.0.1:{dead_port}/cb")
    sim_api.control("POST", f"pay/{request['id']}", {})
    record = eventually(lambda: [c for c in sim_api.control("GET", "callbacks")["callbacks"] if c["done"]])[0]
    assert record["delivered"] is False
    assert [a["error"] for a in record["attempts"]] == ["ConnectError"] * 3


def test_cancellation_sends_a_callback_and_sim_pay_can_stay_silent(
    sim_api: SimApi, callback_receiver: CallbackReceiver
) -> None:
    cancelled = sim_api.created(callback_url=callback_receiver.url)
    sim_api.cancel(cancelled['id'], "x")
    silent = sim_api.created(callback_url=callback_receiver.url)
    paid = sim_api.control("POST", f"pay/{silent['id']}", {"channel": "card", "callback": False})
    assert paid["status"] == "paid" and paid["payment"]["channel"] == "card"
    eventually(lambda: callback_receiver.received)
    time.sleep(0.1)
    types = [json.loads(body)["type"] for _, body in callback_receiver.received]
    assert types == ["payment_request.cancelled"]
    assert sim_api.http.post("/_sim/pay/pr_999999", json={}).status_code == 404
    assert sim_api.http.post(f"/_sim/pay/{silent['id']}", json={}).status_code == 410


# images


def _png_rows(data: bytes) -> list[bytes]:
    """Pixel rows of the simulator's 8-bit greyscale PNG (one IDAT chunk, filter type 0)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert (depth, colour) == (8, 0)
    at = data.index(b"IDAT")
    raw = zlib.decompress(data[at + 4 : at + 4 + struct.unpack(">I", data[at - 4 : at])[0]])
    return [raw[y * (width + 1) + 1 : (y + 1) * (width + 1)] for y in range(height)]


def test_qr_images_carry_amount_communication_and_due_date(sim_api: SimApi) -> None:
    request = sim_api.created()
    png = sim_api.http.get(request["qr"]["png_url"], headers=sim_api.headers())
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    rows = _png_rows(png.content)
    matrix = segno.make(request["qr"]["payload"], error="m", micro=False).matrix
    module, quiet = qr_layout.MODULE_PX, qr_layout.QUIET_ZONE
    code_px = (len(matrix) + 2 * quiet) * module
    dark_rows = [y for y, row in enumerate(rows) if 0 in row]
    code_top = next(y for y in dark_rows if y > 12 + 21) - quiet * module
    code_left = rows[code_top + quiet * module].index(0) - quiet * module
    for my, modules in enumerate(matrix):
        y = code_top + (quiet + my) * module + module // 2
        drawn = [rows[y][code_left + (quiet + mx) * module + module // 2] == 0 for mx in range(len(modules))]
        assert drawn == [bool(m & 1) for m in modules]
    assert any(y < code_top for y in dark_rows), "amount above the code"
    below = [y for y in dark_rows if y >= code_top + code_px]
    assert below and max(below) - min(below) > 21, "communication and due date below the code"
    svg = sim_api.http.get(request["qr"]["svg_url"], headers=sim_api.headers())
    assert svg.headers["content-type"].startswith("image/svg+xml")
    for text in ("EUR 12.50", "+++090/9337/55493+++", "2026-04-15", 'class="segno"'):
        assert text in svg.text
    assert "TESTMODUS" not in svg.text
    beta = sim_api.created("beta")
    assert "TESTMODUS" in sim_api.http.get(beta["qr"]["svg_url"], headers=sim_api.headers("beta")).text
    assert sim_api.http.get(request["qr"]["png_url"]).status_code == 401
    assert sim_api.http.get(request["qr"]["png_url"], headers=sim_api.headers("tickets")).status_code == 404
    gif = request["qr"]["png_url"].replace(".png", ".gif")
    assert sim_api.http.get(gif, headers=sim_api.headers()).status_code == 404


# limits and faults


def test_rate_limit_answers_429_with_retry_after(sim_api: SimApi) -> None:
    headers = sim_api.headers()
    sim_api.control("POST", "rate-limit", {"per_second": 3})
    responses = [sim_api.http.get("/api/prod/payment-requests/pr_1", headers=headers) for _ in range(8)]
    limited = [r for r in responses if r.status_code == 429]
    assert 3 <= len(limited) <= 5
    assert all(r.json() == {"error": "rate_limited"} and int(r.headers["Retry-After"]) >= 1 for r in limited)
    assert sim_api.hits("payment-requests")["statuses"]["429"] == len(limited)
    tickets = sim_api.headers("tickets")
    assert sim_api.http.get("/api/prod/payment-requests/pr_1", headers=tickets).status_code == 404
    sim_api.control("POST", "rate-limit", {"per_second": None})
    assert sim_api.http.get("/api/prod/payment-requests/pr_1", headers=headers).status_code == 404


@pytest.mark.parametrize("kind", ["status", "malformed", "latency", "timeout"])
def test_injected_faults_hit_the_matching_path_the_given_number_of_times(sim_api: SimApi, kind: str) -> None:
    request = sim_api.created()
    headers = sim_api.headers()
    sim_api.control(
        "POST", "faults", {"path_contains": request["id"], "kind": kind, "times": 1, "status": 503, "seconds": 0.4}
    )
    started = time.monotonic()
    if kind == "timeout":
        with pytest.raises(httpx.ReadTimeout):
            sim_api.http.get(f"/api/prod/payment-requests/{request['id']}", headers=headers, timeout=0.1)
    else:
        first = sim_api.get(request["id"])
        if kind == "status":
            assert (first.status_code, first.json()["error"]) == (503, "injected_fault")
        elif kind == "malformed":
            assert first.status_code == 200
            with pytest.raises(ValueError):
                first.json()
        else:
            assert first.status_code == 200 and time.monotonic() - started >= 0.4
    assert sim_api.get(request["id"]).json()["id"] == request["id"]
    other = sim_api.created()
    assert sim_api.get(other["id"]).status_code == 200
    assert sim_api.control("DELETE", "faults") == {"faults": 0}


# delivery reports


def _report(sim_api: SimApi, batch: str) -> list[dict[str, str]]:
    response = sim_api.http.get(f"/api/prod/delivery-reports/{batch}", headers=sim_api.headers())
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.text.splitlines()[0] == ",".join(simulator.REPORT_HEADER)
    return list(csv.DictReader(io.StringIO(response.text)))


def _send(sim_api: SimApi, batch: str, documents: list[tuple[str, list[str]]]) -> httpx.Response:
    body = {
        "batch": batch,
        "documents": [
            {"document_id": doc, "recipients": [{"name": f"Ouder {email}", "email": email} for email in emails]}
            for doc, emails in documents
        ],
    }
    return sim_api.http.post("/api/prod/document-batches", json=body, headers=sim_api.headers())


def test_delivery_report_has_one_line_per_attempt_with_the_seeds_messages(sim_api: SimApi) -> None:
    sim_api.control("POST", "clock", {"now": "2026-03-16T08:00:00+00:00"})
    sim_api.control(
        "POST",
        "delivery-outcomes",
        {"email_contains": "busy", "outcomes": [["FAILED", simulator.MSG_RETRYING, 0], ["DELIVERED", "", 5]]},
    )
    bounce = {"email_contains": "gone", "outcomes": [["FAILED", simulator.MSG_BOUNCE_BLACKLISTED, 0]]}
    sim_api.control("POST", "delivery-outcomes", bounce)
    documents = [("INV-1", ["an@example.be", "busy@example.be"]), ("INV-2", ["gone@example.be"])]
    sent = _send(sim_api, "B-2026-03-16", documents)
    assert (sent.status_code, sent.json()) == (201, {"batch": "B-2026-03-16", "documents": 2})
    lines = _report(sim_api, "B-2026-03-16")
    assert [(line["EmailAddress"], line["Status"], line["Description"]) for line in lines] == [
        ("an@example.be", "DELIVERED", ""),
        ("busy@example.be", "FAILED", simulator.MSG_RETRYING),
        ("gone@example.be", "FAILED", simulator.MSG_BOUNCE_BLACKLISTED),
    ]
    assert lines[0]["Batch"] == "B-2026-03-16" and lines[0]["DocumentId"] == "INV-1"
    sim_api.control("POST", "clock", {"advance_seconds": 6 * 3600})
    later = _report(sim_api, "B-2026-03-16")
    assert [(line["EmailAddress"], line["Status"]) for line in later][-1] == ("busy@example.be", "DELIVERED")
    assert later[-1]["Timestamp"] == "2026-03-16T13:00:00+00:00"

    again = _send(sim_api, "B-2026-03-17", [("INV-1", ["an@example.be"]), ("INV-3", ["gone@example.be"])])
    assert again.status_code == 201
    assert [(line["DocumentId"], line["Description"]) for line in _report(sim_api, "B-2026-03-17")] == [
        ("INV-1", simulator.MSG_DOCUMENT_ID_USED),
        ("INV-3", simulator.MSG_BLACKLISTED),
    ]


def test_batches_are_listed_by_send_date_and_a_name_is_used_once(sim_api: SimApi) -> None:
    sim_api.control("POST", "clock", {"now": "2026-03-16T08:00:00+00:00"})
    assert _send(sim_api, "B-1", [("D-1", ["a@example.be"])]).status_code == 201
    sim_api.control("POST", "clock", {"advance_days": 2})
    assert _send(sim_api, "B-2", [("D-2", ["a@example.be"])]).status_code == 201
    listing = sim_api.call("GET", "/delivery-reports", params={"sent_since": "2026-03-17"})
    assert listing.json() == {"batches": ["B-2"]}
    everything = sim_api.call("GET", "/delivery-reports", params={"sent_since": "2026-03-01"})
    assert everything.json() == {"batches": ["B-1", "B-2"]}
    assert _send(sim_api, "B-1", [("D-1", ["a@example.be"])]).status_code == 200
    conflict = _send(sim_api, "B-1", [("D-9", ["a@example.be"])])
    assert (conflict.status_code, conflict.json()["error"]) == (409, "batch_exists")
    assert sim_api.http.get("/api/prod/delivery-reports/B-404", headers=sim_api.headers()).status_code == 404
    tickets = sim_api.call("GET", "/delivery-reports", "tickets", params={"sent_since": "2026-03-01"})
    assert tickets.json() == {"batches": []}


# documents with their PDF


def invoice_pdf(*pages: str) -> bytes:
    """A small real PDF with one Helvetica text per page (lines split on newlines), readable by pypdf.

    Written by hand because the project has no PDF writer: a catalog, the
    pages, a font and one content stream per page, with an exact xref table.
    """
    kids = b" ".join(b"%d 0 R" % (4 + 2 * index) for index in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(pages)),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for index, text in enumerate(pages):
        lines = (line.encode("cp1252") for line in text.splitlines())
        escaped = (line.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") for line in lines)
        stream = b"BT /F1 11 Tf 14 TL 56 800 Td " + b" ".join(b"(%s) '" % line for line in escaped) + b" ET"
        page = b"/Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >>"
        objects.append(b"<< %s /Contents %d 0 R >>" % (page, 5 + 2 * index))
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


OGM_INVOICE = invoice_pdf("Factuur 2026-000123\nTe betalen: EUR 12,50\nMededeling: +++090/9337/55493+++")


def _document(document_id: str, pdf: bytes | str | None = None, communication: str | None = None) -> dict[str, Any]:
    recipients = [{"name": "Ouder A", "email": "a@example.be"}]
    document: dict[str, Any] = {"document_id": document_id, "recipients": recipients}
    if pdf is not None:
        document["pdf"] = pdf if isinstance(pdf, str) else base64.b64encode(pdf).decode()
    if communication is not None:
        document["communication"] = communication
    return document


def _send_documents(sim_api: SimApi, batch: str, *documents: dict[str, Any]) -> httpx.Response:
    return sim_api.call("POST", "/document-batches", json={"batch": batch, "documents": list(documents)})


def test_documents_with_their_pdf_are_kept_byte_identical(sim_api: SimApi) -> None:
    two_pages = invoice_pdf("Factuur 2026-000124", "Overschrijving\nmededeling + + + 090 / 9337 / 55493 + + +")
    digits_only = invoice_pdf("Mededeling 0909 3375 5493")
    sent = _send_documents(
        sim_api,
        "B-pdf",
        _document("INV-1", OGM_INVOICE, "+++090/9337/55493+++"),
        _document("INV-2", two_pages, "090933755493"),
        _document("INV-3", digits_only, "***090/9337/55493***"),
        _document("INV-4", OGM_INVOICE),
        _document("INV-5"),
    )
    assert (sent.status_code, sent.json()) == (201, {"batch": "B-pdf", "documents": 5})
    assert _send_documents(sim_api, "B-other", _document("INV-6")).status_code == 201
    kept = sim_api.control("GET", "documents", batch="B-pdf")["documents"]
    assert [d["document_id"] for d in kept] == ["INV-1", "INV-2", "INV-3", "INV-4", "INV-5"]
    first = kept[0]
    assert first == {
        "env": "prod",
        "username": "bib",
        "batch": "B-pdf",
        "document_id": "INV-1",
        "communication": "+++090/9337/55493+++",
        "sha256": hashlib.sha256(OGM_INVOICE).hexdigest(),
        "pages": 1,
        "pdf": base64.b64encode(OGM_INVOICE).decode(),
        "recipients": [{"name": "Ouder A", "email": "a@example.be"}],
    }
    assert base64.b64decode(kept[1]["pdf"]) == two_pages and kept[1]["pages"] == 2
    assert (kept[3]["communication"], kept[3]["pages"]) == (None, 1)
    assert {key: kept[4][key] for key in ("communication", "sha256", "pages", "pdf")} == dict.fromkeys(
        ("communication", "sha256", "pages", "pdf")
    )
    everything = sim_api.control("GET", "documents")["documents"]
    assert [(d["batch"], d["document_id"]) for d in everything][-2:] == [("B-pdf", "INV-5"), ("B-other", "INV-6")]
    sim_api.control("POST", "reset")
    assert sim_api.control("GET", "documents") == {"documents": []}


def test_rf_communication_matches_in_groups_of_four_and_in_any_case(sim_api: SimApi) -> None:
    grouped = invoice_pdf("Factuur 2026-000125\nMededeling: RF18 5390 0754 7034")
    compact = invoice_pdf("Mededeling: rf18539007547034")
    sent = _send_documents(
        sim_api,
        "B-rf",
        _document("INV-1", grouped, "RF18539007547034"),
        _document("INV-2", compact, "RF18 5390 0754 7034"),
    )
    assert sent.status_code == 201, sent.text
    kept = sim_api.control("GET", "documents", batch="B-rf")["documents"]
    assert [d["communication"] for d in kept] == ["RF18539007547034", "RF18 5390 0754 7034"]
    other = _send_documents(sim_api, "B-rf-2", _document("INV-3", grouped, "RF71 5390 0754 7034 0"))
    assert other.status_code == 422 and other.json()["field"] == "documents[0].communication"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("pdf_not_text", "base64"),
        ("not_base64", "base64"),
        ("not_a_pdf", "%PDF-"),
        ("broken_pdf", "readable"),
        ("without_the_communication", "structured communication"),
        ("other_communication", "structured communication"),
        ("communication_without_pdf", "communication"),
    ],
)
def test_documents_whose_pdf_does_not_fit_refuse_the_whole_batch(sim_api: SimApi, case: str, message: str) -> None:
    bad = {
        "pdf_not_text": {**_document("INV-2"), "pdf": 12345},
        "not_base64": _document("INV-2", "not base64 at all!", "+++090/9337/55493+++"),
        "not_a_pdf": _document("INV-2", b"Factuur +++090/9337/55493+++", "+++090/9337/55493+++"),
        "broken_pdf": _document("INV-2", b"%PDF-1.4\n" + OGM_INVOICE[9:120], "+++090/9337/55493+++"),
        "without_the_communication": _document("INV-2", invoice_pdf("Factuur zonder mededeling"), "090933755493"),
        "other_communication": _document("INV-2", OGM_INVOICE, "+++000/0000/10104+++"),
        "communication_without_pdf": _document("INV-2", None, "+++090/9337/55493+++"),
    }[case]
    good = _document("INV-1", OGM_INVOICE, "+++090/9337/55493+++")
    refused = _send_documents(sim_api, "B-bad", good, bad)
    assert refused.status_code == 422, refused.text
    answer = refused.json()
    assert (answer["error"], answer["field"]) == ("invalid_request", "documents[1].pdf")
    assert message in answer["message"]
    assert sim_api.control("GET", "documents") == {"documents": []}
    assert sim_api.call("GET", "/delivery-reports", params={"sent_since": "1970-01-01"}).json() == {"batches": []}
    assert _send_documents(sim_api, "B-good", good).status_code == 201
    assert [line["Description"] for line in _report(sim_api, "B-good")] == [""]


def test_same_batch_with_its_pdfs_twice_is_kept_once(sim_api: SimApi) -> None:
    document = _document("INV-1", OGM_INVOICE, "+++090/9337/55493+++")
    assert _send_documents(sim_api, "B-twice", document).status_code == 201
    again = _send_documents(sim_api, "B-twice", document)
    assert (again.status_code, again.json()) == (200, {"batch": "B-twice", "documents": 1})
    other_pdf = _document("INV-1", invoice_pdf("Herinnering +++090/9337/55493+++"), "+++090/9337/55493+++")
    assert _send_documents(sim_api, "B-twice", other_pdf).status_code == 409
    kept = sim_api.control("GET", "documents")["documents"]
    assert [(d["batch"], d["sha256"]) for d in kept] == [("B-twice", hashlib.sha256(OGM_INVOICE).hexdigest())]
    assert len(_report(sim_api, "B-twice")) == 1


def test_a_large_batch_of_pdfs_is_read_quickly_and_kept_whole(sim_api: SimApi) -> None:
    pdfs = [invoice_pdf(f"Factuur 2026-{n:06d}\nMededeling: +++090/9337/55493+++") for n in range(400)]
    documents = [_document(f"INV-{n}", pdf, "090933755493") for n, pdf in enumerate(pdfs)]
    started = time.monotonic()
    assert _send_documents(sim_api, "B-large", *documents).status_code == 201
    assert time.monotonic() - started < 10
    kept = sim_api.control("GET", "documents", batch="B-large")["documents"]
    assert [base64.b64decode(d["pdf"]) for d in kept] == pdfs


# benchmark support and command line


def test_seed_requests_creates_open_requests_fast(sim_api: SimApi) -> None:
    started = time.monotonic()
    seed = {"env": "prod", "username": "bib", "count": 20000, "amount": "7.25", "start_counter": 5}
    ids = sim_api.control("POST", "seed-requests", seed)["ids"]
    assert time.monotonic() - started < 5
    assert len(ids) == len(set(ids)) == 20000
    first = sim_api.get(ids[0]).json()
    assert (first["status"], first["amount"], first["communication"], first["reference"]) == (
        "open",
        "7.25",
        "000000000505",
        "seed:5",
    )
    assert sim_api.request_count() == 20000
    missing = sim_api.http.post("/_sim/seed-requests", json={"env": "prod", "username": "nobody", "count": 1})
    assert missing.status_code == 404


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_command_line_serves_the_accounts_file(tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps([ACCOUNTS["prod"]]))
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.pom_simulator", "--port", str(port), "--accounts-json", str(accounts)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        api = SimApi(f"http://127.0.0.1:{port}")

        def answers() -> bool:
            try:
                return api.http.get("/_sim/clock").status_code == 200
            except httpx.TransportError:
                return False

        eventually(answers, timeout=15, interval=0.1)
        assert api.created()["status"] == "open"
        clock = datetime.fromisoformat(api.http.get("/_sim/clock").json()["now"])
        assert abs(clock - datetime.now(UTC)) < timedelta(minutes=1)
    finally:
        process.terminate()
        process.wait(timeout=10)
