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


def actor(context: Mapping[str, Any]) -> str:
    """``airflow:<dag>/<run>/<task>``: who made a change, for the audit log."""
    ti = context.get("ti") or context.get("task_instance")
    if ti is None:
        return "airflow:unknown"
    return f"airflow:{ti.dag_id}/{ti.run_id}/{ti.task_id}"


def as_of(context: Mapping[str, Any]) -> datetime:
    """The moment a run acts as of: the ``as_of`` param (ISO, UTC when no offset), else now."""
    params = context.get("params") or {}
    value = params.get("as_of")
    if not value:
        return datetime.now(timezone.utc)
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
