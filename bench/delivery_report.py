"""Benchmark: a million-line POM delivery report diagnosed end to end.

Untimed setup, in a forked child: a fresh SQLite database in a temp dir,
bulk-loaded with one school's customers (the demo's accented names), each
with one sealed payment reference carrying an invoice number, one or two
addresses and one to four e-mail contacts, and one sent document per
invoice in batch ``B-2026-03-16``; and the batch's delivery report, written
into ``$INNEN_VAR_DIR/inbox/pom_reports/`` in the simulator's format
(English headers, ``,``), exactly ``--lines`` lines. Each customer's shape
and each recipient's outcome come from a multiplicative hash of its number,
so the report needs no read of the database and the expected count of every
diagnosis is known in advance:

* contacts: every customer has one on the first address; one in five a
  second parent there too; one in 37 a contact whose "E-mail ontvanger" is
  off; one in 53 a contact on a second address without "copy per address"
  (the last two get no line: *not attempted*);
* outcomes per attempted recipient: 80% delivered at once; 8% a temporary
  rejection, then delivered; 2% two temporary rejections 50 hours apart
  (given up); 1% each a recent temporary rejection (retrying), mailbox full
  60 hours ago (given up), rejected and blacklisted, blacklisted,
  unsubscribed, document id already used and an unknown message; 3% more
  delivered.

Timed, in a forked child of its own: ``include.pom.delivery_files.analyse_report_file``,
the whole path of the ``pom_delivery_report`` DAG for an inbox file: the byte
check (encoding, SHA-256), the streamed parse, every line stored, the join
with the sent invoices, contacts, addresses and sales journals, one diagnosis
per invoice × recipient stored, the audit row, the commit, the action list
written from the database (``action-list.csv``, ``delivered.csv``, HTML,
summary), and the move to the archive. The engine is created and the modules
imported before the clock starts. ``--rerun`` then times a second analysis of
the same report (which deletes and replaces the first).

The floor, in a forked child of its own: Python's ``csv`` module reads the
same file and one ``executemany`` inserts its lines into a fresh SQLite
table of the file's shape (one text column per CSV column), in a new
database file with our engine's journal settings (WAL, ``synchronous =
NORMAL``), committed. Its connection and table are made before the clock
starts, as our engine is.

Each child measures its own wall time; the parent takes its peak RSS from
``os.wait4``. The script asserts the line count and every diagnosis count.

Last line: ``ratio=<ours/floor, 2 decimals> seconds=<ours, 1 decimal> peak_mb=<our peak MB, integer>``.
Targets at the default million lines: ratio ≤ 2, peak ≤ 400 MB.

    .venv/bin/python bench/delivery_report.py                  # 1 000 000 lines
    .venv/bin/python bench/delivery_report.py --lines 100000   # quick
    .venv/bin/python bench/delivery_report.py --profile        # cProfile the timed part
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox.bench_loading import insert_all  # noqa: E402
from children import idle, in_child, print_profile  # noqa: E402

# Nothing from include/ here: whatever the parent holds is resident in the children too.

BATCH = "B-2026-03-16"
SENT = datetime(2026, 3, 16, 7, 0, tzinfo=timezone.utc)
NOW = SENT + timedelta(hours=52)
TARGET_RATIO = 2.0
TARGET_PEAK_MB = 400
MB = 1024 * 1024

RETRYING = "The email was rejected by the recipient's mail server. Retrying might result in a successful delivery."
BOUNCED = "The email was rejected by the recipient's mail server. It will be blacklisted to prevent further bounces."
BLACKLISTED = "EmailAddress of recipient is blacklisted."
MAILBOX_FULL = "The email was rejected by the recipient's mail server. The user's mailbox is full."
UNSUBSCRIBED = "User has unsubscribed from receiving pom mails."
DOCUMENT_ID_USED = "DocumentId already used."
UNKNOWN = "Message refused, policy 5.7.1, please contact the postmaster"

# outcome -> (attempts as (hours after sending, status, text), diagnosis)
OUTCOMES: dict[str, tuple[tuple[tuple[float, str, str], ...], str]] = {
    "delivered": (((0, "DELIVERED", ""),), "delivered"),
    "retry_delivered": (((0, "FAILED", RETRYING), (3, "DELIVERED", "")), "delivered"),
    "retry_given_up": (((0, "FAILED", RETRYING), (50, "FAILED", RETRYING)), "given_up"),
    "retrying": (((30, "FAILED", RETRYING),), "retrying"),
    "mailbox_full": (((0, "FAILED", MAILBOX_FULL),), "given_up"),
    "bounced": (((0, "FAILED", BOUNCED),), "rejected_blacklisted"),
    "blacklisted": (((0, "FAILED", BLACKLISTED),), "blacklisted"),
    "unsubscribed": (((0, "FAILED", UNSUBSCRIBED),), "unsubscribed"),
    "document_id_used": (((0, "FAILED", DOCUMENT_ID_USED),), "document_id_used"),
    "unknown": (((0, "FAILED", UNKNOWN),), "unknown"),
}
# per hundred recipients
SHARES = ["delivered"] * 83 + ["retry_delivered"] * 8 + ["retry_given_up"] * 2 + [
    "retrying", "mailbox_full", "bounced", "blacklisted", "unsubscribed", "document_id_used", "unknown"]


def _spread(number: int) -> int:
    """A well-mixed deterministic integer per customer (Knuth's multiplicative hash)."""
    return (number * 2654435761) % 4294967296


def contacts_of(n: int) -> list[tuple[str, str]]:
    """(e-mail, kind) of customer ``n``'s contacts: ``first`` (address 1), ``off`` (flag off), ``later`` (address 2)."""
    k = _spread(n)
    found = [(f"ouder{n}@example.be", "first")]
    if k % 5 == 0:
        found.append((f"tweede.ouder{n}@example.be", "first"))
    if k % 37 == 1:
        found.append((f"geen.mail{n}@example.be", "off"))
    if k % 53 == 2:
        found.append((f"ander.adres{n}@example.be", "later"))
    return found


def outcome(n: int, index: int) -> str:
    return SHARES[((_spread(n) >> 8) + index * 37) % 100]


def plan(lines: int) -> tuple[int, Counter[str], int]:
    """How many customers make ``lines`` report lines (the last one's lines cut to fit), and the diagnoses."""
    expected: Counter[str] = Counter()
    total, n = 0, 0
    while total < lines:
        n += 1
        for index, (_, kind) in enumerate(contacts_of(n)):
            if kind != "first":
                expected["not_attempted_email_recipient_off" if kind == "off"
                         else "not_attempted_copy_per_address_off"] += 1
                continue
            attempts, diagnosis = OUTCOMES[outcome(n, index)]
            take = min(len(attempts), lines - total)
            if take == 0:
                expected["not_attempted_unexplained"] += 1  # past the report's end: no line
                continue
            total += take
            expected[diagnosis if take == len(attempts) else _partial(attempts[:take])] += 1
    return n, expected, total


def _partial(attempts: tuple[tuple[float, str, str], ...]) -> str:
    hours, status, text = attempts[-1]
    if status == "DELIVERED":
        return "delivered"
    return "given_up" if text == RETRYING and NOW - (SENT + timedelta(hours=hours)) >= timedelta(hours=48) else "retrying"


def report_rows(customers: int, lines: int) -> Iterator[tuple[str, ...]]:
    """The report, in time order as POM writes it (sending spread over the first hour)."""
    first, last = _names()
    written = 0
    pending: list[tuple[float, int, tuple[str, ...]]] = []
    for n in range(1, customers + 1):
        k = _spread(n)
        name = f"{first[k % len(first)]} {last[(k >> 8) % len(last)]}"
        offset = n * 3600 / customers
        for index, (email, kind) in enumerate(contacts_of(n)):
            if kind != "first":
                continue
            for hours, status, text in OUTCOMES[outcome(n, index)][0]:
                if written == lines:
                    break
                written += 1
                at = SENT + timedelta(seconds=int(offset + hours * 3600))
                row = (BATCH, f"DOC-{n:08d}", name, email, status, text, at.isoformat())
                if hours:
                    pending.append((offset + hours * 3600, n, row))
                else:
                    yield row
    # Retries come later in POM's report than every first attempt.
    pending.sort(key=lambda item: (item[0], item[1]))
    for _, _, row in pending:
        yield row


_NAMES: tuple[tuple[str, ...], tuple[str, ...]] | None = None


def _names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    global _NAMES
    if _NAMES is None:
        from sandbox.demo_institution import FIRST_NAMES, LAST_NAMES

        _NAMES = tuple(FIRST_NAMES), tuple(LAST_NAMES)
    return _NAMES




def load(url: str, customers: int) -> dict[str, int]:
    from decimal import Decimal

    from include.finance.db import create_schema, get_engine
    from include.finance.models import (
        Address,
        Contact,
        EndUser,
        FinancialSystem,
        PaymentReference,
        PaymentReferenceType,
        SalesJournal,
        SentDocument,
    )
    from include.finance.names import name_key
    from include.finance.reference_numbers import ogm

    first, last = _names()
    keys = {(f, l): name_key(f"{f} {l}") for f in first for l in last}

    def users() -> Iterator[dict[str, Any]]:
        for n in range(1, customers + 1):
            k = _spread(n)
            f, l = first[k % len(first)], last[(k >> 8) % len(last)]
            yield {"id": n, "eloi": f"e:SCH:{n}", "first_name": f, "last_name": l, "name_key": keys[f, l],
                   "language": "nl"}

    def references() -> Iterator[dict[str, Any]]:
        for n in range(1, customers + 1):
            amount = Decimal(150 + _spread(n) % 20_000).scaleb(-2)
            yield {"id": n, "loi": f"fp:SCH:{n}", "financial_system_id": 1, "type_id": 1, "end_user_id": n,
                   "status": "sealed", "amount": amount, "open_amount": amount, "reference_number": ogm("062", n),
                   "invoice_number": f"SCH-2026-{n:07d}", "created_at": SENT, "sealed_at": SENT}

    def addresses() -> Iterator[dict[str, Any]]:
        for n in range(1, customers + 1):
            yield {"id": 2 * n - 1, "end_user_id": n, "position": 1, "address_type": "thuis", "street": "Schoolstraat",
                   "house_number": str(n % 300 + 1), "postal_code": "3000", "city": "Leuven", "country": "BE",
                   "copy_per_address": False}
            if any(kind == "later" for _, kind in contacts_of(n)):
                yield {"id": 2 * n, "end_user_id": n, "position": 2, "address_type": "verblijf", "street": "Dorp",
                       "house_number": str(n % 90 + 1), "postal_code": "3001", "city": "Heverlee", "country": "BE",
                       "copy_per_address": False}

    def contacts() -> Iterator[dict[str, Any]]:
        for n in range(1, customers + 1):
            for email, kind in contacts_of(n):
                yield {"end_user_id": n, "address_id": 2 * n if kind == "later" else 2 * n - 1, "kind": "email",
                       "value": email, "email_recipient": kind != "off"}

    def sent() -> Iterator[dict[str, Any]]:
        for n in range(1, customers + 1):
            yield {"id": n, "batch": BATCH, "document_id": f"DOC-{n:08d}", "payment_reference_id": n, "end_user_id": n,
                   "sales_journal_id": None, "sent_at": SENT}

    engine = get_engine(url)
    create_schema(engine)
    counts: dict[str, int] = {}
    with engine.begin() as connection:
        connection.execute(FinancialSystem.__table__.insert(), [{"id": 1, "code": "SCH", "name": "Scholengroep"}])
        connection.execute(PaymentReferenceType.__table__.insert(), [{
            "id": 1, "code": "FACT-SCH", "name": "Schoolrekening", "reference_format": "OGM",
            "invoice_counter": "fact-sch", "invoice_prefix": "SCH-"}])
        connection.execute(SalesJournal.__table__.insert(), [{
            "id": 1, "code": "VK-SCHOOL", "name": "Schoolrekeningen", "copy_per_address": False,
            "payment_reference_type_id": 1}])
    for table, rows in ((EndUser.__table__, users()), (PaymentReference.__table__, references()),
                        (Address.__table__, addresses()), (Contact.__table__, contacts()),
                        (SentDocument.__table__, sent())):
        with engine.begin() as connection:
            counts[table.name] = insert_all(connection, table, rows)
    engine.dispose()
    return counts


def setup(folder: Path, lines: int) -> dict[str, Any]:
    import csv

    started = time.perf_counter()
    customers, expected, total = plan(lines)
    counts = load(f"sqlite:///{folder / 'innen.sqlite'}", customers)
    loaded = time.perf_counter()
    inbox = folder / "var" / "inbox" / "pom_reports"
    inbox.mkdir(parents=True)
    path = inbox / f"{BATCH}.csv"
    written = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("Batch", "DocumentId", "RecipientName", "EmailAddress", "Status", "Description", "Timestamp"))
        for row in report_rows(customers, total):
            writer.writerow(row)
            written += 1
    assert written == total == lines, (written, total, lines)
    return {"counts": counts, "customers": customers, "expected": dict(expected), "path": str(path),
            "size": path.stat().st_size, "load_seconds": loaded - started,
            "report_seconds": time.perf_counter() - loaded}


