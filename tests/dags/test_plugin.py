"""Airflow loads Innen's plugin from plugins/ and its macros work."""

from __future__ import annotations


def test_plugin_loads_without_errors_and_offers_its_macros() -> None:
    from airflow import plugins_manager

    plugins_manager.ensure_plugins_loaded()
    assert plugins_manager.get_import_errors() == {}
    names = {info["name"] for info in plugins_manager.get_plugin_info()}
    assert "innen" in names
    plugins_manager.integrate_macros_plugins()
    from airflow.sdk.execution_time import macros

    assert macros.innen.ogm("123456789002") == "+++123/4567/89002+++"
    assert macros.innen.mask_iban("BE68539007547034") == "BE68 **** **** 7034"


def test_plugin_mounts_the_pom_callback_app_in_the_api_server(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The API server mounts our app at /innen; a callback for an account without a Connection is refused."""
    import json

    import httpx
    from airflow import plugins_manager

    from include.pom.signing import sign

    monkeypatch.setenv("AIRFLOW_CONN_POM_DEFAULT", json.dumps({
        "conn_type": "http", "host": "http://127.0.0.1:9", "login": "u", "password": "p",
        "extra": {"sender_id": "S", "sender_contract_number": "C", "callback_secret": "plugin-test-secret"},
    }))
    apps, _middlewares = plugins_manager.get_fastapi_plugins()
    (mounted,) = [app for app in apps if app["url_prefix"] == "/innen"]

    async def post(path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        transport = httpx.ASGITransport(app=mounted["app"])
        async with httpx.AsyncClient(transport=transport, base_url="http://innen") as client:
            return await client.post(path, content=body, headers=headers)

    import asyncio
    import time

    body = b'{"event_id": "ev-1", "type": "payment_request.paid"}'
    stamp = int(time.time())
    unknown = asyncio.run(post("/pom/callback/nobody", body, {}))
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_account"
    forged = asyncio.run(post("/pom/callback/default", body, {"X-POM-Timestamp": str(stamp),
                                                              "X-POM-Signature": sign("wrong", stamp, body)}))
    assert forged.status_code == 401


def _innen_plugin():  # type: ignore[no-untyped-def]
    from airflow import plugins_manager

    plugins_manager.ensure_plugins_loaded()
    (plugin,) = [p for p in plugins_manager.get_plugin_info() if p["name"] == "innen"]
    return plugin


def _apps() -> dict[str, object]:
    from airflow import plugins_manager

    apps, _middlewares = plugins_manager.get_fastapi_plugins()
    return {app["url_prefix"]: app["app"] for app in apps}


def _built(lazy: object):  # type: ignore[no-untyped-def]
    """The FastAPI app behind one of our lazy ASGI wrappers (one request builds it)."""
    import asyncio

    import httpx

    async def poke() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=lazy), base_url="http://innen") as client:
            await client.get("/built")

    asyncio.run(poke())
    return lazy._app  # type: ignore[attr-defined]


def _calls(dependant) -> set[object]:  # type: ignore[no-untyped-def]
    found = set()
    for sub in dependant.dependencies:
        found.add(sub.call)
        found |= _calls(sub)
    return found


def test_plugin_declares_the_reports_tab_and_the_finance_page_as_airflow_accepts_them() -> None:
    from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse

    views = {view["name"]: view for view in _innen_plugin()["external_views"]}
    assert views["Reports"] == {
        "name": "Reports", "href": "/innen-finance/runs/{DAG_ID}/{RUN_ID}/reports", "destination": "dag_run",
        "url_route": "innen-reports",
    }
    assert views["Finance"]["href"] == "/innen-finance/finance" and views["Finance"]["destination"] == "nav"
    assert views["Finance"]["url_route"] == "innen-finance" and views["Finance"]["category"] == "browse"
    for view in views.values():  # what the UI's plugin endpoint serves them as
        ExternalViewResponse.model_validate(view)

    from airflow import plugins_manager

    # Airflow drops a view whose url_route another plugin took; ours must survive that check.
    external_views, _react_apps = plugins_manager._get_ui_plugins()
    assert {"innen-reports", "innen-finance"} <= {view["url_route"] for view in external_views}


def test_the_reports_and_finance_app_requires_airflows_login_and_the_callback_app_does_not() -> None:
    import asyncio

    import httpx
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.routing import APIRoute

    apps = _apps()
    assert set(apps) >= {"/innen", "/innen-finance"}

    finance = _built(apps["/innen-finance"])
    routes = {route.path: route for route in finance.routes if isinstance(route, APIRoute)}
    assert set(routes) == {"/runs/{dag_id}/{run_id}/reports", "/runs/{dag_id}/{run_id}/file",
                           "/runs/{dag_id}/{run_id}/files/{path:path}", "/finance", "/finance/{section}.csv",
                           "/bank-files/{approval_id}"}
    for route in routes.values():
        assert get_user in _calls(route.dependant), f"{route.path} does not ask Airflow who the user is"

    async def get(path: str, **headers: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=apps["/innen-finance"])
        async with httpx.AsyncClient(transport=transport, base_url="http://innen") as client:
            return await client.get(path, headers=headers)

    for path in ("/runs/mandate_execution/r1/reports", "/runs/mandate_execution/r1/file?path=a.csv",
                 "/runs/mandate_execution/r1/files/a/b.csv", "/finance", "/finance/open.csv", "/bank-files/1"):
        assert asyncio.run(get(path)).status_code == 401, path

    callbacks = _built(apps["/innen"])
    callback_routes = [route for route in callbacks.routes if isinstance(route, APIRoute)]
    assert {route.path for route in callback_routes} >= {"/pom/callback/{account}", "/pom/return/{account}/{loi}"}
    for route in callback_routes:  # POM and payers have no Airflow login: the callbacks are signed instead
        assert get_user not in _calls(route.dependant), route.path


def test_payer_data_is_for_finance_and_who_runs_the_dag_never_for_a_viewer(airflow_db: None) -> None:
    """The Finance page (payers' names, what to refund) and a run's report files (control lists, mandate lists,
    delivery action lists: names, masked accounts, e-mail addresses) were served to every role that reads runs,
    viewers included. Now: the Finance page to finance (who answers approvals); a run's report files to finance
    and to who runs that DAG (the operators of camt053_import); a viewer gets 403 for both, and still the list
    of the run's reports. Asked under the FAB auth manager with Innen's roles, as the API server asks it."""
    import asyncio

    import httpx
    from airflow.api_fastapi.core_api.security import get_user
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    from include.airflow_roles import access_control, ensure_user

    people = {"vera": "viewer", "otto": "operator", "fiona": "finance"}
    for name, role in people.items():
        ensure_user(name, (role,), f"pw-{name}-1")
    with get_application_builder() as builder:  # what the dag-processor does when it serializes the DAGs
        for dag_id in ("camt053_import", "pain_export", "collection_confirm", "control_list_resolve",
                       "pom_reconciliation"):
            builder.sm.sync_perm_for_dag(dag_id, access_control(dag_id))
        users = {name: builder.sm.find_user(username=name) for name in people}
        for user in users.values():
            assert user.perms is not None  # loaded while the session is open

    lazy = _apps()["/innen-finance"]
    app = _built(lazy)

    async def status(path: str) -> int:
        transport = httpx.ASGITransport(app=lazy, raise_app_exceptions=False)  # past the check, no Innen database
        async with httpx.AsyncClient(transport=transport, base_url="http://innen") as client:
            return (await client.get(path)).status_code

    paths = ("/finance", "/finance/open.csv", "/runs/camt053_import/r1/reports",
             "/runs/camt053_import/r1/files/camt053/KBC_1_1/control-list.csv",
             "/runs/camt053_import/r1/file?path=camt053/KBC_1_1/index.html",
             "/runs/control_list_resolve/r1/files/control_list/open.csv")
    seen: dict[tuple[str, str], bool] = {}
    try:
        for name, user in users.items():
            app.dependency_overrides[get_user] = (lambda who: lambda: who)(user)  # no parameter FastAPI would read
            for path in paths:
                seen[(name, path)] = asyncio.run(status(path)) != 403
    finally:
        app.dependency_overrides.pop(get_user, None)
    assert seen == {
        ("vera", "/finance"): False, ("vera", "/finance/open.csv"): False,
        ("vera", "/runs/camt053_import/r1/reports"): True,
        ("vera", "/runs/camt053_import/r1/files/camt053/KBC_1_1/control-list.csv"): False,
        ("vera", "/runs/camt053_import/r1/file?path=camt053/KBC_1_1/index.html"): False,
        ("vera", "/runs/control_list_resolve/r1/files/control_list/open.csv"): False,
        ("otto", "/finance"): False, ("otto", "/finance/open.csv"): False,
        ("otto", "/runs/camt053_import/r1/reports"): True,
        ("otto", "/runs/camt053_import/r1/files/camt053/KBC_1_1/control-list.csv"): True,
        ("otto", "/runs/camt053_import/r1/file?path=camt053/KBC_1_1/index.html"): True,
        ("otto", "/runs/control_list_resolve/r1/files/control_list/open.csv"): False,  # finance's DAG
        ("fiona", "/finance"): True, ("fiona", "/finance/open.csv"): True,
        ("fiona", "/runs/camt053_import/r1/reports"): True,
        ("fiona", "/runs/camt053_import/r1/files/camt053/KBC_1_1/control-list.csv"): True,
        ("fiona", "/runs/camt053_import/r1/file?path=camt053/KBC_1_1/index.html"): True,
        ("fiona", "/runs/control_list_resolve/r1/files/control_list/open.csv"): True,
    }
