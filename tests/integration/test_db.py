"""The database layer: configuration errors, money round trips, SQLite settings, generated DDL."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text

from include.errors import ConfigError
from include.finance.counters import reserve
from include.finance.db import get_engine, transaction
from include.finance.models import DebtLine
from include.finance.schema import DIALECTS, ddl, path_for
from tests.factories import add_debt, make_institution, make_user


@pytest.mark.parametrize(
    "url",
    ["not a url", "mysql+nosuchdriver://x@localhost/db", "postgresql+psycopg://nobody@127.0.0.1:1/none"],
)
def test_a_wrong_database_url_names_the_setting(url: str) -> None:
    with pytest.raises(ConfigError) as error:
        get_engine(url)
    assert str(error.value).startswith("INNEN_DB_URL=")
    assert "Traceback" not in str(error.value)


def test_a_password_in_a_wrong_url_is_not_shown() -> None:
    with pytest.raises(ConfigError) as error:
        get_engine("postgresql+psycopg://finance:s3cret@127.0.0.1:1/innen")
    assert "s3cret" not in str(error.value)


def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_url: str) -> None:
    with get_engine(sqlite_url).connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() >= 30000


@pytest.mark.parametrize("amount", ["0.01", "0.10", "12.34", "9999999999.99", "1234567890.05", "0.30"])
def test_money_round_trips_exactly(engine, amount: str) -> None:
    with transaction(engine) as session:
        inst = make_institution(session)
        add_debt(session, inst, make_user(session), "LID", amount)
    with transaction(engine, readonly=True) as session:
        stored = session.scalars(select(DebtLine.amount)).one()
    assert isinstance(stored, Decimal) and stored == Decimal(amount) and str(stored) == amount


def test_sums_of_many_cents_stay_exact(engine) -> None:
    with transaction(engine) as session:
        inst = make_institution(session)
        user = make_user(session)
        for _ in range(300):
            add_debt(session, inst, user, "LID", "0.10")
    with transaction(engine, readonly=True) as session:
        total = session.scalar(select(func.sum(DebtLine.amount)))
    assert total == Decimal("30.00")


def test_floats_are_refused_as_money(engine) -> None:
    with transaction(engine) as session:
        inst = make_institution(session)
        user = make_user(session)
        with pytest.raises(Exception, match="float"):
            session.add(DebtLine(financial_system_id=inst.system.id, end_user_id=user.id, transaction_code="X",
                                 amount=0.1, open_amount=0.1, created_on=date(2026, 1, 1)))
            session.flush()


def test_counters_hand_out_consecutive_blocks(engine) -> None:
    with transaction(engine) as session:
        assert reserve(session, "fp:BIB", 3) == 1
        assert reserve(session, "fp:BIB") == 4
        assert reserve(session, "other", 2) == 1


def test_timestamps_keep_their_moment(engine) -> None:
    from include.finance.models import AuditLog

    moment = datetime(2026, 11, 20, 5, 0, 3, tzinfo=timezone.utc)
    with transaction(engine) as session:
        session.add(AuditLog(entity="x", entity_id=1, action="test", actor="t", at=moment))
    with transaction(engine, readonly=True) as session:
        stored = session.scalars(select(AuditLog.at)).one()
    assert stored.replace(tzinfo=timezone.utc) == moment or stored == moment


@pytest.mark.parametrize("moment", [
    datetime(2026, 11, 20, 5, 0, 3, tzinfo=ZoneInfo("Europe/Brussels")),  # an as_of param given in Brussels time
    datetime(2026, 3, 29, 3, 30, tzinfo=ZoneInfo("Europe/Brussels")),  # summer time, UTC+2
    datetime(2026, 11, 25, 7, 0, tzinfo=timezone(timedelta(hours=1))),  # a bank's CreDtTm with its offset
])
def test_a_moment_with_an_offset_keeps_its_instant_and_compares_as_it(engine, moment: datetime) -> None:
    # SQLite keeps no offset: the moment must be stored in UTC, or it reads back (and compares) hours off.
    from include.finance.models import AuditLog

    with transaction(engine) as session:
        session.add(AuditLog(entity="x", entity_id=1, action="test", actor="t", at=moment))
    with transaction(engine, readonly=True) as session:
        stored = session.scalars(select(AuditLog.at)).one()
        later = session.scalar(select(func.count()).select_from(AuditLog)
                               .where(AuditLog.at > moment.astimezone(timezone.utc) - timedelta(minutes=1)))
        earlier = session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.at < moment))
    assert (stored if stored.tzinfo else stored.replace(tzinfo=timezone.utc)) == moment
    assert (later, earlier) == (1, 0)


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_the_ddl_in_sql_is_current(dialect: str) -> None:
    assert path_for(dialect).read_text(encoding="utf-8") == ddl(dialect), "run: python -m include.finance.schema"


def test_the_contract_columns_exist() -> None:
    from include.finance.models import Base

    contract = {
        "payment_reference": {"id", "loi", "status", "amount", "open_amount", "reference_number", "invoice_number",
                              "due_date", "end_user_id"},
        "mandate": {"id", "loi", "active"},
        "collection_run": {"id", "loi", "hub_id", "collection_date", "status", "file_path", "file_sha256"},
        "collection": {"id", "run_id", "mandate_id", "payment_reference_id", "sequence_type", "amount",
                       "end_to_end_id", "status"},
        "debt_line": {"id", "end_user_id", "transaction_code", "amount", "open_amount"},
        "audit_log": {"entity", "entity_id", "action", "before", "after", "actor", "at"},
    }
    for table, columns in contract.items():
        assert columns <= set(Base.metadata.tables[table].columns.keys()), table
