"""Retention (seed 2.5.3 ``keepdays``): files and personal data past their hub's keep_days go, each removal audited.

A bank hub's ``keep_days`` (empty, or not a positive number: the seed's 365)
is how long the lists and bank files belonging to it are kept. Something made
on day *d* is kept through *d* + keep_days and goes from the day after.

**Files** (what Innen wrote or filed; the inbox and the invoices are never touched), each with its hub and the
day it counts from:

* bank files ``outbox/<file>`` and their ``.sha256``: the run that names the file (``collection_run.file_path``),
  from its collection date;
* archived statements ``archive/<file>``: the statements imported from it (``bank_statement.file_name``, or that
  name with the checksum added when it was taken), from the day they were imported;
* control lists ``reports/camt053/<hub>_<statement>_<id>/`` (:func:`include.sepa.control_list.folder_name`):
  that statement, else the hub its name starts with (a hub's code, or, in folders named before the account was
  masked, ``<account>_<statement>``, the hub of that ``bank_hub.creditor_iban``) from the folder's modification;
* ``reports/collection_confirm/<run>/``, ``reports/payment_reference_delete/<run>/``: the run, from its
  collection date;
* quarantined files and their ``.reason.txt``: the hub of a statement of that name, if any, from the day they
  were quarantined (the ``.reason.txt``'s modification; a move keeps the bank file's own time);
* other report folders (``mandate_check/<date>``, ``pom_reconciliation/<date>``, ``invoice_run/<day>``,
  ``pom_delivery/<batch>``, ``housekeeping/<date>``): no single hub, from the date in their name;
* archived and quarantined POM delivery reports: no single hub, from ``delivery_report.analysed_at``.

A file of several hubs (one statement file for two accounts) stays until the
last of them lets it go. A file of no single hub (the mandate check covers
every hub, POM's and the invoice run's reports cover financial systems) is kept
for the smallest keep_days of all hubs. A file's modification time is used only
where the database and the name say nothing.

**Database rows** of statements imported, and collection runs collected, more
than their hub's keep_days ago keep their figures (amounts, dates, references,
statuses, end-to-end ids: the accounting record, which Belgian bookkeeping and
VAT rules want kept for years, up to ten; Innen never deletes it) but lose the
payer's name and account:
``bank_entry.counterparty_name``, ``counterparty_iban``, ``counterparty_bic``,
``remittance`` and ``collection.debtor_iban``, ``debtor_bic``,
``original_debtor_iban`` become NULL, and the payer's name leaves the reason
of the entry's control-list items (``control_list_item.reason``: "credit of …
from <name>"). Not touched: an entry on the control list while its item is
unresolved (finance needs the payer's name and account to book or refund it;
a run after the item is resolved clears it); mandates (an active mandate
needs its IBAN); each mandate's latest collection (the next collection compares
its account with that one to announce a mandate amendment, see
:mod:`include.sepa.amendments`); runs never sent to the bank (``ready``,
``failed``), which may still be exported.

Every removed path writes an audit row (entity ``file``, id 0, the path in
``after``), every cleared row one for its entity and id naming the cleared
columns but, deliberately, not their values. A dry run changes nothing. Both
write ``reports/housekeeping/<day>/dry-run.{csv,html}`` or
``removed.{csv,html}`` (a rerun the same day adds what it removed; one that
finds nothing leaves the day's report as it is). A rerun finds nothing more.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import PurePath
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from include.config import archive_dir, outbox_dir, quarantine_dir, reports_dir
from include.files import everything_in, modified_at, remove
from include.finance.audit import audit_row, record, record_many
from include.finance.db import get_engine, transaction
from include.finance.models import (
    BankEntry,
    BankHub,
    BankStatement,
    Collection,
    CollectionRun,
    ControlListItem,
    DeliveryReport,
)
from include.finance.statuses import UNSENT_RUN, CollectionStatus
from include.pom.delivery_files import INBOX as POM_REPORTS
from include.reports import Table, write_csv, write_html
from include.runtime import LOCAL_ZONE
from include.sepa.control_list import folder_name as control_list_folder
from include.sepa.identifiers import mask_ibans_in
from include.storage import Location

log = logging.getLogger(__name__)

DEFAULT_KEEP_DAYS = 365  # seed 2.5.3: "Empty=365"
ENTRY_FIELDS = ("counterparty_name", "counterparty_iban", "counterparty_bic", "remittance")
COLLECTION_FIELDS = ("debtor_iban", "debtor_bic", "original_debtor_iban")
UNSENT_RUN_STATUSES = UNSENT_RUN
RUN_REPORT_KINDS = ("collection_confirm", "payment_reference_delete")  # report folders named after a run
REASON_SUFFIX = ".reason.txt"
REMOVED_NAME = "(name removed)"  # in a control-list item's reason, where the payer's name was
CHECKSUM_SUFFIX = ".sha256"
CHUNK = 500
HEADER = ("what", "item", "hub", "dated", "dated_by", "keep_days", "kept_until", "action")


# --- the rules (pure) ----------------------------------------------------------------------------


def keep_days_of(value: int | None) -> int:
    """A hub's keep_days: empty (or not a positive number, which would remove everything at once) is 365.

    >>> keep_days_of(None), keep_days_of(0), keep_days_of(730)
    (365, 365, 730)
    """
    return value if value is not None and value > 0 else DEFAULT_KEEP_DAYS


def expired(made_on: date, keep_days: int, today: date) -> bool:
    """Older than ``keep_days``: kept for ``keep_days`` whole days after ``made_on``, gone from the day after.

    >>> expired(date(2025, 1, 1), 365, date(2026, 1, 1)), expired(date(2025, 1, 1), 365, date(2026, 1, 2))
    (False, True)
    """
    return (today - made_on).days > keep_days


def shared_keep_days(values: Iterable[int | None]) -> int:
    """keep_days for files of no single hub: the smallest of all hubs' (365 when there is no hub).

    >>> shared_keep_days([730, None, 400]), shared_keep_days([])
    (365, 365)
    """
    return min((keep_days_of(value) for value in values), default=DEFAULT_KEEP_DAYS)


@dataclass(frozen=True)
class Claim:
    """Why a file or row is kept: a hub (None: no single hub), its keep_days, the day it counts from and how we know."""

    hub: str | None
    keep_days: int
    made_on: date
    dated_by: str

    @property
    def kept_until(self) -> date:
        return self.made_on + timedelta(days=self.keep_days)

    def expired(self, today: date) -> bool:
        return expired(self.made_on, self.keep_days, today)


def decisive(claims: Sequence[Claim]) -> Claim:
    """The claim that keeps a file longest: a file of several hubs stays until the last of them lets it go.

    >>> a, b = Claim("A", 365, date(2025, 1, 1), "x"), Claim("B", 30, date(2025, 12, 31), "y")
    >>> decisive([a, b]).hub, decisive([b, a]).hub
    ('B', 'B')
    """
    return max(claims, key=lambda claim: (claim.kept_until, claim.hub or ""))


_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")


def date_in_name(name: str) -> date | None:
    """The first valid ISO date in a name Innen gave (``2026-11-20``, ``VERKOOP-BIB-2026-11-20-1``).

    >>> date_in_name("VERKOOP-BIB-2026-11-20-1"), date_in_name("2026-13-01"), date_in_name("fj-BIB-12")
    (datetime.date(2026, 11, 20), None, None)
    """
    for match in _DATE.finditer(name):
        try:
            return date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            continue
    return None


def archived_names(file_name: str, sha256: str) -> tuple[str, str]:
    """The names an imported file can have in the archive: its own, or with its checksum added when that was taken.

    >>> archived_names("one.xml", "1b88e714c8df" + "0" * 52)
    ('one.xml', 'one.1b88e714c8df.xml')
    """
    path = PurePath(file_name)
    return file_name, f"{path.stem}.{sha256[:12]}{path.suffix}"


def compact_account(value: str | None) -> str:
    """An account number as statements give it: no spaces, upper case.

    >>> compact_account("be68 5390 0754 7034")
    'BE68539007547034'
    """
    return (value or "").replace(" ", "").upper()


def folder_name(value: str) -> str:
    """A run's report folder name (include/sepa/manual_reports.py): ``fj:BIB:12`` → ``fj-BIB-12``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", value)


