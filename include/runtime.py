"""What a task needs from its Airflow context, without importing Airflow.

The DAG files pass the context mapping in; the domain code only ever sees a
run date and an actor string for the audit log.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

LOCAL_ZONE = ZoneInfo("Europe/Brussels")


def run_date(context: Mapping[str, Any]) -> date:
    """The business date of a DAG run: the ``run_date`` param, else the logical date in Brussels."""
    params = context.get("params") or {}
    if params.get("run_date"):
        return date.fromisoformat(str(params["run_date"]))
    moment = context.get("logical_date")
    if moment is None and context.get("dag_run") is not None:
        moment = getattr(context["dag_run"], "run_after", None)
    if moment is None:
        moment = datetime.now(timezone.utc)
    return moment.astimezone(LOCAL_ZONE).date()


def triggering_user(context: Mapping[str, Any]) -> str | None:
    """The user who triggered the run: Airflow 3.1+ keeps it on the run (``dag_run.triggering_user_name``: the UI's
    or API's user, the CLI's OS user, ``dag_test`` under ``dag.test()``); None for scheduled and asset runs, and on
    an Airflow that does not know it. (``dag_run.triggered_by`` only says how: ui, rest_api, cli, test, …)"""
    run = context.get("dag_run")
    name = getattr(run, "triggering_user_name", None) if run is not None else None
    return str(name) if name else None


def actor(context: Mapping[str, Any], *, with_user: bool = False) -> str:
    """``airflow:<dag>/<run>/<task>``: who made a change, for the audit log.

    ``with_user``: ``airflow:<dag>/<run>/<task> by <user>`` when a person triggered the run (see
    :func:`triggering_user`), for the changes a person asks for in a form (a run triggered by nobody in
    particular keeps the short form)."""
    ti = context.get("ti") or context.get("task_instance")
    if ti is None:
        return "airflow:unknown"
    name = f"airflow:{ti.dag_id}/{ti.run_id}/{ti.task_id}"
    user = triggering_user(context) if with_user else None
    return f"{name} by {user}"[:250] if user else name


def as_of(context: Mapping[str, Any]) -> datetime:
    """The moment a run acts as of: the ``as_of`` param (ISO, UTC when no offset), else now."""
    params = context.get("params") or {}
    value = params.get("as_of")
    if not value:
        return datetime.now(timezone.utc)
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
