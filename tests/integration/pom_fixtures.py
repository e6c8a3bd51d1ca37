"""Fixtures for the POM tests: a simulator per test over real HTTP, a raw API helper and a callback receiver.

Loaded with ``from tests.integration.pom_fixtures import *`` by the POM test
modules (the shared conftest files stay untouched). One simulator serves the
session and is reset before each test (``POST /_sim/reset``), so a test that
moves the clock or injects faults cannot disturb another, without paying a
server start per test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpx
import pytest

from include.pom.client import PomAccount, PomClient
from sandbox.pom_simulator import RunningSimulator, run_in_thread
from tests.dag_bag import parsed_dag

__all__ = [
    "ACCOUNTS",
    "CallbackReceiver",
    "SimApi",
    "callback_receiver",
    "create_body",
    "eventually",
    "airflow_pom_connection",
    "dag_named",
    "demo_with_pom",
    "pom_account",
    "pom_client",
    "succeeded",
    "pom_server",
    "pom_sim",
    "sim_api",
    "sleeps",
]

T = TypeVar("T")

ACCOUNTS: dict[str, dict[str, Any]] = {
    "prod": {
        "env": "prod",
        "username": "bib",
        "password": "pw-prod-bib",
        "sender_id": "SENDER-BIB",
        "sender_contract_number": "CONTRACT-BIB",
        "callback_secret": "cb-secret-prod-bib",
        "auto_cancel": False,
    },
    "beta": {
        "env": "beta",
        "username": "bib",
        "password": "pw-beta-bib",
        "sender_id": "SENDER-BIB-BETA",
        "sender_contract_number": "CONTRACT-BIB-BETA",
        "callback_secret": "cb-secret-beta-bib",
        "auto_cancel": False,
    },
    "tickets": {
        "env": "prod",
        "username": "tickets",
        "password": "pw-prod-tickets",
        "sender_id": "SENDER-TICKETS",
        "sender_contract_number": "CONTRACT-TICKETS",
        "callback_secret": "cb-secret-tickets",
        "auto_cancel": True,
    },
}


def eventually(probe: Callable[[], T | None], timeout: float = 5.0, interval: float = 0.02) -> T:
    """Poll ``probe`` until it returns something truthy (callbacks arrive from another thread)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def create_body(**overrides: Any) -> dict[str, Any]:
    """A valid create body; keyword arguments replace fields (``None`` values are sent as null)."""
    body: dict[str, Any] = {
        "amount": "12.50",
        "currency": "EUR",
        "communication": "+++090/9337/55493+++",
        "due_date": "2026-04-15",
        "description": "Factuur 2026-000123",
        "reference": "fp:BIB:123",
        "return_url": "https://innen.example/pom/return/fp:BIB:123",
        "callback_url": None,
        "auto_cancel": False,
    }
    body.update(overrides)
    return body


class SimApi:
    """Raw HTTP against the simulator, for tests of the API itself (status codes and bodies as they are)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=5)
        self._keys = iter(range(1, 10**9))

    def token(self, account: str = "prod") -> str:
        data = ACCOUNTS[account]
        response = self.http.post(
            f"/api/{data['env']}/auth/token", json={"username": data["username"], "password": data["password"]}
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def headers(self, account: str = "prod", token: str | None = None) -> dict[str, str]:
        data = ACCOUNTS[account]
        return {
            "Authorization": f"Bearer {token or self.token(account)}",
            "X-POM-Sender-Id": data["sender_id"],
            "X-POM-Sender-Contract-Number": data["sender_contract_number"],
        }

    def create(self, account: str = "prod", key: str | None = None, **overrides: Any) -> httpx.Response:
        env = ACCOUNTS[account]["env"]
        headers = {**self.headers(account), "Idempotency-Key": key or f"key-{next(self._keys)}"}
        return self.http.post(f"/api/{env}/payment-requests", json=create_body(**overrides), headers=headers)

    def created(self, account: str = "prod", **overrides: Any) -> dict[str, Any]:
        response = self.create(account, **overrides)
        assert response.status_code == 201, response.text
        return response.json()

    def call(self, verb: str, path: str, account: str = "prod", **options: Any) -> httpx.Response:
        """``verb /api/<env of account><path>`` with the account's token and sender headers."""
        env = ACCOUNTS[account]["env"]
        return self.http.request(verb, f"/api/{env}{path}", headers=self.headers(account), **options)

    def get(self, request_id: str, account: str = "prod") -> httpx.Response:
        return self.call("GET", f"/payment-requests/{request_id}", account)

    def cancel(self, request_id: str, reason: str | None = None, account: str = "prod") -> httpx.Response:
        return self.call("POST", f"/payment-requests/{request_id}/cancel", account, json={"reason": reason})

    def renew(self, request_id: str, account: str = "prod") -> httpx.Response:
        return self.call("POST", f"/payment-requests/{request_id}/qr-codes", account)

    def control(self, verb: str, path: str, body: Any = None, **params: Any) -> Any:
        response = self.http.request(verb, f"/_sim/{path}", json=body, params=params or None)
        assert response.status_code < 300, response.text
        return response.json()

    def hits(self, path_contains: str = "", method: str | None = None) -> dict[str, Any]:
        params = {"path_contains": path_contains, **({"method": method} if method else {})}
        return self.control("GET", "hits", **params)

    def request_count(self, account: str = "prod") -> int:
        data = ACCOUNTS[account]
        return self.control("GET", "requests", env=data["env"], username=data["username"])["count"]


