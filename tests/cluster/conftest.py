"""What the cluster tests share: the running cluster of ``make cluster`` and a second Innen database on its server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from include.finance.db import create_schema, get_engine
from include.finance.models import Base
from sandbox import cluster
from sandbox.airflow_services import AirflowServices


@pytest.fixture(scope="module")
def services() -> AirflowServices:
    state = cluster.CLUSTER / "state.json"
    if not state.exists():
        pytest.fail("no cluster is running: make cluster (make cluster-check starts it)")
    home = cluster.CLUSTER / "airflow"
    env = cluster.deploy_env(cluster.cluster_values())
    return AirflowServices(home, cluster.API_PORT, env, json.loads((home / "innen-demo-users.json").read_text()))


@pytest.fixture
def undisturbed(services: AirflowServices) -> Iterator[Engine]:
    """An empty Innen database beside the cluster's (same server), for the same work done without a fault."""
    url = services.env["INNEN_DB_URL"].rsplit("/", 1)[0]
    admin = create_engine(f"{url}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        if not connection.execute(text("SELECT 1 FROM pg_database WHERE datname = 'innen_undisturbed'")).scalar():
            connection.execute(text("CREATE DATABASE innen_undisturbed"))
    admin.dispose()
    engine = get_engine(f"{url}/innen_undisturbed")
    Base.metadata.drop_all(engine)
    create_schema(engine)
    yield engine
    engine.dispose()