def local_day(moment: datetime) -> date:
    """The Brussels day of a moment (a naive one, as SQLite may return, is UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(LOCAL_ZONE).date()


# --- what the database says ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Run:
    id: int
    loi: str
    hub_id: int
    collection_date: date
    status: str
    file_path: str | None


@dataclass(frozen=True)
class _Statement:
    id: int
    identity: str
    account: str
    statement_id: str
    hub_id: int | None
    file_name: str
    file_sha256: str
    imported_on: date


@dataclass
class _Facts:
    hubs: dict[int, tuple[str, int]]  # id -> (code, keep_days)
    by_account: dict[str, int]  # creditor IBAN -> hub id
    runs: list[_Run]
    statements: list[_Statement]
    pom_reports: dict[str, date]  # delivery report file name -> the day it was analysed

    @property
    def shared(self) -> int:
        return shared_keep_days(keep for _, keep in self.hubs.values())

    def hub_of(self, statement: _Statement) -> int | None:
        if statement.hub_id is not None:
            return statement.hub_id
        return self.by_account.get(compact_account(statement.account))

    def claim(self, hub_id: int | None, made_on: date, dated_by: str) -> Claim:
        if hub_id is None or hub_id not in self.hubs:
            return Claim(None, self.shared, made_on, dated_by)
        code, keep = self.hubs[hub_id]
        return Claim(code, keep, made_on, dated_by)

    def run_claim(self, run: _Run) -> Claim:
        return self.claim(run.hub_id, run.collection_date, f"collection date of {run.loi}")

    def statement_claim(self, statement: _Statement) -> Claim:
        dated_by = f"import of statement {statement.statement_id}"
        return self.claim(self.hub_of(statement), statement.imported_on, dated_by)


def _facts(session: Session) -> _Facts:
    hubs: dict[int, tuple[str, int]] = {}
    by_account: dict[str, int] = {}
    for hub in session.scalars(select(BankHub)):
        hubs[hub.id] = (hub.code, keep_days_of(hub.keep_days))
        if hub.creditor_iban:
            by_account[compact_account(hub.creditor_iban)] = hub.id
    runs = [
        _Run(*row) for row in session.execute(
            select(CollectionRun.id, CollectionRun.loi, CollectionRun.hub_id, CollectionRun.collection_date,
                   CollectionRun.status, CollectionRun.file_path).order_by(CollectionRun.id)
        )
    ]
    statements = [
        _Statement(row.id, row.identity, row.account, row.statement_id, row.hub_id, row.file_name, row.file_sha256,
                   local_day(row.imported_at))
        for row in session.execute(
            select(BankStatement.id, BankStatement.identity, BankStatement.account, BankStatement.statement_id,
                   BankStatement.hub_id, BankStatement.file_name, BankStatement.file_sha256, BankStatement.imported_at)
            .order_by(BankStatement.id)
        )
    ]
    analysed = session.execute(select(DeliveryReport.file_name, DeliveryReport.analysed_at))
    pom_reports = {name: local_day(at) for name, at in analysed}
    return _Facts(hubs, by_account, runs, statements, pom_reports)


# --- the files -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileItem:
    path: Location
    what: str
    claim: Claim


def modified_day(path: Location) -> date:
    """The Brussels day ``path`` (or, for a folder, anything in it) was last modified.

    Today once it is gone, or when its store does not say (nothing goes on a guess).
    """
    today = datetime.now(LOCAL_ZONE).date()
    try:
        newest = modified_at(path)
    except FileNotFoundError:
        return today
    if path.is_dir():
        for inner in everything_in(path):
            try:
                found = modified_at(inner)
            except FileNotFoundError:
                continue
            newest = None if found is None or newest is None else max(newest, found)
    return today if newest is None else datetime.fromtimestamp(newest, LOCAL_ZONE).date()


def _entries(folder: Location, *, folders: bool = False) -> list[Location]:
    """The visible files (and, with ``folders``, folders) of ``folder``; hidden ones are writes in progress."""
    if not folder.is_dir():
        return []
    return sorted(
        path for path in folder.iterdir()
        if not path.name.startswith(".") and not path.is_symlink() and (path.is_file() or (folders and path.is_dir()))
    )


def _modified(facts: _Facts, path: Location, hub_id: int | None = None) -> Claim:
    return facts.claim(hub_id, modified_day(path), "file modified")


@dataclass(frozen=True)
class _Listing:
    """The files and folders there are, listed before the database is read.

    In that order a file that an import moves into the archive while we look is
    either not listed yet, or its statement is already in what we read: it is
    never taken for a file no import names (which would be dated by its own,
    possibly old, modification time).
    """

    outbox: list[Location]
    archive: list[Location]
    archive_pom: list[Location]
    quarantine: list[Location]
    quarantine_pom: list[Location]
    reports: list[tuple[str | None, Location]]  # (kind folder, entry); None for a file right in reports/


def _listing() -> _Listing:
    reports: list[tuple[str | None, Location]] = []
    for kind in _entries(reports_dir(), folders=True):
        if kind.is_file():
            reports.append((None, kind))
        else:
            reports += [(kind.name, path) for path in _entries(kind, folders=True)]
    return _Listing(
        _entries(outbox_dir()), _entries(archive_dir()), _entries(archive_dir() / POM_REPORTS),
        _entries(quarantine_dir()), _entries(quarantine_dir() / POM_REPORTS), reports,
    )


def _bank_files(facts: _Facts, listing: _Listing) -> Iterator[FileItem]:
    runs_by_file: dict[str, list[_Run]] = {}
    for run in facts.runs:
        if run.file_path:
            runs_by_file.setdefault(PurePath(run.file_path).name, []).append(run)
    for path in listing.outbox:
        base = path.name.removesuffix(CHECKSUM_SUFFIX)
        claims = [facts.run_claim(run) for run in runs_by_file.get(base, [])]
        yield FileItem(path, "bank file", decisive(claims) if claims else _modified(facts, path))


def _archived(facts: _Facts, listing: _Listing) -> Iterator[FileItem]:
    by_name: dict[str, list[_Statement]] = {}
    for statement in facts.statements:
        for name in set(archived_names(statement.file_name, statement.file_sha256)):
            by_name.setdefault(name, []).append(statement)
    for path in listing.archive:
        claims = [facts.statement_claim(statement) for statement in by_name.get(path.name, [])]
        yield FileItem(path, "archived statement", decisive(claims) if claims else _modified(facts, path))
    for path in listing.archive_pom:
        day = facts.pom_reports.get(path.name)
        claim = facts.claim(None, day, "analysis of the report") if day else _modified(facts, path)
        yield FileItem(path, "archived POM report", claim)


def _quarantined(facts: _Facts, listing: _Listing) -> Iterator[FileItem]:
    by_name: dict[str, list[_Statement]] = {}
    for statement in facts.statements:
        by_name.setdefault(statement.file_name, []).append(statement)
    for paths, what in ((listing.quarantine, "quarantined file"), (listing.quarantine_pom, "quarantined POM report")):
        for path in paths:
            base = path.name.removesuffix(REASON_SUFFIX)
            reason = path.with_name(base + REASON_SUFFIX)
            day = modified_day(reason if reason.is_file() else path)
            statements = by_name.get(base, []) if paths is listing.quarantine else []
            claims = [facts.claim(facts.hub_of(statement), day, "quarantined") for statement in statements]
            yield FileItem(path, what, decisive(claims) if claims else facts.claim(None, day, "quarantined"))


def _hub_named(facts: _Facts, name: str) -> int | None:
    """The hub a control list's folder name starts with: its code, or its account (folders named before masking)."""
    by_code = sorted(((folder_name(code), hub_id) for hub_id, (code, _) in facts.hubs.items()), reverse=True)
    for code, hub_id in by_code:  # the longest code first: "KBC" must not take "KBC-BIB_..."
        if name.startswith(f"{code}_"):
            return hub_id
    return facts.by_account.get(compact_account(name.split("_", 1)[0]))


