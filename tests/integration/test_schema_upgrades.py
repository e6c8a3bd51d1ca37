"""The scripts in ``sql/upgrades/`` bring a database of the previous shape to what the models create today."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, inspect

from include.config import PROJECT_ROOT

UPGRADES = PROJECT_ROOT / "sql" / "upgrades"
# 2026-11-22: what a collection told the banks, and the mandate amendment it carried.
COLLECTION_COLUMNS = (
    "mandate_reference", "debtor_iban", "debtor_bic", "creditor_id", "original_mandate_reference",
    "original_creditor_id", "original_debtor_iban", "debtor_agent_changed",
)


def _shape(engine: Engine, table: str) -> tuple[dict[str, Any], set[str]]:
    """Columns (type, nullable, default) by name, and index names, as the database itself reports them."""
    inspector = inspect(engine)
    columns = {c["name"]: (str(c["type"]), c["nullable"], str(c.get("default"))) for c in inspector.get_columns(table)}
    return columns, {index["name"] for index in inspector.get_indexes(table)}


def _run_script(engine: Engine, name: str) -> None:
    script = (UPGRADES / f"{name}.{engine.dialect.name}.sql").read_text()
    raw = engine.raw_connection()
    try:
        if engine.dialect.name == "sqlite":
            raw.driver_connection.executescript(script)  # type: ignore[union-attr]
        else:
            raw.driver_connection.autocommit = True  # type: ignore[union-attr]
            raw.driver_connection.execute(script)  # type: ignore[union-attr]
    finally:
        raw.close()


def test_the_collection_upgrade_gives_todays_collection_table(engine: Engine) -> None:
    today = _shape(engine, "collection")
    with engine.begin() as connection:  # the table as it was before 2026-11-22
        connection.exec_driver_sql("DROP INDEX ix_collection_mandate_id")
        for column in COLLECTION_COLUMNS:
            connection.exec_driver_sql(f"ALTER TABLE collection DROP COLUMN {column}")
    engine.dispose()
    before = _shape(engine, "collection")
    assert not set(COLLECTION_COLUMNS) & set(before[0]) and "ix_collection_mandate_id" not in before[1]
    _run_script(engine, "2026-11-22_collection_told_and_amendment")
    engine.dispose()
    assert _shape(engine, "collection") == today


def test_every_upgrade_exists_for_both_databases() -> None:
    names = {path.name.rsplit(".", 2)[0] for path in UPGRADES.glob("*.sql")}
    assert names
    for name in names:
        assert (UPGRADES / f"{name}.sqlite.sql").is_file() and (UPGRADES / f"{name}.postgresql.sql").is_file(), name
