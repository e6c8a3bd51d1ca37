"""What a task needs from its Airflow context, without importing Airflow.

The DAG files pass the context mapping in; the domain code only ever sees a
run date and an actor string for the audit log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from include.errors import InnenError, echoed

LOCAL_ZONE = ZoneInfo("Europe/Brussels")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?", re.ASCII)


class ParamError(InnenError, ValueError):
    """A person's run parameter is malformed; the message names the param. No retry cures it: a task turns it
    into an AirflowFailException (this module does not import Airflow)."""


def _typed(value: Any) -> str | None:
    """A param's text as typed, without the spaces around it; None when nothing was given."""
    text = "" if value is None else str(value).strip()
    return text or None


def parse_date_param(name: str, value: Any) -> date | None:
    """A ``YYYY-MM-DD`` param, surrounding spaces ignored; None when empty. ParamError naming ``name`` else.

    (``date.fromisoformat`` alone also takes ``20260301`` and ``2026-W09-7``: not what a person means.)"""
    text = _typed(value)
    if text is None:
        return None
    if _DATE.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise ParamError(f"param {name}: {echoed(text)} is not a date YYYY-MM-DD")


def parse_moment_param(name: str, value: Any) -> datetime | None:
    """An ISO date-time param (UTC when it has no offset), surrounding spaces ignored; None when empty.

    The trigger form does not check ``format: date-time`` here (jsonschema needs rfc3339-validator for it), so
    this is the only check: ParamError naming ``name`` for anything else, a bare date included."""
    text = _typed(value)
    if text is None:
        return None
    if _MOMENT.fullmatch(text):
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return utc_aware(moment)
    raise ParamError(f"param {name}: {echoed(text)} is not a date-time YYYY-MM-DDTHH:MM[:SS][+HH:MM|Z]")


def utc_aware(moment: datetime) -> datetime:
    """An instant with its zone: a naive time (as SQLite gives times back, or a param without an offset) is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def brussels_day(moment: datetime) -> date:
    """The day in Brussels of an instant (a naive one, as SQLite gives times back, is UTC).

    >>> brussels_day(datetime(2026, 3, 28, 23, 30, tzinfo=timezone.utc))  # 00:30 CET, the night summer time starts
    datetime.date(2026, 3, 29)
    """
    return utc_aware(moment).astimezone(LOCAL_ZONE).date()


def run_date(context: Mapping[str, Any], name: str = "run_date") -> date:
    """The business date of a DAG run: the ``run_date`` param (or ``name``), else the logical date in Brussels.

    A malformed param raises ParamError naming it."""
    params = context.get("params") or {}
    chosen = parse_date_param(name, params.get(name))
    if chosen is not None:
        return chosen
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
    """The moment a run acts as of: the ``as_of`` param (ISO, UTC when no offset), else now.

    A malformed param raises ParamError naming it (the trigger form does not check ``format: date-time``)."""
    params = context.get("params") or {}
    moment = parse_moment_param("as_of", params.get("as_of"))
    return moment if moment is not None else datetime.now(timezone.utc)
