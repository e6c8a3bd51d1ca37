"""Reaching the application database: one engine per URL, one transaction per task.

SQLite (the embedded default) runs in WAL mode with a busy timeout, foreign
keys on, and every transaction opened with ``BEGIN IMMEDIATE`` so that two
writers queue instead of failing half-way with "database is locked".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from include.config import DB_URL_SETTING, database_url
from include.errors import ConfigError, DatabaseUnavailable
from include.finance.models import Base

SQLITE_BUSY_TIMEOUT_MS = 60_000
READONLY = "innen_readonly"
SQLITE_CACHE_KB = 64 * 1024


def _masked(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable>"


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        # The default page cache (2 000 pages, 8 MB) thrashes once tables reach a million rows.
        cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KB}")
        cursor.execute("PRAGMA temp_store = MEMORY")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        # Readers take no lock (WAL gives them a snapshot); writers queue up front.
        readonly = connection.get_execution_options().get(READONLY, False)
        connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def _json(value: object) -> str:
    """JSON columns (the audit log) hold amounts and dates as their exact text."""
    return json.dumps(value, default=str, ensure_ascii=False)


def get_engine(url: str | None = None) -> Engine:
    """The engine for ``url`` (default: ``INNEN_DB_URL`` as set now), checked once by connecting.

    A URL that cannot be parsed, names an unknown driver, or cannot be reached
    raises :class:`ConfigError` naming the setting rather than a driver trace.
    """
    return _engine(url or database_url())


@lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, json_serializer=_json)
            _configure_sqlite(engine)
        else:
            engine = create_engine(url, pool_pre_ping=True, json_serializer=_json)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise ConfigError(f"{DB_URL_SETTING}={_masked(url)} is not a usable database URL: {exc}") from None
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseUnavailable(f"{DB_URL_SETTING}={_masked(url)}: cannot connect to the database: {reason}") from None
    return engine


def create_schema(engine: Engine) -> None:
    """Create every table that does not exist yet (a no-op on a current database)."""
    Base.metadata.create_all(engine)


@contextmanager
def transaction(engine: Engine | None = None, *, readonly: bool = False) -> Iterator[Session]:
    """One unit of work: committed when the block ends, rolled back entirely when it raises.

    ``readonly`` transactions take no write lock on SQLite, so a long read
    (writing a bank file from the database) never blocks the writers.
    """
    bind = engine or get_engine()
    if readonly:
        bind = bind.execution_options(**{READONLY: True})
    factory = sessionmaker(bind=bind, expire_on_commit=False)
    with factory.begin() as session:
        if readonly and bind.dialect.name == "postgresql":
            session.execute(text("SET TRANSACTION READ ONLY"))
        yield session


def one_at_a_time(session: Session, name: str) -> None:
    """Wait for, then hold until this transaction ends, the lock called ``name``.

    PostgreSQL: a transaction-level advisory lock (released by the commit or
    the rollback, also when the worker dies). SQLite: nothing to do, since a
    write transaction already holds the database's only write lock from its
    first statement (``BEGIN IMMEDIATE``).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})


LEDGER = "innen.ledger"


def hold_ledger(session: Session) -> None:
    """Money on payment references changes one transaction at a time; call it before reading what will change.

    Every booking reads a reference's open amount and status, decides, then
    writes the new values (the decision depends on what was open: paid,
    partial, over-paid, closed). Under PostgreSQL's READ COMMITTED two such
    transactions (a statement import and a POM callback, a confirmation and
    an import, an expiry and a payment) would each decide from the amount the
    other has not committed yet, and the second write would undo the first.
    Holding one lock for the ledger makes them queue as SQLite's writers do,
    so every decision is made from committed money. The money-changing
    transactions are short except a large statement's import, which the
    others then wait for; none waits on a row lock while holding it, so they
    cannot deadlock on each other.
    """
    one_at_a_time(session, LEDGER)

