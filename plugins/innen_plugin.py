"""Innen's Airflow plugin: template macros for finance-facing text, and POM's callback and return pages.

``{{ macros.innen.ogm('123456789002') }}`` → ``+++123/4567/89002+++``;
``{{ macros.innen.mask_iban(iban) }}`` keeps an IBAN out of logs.

The API server mounts ``include.pom.callbacks`` at ``/innen``: POM posts its
transaction feedback to ``/innen/pom/callback/<account>`` and sends payers
back to ``/innen/pom/return/...``. The app is built on its first request, so
no Airflow component pays for importing it when it loads the plugin.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin


def ogm(number: str) -> str:
    from include.finance.reference_numbers import display_reference

    return display_reference(number)


def mask_iban(value: str) -> str:
    from include.sepa.identifiers import mask_iban as mask

    return mask(value)


class _ConnectionAccounts:
    """POM accounts read from Airflow Connections when a request names one (``pom_<account>``)."""

    def get(self, name: str) -> Any:
        from airflow.models.connection import Connection

        from include.pom.accounts import accounts_from_connections

        return accounts_from_connections([name], Connection.get_connection_from_secrets).get(name)


class _CallbackApp:
    """ASGI app that builds the real one on first use."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            from include.pom.callbacks import create_app

            accounts = _ConnectionAccounts()
            self._app = create_app(accounts_provider=lambda: accounts)
        await self._app(scope, receive, send)


class InnenPlugin(AirflowPlugin):
    name = "innen"
    macros = [ogm, mask_iban]
    fastapi_apps = [{"app": _CallbackApp(), "url_prefix": "/innen", "name": "Innen POM callbacks and return pages"}]
