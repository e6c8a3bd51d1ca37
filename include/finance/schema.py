"""The DDL of the shared database, generated from the models for each dialect.

``python -m include.finance.schema`` rewrites ``sql/schema.sqlite.sql`` and
``sql/schema.postgresql.sql``; ``tests/integration/test_db.py`` fails when they
are stale, so the files in ``sql/`` always say what the code creates.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateIndex, CreateTable

from include.config import PROJECT_ROOT
from include.finance.models import Base

DIALECTS = {"sqlite": sqlite.dialect(), "postgresql": postgresql.dialect()}


def ddl(dialect_name: str) -> str:
    dialect = DIALECTS[dialect_name]
    parts = [
        f"-- Innen shared database, {dialect_name} dialect.\n"
        "-- Generated from include/finance/models.py by `python -m include.finance.schema`; do not edit.\n"
    ]
    for table in Base.metadata.sorted_tables:
        parts.append(str(CreateTable(table).compile(dialect=dialect)).strip() + ";\n")
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            parts.append(str(CreateIndex(index).compile(dialect=dialect)).strip() + ";\n")
    return "\n".join(parts)


def path_for(dialect_name: str) -> Path:
    return PROJECT_ROOT / "sql" / f"schema.{dialect_name}.sql"


def main() -> None:
    for name in DIALECTS:
        path_for(name).write_text(ddl(name), encoding="utf-8")
        print(f"wrote {path_for(name)}")


if __name__ == "__main__":
    main()
