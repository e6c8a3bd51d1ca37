"""Whose roles a DAG run holds (include/airflow_roles.py): the simple auth manager's, FAB's by its API, nobody's."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from include import airflow_roles
from include.airflow_roles import fab_roles, person, roles_of, run_roles, simple_auth_manager_roles
from include.errors import ConfigError

SIMPLE = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
FAB = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"


def _context(user: str | None) -> dict[str, Any]:
    return {"dag_run": SimpleNamespace(triggering_user_name=user)}


@pytest.fixture
def simple(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("AIRFLOW__CORE__AUTH_MANAGER", SIMPLE)
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS",
                       "anna:op, bert:viewer,admin:admin,carla:Admin,anna:admin")
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
    return monkeypatch


# -- the simple auth manager --------------------------------------------------------------------------


def test_the_simple_auth_manager_gives_a_user_the_role_of_their_first_entry(simple: pytest.MonkeyPatch) -> None:
    assert roles_of("anna") == {"op"}  # the first entry, as the manager's login takes it
    assert roles_of("bert") == {"viewer"}
    assert roles_of("admin") == {"admin"}
    assert roles_of("carla") == {"admin"}  # the manager's roles are case-blind
    assert roles_of("Anna") == frozenset()  # its user names are not
    assert roles_of("nobody") == frozenset()
    assert simple_auth_manager_roles("anna") == {"op"}


def test_everyone_admitted_as_anonymous_admin_is_nobody_in_particular(simple: pytest.MonkeyPatch) -> None:
    simple.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    assert roles_of("admin") == frozenset() and roles_of("anna") == frozenset()


def test_a_run_holds_the_roles_of_the_person_who_triggered_it(simple: pytest.MonkeyPatch) -> None:
    assert run_roles(_context("anna")) == ("anna", {"op"})
    assert run_roles(_context("nobody")) == ("nobody", frozenset())
    # dag.test() names the made-up user dag_test, a schedule names nobody: no person, no roles.
    simple.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "dag_test:admin,admin:admin")
    assert run_roles(_context("dag_test")) == (None, frozenset())
    assert run_roles(_context(None)) == (None, frozenset())
    assert run_roles({}) == (None, frozenset())
    assert person(_context("admin")) == "admin" and person(_context("dag_test")) is None


def test_no_setting_of_the_environment_grants_roles(simple: pytest.MonkeyPatch) -> None:
    simple.setenv("INNEN_ROLES_OF_ANNA", "finance-admin")
    simple.setenv("AIRFLOW_VAR_INNEN_ROLES_OF_ANNA", "finance-admin")
    assert roles_of("anna") == {"op"}


def test_the_simple_auth_manager_is_airflows_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__CORE__AUTH_MANAGER", raising=False)
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "anna:user")
    assert roles_of("anna") == {"user"}


def test_another_auth_manager_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__AUTH_MANAGER", "my.company.KeycloakAuthManager")
    with pytest.raises(ConfigError, match="KeycloakAuthManager.*only from the simple or the FAB auth manager"):
        roles_of("anna")


def test_the_fab_auth_manager_is_asked_through_fab(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__AUTH_MANAGER", FAB)
    asked = []
    monkeypatch.setattr(airflow_roles, "fab_roles", lambda name: asked.append(name) or frozenset({"finance"}))
    assert roles_of("anna") == {"finance"} and asked == ["anna"]


# -- FAB's REST API (the provider is not installed here: its documented answers, served by a mock) ----------


def _api(users: dict[str, dict[str, Any]], *, login_status: int = 201, user_status: int | None = None) -> Any:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url}")
        if request.url.path == "/auth/token":
            body = json.loads(request.content)
            if login_status != 201 or body != {"username": "innen-roles", "password": "s3cret"}:
                return httpx.Response(login_status if login_status != 201 else 401, json={"detail": "Invalid"})
            return httpx.Response(201, json={"access_token": "tok"})
        assert request.headers["Authorization"] == "Bearer tok"
        name = request.url.path.removeprefix("/auth/fab/v1/users/")
        if user_status is not None:
            return httpx.Response(user_status, json={"detail": "Forbidden"})
        if name not in users:
            return httpx.Response(404, json={"detail": "not found"})
        return httpx.Response(200, json={"username": name, "email": f"{name}@x.be", "first_name": name,
                                         "last_name": "X", **users[name]})

    return httpx.MockTransport(handle), seen


CONNECTION = SimpleNamespace(host="localhost", schema=None, port=8080, login="innen-roles", password="s3cret")
USERS = {
    "anna": {"roles": [{"name": "finance"}, {"name": "finance-admin"}], "active": True},
    "bert": {"roles": [{"name": "finance-admin"}], "active": False},
    "carla": {"roles": [], "active": True},
}


def test_fab_roles_from_the_api_server() -> None:
    transport, seen = _api(USERS)
    get = {"innen_airflow_api": CONNECTION}.__getitem__
    assert fab_roles("anna", get_connection=get, transport=transport) == {"finance", "finance-admin"}
    assert seen == ["POST http://localhost:8080/auth/token", "GET http://localhost:8080/auth/fab/v1/users/anna"]
    assert fab_roles("bert", get_connection=get, transport=transport) == frozenset()  # inactive
    assert fab_roles("carla", get_connection=get, transport=transport) == frozenset()
    assert fab_roles("nobody", get_connection=get, transport=transport) == frozenset()
    fab_roles("a/b c", get_connection=get, transport=transport)
    assert seen[-1] == "GET http://localhost:8080/auth/fab/v1/users/a%2Fb%20c"


def test_fab_roles_that_cannot_be_read_refuse_rather_than_guess() -> None:
    get = {"innen_airflow_api": CONNECTION}.__getitem__
    transport, _ = _api(USERS, user_status=403)
    with pytest.raises(ConfigError, match="can read on Users"):
        fab_roles("anna", get_connection=get, transport=transport)
    transport, _ = _api(USERS, login_status=401)
    with pytest.raises(ConfigError, match="refused Connection innen_airflow_api's user 'innen-roles'"):
        fab_roles("anna", get_connection=get, transport=transport)

    def missing(conn_id: str) -> Any:
        raise LookupError(f"The conn_id `{conn_id}` isn't defined")

    with pytest.raises(ConfigError, match="Connection innen_airflow_api .* is not usable"):
        fab_roles("anna", get_connection=missing, transport=transport)

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with pytest.raises(ConfigError, match="could not be asked for the roles of anna"):
        fab_roles("anna", get_connection=get, transport=httpx.MockTransport(down))
    no_host = SimpleNamespace(host="", schema=None, port=None, login="x", password="y")
    with pytest.raises(ConfigError, match="names no host"):
        fab_roles("anna", get_connection=lambda _: no_host, transport=transport)
