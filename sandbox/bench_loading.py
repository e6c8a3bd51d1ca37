"""Loading a benchmark's synthetic data: Core executemany in batches (or PostgreSQL's COPY), so that a million rows
never sit in memory."""

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


def copy_all(connection: Any, table: Any, rows: Iterable[dict[str, Any]]) -> int:
    """PostgreSQL's COPY of ``rows`` (dicts with the same keys) into ``table``: a million rows in seconds, not
    minutes. Column defaults are not applied: a row names every column that may not be empty."""
    from itertools import chain

    iterator = iter(rows)
    first = next(iterator, None)
    if first is None:
        return 0
    columns = list(first)
    count = 0
    with connection.connection.driver_connection.cursor() as cursor:
        with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in chain((first,), iterator):
                copy.write_row([row[column] for column in columns])
                count += 1
    return count
