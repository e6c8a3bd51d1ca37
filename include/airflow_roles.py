"""The roles of the person who triggered a DAG run, as Airflow's auth manager knows them.

This is the one module of ``include/`` that talks to Airflow, and it imports
Airflow only inside its functions: importing it costs nothing and needs no
Airflow (doctests, domain code). It lives here rather than in ``dags/``
because every file there must define the DAG named after it
(``tests/dags/test_dag_integrity.py``), and rather than in ``plugins/``
because a plugin is loaded by Airflow's components, not imported by tasks.

**Who.** The person is ``dag_run.triggering_user_name``
(:func:`include.runtime.triggering_user`): the UI's or the REST API's
authenticated user. A run nobody triggered (schedule, asset) has none, and
``dag.test()`` names the made-up user ``dag_test``, which is nobody too:
such runs hold no roles, so a lock check refuses every locked type. There is
deliberately no other way in — no variable, environment setting or param
grants roles. (``airflow dags trigger`` on the host names the OS user; whoever
runs it there holds the database URL anyway.)

**Roles**, by ``[core] auth_manager``:

* **simple auth manager** (Airflow's default until we switch): the one role
  ``[core] simple_auth_manager_users`` gives the user (``user:role,…``; roles
  ``viewer``, ``user``, ``op``, ``admin``, lower-cased as the manager treats
  them case-blind); none when ``simple_auth_manager_all_admins`` lets everyone
  in unauthenticated. A type's lock must then name one of those four roles.
* **FAB auth manager** (roles ``finance``, ``finance-admin``, ``operator``,
  ``viewer``): the user's roles from FAB's REST API on the API server
  (``GET /auth/fab/v1/users/{username}``; none for an unknown or inactive
  user). Not FAB's security manager in-process: it reads the metadata
  database, which Airflow 3 closes to task processes (``sql_alchemy_conn``
  becomes ``airflow-db-not-allowed:///`` under the task supervisor). The
  Connection ``innen_airflow_api`` holds the API server's URL and a service
  user allowed to read users ("can read on Users"), e.g.
  ``AIRFLOW_CONN_INNEN_AIRFLOW_API='http://innen-roles:…@localhost:8080'``.
* any other auth manager: refused (:class:`~include.errors.ConfigError`).

A task takes its role source (:data:`RoleSource`: context → person and
roles) as an argument; DAGs pass :func:`run_roles`, looked up when the task
runs, so a test can put roles of its own in its place within its process.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from include.errors import ConfigError
from include.runtime import triggering_user

NO_ROLES: frozenset[str] = frozenset()
DAG_TEST_USER = "dag_test"  # what dag.test() writes as the triggering user: no person
FAB_API_CONNECTION = "innen_airflow_api"
FAB_TIMEOUT_SECONDS = 10.0

# context → (the person who triggered the run or None, their roles)
RoleSource = Callable[[Mapping[str, Any]], tuple[str | None, frozenset[str]]]


def person(context: Mapping[str, Any]) -> str | None:
    """The person who triggered the run, or None (a schedule, an asset, ``dag.test()``)."""
    name = triggering_user(context)
    return None if name is None or name == DAG_TEST_USER else name


def run_roles(context: Mapping[str, Any]) -> tuple[str | None, frozenset[str]]:
    """The :data:`RoleSource` of real runs: the person who triggered the run and their roles (none without one)."""
    name = person(context)
    return name, (roles_of(name) if name else NO_ROLES)


def roles_of(username: str) -> frozenset[str]:
    """``username``'s roles under the configured auth manager (see the module docstring)."""
    from airflow.configuration import conf

    manager = conf.get("core", "auth_manager", fallback="") or ""
    kind = manager.rsplit(".", 1)[-1]
    if kind == "SimpleAuthManager":
        return simple_auth_manager_roles(username)
    if kind == "FabAuthManager":
        return fab_roles(username)
    raise ConfigError(f"[core] auth_manager is {manager or 'not set'}: Innen reads a user's roles only from the "
                      "simple or the FAB auth manager, so no access lock can be checked")


def simple_auth_manager_roles(username: str) -> frozenset[str]:
    """The role ``[core] simple_auth_manager_users`` gives ``username`` (the first entry, as its login takes)."""
    from airflow.configuration import conf

    if conf.getboolean("core", "simple_auth_manager_all_admins", fallback=False):
        return NO_ROLES  # everyone is let in as an anonymous admin: nobody is known
    for entry in conf.getlist("core", "simple_auth_manager_users", fallback="") or []:
        parts = [part.strip() for part in str(entry).split(":")]
        if len(parts) >= 2 and parts[0] == username and parts[1]:
            return frozenset({parts[1].lower()})
    return NO_ROLES


def _base_url(connection: Any) -> str:
    host = (connection.host or "").strip().rstrip("/")
    if not host:
        raise ConfigError(f"Connection {FAB_API_CONNECTION} names no host: where is the Airflow API server?")
    if "://" not in host:
        host = f"{connection.schema or 'http'}://{host}"
    return f"{host}:{connection.port}" if connection.port else host


def fab_roles(
    username: str,
    *,
    get_connection: Callable[[str], Any] | None = None,
    transport: Any = None,
) -> frozenset[str]:
    """``username``'s roles from the FAB auth manager's REST API; none for an unknown or inactive user.

    ``get_connection`` (default ``airflow.sdk.Connection.get``) and ``transport`` (an httpx transport)
    are for tests. Any answer but the user or "no such user" raises :class:`ConfigError`: a check that
    cannot read the roles refuses rather than guesses.
    """
    import httpx

    if get_connection is None:
        from airflow.sdk import Connection

        get_connection = Connection.get
    try:
        connection = get_connection(FAB_API_CONNECTION)
    except Exception as missing:  # AirflowNotFoundException, and whatever a secrets backend raises
        raise ConfigError(f"Connection {FAB_API_CONNECTION} (the Airflow API server and a user who may read users, "
                          f"to learn the roles of {username}) is not usable: {missing}") from None
    base = _base_url(connection)
    try:
        with httpx.Client(base_url=base, timeout=FAB_TIMEOUT_SECONDS, transport=transport) as client:
            login = client.post("/auth/token", json={"username": connection.login or "",
                                                     "password": connection.password or ""})
            if login.status_code not in (200, 201):
                raise ConfigError(f"the Airflow API server at {base} refused Connection {FAB_API_CONNECTION}'s user "
                                  f"{connection.login!r} (HTTP {login.status_code}): no roles can be read")
            token = login.json().get("access_token")
            answer = client.get(f"/auth/fab/v1/users/{quote(username, safe='')}",
                                headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as failure:
        raise ConfigError(f"the Airflow API server at {base} could not be asked for the roles of {username}: "
                          f"{failure}") from None
    if answer.status_code == 404:
        return NO_ROLES
    if answer.status_code != 200:
        raise ConfigError(f"the Airflow API server at {base} did not give the roles of {username} "
                          f"(HTTP {answer.status_code}; Connection {FAB_API_CONNECTION}'s user needs 'can read on "
                          "Users')")
    user = answer.json()
    if user.get("active") is False:
        return NO_ROLES
    return frozenset(str(role["name"]) for role in user.get("roles") or [] if role.get("name"))
