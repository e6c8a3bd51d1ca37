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
