"""Which POM account serves which payment reference type, and where its credentials live.

Seed 000, 3: an institution may have several POM accounts, one of them the
default; a payment reference type names its account or says ``default``.
Account ``default`` is the Airflow Connection ``pom_default``; account
``gemeente`` is ``pom_gemeente``. Credentials are only ever read from those
Connections (in development the environment variables ``AIRFLOW_CONN_POM_*``),
never from code or the database.

The DAGs read Connections through Airflow; the callback app and the demo,
which may run without an Airflow task around them, read the same environment
variables with :func:`accounts_from_env`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from sqlalchemy import Engine, select

from include.errors import ConfigError
from include.pom.client import PomAccount, PomClient

DEFAULT_ACCOUNT = "default"

log = logging.getLogger(__name__)


def connection_id(account: str) -> str:
    """The Airflow Connection id of a POM account.

    >>> connection_id("default"), connection_id("gemeente")
    ('pom_default', 'pom_gemeente')
    """
    return f"pom_{account}"


def account_from_connection_json(account: str, value: str) -> PomAccount:
    """A :class:`PomAccount` from an ``AIRFLOW_CONN_*`` value (Airflow's JSON or URI form)."""
    value = value.strip()
    if value.startswith("{"):
        try:
            fields: dict[str, Any] = json.loads(value)
        except ValueError as exc:
            raise ConfigError(f"Connection {connection_id(account)} is not valid JSON: {exc.msg}") from None
        extra = fields.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra or "{}")
        return PomAccount.from_connection(
            account, host=fields.get("host") or "", port=fields.get("port"), schema=fields.get("schema"),
            login=fields.get("login"), password=fields.get("password"), extra=extra,
        )
    try:
        parts = urlsplit(value)
        port = parts.port
        extra = dict(parse_qsl(parts.query))
        if "__extra__" in extra:
            extra = json.loads(extra["__extra__"])
    except ValueError:
        # urllib's messages quote the piece it choked on: with an unencoded '/', '?' or '#' in the password
        # that piece is part of the password ("Port could not be cast to integer value as 'S3cr'"), so none
        # of the value goes into this message, nor into the traceback (from None).
        raise ConfigError(
            f"Connection {connection_id(account)} is not a valid URI; percent-encode special characters "
            "('/', '?', '#', '@', ':') in its login and password, or use the JSON form"
        ) from None
    return PomAccount.from_connection(
        account, host=parts.hostname or "", port=port, schema=unquote(parts.path.lstrip("/")) or None,
        login=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None, extra=extra,
    )


def accounts_from_env(names: Iterable[str] | None = None, environ: Mapping[str, str] | None = None) -> dict[str, PomAccount]:
    """The POM accounts configured as ``AIRFLOW_CONN_POM_<NAME>`` (all of them, or those in ``names``)."""
    environ = os.environ if environ is None else environ
    prefix = "AIRFLOW_CONN_POM_"
    found = {key[len(prefix):].lower(): value for key, value in environ.items() if key.startswith(prefix)}
    wanted = set(found) if names is None else set(names)
    return {name: account_from_connection_json(name, found[name]) for name in sorted(wanted) if name in found}


class PomClients:
    """One open client per account, made on first use and closed together."""

    def __init__(self, accounts: Mapping[str, PomAccount], factory: Callable[[PomAccount], PomClient] = PomClient) -> None:
        self.accounts = dict(accounts)
        self._factory = factory
        self._open: dict[str, PomClient] = {}

    def __enter__(self) -> PomClients:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def account(self, name: str) -> PomAccount:
        try:
            return self.accounts[name]
        except KeyError:
            raise ConfigError(
                f"no POM account {name!r}: define the Airflow Connection {connection_id(name)}"
            ) from None

    def client(self, name: str) -> PomClient:
        if name not in self._open:
            self._open[name] = self._factory(self.account(name))
        return self._open[name]

    def close(self) -> None:
        for client in self._open.values():
            client.close()
        self._open.clear()


def accounts_from_connections(names: Iterable[str], get_connection: Callable[[str], Any]) -> dict[str, PomAccount]:
    """The accounts ``names`` from Connection objects (``get_connection`` is e.g. Airflow's ``Connection.get``).

    An account without a Connection is left out (and logged): work that needs
    it then fails with :class:`ConfigError` naming the Connection to define,
    while work for the other accounts goes on.
    """
    accounts = {}
    for name in sorted(set(names)):
        try:
            connection = get_connection(connection_id(name))
        except Exception as exc:  # Airflow raises its own not-found error
            log.warning("POM account %r has no Connection %s (%s)", name, connection_id(name), type(exc).__name__)
            continue
        extra = connection.extra_dejson if hasattr(connection, "extra_dejson") else (connection.extra or {})
        accounts[name] = PomAccount.from_connection(
            name, host=connection.host or "", port=connection.port, schema=connection.schema,
            login=connection.login, password=connection.password, extra=extra,
        )
    return accounts


def accounts_in_use(engine: Engine) -> set[str]:
    """Accounts named by payment reference types that allow online payment, or holding live requests."""
    from include.finance.db import transaction
    from include.finance.models import LIVE_POM_REQUEST_STATUSES, PaymentReferenceType, PomPaymentRequest

    with transaction(engine, readonly=True) as session:
        names = set(session.scalars(select(PaymentReferenceType.pom_account).where(
            PaymentReferenceType.allowed_online.is_(True))))
        names.update(session.scalars(select(PomPaymentRequest.account).where(
            PomPaymentRequest.status.in_(LIVE_POM_REQUEST_STATUSES)).distinct()))
    return {name or DEFAULT_ACCOUNT for name in names}
