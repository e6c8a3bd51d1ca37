"""Shared fixtures: a fresh application database per test on SQLite and on PostgreSQL.

PostgreSQL is a real throwaway cluster from Debian's binaries, started once
per test session as the ``postgres`` user (PostgreSQL refuses to run as root)
and removed at the end; each test gets its own database cloned from a template
holding the schema. Airflow is pointed at a temporary home before anything
imports it.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="innen-airflow-")
os.environ.update(
    {
        "AIRFLOW_HOME": _AIRFLOW_HOME,
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager",
    }
)

from sqlalchemy import Engine, create_engine, select, text  # noqa: E402

from include.finance.db import create_schema, get_engine, transaction  # noqa: E402
from include.finance.models import ControlListItem  # noqa: E402
from include.finance.statuses import ControlListKind, values  # noqa: E402
from sandbox.throwaway_postgres import PostgresCluster  # noqa: E402

DEMO_DAY = date(2026, 11, 20)  # the day the demo fixture and the DAG tests run on


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    cluster.start()
    admin = create_engine(cluster.url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("CREATE DATABASE innen_template"))
    template = create_engine(cluster.url("innen_template"))
    create_schema(template)
    template.dispose()
    cluster.admin = admin  # type: ignore[attr-defined]
    yield cluster
    admin.dispose()
    cluster.stop()


_counter = iter(range(1, 10**9))


def _postgres_database(cluster: PostgresCluster) -> str:
    name = f"innen_test_{next(_counter)}_{int(time.time() * 1000) % 100000}"
    with cluster.admin.connect() as connection:  # type: ignore[attr-defined]
        connection.execute(text(f"CREATE DATABASE {name} TEMPLATE innen_template"))
    return cluster.url(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty, current schema: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'innen.sqlite'}"
        create_schema(get_engine(url))
        return url
    return _postgres_database(request.getfixturevalue("postgres"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'innen.sqlite'}"
    create_schema(get_engine(url))
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = get_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def known_control_list_kinds(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test on a database (``db_url``): every kind of control-list item written is a ``ControlListKind``.

    For the modules that write items (``pytestmark``): an item of a kind the enum does not know fails the test's
    teardown, naming the kind.
    """
    url = request.getfixturevalue("db_url") if "db_url" in request.fixturenames else None
    yield
    if url is None:
        return
    with transaction(get_engine(url), readonly=True) as session:
        written = set(session.scalars(select(ControlListItem.kind).distinct()))
    unknown = sorted(written - set(values(ControlListKind)))
    assert not unknown, f"control-list item kinds that ControlListKind does not know: {unknown}"


@pytest.fixture
def var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private ``var/`` (outbox, reports) for one test."""
    folder = tmp_path / "var"
    monkeypatch.setenv("INNEN_VAR_DIR", str(folder))
    monkeypatch.delenv("INNEN_STORAGE_URL", raising=False)
    return folder


@pytest.fixture
def demo(db_url: str, var_dir: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: None) -> Engine:
    """The demo institution of 2026-11-20 in the test's database, which the DAGs use (``INNEN_DB_URL``).

    Its hubs release bank files without approval: a test that runs ``pain_export`` with ``dag.test()``
    has nobody to answer the approval (the finance end-to-end tests answer it on a real Airflow)."""
    from sandbox.demo_institution import load_demo

    monkeypatch.setenv("INNEN_DB_URL", db_url)
    engine = get_engine(db_url)
    create_schema(engine)
    with transaction(engine) as session:
        load_demo(session, DEMO_DAY, bank_file_approval=False)
    return engine


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A fresh Airflow metadata database in the temporary AIRFLOW_HOME."""
    from airflow.utils import db

    from include.airflow_roles import sync_roles

    db.resetdb()
    sync_roles()  # before any DAG is serialized: access_control names Innen's roles
