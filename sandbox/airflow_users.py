"""One demo user per Innen role in the Airflow metadata database, and the Connection the tasks read roles with.

``python -m sandbox.airflow_users`` (run by ``make demo``, ``make ui`` and ``make airflow``): Innen's roles
synced (:func:`include.airflow_roles.sync_roles`), then the users below created once with random passwords,
written to ``$AIRFLOW_HOME/innen-demo-users.json`` (mode 0600) and reused on every later run. The user
``innen-service`` is the one of Connection ``innen_airflow_api`` (tasks learn a user's roles through the API
server). Demo users only: an institution creates its people in the UI ("Security → Users") or with
``airflow users create``.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from include.airflow_roles import FINANCE, FINANCE_ADMIN, OPERATOR, SERVICE, VIEWER, ensure_user, sync_roles

USERS: dict[str, tuple[str, ...]] = {
    "admin": ("Admin",),
    "finance": (FINANCE,),
    "finance2": (FINANCE,),  # the second pair of eyes: approves what "finance" exported
    "finance-admin": (FINANCE_ADMIN,),
    "operator": (OPERATOR,),
    "viewer": (VIEWER,),
    "innen-service": (SERVICE,),
}
PASSWORDS_FILE = "innen-demo-users.json"
API_CONNECTION = "innen_airflow_api"


def passwords_path() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME", "var/airflow")) / PASSWORDS_FILE


def demo_passwords(path: Path | None = None) -> dict[str, str]:
    """The demo users' passwords: read from ``path``, completed with new random ones, written back (0600)."""
    path = path or passwords_path()
    known = json.loads(path.read_text()) if path.exists() else {}
    wanted = {name: known.get(name) or secrets.token_urlsafe(12) for name in USERS}
    if wanted != known:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(wanted, indent=2) + "\n")
        temporary.chmod(0o600)
        temporary.replace(path)
    return wanted


def ensure_api_connection(base_url: str, password: str) -> None:
    """Connection ``innen_airflow_api``: the API server and the service user (replaced when it changed)."""
    from airflow.models import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        existing = session.query(Connection).filter(Connection.conn_id == API_CONNECTION).one_or_none()
        if existing is not None:
            if existing.host == base_url and existing.login == "innen-service" and existing.password == password:
                return
            session.delete(existing)
            session.flush()
        session.add(Connection(conn_id=API_CONNECTION, conn_type="http", host=base_url, login="innen-service",
                               password=password,
                               description="Innen's tasks read a user's roles here (FAB auth manager)"))


def setup(base_url: str | None = None) -> dict[str, str]:
    """Roles, demo users and the API Connection; returns the passwords."""
    sync_roles()
    passwords = demo_passwords()
    for name, roles in USERS.items():
        ensure_user(name, roles, passwords[name])
    port = os.environ.get("AIRFLOW__API__PORT", "8080")
    ensure_api_connection(base_url or f"http://localhost:{port}", passwords["innen-service"])
    return passwords


if __name__ == "__main__":
    setup()
    print(f"demo users ({', '.join(USERS)}): passwords in {passwords_path()}")
