"""The audit trail: one row per state change, written in the same transaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.orm import Session

from include.finance.bulk import insert_many
from include.finance.models import AuditLog


def audit_row(
    entity: str,
    entity_id: int,
    action: str,
    actor: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """An audit_log row as a dict, for :func:`record_many`.

    ``before`` and ``after`` may hold Decimals and dates: the database's JSON
    serializer writes them as their exact text.
    """
    return {
        "entity": entity,
        "entity_id": entity_id,
        "action": action,
        "before": before,
        "after": after,
        "actor": actor,
        "at": at or datetime.now(timezone.utc),
    }


def record(session: Session, *args: Any, **kwargs: Any) -> None:
    """Write one audit row (same arguments as :func:`audit_row`)."""
    record_many(session, [audit_row(*args, **kwargs)])


def record_many(session: Session, rows: Iterable[dict[str, Any]]) -> None:
    """Write many audit rows with executemany; ``rows`` may be a generator (held a chunk at a time)."""
    insert_many(session, AuditLog.__table__, rows)
