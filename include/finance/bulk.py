"""Bulk reads and writes for the nightly volumes.

Writes: identifiers reserved up front, one executemany per table.

The ORM's bulk paths cost tens of microseconds a row; Core ``executemany``
with identifiers we chose ourselves (no RETURNING round trips) keeps 200 000
collections with their references, lines and audit rows to seconds, and
still runs every value through the column's SQLAlchemy type (Money, JSON).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Dialect, Executable, Table, text
from sqlalchemy.orm import Session


CHUNK = 10_000  # rows converted and sent per executemany: the converted copy stays small


def reserve_ids(session: Session, table: Table, count: int) -> list[int]:
    """``count`` fresh primary keys for ``table``.

    PostgreSQL: taken from the table's sequence (safe beside other writers).
    SQLite: the next values after the highest id; our transactions hold the
    database's write lock from their first statement (``BEGIN IMMEDIATE``),
    so nobody else can take them in between.
    """
    if count <= 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(
            text(f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) FROM generate_series(1, :n)"),
            {"n": count},
        )
        return sorted(rows.scalars())
    start = session.execute(text(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table.name}")).scalar_one()
    return list(range(start, start + count))


def insert_many(session: Session, table: Table, rows: Iterable[Mapping[str, Any]]) -> None:
    """INSERT every row with DBAPI executemany, :data:`CHUNK` rows at a time (rows share the same keys).

    Each value still passes through its column type's bind processor for this
    dialect (Money, JSON, dates), exactly as SQLAlchemy would bind it; only
    the per-row statement bookkeeping is skipped. ``rows`` may be a generator:
    only one chunk of them is held at a time.
    """
    iterator = iter(rows)
    first = next(iterator, None)
    if first is None:
        return
    connection = session.connection()
    dialect = connection.dialect
    columns = list(first)
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO {table.name} ({', '.join(dialect.identifier_preparer.quote(c) for c in columns)}) "
        f"VALUES ({', '.join([marker] * len(columns))})"
    )
    chunk = [first]
    for row in iterator:
        chunk.append(row)
        if len(chunk) == CHUNK:
            connection.exec_driver_sql(sql, _converted(table, dialect, columns, chunk))
            chunk = []
    if chunk:
        connection.exec_driver_sql(sql, _converted(table, dialect, columns, chunk))


def _converted(table: Table, dialect: Dialect, columns: list[str], rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """Rows as DBAPI parameter tuples, each value through its column type's bind processor.

    A column often repeats one value down all rows (the run's timestamp, its
    collection date): the last conversion per column is reused for the same object.
    """
    processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns]
    values = itemgetter(*columns) if len(columns) > 1 else (lambda row: (row[columns[0]],))
    active = [(i, process) for i, process in enumerate(processors) if process is not None]
    last: list[tuple[Any, Any]] = [(None, None)] * len(columns)
    converted = []
    for row in rows:
        record = list(values(row))
        for i, process in active:
            value = record[i]
            if value is not None:
                seen, result = last[i]
                if value is not seen:
                    result = process(value)
                    last[i] = (value, result)
                record[i] = result
        converted.append(tuple(record))
    return converted


def update_by_id(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """UPDATE rows by primary key with DBAPI executemany: each mapping holds ``id`` and the columns to set."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    columns = [key for key in rows[0] if key != "id"]
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    quote = dialect.identifier_preparer.quote
    sql = f"UPDATE {table.name} SET {', '.join(f'{quote(c)} = {marker}' for c in columns)} WHERE id = {marker}"
    for start in range(0, len(rows), CHUNK):
        connection.exec_driver_sql(sql, _converted(table, dialect, [*columns, "id"], rows[start : start + CHUNK]))


def stream_rows(session: Session, statement: Executable, batch: int = 10_000) -> Iterator[tuple[Any, ...]]:
    """The rows of ``statement`` as the driver returns them, in the session's transaction.

    For the hot reads over a million rows: SQLAlchemy's per-row result
    handling costs more than the query itself. Nothing is converted: select
    plain columns (ids, text, integer cents; dates arrive as ISO text on
    SQLite) and bind plain parameters (ints, text).
    """
    for rows in stream_chunks(session, statement, batch):
        yield from rows


def stream_chunks(session: Session, statement: Executable, batch: int = 10_000) -> Iterator[list[tuple[Any, ...]]]:
    """:func:`stream_rows` a list of up to ``batch`` rows at a time (no generator step per row on a hot path)."""
    connection = session.connection()
    compiled = statement.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    if compiled.positional:
        arguments: Any = tuple(params[name] for name in compiled.positiontup or ())
    else:
        arguments = params
    cursor = connection.connection.cursor()
    try:
        cursor.execute(str(compiled), arguments)
        while rows := cursor.fetchmany(batch):
            yield rows
    finally:
        cursor.close()
