"""The audit trail: one row per state change, written in the same transaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from include.finance.bulk import insert_many
from include.finance.models import AuditLog


def _plain(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """JSON-safe copy: amounts and dates as their exact text."""
    if values is None:
        return None
    return {
        key: str(value) if isinstance(value, (Decimal, date, datetime)) else value
        for key, value in values.items()
    }


def audit_row(
    entity: str,
    entity_id: int,
    action: str,
    actor: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """An audit_log row as a dict, for :func:`record_many`."""
    return {
        "entity": entity,
        "entity_id": entity_id,
        "action": action,
        "before": _plain(before),
        "after": _plain(after),
        "actor": actor,
        "at": at or datetime.now(timezone.utc),
    }


def record(session: Session, *args: Any, **kwargs: Any) -> None:
    """Write one audit row (same arguments as :func:`audit_row`)."""
    record_many(session, [audit_row(*args, **kwargs)])


def record_many(session: Session, rows: Iterable[dict[str, Any]]) -> None:
    """Write many audit rows in one statement."""
    insert_many(session, AuditLog.__table__, list(rows))