def _reports(facts: _Facts, listing: _Listing) -> Iterator[FileItem]:
    statements: dict[str, list[_Statement]] = {}  # one folder per statement (its database id is in the name)
    for statement in facts.statements:
        code = facts.hubs[statement.hub_id][0] if statement.hub_id in facts.hubs else None
        name = control_list_folder(statement.statement_id, statement.id, statement.account, code)
        statements.setdefault(name, []).append(statement)
    runs = {folder_name(run.loi): run for run in facts.runs}
    for kind, path in listing.reports:
        if kind is None:
            yield FileItem(path, "report file", _modified(facts, path))
            continue
        what = f"report {'folder' if path.is_dir() else 'file'} ({kind})"
        if kind == "camt053" and path.name in statements:
            claim = decisive([facts.statement_claim(statement) for statement in statements[path.name]])
        elif kind == "camt053":
            claim = _modified(facts, path, _hub_named(facts, path.name))
        elif kind in RUN_REPORT_KINDS and path.name in runs:
            claim = facts.run_claim(runs[path.name])
        elif (day := date_in_name(path.name)) is not None:
            claim = facts.claim(None, day, "date in its name")
        else:
            claim = _modified(facts, path)
        yield FileItem(path, what, claim)


def expired_files(facts: _Facts, listing: _Listing, today: date) -> list[FileItem]:
    """Every listed file and report folder past its keep_days, in a stable order."""
    found = [
        item for scan in (_bank_files, _archived, _quarantined, _reports) for item in scan(facts, listing)
        if item.path.exists() and item.claim.expired(today)
    ]
    return sorted(found, key=lambda item: str(item.path))