class CallbackReceiver:
    """A tiny HTTP server that stores what POM posts to it and answers with scripted statuses."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.received.append(({k: v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/pom/callback"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="session")
def pom_server() -> Iterator[RunningSimulator]:
    """One simulator for the session with the accounts of :data:`ACCOUNTS`; callbacks retried after 50 and 100 ms."""
    with run_in_thread(accounts=ACCOUNTS.values(), callback_retry_delays=(0.05, 0.1), callback_timeout=2.0) as sim:
        yield sim


@pytest.fixture
def pom_sim(pom_server: RunningSimulator) -> RunningSimulator:
    """The session's simulator, reset to a fresh state (no requests, clock now, no faults) for this test."""
    httpx.post(f"{pom_server.base_url}/_sim/reset", timeout=5).raise_for_status()
    return pom_server


@pytest.fixture
def sim_api(pom_sim: RunningSimulator) -> Iterator[SimApi]:
    api = SimApi(pom_sim.base_url)
    yield api
    api.http.close()


@pytest.fixture
def callback_receiver() -> Iterator[CallbackReceiver]:
    receiver = CallbackReceiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def pom_account(pom_sim: RunningSimulator) -> PomAccount:
    """The prod ``bib`` account as Innen would configure it, with short timeouts for fast tests."""
    data = ACCOUNTS["prod"]
    return PomAccount(
        name="pom_bib",
        base_url=pom_sim.base_url,
        env="prod",
        username=data["username"],
        password=data["password"],
        sender_id=data["sender_id"],
        sender_contract_number=data["sender_contract_number"],
        callback_secret=data["callback_secret"],
        rate_limit_per_second=None,
        timeout_seconds=0.5,
        max_concurrency=4,
    )


@pytest.fixture
def sleeps() -> list[float]:
    """The waits the client asked for (it is given ``sleeps.append`` instead of ``time.sleep``)."""
    return []


@pytest.fixture
def pom_client(pom_account: PomAccount, sleeps: list[float]) -> Iterator[PomClient]:
    with PomClient(pom_account, max_attempts=4, sleep=sleeps.append, jitter=lambda: 0.0) as client:
        yield client


# -- the DAGs through Airflow, against the simulator ------------------------------------------------


@pytest.fixture
def airflow_pom_connection(pom_sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """The prod ``bib`` account as the Airflow Connection ``pom_default`` (``AIRFLOW_CONN_POM_DEFAULT``)."""
    import json

    account = ACCOUNTS["prod"]
    monkeypatch.setenv("AIRFLOW_CONN_POM_DEFAULT", json.dumps({
        "conn_type": "http", "host": pom_sim.base_url, "login": account["username"], "password": account["password"],
        "extra": {"env": "prod", "sender_id": account["sender_id"],
                  "sender_contract_number": account["sender_contract_number"],
                  "callback_secret": account["callback_secret"]},
    }))


@pytest.fixture
def demo_with_pom(demo: Any, airflow_pom_connection: None) -> Any:
    """The demo institution (``demo``), with POM reachable from the DAGs."""
    return demo


def dag_named(dag_id: str) -> Any:
    """A DAG of ``dags/``, its params as parsed (:func:`tests.dag_bag.parsed_dag`)."""

    return parsed_dag(dag_id)


def succeeded(run: Any) -> None:
    assert str(run.state).endswith("success"), {ti.task_id: str(ti.state) for ti in run.get_task_instances()}

