"""Housekeeping on a real database and a real var/: what is past its hub's keep_days goes, audited, once.

Two hubs: AAA keeps 365 days (the seed's default), BBB 730. Each has a run
collected, and a statement imported, 417 days before the housekeeping day;
AAA also has a recent run and statement. Files of no single hub (mandate
check, POM reconciliation, a quarantined file, a stray bank file) go after
the smallest keep_days, 365.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select, update

from include import housekeeping
from include.finance.db import transaction
from include.finance.models import (
    AuditLog,
    BankEntry,
    BankStatement,
    Collection,
    CollectionRun,
    ControlListItem,
    Mandate,
)
from include.housekeeping import COLLECTION_FIELDS, ENTRY_FIELDS, folder_name, housekeep
from include.sepa.export import export_collection_run
from include.sepa.mandate_execution import execute_mandates
from include.sepa.statement_files import import_statement_file, quarantine
from sandbox.camt_writer import Entry, Tx, write_camt053
from tests.dag_bag import parsed_dag
from tests.factories import add_debt, make_institution, make_mandate, make_user

TODAY = date(2026, 3, 1)
OLD_RUN = date(2025, 1, 6)  # collections on Wednesday 8 January 2025: 417 days before TODAY
NEW_RUN = date(2025, 12, 6)  # collections on Monday 8 December 2025
OLD = datetime(2025, 1, 9, 10, tzinfo=timezone.utc)  # 416 days before TODAY: past 365, within 730
NEW = datetime(2025, 12, 9, 10, tzinfo=timezone.utc)
PAYER_IBAN = {"AAA-old": "BE71096123456769", "AAA-new": "BE62510007547061", "BBB-old": "BE43068999999501"}


@dataclass
class World:
    engine: object
    var: Path
    runs: dict[str, str]  # "AAA-old" -> run loi
    mandates: dict[str, int]  # "m1" -> mandate id
    statements: dict[str, int]  # "AAA-old" -> bank_statement id
    gone: set[Path]  # what a real run removes
    kept: set[Path]


def _old(*paths: Path, moment: datetime = OLD) -> None:
    """Set the modification time of ``paths`` (and everything in a folder) to ``moment``."""
    stamp = moment.timestamp()
    for path in paths:
        for inner in [path, *(path.rglob("*") if path.is_dir() else [])]:
            os.utime(inner, (stamp, stamp))


def _file(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _import(engine, var: Path, account: str, key: str, seq: int, at: datetime) -> int:  # type: ignore[no-untyped-def]
    day = at.date()
    path = var / "inbox" / "camt053" / f"{key}.xml"
    path.parent.mkdir(parents=True, exist_ok=True)
    credit = Entry(True, day, (Tx(Decimal("12.34"), counterparty_name=f"Payer {key}", counterparty_iban=PAYER_IBAN[key],
                                  counterparty_bic="GEBABEBB", unstructured=f"lidgeld {key}"),))
    write_camt053(path, account_iban=account, statement_id=f"ST-{key}", electronic_seq=seq,
                  created_at=datetime.combine(day, time(6), tzinfo=timezone.utc), from_date=day, to_date=day,
                  opening_balance=Decimal("100.00"), entries=[credit])
    import_statement_file(path, "test", engine=engine)
    with transaction(engine) as session:
        statement_id = session.scalars(select(BankStatement.id).where(BankStatement.statement_id == f"ST-{key}")).one()
        session.execute(update(BankStatement).where(BankStatement.id == statement_id).values(imported_at=at))
    return statement_id


@pytest.fixture
def world(engine, var_dir: Path) -> World:  # type: ignore[no-untyped-def]
    mandates: dict[str, int] = {}
    with transaction(engine) as session:
        aaa = make_institution(session, "AAA")
        bbb = make_institution(session, "BBB", keep_days=730)
        users = {name: make_user(session, first=name) for name in ("m1", "m2", "m3")}
        for name, inst in (("m1", aaa), ("m2", aaa), ("m3", bbb)):
            mandates[name] = make_mandate(session, inst, users[name], first=date(2025, 1, 8)).id
            add_debt(session, inst, users[name], "LID", "20.00")
        execute_mandates(session, OLD_RUN, "test")
        add_debt(session, aaa, users["m1"], "LID", "30.00")  # only m1 is collected again
        execute_mandates(session, NEW_RUN, "test")
        runs = {
            f"{loi.split(':')[1]}-{'old' if run_date == OLD_RUN else 'new'}": loi
            for loi, run_date in session.execute(select(CollectionRun.loi, CollectionRun.run_date))
        }
        accounts = {"AAA": aaa.hub.creditor_iban, "BBB": bbb.hub.creditor_iban}
    assert sorted(runs) == ["AAA-new", "AAA-old", "BBB-old"]
    files = {key: Path(export_collection_run(loi, "test", engine=engine)["file_path"]) for key, loi in runs.items()}

    statements = {
        "AAA-old": _import(engine, var_dir, accounts["AAA"], "AAA-old", 1, OLD),
        "AAA-new": _import(engine, var_dir, accounts["AAA"], "AAA-new", 2, NEW),
        "BBB-old": _import(engine, var_dir, accounts["BBB"], "BBB-old", 1, OLD),
    }
    control_lists = {key: next((var_dir / "reports" / "camt053").glob(f"*_ST-{key}_{statements[key]}"))
                     for key in statements}
    # Named after the hub (AAA and BBB are hubs' accounts), never after the account in full.
    assert sorted(path.name.split("_", 1)[0] for path in control_lists.values()) == ["HUB-AAA", "HUB-AAA", "HUB-BBB"]
    archived = {key: var_dir / "archive" / f"{key}.xml" for key in statements}

    refused_old = quarantine(_file(var_dir / "inbox" / "camt053" / "refused-old.xml", "not xml"), "not XML")
    refused_new = quarantine(_file(var_dir / "inbox" / "camt053" / "refused-new.xml", "not xml"), "not XML")
    _old(refused_old, refused_old.with_name(refused_old.name + ".reason.txt"))
    stray = _file(var_dir / "outbox" / "stray.xml")
    _old(stray)
    reports = var_dir / "reports"
    check_old = _file(reports / "mandate_check" / "2025-01-06" / "active-ok.csv").parent
    check_new = _file(reports / "mandate_check" / "2025-12-06" / "active-ok.csv").parent
    pom_old = _file(reports / "pom_reconciliation" / "2025-01-09" / "pom_reconciliation.csv").parent
    confirm = {key: _file(reports / "collection_confirm" / folder_name(loi) / "booked.csv").parent
               for key, loi in runs.items()}
    unknown = _file(reports / "camt053" / f"{accounts['AAA']}_LOST-1" / "index.html").parent  # named before masking
    # A list whose statement is gone: its hub from the code in its name (BBB keeps 730 days, the smallest is 365).
    lost_bbb = _file(reports / "camt053" / "HUB-BBB_LOST-2_999" / "index.html").parent
    _old(unknown, lost_bbb)

    gone = {
        files["AAA-old"], files["AAA-old"].with_name(files["AAA-old"].name + ".sha256"), stray,
        archived["AAA-old"], control_lists["AAA-old"], confirm["AAA-old"],
        refused_old, refused_old.with_name(refused_old.name + ".reason.txt"), check_old, pom_old, unknown,
    }
    kept = {
        files["AAA-new"], files["BBB-old"], archived["AAA-new"], archived["BBB-old"], control_lists["AAA-new"],
        control_lists["BBB-old"], confirm["AAA-new"], confirm["BBB-old"], refused_new, check_new, lost_bbb,
    }
    assert all(path.exists() for path in gone | kept)
    with transaction(engine) as session:  # each unmatched credit handled (an open one keeps its payer's data)
        session.execute(update(ControlListItem).values(resolved_at=NEW, resolved_by="finance", resolution="handled",
                                                       resolution_note="refunded"))
    return World(engine, var_dir, runs, mandates, statements, gone, kept)


def _entries(world: World, key: str) -> list[BankEntry]:
    with transaction(world.engine, readonly=True) as session:  # type: ignore[arg-type]
        return session.scalars(select(BankEntry).where(BankEntry.statement_id == world.statements[key])).all()


def _collections(world: World, key: str) -> dict[int, Collection]:
    with transaction(world.engine, readonly=True) as session:  # type: ignore[arg-type]
        run = session.scalars(select(CollectionRun.id).where(CollectionRun.loi == world.runs[key])).one()
        return {c.mandate_id: c for c in session.scalars(select(Collection).where(Collection.run_id == run))}


def _audits(world: World, *entities: str) -> list[AuditLog]:
    with transaction(world.engine, readonly=True) as session:  # type: ignore[arg-type]
        return session.scalars(select(AuditLog).where(AuditLog.entity.in_(entities)).order_by(AuditLog.id)).all()


def _report(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=";"))


def test_a_dry_run_lists_what_would_go_and_changes_nothing(world: World) -> None:
    before = [(e.counterparty_iban, e.remittance) for key in world.statements for e in _entries(world, key)]
    result = housekeep(TODAY, "test", dry_run=True, engine=world.engine)  # type: ignore[arg-type]

    assert {item.path for item in result.files} == world.gone
    assert all(path.exists() for path in world.gone | world.kept)
    assert [(e.counterparty_iban, e.remittance) for key in world.statements for e in _entries(world, key)] == before
    assert _audits(world, "file", "bank_entry") == []
    assert not [a for a in _audits(world, "collection") if a.action == "personal_data_removed"]
    rows = _report(world.var / "reports" / "housekeeping" / TODAY.isoformat() / "dry-run.csv")
    assert {Path(r["item"]) for r in rows if r["action"] == "would be removed"} == world.gone
    assert {(r["what"], r["item"], r["hub"]) for r in rows if "cleared" in r["action"]} == {
        ("bank statement", _identity(world, "AAA-old"), "HUB-AAA"),
        ("collection run", world.runs["AAA-old"], "HUB-AAA"),
    }
    assert (world.var / "reports" / "housekeeping" / TODAY.isoformat() / "dry-run.html").is_file()


def _identity(world: World, key: str) -> str:
    with transaction(world.engine, readonly=True) as session:  # type: ignore[arg-type]
        return session.get(BankStatement, world.statements[key]).identity


def test_files_past_their_hubs_keep_days_go_and_the_rest_stays(world: World) -> None:
    result = housekeep(TODAY, "test", dry_run=False, engine=world.engine)  # type: ignore[arg-type]

    assert result.errors == []
    assert {item.path for item in result.files} == world.gone
    assert not any(path.exists() for path in world.gone)
    assert all(path.exists() for path in world.kept)
    by_path = {item.path: item.claim for item in result.files}
    assert by_path[world.var / "outbox" / "stray.xml"].hub is None  # no run names it: the smallest keep_days
    assert {claim.keep_days for claim in by_path.values()} == {365}
    # Each removed path is audited, with the path in `after`.
    audits = _audits(world, "file")
    assert {(a.entity_id, a.action) for a in audits} == {(0, "removed")}
    assert sorted(a.after["path"] for a in audits) == sorted(str(p) for p in world.gone)
    report = world.var / "reports" / "housekeeping" / TODAY.isoformat() / "removed.csv"
    assert {Path(r["item"]) for r in _report(report) if r["action"] == "removed"} == world.gone


def test_old_rows_keep_their_figures_and_lose_the_payers_name_and_account(world: World) -> None:
    old_entries = _entries(world, "AAA-old")
    figures = [(e.amount, e.booking_date, e.reference, e.end_to_end_id, e.outcome) for e in old_entries]
    housekeep(TODAY, "test", dry_run=False, engine=world.engine)  # type: ignore[arg-type]

    for entry in _entries(world, "AAA-old"):
        assert all(getattr(entry, name) is None for name in ENTRY_FIELDS)
    after = _entries(world, "AAA-old")
    assert [(e.amount, e.booking_date, e.reference, e.end_to_end_id, e.outcome) for e in after] == figures
    for key in ("AAA-new", "BBB-old"):  # recent, or BBB's 730 days not over
        payers = [(e.counterparty_name, e.counterparty_iban) for e in _entries(world, key)]
        assert payers == [(f"Payer {key}", PAYER_IBAN[key])]

    old = _collections(world, "AAA-old")
    m1, m2 = old[world.mandates["m1"]], old[world.mandates["m2"]]
    assert all(getattr(m1, name) is None for name in COLLECTION_FIELDS)  # m1 was collected again since
    assert m1.amount == Decimal("20.00") and m1.end_to_end_id and m1.mandate_reference and m1.status == "exported"
    assert m2.debtor_iban and m2.debtor_bic  # m2's latest collection: the next one compares its account with it
    assert _collections(world, "AAA-new")[world.mandates["m1"]].debtor_iban
    assert _collections(world, "BBB-old")[world.mandates["m3"]].debtor_iban
    with transaction(world.engine, readonly=True) as session:  # type: ignore[arg-type]
        assert all(session.scalars(select(Mandate.debtor_iban)))  # mandates are never touched

    audits = _audits(world, "bank_entry", "collection")
    cleared = [a for a in audits if a.action == "personal_data_removed"]
    assert sorted((a.entity, a.entity_id) for a in cleared) == sorted(
        [("bank_entry", e.id) for e in old_entries] + [("collection", m1.id)]
    )
    for audit in cleared:
        assert audit.after["keep_days"] == 365 and audit.after["hub"] == "HUB-AAA" and audit.after["cleared"]
        assert PAYER_IBAN["AAA-old"] not in str(audit.after) and audit.before is None  # the values are not kept


def test_an_entry_whose_control_list_item_is_open_keeps_the_payers_name_and_account(world: World) -> None:
    (entry,) = _entries(world, "AAA-old")
    with transaction(world.engine) as session:  # type: ignore[arg-type]
        item = session.scalars(select(ControlListItem).where(ControlListItem.bank_entry_id == entry.id)).one()
        item.resolved_at = item.resolved_by = item.resolution = item.resolution_note = None
        item_id = item.id
    housekeep(TODAY, "test", dry_run=False, engine=world.engine)  # type: ignore[arg-type]
    (kept,) = _entries(world, "AAA-old")  # finance still has to book or refund it, by the payer's name and account
    assert (kept.counterparty_name, kept.counterparty_iban, kept.remittance) == (
        "Payer AAA-old", PAYER_IBAN["AAA-old"], "lidgeld AAA-old")
    assert not [a for a in _audits(world, "bank_entry") if a.entity_id == entry.id]

    with transaction(world.engine) as session:  # type: ignore[arg-type]
        item = session.get(ControlListItem, item_id)
        item.resolved_at, item.resolved_by, item.resolution, item.resolution_note = NEW, "finance", "handled", "ok"
    housekeep(TODAY, "test", dry_run=False, engine=world.engine)  # type: ignore[arg-type]
    (cleared,) = _entries(world, "AAA-old")
    assert all(getattr(cleared, name) is None for name in ENTRY_FIELDS)


def test_the_payers_name_leaves_the_reason_of_an_old_entrys_control_list_item(world: World) -> None:
    def reasons(key: str) -> list[str]:
        with transaction(world.engine, readonly=True) as session:  # type: ignore[arg-type]
            return list(session.scalars(select(ControlListItem.reason).join(
                BankEntry, BankEntry.id == ControlListItem.bank_entry_id).where(
                BankEntry.statement_id == world.statements[key])))

    assert all("from Payer AAA-old" in reason for reason in reasons("AAA-old")) and reasons("AAA-old")
    housekeep(TODAY, "test", dry_run=False, engine=world.engine)  # type: ignore[arg-type]
    after = reasons("AAA-old")
    assert after and all("Payer AAA-old" not in r and "from (name removed)" in r and "12.34" in r for r in after)
    assert all("from Payer BBB-old" in reason for reason in reasons("BBB-old"))  # BBB keeps 730 days
    cleared = [a for a in _audits(world, "control_list_item") if a.action == "personal_data_removed"]
    assert len(cleared) == len(after) and all("Payer" not in str(a.after) for a in cleared)


def test_a_rerun_finds_nothing_more(world: World) -> None:
    first = housekeep(TODAY, "test", dry_run=False, engine=world.engine)  # type: ignore[arg-type]
    audits = len(_audits(world, "file", "bank_entry", "collection"))
    report = world.var / "reports" / "housekeeping" / TODAY.isoformat() / "removed.csv"
    rows = _report(report)

    again = housekeep(TODAY, "test", dry_run=False, engine=world.engine)  # type: ignore[arg-type]
    assert (again.files, again.rows, again.errors) == ([], [], [])
    assert len(_audits(world, "file", "bank_entry", "collection")) == audits
    assert _report(report) == rows and len(rows) == len(first.files) + len(first.rows)  # the day's report stays
    assert housekeep(TODAY, "test", dry_run=True, engine=world.engine).files == []  # type: ignore[arg-type]


def test_a_later_day_takes_the_longer_keeping_hub_too(world: World) -> None:
    housekeep(TODAY, "test", dry_run=False, engine=world.engine)  # type: ignore[arg-type]
    bbb_file = next(path for path in world.kept if path.name.startswith("HUB-BBB_") and path.suffix == ".xml")
    # BBB's run (collected 8 January 2025) and statement (imported 9 January 2025) pass 730 days on 10 January 2027.
    early = housekeep(date(2027, 1, 8), "test", dry_run=True, engine=world.engine)  # type: ignore[arg-type]
    assert "HUB-BBB" not in {item.claim.hub for item in early.files} | {item.claim.hub for item in early.rows}
    later = housekeep(date(2027, 1, 10), "test", dry_run=False, engine=world.engine)  # type: ignore[arg-type]
    assert bbb_file in {item.path for item in later.files} and not bbb_file.exists()
    assert [(e.counterparty_name, e.counterparty_iban) for e in _entries(world, "BBB-old")] == [(None, None)]
    assert _collections(world, "BBB-old")[world.mandates["m3"]].debtor_iban  # m3's latest collection
    assert _collections(world, "AAA-new")[world.mandates["m1"]].debtor_iban  # m1's latest collection


def test_the_dag_runs_housekeeping_as_a_dry_run_by_default(sqlite_url: str, var_dir: Path,
                                                            monkeypatch: pytest.MonkeyPatch, airflow_db: None) -> None:
    monkeypatch.setenv("INNEN_DB_URL", sqlite_url)
    stale = _file(var_dir / "reports" / "mandate_check" / "2020-01-01" / "index.html").parent
    run = parsed_dag("housekeeping").test(run_conf={"run_date": "2026-03-01"})
    assert str(run.state).endswith("success")
    assert stale.exists() and (var_dir / "reports" / "housekeeping" / "2026-03-01" / "dry-run.html").is_file()
    run = parsed_dag("housekeeping").test(run_conf={"run_date": "2026-03-01", "dry_run": False})
    assert str(run.state).endswith("success") and not stale.exists()


def test_a_real_run_may_not_count_back_from_a_day_after_today(sqlite_url: str, var_dir: Path,
                                                               monkeypatch: pytest.MonkeyPatch, airflow_db: None) -> None:
    # From 2099 everything would be past its keep_days: bank files, statements, payers' names, for good.
    monkeypatch.setenv("INNEN_DB_URL", sqlite_url)
    recent = _file(var_dir / "reports" / "mandate_check" / date.today().isoformat() / "index.html")
    run = parsed_dag("housekeeping").test(run_conf={"run_date": "2099-12-31", "dry_run": False})
    assert str(run.state).endswith("failed") and recent.exists()
    assert not (var_dir / "reports" / "housekeeping" / "2099-12-31").exists()
    run = parsed_dag("housekeeping").test(run_conf={"run_date": "2099-12-31"})  # looking ahead, dry
    assert str(run.state).endswith("success") and recent.exists()
    assert (var_dir / "reports" / "housekeeping" / "2099-12-31" / "dry-run.html").is_file()


def test_a_path_that_cannot_be_removed_is_reported_with_its_account_masked(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """The errors are returned by the DAG's task and logged: a bank's file name holds the account."""
    stuck = _file(world.var / "archive" / "CODA_BE68539007547034_20250109.xml")
    _old(stuck)
    removing = housekeeping.remove

    def remove(path):  # type: ignore[no-untyped-def]
        if Path(str(path)).name == stuck.name:
            raise PermissionError(13, "Permission denied", str(path))
        return removing(path)

    monkeypatch.setattr(housekeeping, "remove", remove)
    with caplog.at_level("WARNING", logger="include.housekeeping"):
        result = housekeep(TODAY, "test", dry_run=False, engine=world.engine)  # type: ignore[arg-type]
    assert result.errors == [f"{world.var / 'archive' / 'CODA_BE68 **** **** 7034_20250109.xml'}: Permission denied"]
    assert stuck.exists() and "7034" in caplog.text
    assert "539007547034" not in caplog.text + str(result.summary())