def run_ours(folder: Path, path: str, profile: bool = False, rerun: bool = False) -> dict[str, Any]:
    os.environ["INNEN_VAR_DIR"] = str(folder / "var")
    import shutil

    from include.finance.db import get_engine
    from include.pom.delivery_files import analyse_report_file

    engine = get_engine(f"sqlite:///{folder / 'innen.sqlite'}")
    copy = Path(path).with_name("again.csv")
    if rerun:
        shutil.copyfile(path, copy)
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    result = analyse_report_file(Path(path), "bench", engine, now=NOW)
    seconds = time.perf_counter() - started
    if profiler is not None:
        profiler.disable()
        print_profile(profiler, "analyse_report_file")
    again = None
    if rerun:
        started = time.perf_counter()
        second = analyse_report_file(copy, "bench", engine, now=NOW)
        again = time.perf_counter() - started
        assert second["summary"] == result["summary"]
    engine.dispose()
    lists = result["action_lists"][0]
    return {"seconds": seconds, "rerun_seconds": again, "lines": result["lines"], "recipients": result["recipients"],
            "summary": result["summary"], "archived": result["archived"], "html": lists["html"], "csv": lists["csv"],
            "delivered_csv": lists["delivered_csv"]}


def run_floor(folder: Path, path: str) -> dict[str, Any]:
    """The floor: the file read with ``csv`` and its lines inserted with one executemany (see the module text)."""
    import csv
    import sqlite3

    with open(path, encoding="utf-8", newline="") as handle:
        width = len(next(csv.reader(handle)))
    connection = sqlite3.connect(folder / "floor.sqlite", isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    connection.execute(f"CREATE TABLE report_line ({', '.join(f'c{i} TEXT' for i in range(width))})")
    started = time.perf_counter()
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        connection.execute("BEGIN")
        connection.executemany(f"INSERT INTO report_line VALUES ({', '.join('?' * width)})", reader)
        connection.execute("COMMIT")
    seconds = time.perf_counter() - started
    lines = connection.execute("SELECT count(*) FROM report_line").fetchone()[0]
    connection.close()
    return {"seconds": seconds, "lines": lines}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="report lines (default 1000000)")
    parser.add_argument("--profile", action="store_true", help="cProfile the timed part (timed with the overhead)")
    parser.add_argument("--rerun", action="store_true", help="also time a second analysis of the same report")
    args = parser.parse_args()
    if args.lines < 1:
        parser.error("--lines must be at least 1")

    with tempfile.TemporaryDirectory(prefix="innen-bench-delivery-") as tmp:
        folder = Path(tmp)
        print(f"POM delivery report of batch {BATCH}: {args.lines} lines")
        made, _ = in_child(setup, folder, args.lines)
        print(f"setup (untimed): load {made['load_seconds']:.1f} s {made['counts']}, "
              f"report {made['report_seconds']:.1f} s, {made['size'] / MB:.1f} MB")
        _, baseline = in_child(idle)
        print(f"peak of an idle child: {baseline:6.0f} MB  (part of both peaks below)")
        floor, floor_peak = in_child(run_floor, folder, made["path"])
        print(f"floor: {floor['seconds']:7.2f} s  peak {floor_peak:6.0f} MB  csv.reader and one executemany: "
              f"{floor['lines']} lines")
        assert floor["lines"] == args.lines, f"the floor stored {floor['lines']} lines, expected {args.lines}"
        ours, peak = in_child(run_ours, folder, made["path"], args.profile, args.rerun)
        print(f"ours: {ours['seconds']:8.2f} s  peak {peak:6.0f} MB  analyse_report_file: {ours['lines']} lines, "
              f"{ours['recipients']} invoice × recipient")
        print(f"diagnoses: {dict(sorted(ours['summary'].items()))}")
        if ours["rerun_seconds"] is not None:
            print(f"rerun (replaces the first analysis): {ours['rerun_seconds']:.2f} s")
        assert ours["lines"] == args.lines, f"{ours['lines']} lines stored, expected {args.lines}"
        assert ours["summary"] == made["expected"], f"diagnoses {ours['summary']}, expected {made['expected']}"
        assert Path(ours["archived"]).is_file() and Path(ours["html"]).is_file()
        rows = 0
        for name in ("csv", "delivered_csv"):
            with open(ours[name], "rb") as handle:
                rows += sum(1 for _ in handle) - 1
        assert rows == ours["recipients"], f"the action lists have {rows} rows, expected {ours['recipients']}"

    ratio = ours["seconds"] / floor["seconds"]
    if args.lines == 1_000_000:
        checks = [(f"ratio {ratio:.2f} (target <= {TARGET_RATIO:g})", ratio <= TARGET_RATIO),
                  (f"peak {peak:.0f} MB (target <= {TARGET_PEAK_MB} MB)", peak <= TARGET_PEAK_MB)]
        verdict = "met" if all(met for _, met in checks) else "MISSED"
        print(f"targets at the default: {'; '.join(text for text, _ in checks)}: {verdict}")
    print(f"ratio={ratio:.2f} seconds={ours['seconds']:.1f} peak_mb={round(peak)}")


if __name__ == "__main__":
    main()
