"""Loading a benchmark's synthetic data: Core executemany in batches, so that a million rows never sit in memory."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

INSERT_BATCH = 20_000


def insert_all(connection: Any, table: Any, rows: Iterable[dict[str, Any]], batch_size: int = INSERT_BATCH) -> int:
    """Insert ``rows`` into ``table`` ``batch_size`` at a time; returns how many."""
    from sqlalchemy import insert

    batch: list[dict[str, Any]] = []
    count = 0
    for row in rows:
        batch.append(row)
        if len(batch) == batch_size:
            connection.execute(insert(table), batch)
            count += len(batch)
            batch = []
    if batch:
        connection.execute(insert(table), batch)
        count += len(batch)
    return count