# --- the database ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowsItem:
    """Rows of one statement or run whose personal data goes (or went)."""

    what: str  # "bank statement" or "collection run"
    name: str
    claim: Claim
    rows: int


def _chunks(values: Sequence[int], size: int = CHUNK) -> Iterator[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _set_fields(
    session: Session, model: Any, fields: Sequence[str], where: Any, group: Any
) -> list[tuple[int, int, list[str]]]:
    """(row id, group id, the fields that still hold something) of the rows of ``where`` with anything to clear."""
    held = [getattr(model, name).is_not(None) for name in fields]
    rows = session.execute(select(model.id, group, *held).where(where, or_(*held)).order_by(model.id))
    return [(row_id, group_id, [name for name, value in zip(fields, flags, strict=True) if value])
            for row_id, group_id, *flags in rows]


def _clear(
    session: Session, model: Any, entity: str, fields: Sequence[str], found: list[tuple[int, int, list[str]]],
    claims: dict[int, Claim], actor: str, now: datetime,
) -> None:
    ids = [row_id for row_id, _, _ in found]
    for chunk in _chunks(ids):
        session.execute(
            update(model).where(model.id.in_(chunk)).values({name: None for name in fields})
            .execution_options(synchronize_session=False)
        )
    # The audit row names what was cleared, never the values: they would otherwise live on in the audit log.
    record_many(session, (
        audit_row(entity, row_id, "personal_data_removed", actor,
                  after={"cleared": held, "keep_days": claims[group].keep_days, "counted_from": claims[group].made_on,
                         "hub": claims[group].hub},
                  at=now)
        for row_id, group, held in found
    ))


def _items_naming(session: Session, entries: list[tuple[int, int, list[str]]]) -> list[tuple[int, int, str]]:
    """(item id, statement id, its reason without the payer's name) of the control-list items whose reason names
    the payer of one of ``entries`` (as :func:`_set_fields` gives them)."""
    named = [row_id for row_id, _, held in entries if "counterparty_name" in held]
    found: list[tuple[int, int, str]] = []
    for chunk in _chunks(named):
        for item_id, statement_id, reason, name in session.execute(
            select(ControlListItem.id, BankEntry.statement_id, ControlListItem.reason, BankEntry.counterparty_name)
            .join(BankEntry, BankEntry.id == ControlListItem.bank_entry_id)
            .where(ControlListItem.bank_entry_id.in_(chunk)).order_by(ControlListItem.id)
        ):
            if name and reason and name in reason:
                found.append((item_id, statement_id, reason.replace(name, REMOVED_NAME)))
    return found


def clear_personal_data(session: Session, facts: _Facts, today: date, actor: str, *, dry_run: bool) -> list[RowsItem]:
    """Clear (or, dry, count) the payer's name and account on the expired statements' entries and runs' collections."""
    now = datetime.now(timezone.utc)
    statements = {s.id: (s, facts.statement_claim(s)) for s in facts.statements}
    statements = {key: value for key, value in statements.items() if value[1].expired(today)}
    runs = {r.id: (r, facts.run_claim(r)) for r in facts.runs if r.status not in UNSENT_RUN_STATUSES}
    runs = {key: value for key, value in runs.items() if value[1].expired(today)}

    # An entry whose control-list item is still open keeps its payer: finance books or refunds it by them.
    unresolved = select(ControlListItem.id).where(ControlListItem.bank_entry_id == BankEntry.id,
                                                  ControlListItem.resolved_at.is_(None))
    entries: list[tuple[int, int, list[str]]] = []
    for chunk in _chunks(sorted(statements)):
        entries += _set_fields(session, BankEntry, ENTRY_FIELDS,
                               BankEntry.statement_id.in_(chunk) & ~unresolved.exists(), BankEntry.statement_id)
    # Each mandate's latest collection stays whole: the next collection compares its account with it (AT-24).
    latest = (select(func.max(Collection.id)).where(Collection.status != CollectionStatus.CANCELLED)
              .group_by(Collection.mandate_id))
    collections: list[tuple[int, int, list[str]]] = []
    for chunk in _chunks(sorted(runs)):
        collections += _set_fields(session, Collection, COLLECTION_FIELDS,
                                   Collection.run_id.in_(chunk) & Collection.id.not_in(latest), Collection.run_id)
    if not dry_run:
        entry_claims = {key: claim for key, (_, claim) in statements.items()}
        items = _items_naming(session, entries)  # before the entries lose the name it looks for
        for item_id, _, reason in items:
            session.execute(update(ControlListItem).where(ControlListItem.id == item_id).values(reason=reason)
                            .execution_options(synchronize_session=False))
        record_many(session, (
            audit_row("control_list_item", item_id, "personal_data_removed", actor,
                      after={"cleared": ["payer's name in reason"], "keep_days": entry_claims[group].keep_days,
                             "counted_from": entry_claims[group].made_on, "hub": entry_claims[group].hub}, at=now)
            for item_id, group, _ in items
        ))
        _clear(session, BankEntry, "bank_entry", ENTRY_FIELDS, entries, entry_claims, actor, now)
        _clear(session, Collection, "collection", COLLECTION_FIELDS, collections,
               {key: claim for key, (_, claim) in runs.items()}, actor, now)

    def counted(found: list[tuple[int, int, list[str]]]) -> dict[int, int]:
        counts: dict[int, int] = {}
        for _, group, _ in found:
            counts[group] = counts.get(group, 0) + 1
        return counts

    items = [RowsItem("bank statement", statements[key][0].identity, statements[key][1], n)
             for key, n in sorted(counted(entries).items())]
    items += [RowsItem("collection run", runs[key][0].loi, runs[key][1], n)
              for key, n in sorted(counted(collections).items())]
    return items


# --- one housekeeping run --------------------------------------------------------------------------


@dataclass
class Housekeeping:
    day: date
    dry_run: bool
    files: list[FileItem] = field(default_factory=list)
    rows: list[RowsItem] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    keep_days: dict[str, int] = field(default_factory=dict)  # hub code -> keep_days
    shared_keep_days: int = DEFAULT_KEEP_DAYS
    report: str = ""

    def summary(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(), "dry_run": self.dry_run, "files": len(self.files),
            "bank_entries": sum(r.rows for r in self.rows if r.what == "bank statement"),
            "collections": sum(r.rows for r in self.rows if r.what == "collection run"),
            "keep_days": self.keep_days, "shared_keep_days": self.shared_keep_days,
            "errors": self.errors, "report": self.report,
        }


def run_date_refusal(day: date, today: date, *, dry_run: bool) -> str | None:
    """Why a run that removes may not count ``keep_days`` back from ``day``, or None.

    A day after today would remove what is not yet due: bank files, statements and payers' names, which
    nothing brings back. A dry run may look ahead (what will go at the end of the year?).

    >>> run_date_refusal(date(2099, 12, 31), date(2026, 12, 5), dry_run=False)
    'run date 2099-12-31 is after today (2026-12-05): a real run removes only what is due by today; use a dry run to look ahead'
    >>> [run_date_refusal(day, date(2026, 12, 5), dry_run=dry) for day, dry in
    ...  ((date(2026, 12, 5), False), (date(2020, 1, 1), False), (date(2099, 12, 31), True))]
    [None, None, None]
    """
    if dry_run or day <= today:
        return None
    return (f"run date {day.isoformat()} is after today ({today.isoformat()}): a real run removes only what is "
            "due by today; use a dry run to look ahead")


def housekeep(today: date, actor: str, *, dry_run: bool = True, engine: Engine | None = None) -> Housekeeping:
    """Remove (or, dry, list) what is past its keep_days on ``today``, audit each removal, and write the report."""
    engine = engine or get_engine()
    result = Housekeeping(today, dry_run)
    listing = _listing()  # before the database is read (see _Listing)
    with transaction(engine, readonly=dry_run) as session:
        facts = _facts(session)
        result.rows = clear_personal_data(session, facts, today, actor, dry_run=dry_run)
    result.keep_days = {code: keep for code, keep in sorted(facts.hubs.values())}
    result.shared_keep_days = facts.shared
    for item in expired_files(facts, listing, today):
        if dry_run:
            result.files.append(item)
            continue
        if not item.path.exists():  # its partner (a folder, a checksum's file) or someone else took it already
            continue
        try:
            with transaction(engine) as session:
                record(session, "file", 0, "removed", actor,
                       after={"path": str(item.path), "what": item.what, "hub": item.claim.hub,
                              "keep_days": item.claim.keep_days, "counted_from": item.claim.made_on,
                              "dated_by": item.claim.dated_by})
                remove(item.path)  # inside the transaction: a file that cannot be removed leaves no audit row
        except FileNotFoundError:
            continue
        except OSError as exc:  # logged, and returned (logged too): bank files and old folders name accounts
            result.errors.append(mask_ibans_in(f"{item.path}: {exc.strerror or exc}"))
            log.warning("housekeeping: cannot remove %s: %s", mask_ibans_in(str(item.path)), mask_ibans_in(str(exc)))
            continue
        result.files.append(item)
    result.report = write_report(result)
    return result


# --- the report ------------------------------------------------------------------------------------


def _report_rows(result: Housekeeping) -> list[list[Any]]:
    gone = "would be removed" if result.dry_run else "removed"
    rows: list[list[Any]] = [
        [item.what, str(item.path), item.claim.hub or "(no single hub)", item.claim.made_on, item.claim.dated_by,
         item.claim.keep_days, item.claim.kept_until, gone]
        for item in result.files
    ]
    cleared = "would be cleared" if result.dry_run else "cleared"
    for item in result.rows:
        if item.what == "bank statement":
            action = f"{item.rows} bank entries: counterparty name, IBAN, BIC and message {cleared}"
        else:
            action = f"{item.rows} collections: debtor IBAN and BIC {cleared}"
        rows.append([item.what, item.name, item.claim.hub or "(no single hub)", item.claim.made_on, item.claim.dated_by,
                     item.claim.keep_days, item.claim.kept_until, action])
    return rows


def _earlier_rows(path: Location) -> list[list[str]]:
    """The rows of the day's report so far (a rerun adds to it)."""
    if not path.is_file():
        return []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [row for row in list(csv.reader(handle, delimiter=";"))[1:] if row]


def write_report(result: Housekeeping) -> str:
    """``reports/housekeeping/<day>/dry-run.{csv,html}`` or ``removed.{csv,html}``; returns the HTML's path."""
    folder = reports_dir() / "housekeeping" / result.day.isoformat()
    name = "dry-run" if result.dry_run else "removed"
    csv_path, html_path = folder / f"{name}.csv", folder / f"{name}.html"
    rows = _report_rows(result)
    if not result.dry_run:
        earlier = _earlier_rows(csv_path)
        if earlier and not rows and not result.errors:
            return str(html_path)  # a rerun that found nothing more: the day's report stays as it is
        rows = earlier + rows
    write_csv(csv_path, HEADER, rows)
    table = Table("What would go" if result.dry_run else "What went", HEADER, csv_name=csv_path.name)
    for row in rows:
        table.add(row)
    hubs = ", ".join(f"{code} {keep}" for code, keep in result.keep_days.items()) or "-"
    summary = [
        ("day", result.day), ("dry run", result.dry_run), ("files and folders (this run)", len(result.files)),
        ("bank entries (this run)", sum(r.rows for r in result.rows if r.what == "bank statement")),
        ("collections (this run)", sum(r.rows for r in result.rows if r.what == "collection run")),
        ("keep days per hub", hubs), ("keep days of files of no single hub (the smallest)", result.shared_keep_days),
        ("could not remove", "; ".join(result.errors) or "-"),
    ]
    title = f"Housekeeping {result.day}{' (dry run)' if result.dry_run else ''}"
    write_html(html_path, title, [table], summary=summary)
    return str(html_path)
