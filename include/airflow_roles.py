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

* **simple auth manager** (Airflow's default; Innen runs with FAB's since issue 12): the one role
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


# -- Innen's roles under the FAB auth manager ----------------------------------------------------------------------
#
# Two layers, both Airflow's own: each role's *global* permissions (below, kept in step by :func:`sync_roles`), and
# per-DAG edit rights from each DAG's ``access_control`` (:func:`access_control`, synced by Airflow when it
# serializes the DAG). No role has the global "can edit on DAGs", so a DAG can be triggered, cleared, paused or
# answered (human-in-the-loop) only by the roles its ``access_control`` names.

FINANCE = "finance"
FINANCE_ADMIN = "finance-admin"
OPERATOR = "operator"
VIEWER = "viewer"
SERVICE = "innen-service"  # the Connection innen_airflow_api's user: reads users and their roles, nothing else
INNEN_ROLES = (FINANCE, FINANCE_ADMIN, OPERATOR, VIEWER, SERVICE)

# DAGs that move money or change what citizens owe: run and answered by finance only.
FINANCE_DAGS = frozenset({
    "pain_export", "collection_confirm", "control_list_resolve", "payment_reference_create",
    "payment_reference_seal",
})
FINANCE_ADMIN_DAGS = frozenset({"payment_reference_delete"})  # deleting a debt: finance-admin only

_READ = [("can_read", r) for r in (
    "DAGs", "DAG Dependencies", "DAG Code", "DAG Runs", "DAG Versions", "DAG Warnings", "Assets", "Asset Aliases",
    "Backfills", "Cluster Activity", "Pools", "ImportError", "Jobs", "My Password", "My Profile", "SLA Misses",
    "Task Instances", "Task Logs", "XComs", "HITL Detail", "Website",
    "Plugins",  # the UI shows a plugin's views (the Reports tab, the Finance page) only to who may read plugins
)] + [("can_edit", "My Password"), ("can_edit", "My Profile")] + [("menu_access", r) for r in (
    "Browse", "DAGs", "DAG Dependencies", "DAG Runs", "Assets", "Cluster Activity", "Documentation", "Docs", "Jobs",
    "SLA Misses", "Task Instances",
)]
# Running and rerunning: global on runs and task instances, but effective only where the DAG's access_control
# also grants "can edit" on the DAG itself.
_RUN = [("can_create", "DAG Runs"), ("can_edit", "DAG Runs"), ("can_delete", "DAG Runs"),
        ("can_create", "Task Instances"), ("can_edit", "Task Instances"), ("can_delete", "Task Instances")]
# An asset event made by hand starts the DAGs scheduled on it, whoever may trigger them: "collection runs ready"
# starts the bank-file export, a money DAG. Only finance may (a task's own outlets need no one's permission).
_ANSWER = [("can_edit", "HITL Detail"), ("menu_access", "HITL Detail"), ("can_create", "Assets")]

ROLE_PERMISSIONS: dict[str, frozenset[tuple[str, str]]] = {
    VIEWER: frozenset(_READ),
    OPERATOR: frozenset(_READ + _RUN),
    FINANCE: frozenset(_READ + _RUN + _ANSWER),
    FINANCE_ADMIN: frozenset(_READ + _RUN + _ANSWER),
    SERVICE: frozenset({("can_read", "Users"), ("can_read", "Roles"), ("can_read", "Website")}),
}

_EDIT_DAG = {"DAGs": {"can_read", "can_edit"}, "DAG Runs": {"can_read", "can_create", "can_delete"}}


def access_control(dag_id: str) -> dict[str, dict[str, set[str]]]:
    """The ``access_control`` of DAG ``dag_id``: which of Innen's roles may run and answer it.

    >>> sorted(access_control("pain_export"))
    ['finance', 'finance-admin']
    >>> sorted(access_control("payment_reference_delete"))
    ['finance-admin']
    >>> sorted(access_control("camt053_import"))
    ['operator']
    """
    if dag_id in FINANCE_ADMIN_DAGS:
        roles: tuple[str, ...] = (FINANCE_ADMIN,)
    elif dag_id in FINANCE_DAGS:
        roles = (FINANCE, FINANCE_ADMIN)
    else:
        roles = (OPERATOR,)
    return {role: {resource: set(actions) for resource, actions in _EDIT_DAG.items()} for role in roles}


def _per_dag(resource: str) -> bool:
    return resource.startswith(("DAG:", "DAG Run:"))  # kept by access_control, not by us


def sync_roles() -> dict[str, int]:
    """Create Innen's roles and give each exactly its global permissions (idempotent); per role, how many changed.

    Needs the FAB auth manager's tables (``airflow db migrate`` with FAB configured). Run it before the DAGs are
    serialized: an ``access_control`` naming a missing role is an import error.
    """
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    changed: dict[str, int] = {}
    with get_application_builder() as appbuilder:
        sm = appbuilder.sm
        for name, wanted in ROLE_PERMISSIONS.items():
            role = sm.find_role(name) or sm.add_role(name)
            have = {(p.action.name, p.resource.name) for p in role.permissions}
            count = 0
            for action, resource in sorted(wanted - have):
                sm.add_permission_to_role(role, sm.create_permission(action, resource))
                count += 1
            for permission in list(role.permissions):
                key = (permission.action.name, permission.resource.name)
                if key not in wanted and not _per_dag(permission.resource.name):
                    sm.remove_permission_from_role(role, permission)
                    count += 1
            changed[name] = count
    return changed


def ensure_user(username: str, roles: tuple[str, ...], password: str, *, email: str | None = None) -> bool:
    """Create FAB user ``username`` with ``roles`` (or give an existing one exactly those roles); True if created."""
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    with get_application_builder() as appbuilder:
        sm = appbuilder.sm
        role_objects = [sm.find_role(name) for name in roles]
        if missing := [name for name, role in zip(roles, role_objects) if role is None]:
            raise ConfigError(f"user {username}: no role {', '.join(missing)} (run sync_roles first)")
        user = sm.find_user(username=username)
        if user is None:
            created = sm.add_user(username, username, "Innen", email or f"{username}@innen.invalid", role_objects,
                                  password)
            if not created:
                raise ConfigError(f"FAB refused to create user {username}")
            return True
        if sorted(r.name for r in user.roles) != sorted(roles):
            user.roles = role_objects
            sm.update_user(user)
        return False



if __name__ == "__main__":  # `python -m include.airflow_roles`: after `airflow db migrate`, on each upgrade
    print("roles synced (changes per role):", sync_roles())
