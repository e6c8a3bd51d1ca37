"""The scripts in ``sql/upgrades/`` bring a database of the previous shape to what the models create today."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, inspect, select, text

from include.config import PROJECT_ROOT
from include.finance.db import transaction
from include.finance.models import BankStatement, ControlListItem

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


# 2026-12-04: invoices, transaction-cost tariffs, and the mailing's journal.
INVOICE_COLUMNS = {"debt_line": ("cost_of_reference_id", "reversed_at"),
                   "sent_document": ("invoice_id", "pdf_sha256", "recipients", "accepted_at")}


def _as_before_invoices(engine: Engine) -> None:
    """Take today's database back to its shape before 2026-12-04."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            for table, columns in INVOICE_COLUMNS.items():
                for column in columns:
                    connection.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
        connection.exec_driver_sql("DROP TABLE invoice")
        connection.exec_driver_sql("DROP TABLE transaction_cost")
    if engine.dialect.name == "postgresql":
        return
    # SQLite cannot drop a unique or foreign-key column: rebuild the two tables from today's DDL without them.
    ddl = (PROJECT_ROOT / "sql" / "schema.sqlite.sql").read_text()
    raw = engine.raw_connection()
    try:
        db = raw.driver_connection
        db.execute("PRAGMA foreign_keys = OFF")  # type: ignore[union-attr]
        for table, columns in INVOICE_COLUMNS.items():
            create = re.search(rf"CREATE TABLE {table} \(.*?\n\);", ddl, re.S).group(0)  # type: ignore[union-attr]
            kept = [line for line in create.splitlines() if not any(c in line for c in columns)]
            old_columns = [c for c in _shape(engine, table)[0] if c not in columns]
            indexes = re.findall(rf"CREATE (?:UNIQUE )?INDEX \S+ ON {table} .*?;", ddl)
            db.executescript(  # type: ignore[union-attr]
                f"ALTER TABLE {table} RENAME TO {table}_today;\n" + re.sub(r",\s*\n\)", "\n)", "\n".join(kept)) + "\n"
                f"INSERT INTO {table} SELECT {', '.join(old_columns)} FROM {table}_today;\n"
                f"DROP TABLE {table}_today;\n" + "\n".join(indexes))
    finally:
        raw.close()


def test_the_invoice_upgrade_gives_todays_tables(engine: Engine) -> None:
    today = {table: _shape(engine, table)[0] for table in ("debt_line", "sent_document", "invoice", "transaction_cost")}
    _as_before_invoices(engine)
    engine.dispose()
    assert "invoice" not in inspect(engine).get_table_names()
    assert not set(INVOICE_COLUMNS["debt_line"]) & set(_shape(engine, "debt_line")[0])
    _run_script(engine, "2026-12-04_invoices")
    engine.dispose()
    for table, columns in today.items():
        assert set(_shape(engine, table)[0]) == set(columns), table
    assert "uq_invoice_current_reference" in _shape(engine, "invoice")[1]


# 2026-12-05: control-list items from POM (no statement), resolved once, open ones indexed.
CONTROL_LIST_BEFORE = """CREATE TABLE control_list_item (
	id {serial} NOT NULL,
	statement_id INTEGER NOT NULL,
	bank_entry_id INTEGER,
	kind VARCHAR(30) NOT NULL,
	reason TEXT NOT NULL,
	action TEXT NOT NULL,
	amount NUMERIC(12, 2),
	details JSON,
	CONSTRAINT pk_control_list_item PRIMARY KEY (id),
	CONSTRAINT fk_control_list_item_statement_id_bank_statement FOREIGN KEY(statement_id) REFERENCES bank_statement (id),
	CONSTRAINT fk_control_list_item_bank_entry_id_bank_entry FOREIGN KEY(bank_entry_id) REFERENCES bank_entry (id)
)"""


def _constraints(engine: Engine, table: str) -> tuple[set[str], set[tuple[str, str, str]]]:
    """CHECK constraint names, and foreign keys as (name, column, table referred to)."""
    inspector = inspect(engine)
    return ({c["name"] for c in inspector.get_check_constraints(table)},
            {(fk["name"], fk["constrained_columns"][0], fk["referred_table"])
             for fk in inspector.get_foreign_keys(table)})


def test_the_control_list_upgrade_gives_todays_table_and_keeps_the_items(engine: Engine) -> None:
    today = _shape(engine, "control_list_item"), _constraints(engine, "control_list_item")
    imported_at = datetime(2026, 11, 25, 7, 15, tzinfo=timezone.utc)
    with engine.begin() as connection:  # the table as it was before 2026-12-05, with an item of a statement
        connection.exec_driver_sql("DROP TABLE control_list_item")
        serial = "SERIAL" if engine.dialect.name == "postgresql" else "INTEGER"
        connection.exec_driver_sql(CONTROL_LIST_BEFORE.format(serial=serial))
        connection.exec_driver_sql("CREATE INDEX ix_control_list_item_statement_id ON control_list_item (statement_id)")
        connection.execute(BankStatement.__table__.insert().values(
            id=1, identity="BE|2026-330|330", kind="camt.053", version="camt.053.001.02", account="BE",
            statement_id="2026-330", file_name="statement.xml", file_sha256="0" * 64, entries=1, new_lines=1,
            imported_at=imported_at, imported_by="test"))
        connection.exec_driver_sql(
            "INSERT INTO control_list_item (statement_id, kind, reason, action, amount) "
            "VALUES (1, 'unmatched', 'credit of 12.00', 'identify the payer', 12.00)")
    engine.dispose()
    assert "resolved_at" not in _shape(engine, "control_list_item")[0]
    _run_script(engine, "2026-12-05_control_list_resolution")
    engine.dispose()
    assert (_shape(engine, "control_list_item"), _constraints(engine, "control_list_item")) == today
    with transaction(engine, readonly=True) as session:
        (item,) = session.scalars(select(ControlListItem))
    assert (item.statement_id, item.kind, item.amount, item.source) == (
        1, "unmatched", Decimal("12.00"), "bank_statement")
    assert item.created_at.replace(tzinfo=item.created_at.tzinfo or timezone.utc) == imported_at
    assert (item.resolved_at, item.resolution, item.pom_event_id) == (None, None, None)
    with transaction(engine) as session:  # an item from POM (no statement) and a resolution fit now
        session.add(ControlListItem(source="pom", kind="overpaid", reason="r", action="a", amount=Decimal("4.50")))
        item = session.get(ControlListItem, 1)
        item.resolved_at, item.resolved_by, item.resolution = imported_at, "test", "handled"


# 2026-12-05: hub settings for approval, and the approvals of bank files.
def test_the_approval_upgrade_gives_todays_hub_and_approval_tables(engine: Engine) -> None:
    today = {table: _shape(engine, table) for table in ("bank_hub", "bank_file_approval")}
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE bank_file_approval"))
        for column in ("approval_required", "four_eyes"):
            connection.execute(text(f"ALTER TABLE bank_hub DROP COLUMN {column}"))
    engine.dispose()
    assert "bank_file_approval" not in inspect(engine).get_table_names()
    _run_script(engine, "2026-12-05_bank_file_approval")
    engine.dispose()
    for table, (columns, indexes) in today.items():
        shape = _shape(engine, table)
        assert shape[0] == columns, table  # names, types, nullability and defaults
        assert shape[1] == indexes, table
