"""Benchmark: importing a 100 000-entry camt.053 statement against a million open references.

The same data is bulk-loaded (untimed) into a fresh SQLite database in a temp
dir and into a throwaway PostgreSQL cluster the script starts (Debian's
binaries, :mod:`sandbox.throwaway_postgres`), with one library network: one
financial system, one bank hub whose account the statement is for, one OGM
payment reference type and ``--references`` end users, each owing one debt
line held by one sealed payment reference with its OGM. A camt.053.001.02
statement of ``--entries`` credit transfers is written (untimed) with
``sandbox.camt_writer``: ~90% pay a reference's open amount exactly, ~4% pay
part of it, ~3% pay too much, ~3% carry an OGM we never issued or only free
text. Then, each in a forked child of its own:

* ours, on SQLite and on PostgreSQL: ``import_statement_file``, the whole path
  (safe streamed read, balance check, booking in one transaction, control
  list, archive move);
* anchor: ``lxml.etree.iterparse`` over the same file's ``Ntry`` elements,
  clearing each one and reading nothing: the floor of streaming the file.

The last line is ``ratio=<ours on SQLite / iterparse seconds> ratio_pg=<ours on
PostgreSQL / iterparse seconds> peak_mb=<the higher of our two peaks>`` (the
PostgreSQL server's own memory is not ours; ``ratio_pg=nan`` with ``--no-postgres``).

    .venv/bin/python bench/camt053.py                                    # 1 000 000 references, 100 000 entries
    .venv/bin/python bench/camt053.py --references 100000 --entries 20000  # quick
    .venv/bin/python bench/camt053.py --profile                          # cProfile our side
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox.bench_loading import copy_all, insert_all  # noqa: E402
from sandbox.throwaway_postgres import PostgresCluster  # noqa: E402
from children import idle, in_child, print_profile  # noqa: E402

# Nothing from include/ here: whatever the parent holds is resident in every child too.

SEED = 20260316
VERSION = "camt.053.001.02"
NTRY = "{urn:iso:std:iso:20022:tech:xsd:camt.053.001.02}Ntry"
ACCOUNTS = 20_000  # distinct payer accounts; schwifty makes ~25 000 IBANs a second
SHARES = (("partial", 0.04), ("overpaid", 0.03), ("unmatched", 0.03))  # the rest pays exactly
TARGET_RATIO = 3.0
TARGET_PEAK_MB = 500
MB = 1024 * 1024


# --- synthetic data --------------------------------------------------------------------------


def _spread(number: int) -> int:
    """A well-mixed deterministic integer per reference (Knuth's multiplicative hash).

    The load and the statement both need each reference's amount and payer;
    deriving them from the number spares drawing a million random values
    twice, and spares the statement writer a read of the database.
    """
    return (number * 2654435761) % 4294967296


def amount_cents(number: int) -> int:
    """Open amount of reference ``number``: mostly fees and fines, one in ten a yearly membership."""
    k = _spread(number)
    return 150 + k % 4_850 if k % 10 else 2_000 + k % 16_000


_NAMES: tuple[tuple[str, ...], tuple[str, ...]] | None = None


def demo_names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The demo's accented first and last names (imported on first use: the parent never needs them)."""
    global _NAMES
    if _NAMES is None:
        from sandbox.demo_institution import FIRST_NAMES, LAST_NAMES

        _NAMES = FIRST_NAMES, LAST_NAMES
    return _NAMES


def user_name(number: int) -> tuple[str, str]:
    """(first, last) name of end user ``number``."""
    first, last = demo_names()
    k = _spread(number)
    return first[k % len(first)], last[(k >> 8) % len(last)]


def hub_account() -> tuple[str, str]:
    """The library's account (IBAN, BIC): the statement's and the hub's."""
    from schwifty import IBAN

    iban = IBAN.generate("BE", "734", "0190012")
    return iban.compact, str(iban.bic)




def load(url: str, references: int) -> dict[str, int]:
    """The database: metadata, then per table a generator of rows (users, references, debt, links)."""
    from datetime import date, datetime, timezone
    from decimal import Decimal

    from include.finance.db import create_schema, get_engine
    from include.finance.models import (
        BankHub,
        Counter,
        DebtLine,
        EndUser,
        FinancialSystem,
        PaymentReference,
        PaymentReferenceLine,
        PaymentReferenceType,
    )
    from include.finance.reference_numbers import ogm
    from include.sepa.identifiers import creditor_id, enterprise_number

    iban, bic = hub_account()
    sealed = datetime(2026, 2, 2, 9, 0, tzinfo=timezone.utc)
    due, created_on = date(2026, 3, 4), date(2026, 1, 20)
    metadata = [
        (FinancialSystem.__table__, [{"id": 1, "code": "BIB", "name": "Bibliotheeknetwerk Regio Leuven",
                                      "merchant_name": "Bibliotheek Leuven"}]),
        (PaymentReferenceType.__table__, [{
            "id": 1, "code": "FACT-BIB", "name": "Factuur bibliotheek", "reference_format": "OGM",
            "reference_counter": "ogm-bib", "reference_prefix": "062", "invoice_counter": "fact-bib",
            "invoice_prefix": "BIB-",
        }]),
        (BankHub.__table__, [{
            "id": 1, "code": "KBC-BIB", "name": "KBC Bank — bibliotheek", "financial_system_id": 1,
            "creditor_iban": iban, "creditor_bic": bic, "cash_register": "KAS-BIB-01",
            "initiator_name": "Bibliotheeknetwerk Regio Leuven", "initiator_id": enterprise_number(2074625),
            "creditor_name": "Bibliotheeknetwerk Regio Leuven",
            "creditor_id": creditor_id("BE", enterprise_number(2074625)), "creditor_street": "Rijschoolstraat",
            "creditor_house_number": "4", "creditor_postal_code": "3000", "creditor_city": "Leuven",
            "creditor_country": "BE", "export_format": "SEPA", "pain008_version": "pain.008.001.02", "lead_days": 2,
        }]),
        (Counter.__table__, [{"name": "fp:BIB", "value": references}, {"name": "ogm-bib", "value": references}]),
    ]

    def users() -> Iterator[dict[str, Any]]:
        # The name key (for finding a payer by name) is the column's Python default; computed here once per
        # distinct name instead of once per row.
        keyed = "name_key" in EndUser.__table__.c
        if keyed:
            from include.finance.names import name_key

            keys = {(first, last): name_key(f"{first} {last}") for first in demo_names()[0] for last in demo_names()[1]}
        for n in range(1, references + 1):
            first, last = user_name(n)
            row = {"id": n, "eloi": f"e:LEU:{n}", "first_name": first, "last_name": last, "language": "nl"}
            if keyed:
                row["name_key"] = keys[first, last]
            yield row

    def payment_references() -> Iterator[dict[str, Any]]:
        for n in range(1, references + 1):
            amount = Decimal(amount_cents(n)).scaleb(-2)
            yield {
                "id": n, "loi": f"fp:BIB:{n}", "financial_system_id": 1, "type_id": 1, "end_user_id": n,
                "mandate_id": None, "hub_id": None, "status": "sealed", "amount": amount, "open_amount": amount,
                "reference_number": ogm("062", n), "due_date": due, "created_at": sealed, "sealed_at": sealed,
            }

    def debt_lines() -> Iterator[dict[str, Any]]:
        for n in range(1, references + 1):
            amount = Decimal(amount_cents(n)).scaleb(-2)
            code = "LIDGELD" if amount >= 20 else "BOETE-LAAT"
            yield {
                "id": n, "financial_system_id": 1, "end_user_id": n, "transaction_code": code,
                "description": "Lidgeld" if code == "LIDGELD" else "Boete laat", "amount": amount,
                "open_amount": amount, "created_on": created_on, "payment_reference_id": n,
            }

    def reference_lines() -> Iterator[dict[str, Any]]:
        for n in range(1, references + 1):
            amount = Decimal(amount_cents(n)).scaleb(-2)
            yield {"id": n, "payment_reference_id": n, "debt_line_id": n,
                   "transaction_code": "LIDGELD" if amount >= 20 else "BOETE-LAAT", "amount": amount}

    engine = get_engine(url)
    create_schema(engine)
    counts: dict[str, int] = {}
    fill = copy_all if engine.dialect.name == "postgresql" else insert_all
    with engine.begin() as connection:
        for table, rows in metadata:
            insert_all(connection, table, rows)
    # Foreign keys are on: references before the debt lines pointing at them, links last.
    for table, rows in (
        (EndUser.__table__, users()),
        (PaymentReference.__table__, payment_references()),
        (DebtLine.__table__, debt_lines()),
        (PaymentReferenceLine.__table__, reference_lines()),
    ):
        with engine.begin() as connection:
            counts[table.name] = fill(connection, table, rows)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")  # as autovacuum would leave a loaded database
    engine.dispose()  # the last connection closes: the WAL is checkpointed into the database file
    return counts


def plan(references: int, entries: int, seed: int) -> list[tuple[str, int]]:
    """(kind, reference number) of each entry, in statement order; unmatched ones get 0 or -1."""
    import random

    rng = random.Random(seed)
    counts = {kind: round(entries * share) for kind, share in SHARES}
    counts["paid"] = entries - sum(counts.values())
    kinds = [kind for kind, count in counts.items() for _ in range(count)]
    rng.shuffle(kinds)
    matched = sum(1 for kind in kinds if kind != "unmatched")
    if matched > references:
        raise SystemExit(f"{matched} entries pay a reference each, but there are only {references} references")
    picked = iter(rng.sample(range(1, references + 1), matched))
    # Half the unmatched carry a valid OGM we never issued (0), half only free text (-1).
    return [(kind, next(picked) if kind != "unmatched" else -(n % 2)) for n, kind in enumerate(kinds)]


def write_statement(path: Path, references: int, entries: int, seed: int) -> dict[str, Any]:
    """The bank's camt.053.001.02 statement of ``entries`` credit transfers, and the outcomes it should give."""
    import random
    from collections import Counter
    from datetime import date, datetime, timezone
    from decimal import Decimal

    from schwifty import IBAN

    from sandbox.demo_institution import BANK_CODES
    from include.finance.reference_numbers import ogm
    from sandbox.camt_writer import Entry, Tx, write_camt053

    rng = random.Random(f"{seed}/statement")
    payers: dict[str, None] = {}
    while len(payers) < ACCOUNTS:
        payers[IBAN.generate("BE", rng.choice(BANK_CODES), f"{rng.randrange(10**7):07d}").compact] = None
    accounts = list(payers)
    day = date(2026, 3, 16)
    cent = Decimal("0.01")
    written: list[Entry] = []
    expected: Counter[str] = Counter()
    for n, (kind, number) in enumerate(plan(references, entries, seed), 1):
        tx: dict[str, Any] = {"account_servicer_ref": f"KBC-SCT-20260316-{n:07d}"}
        if number > 0:
            first, last = user_name(number)
            open_amount = Decimal(amount_cents(number)).scaleb(-2)
            if kind == "partial":
                amount = max(cent, (open_amount * Decimal(rng.randrange(10, 90)) / 100).quantize(cent))
            elif kind == "overpaid":
                amount = open_amount + Decimal(rng.randrange(1, 2_000)).scaleb(-2)
            else:
                amount = open_amount
            tx["structured_reference"] = ogm("062", number)
            account = accounts[_spread(number) % len(accounts)]
        else:
            first, last = rng.choice(demo_names()[0]), rng.choice(demo_names()[1])
            amount = Decimal(rng.randrange(500, 10_000)).scaleb(-2)
            if number == 0:  # another creditor's OGM, or a number we never issued
                tx["structured_reference"] = ogm("099", rng.randrange(1, 10**7))
            else:
                tx["unstructured"] = f"lidgeld {first} {last} voorschot"
            account = rng.choice(accounts)
        expected[kind] += 1
        written.append(Entry(True, day, (Tx(amount, counterparty_name=f"{first} {last}", counterparty_iban=account,
                                            **tx),)))
    iban, bic = hub_account()
    statement = write_camt053(
        path, account_iban=iban, statement_id="2026-075", electronic_seq=1,
        created_at=datetime(2026, 3, 17, 6, 0, tzinfo=timezone.utc), from_date=day, to_date=day,
        opening_balance=Decimal("125000.00"), entries=written, account_bic=bic,
        owner_name="Bibliotheeknetwerk Regio Leuven", message_id="KBC-2026-03-16",
    )
    return {"size": statement.size, "entries": statement.entries, "closing": statement.closing_balance,
            "expected": dict(expected)}


def setup(folder: Path, references: int, entries: int, seed: int, postgres_url: str | None) -> dict[str, Any]:
    """Untimed: the databases, the statement in each side's inbox, and its copy for the anchor."""
    import shutil

    started = time.perf_counter()
    counts = load(f"sqlite:///{folder / 'innen.sqlite'}", references)
    loaded = time.perf_counter()
    if postgres_url:
        load(postgres_url, references)
    loaded_pg = time.perf_counter()
    statement = folder / "statement.xml"
    made = write_statement(statement, references, entries, seed)
    paths = {}
    for side in ("sqlite", "postgresql"):
        inbox = folder / side / "var" / "inbox" / "camt053"
        inbox.mkdir(parents=True)
        paths[side] = str(inbox / "KBC-BIB_2026-03-16.xml")
        shutil.copyfile(statement, paths[side])  # the import moves its inbox file to the archive
    copy = folder / "anchor.xml"
    statement.rename(copy)
    written = time.perf_counter()
    return {"counts": counts, "load_seconds": loaded - started, "load_pg_seconds": loaded_pg - loaded,
            "statement_seconds": written - loaded_pg, "paths": paths, "copy": str(copy), **made}


# --- the measured sides, each run in a child ---------------------------------------------------


def run_ours(folder: Path, url: str, path: str, profile: bool = False) -> dict[str, Any]:
    os.environ["INNEN_VAR_DIR"] = str(Path(path).parents[2])  # control list and archive land in the temp dir
    from include.finance.db import get_engine
    from include.sepa.statement_files import import_statement_file

    engine = get_engine(url)
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    summary = import_statement_file(Path(path), actor="bench", engine=engine)
    seconds = time.perf_counter() - started
    if profiler is not None:
        profiler.disable()
        print_profile(profiler, f"import_statement_file on {engine.dialect.name}")
    engine.dispose()
    (statement,) = summary["statements"]
    return {"seconds": seconds, "status": summary["status"], "outcomes": summary["outcomes"],
            "booked": statement["booked"], "control_items": statement["control_items"],
            "new_lines": statement["new_lines"], "archived": summary["archived"],
            "control_list": summary["control_lists"][0] if summary["control_lists"] else None}


def run_iterparse(path: str) -> dict[str, Any]:
    """Every ``Ntry`` streamed, cleared, and its earlier siblings dropped; nothing read from it."""
    from lxml import etree

    started = time.perf_counter()
    count = 0
    # The parser options of include.sepa.camt.read_camt.
    for _, element in etree.iterparse(
        path, events=("end",), tag=NTRY, resolve_entities=False, load_dtd=False, no_network=True,
        huge_tree=False, remove_comments=True, remove_pis=True,
    ):
        count += 1
        element.clear()
        parent = element.getparent()
        while element.getprevious() is not None:
            del parent[0]
    return {"seconds": time.perf_counter() - started, "entries": count}



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--references", type=int, default=1_000_000, help="open payment references (default 1000000)")
    parser.add_argument("--entries", type=int, default=100_000, help="credit entries in the statement (default 100000)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"seed of the statement's draws (default {SEED})")
    parser.add_argument("--profile", action="store_true", help="cProfile our side (timed with the overhead)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only (no throwaway PostgreSQL cluster)")
    args = parser.parse_args()
    if args.references < 1 or args.entries < 1:
        parser.error("--references and --entries must be at least 1")

    cluster = None if args.no_postgres else PostgresCluster()
    with tempfile.TemporaryDirectory(prefix="innen-bench-camt053-") as tmp:
        folder = Path(tmp)
        try:
            postgres_url = None
            if cluster is not None:
                cluster.start()
                _create_database(cluster)
                postgres_url = cluster.url("innen_bench")
            results = _measure(folder, args, postgres_url)
        finally:
            if cluster is not None:
                cluster.stop()
    ours, anchor, peak = results
    ratio = ours["sqlite"]["seconds"] / anchor["seconds"]
    ratio_pg = ours["postgresql"]["seconds"] / anchor["seconds"] if "postgresql" in ours else float("nan")
    if args.references == 1_000_000 and args.entries == 100_000:
        checks = [(f"ratio {ratio:.3f} (target <= {TARGET_RATIO:g})", ratio <= TARGET_RATIO),
                  (f"ratio_pg {ratio_pg:.3f} (target <= {TARGET_RATIO:g})", ratio_pg <= TARGET_RATIO),
                  (f"peak {peak:.0f} MB (target <= {TARGET_PEAK_MB} MB)", peak <= TARGET_PEAK_MB)]
        verdict = "met" if all(met for _, met in checks) else "MISSED"
        print(f"targets at the defaults: {'; '.join(text for text, _ in checks)}: {verdict}")
    print(f"ratio={ratio:.3f} ratio_pg={ratio_pg:.3f} peak_mb={round(peak)}")


def _create_database(cluster: PostgresCluster) -> None:
    from sqlalchemy import create_engine

    admin = create_engine(cluster.url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql("CREATE DATABASE innen_bench")
    admin.dispose()


def _measure(folder: Path, args: argparse.Namespace,
             postgres_url: str | None) -> tuple[dict[str, Any], dict[str, Any], float]:
    print(f"{VERSION}, {args.entries} credit entries against {args.references} open references, seed {args.seed}")
    made, _ = in_child(setup, folder, args.references, args.entries, args.seed, postgres_url)
    expected = made["expected"]
    print(
        f"setup (untimed): load {made['load_seconds']:.1f} s {made['counts']}"
        + (f", the same on PostgreSQL {made['load_pg_seconds']:.1f} s" if postgres_url else "")
        + f", statement {made['statement_seconds']:.1f} s"
    )
    print(
        f"statement file: {made['size'] / MB:.1f} MB ({made['size']} bytes), {made['entries']} entries "
        f"{dict(sorted(expected.items()))}, closing balance EUR {made['closing']}"
    )
    _, baseline = in_child(idle)
    print(f"peak of an idle child: {baseline:6.0f} MB  (part of every peak below)")

    urls = {"sqlite": f"sqlite:///{folder / 'innen.sqlite'}"}
    if postgres_url:
        urls["postgresql"] = postgres_url
    ours: dict[str, dict[str, Any]] = {}
    peak = 0.0
    for side, url in urls.items():
        result, side_peak = in_child(run_ours, folder, url, made["paths"][side], args.profile)
        ours[side], peak = result, max(peak, side_peak)
        outcomes = dict(sorted(result["outcomes"].items()))
        print(
            f"ours ({side}): {result['seconds']:8.2f} s  peak {side_peak:6.0f} MB  import_statement_file: "
            f"{result['status']}, outcomes {outcomes}, booked EUR {result['booked']}, "
            f"{result['control_items']} control-list items"
        )
        total = sum(result["outcomes"].values())
        assert total == args.entries, f"{side}: outcomes add up to {total}, expected {args.entries}"
        assert outcomes == dict(sorted(expected.items())), f"{side}: outcomes {outcomes}, expected {expected}"
        archived = Path(result["archived"]).is_file() and not Path(made["paths"][side]).exists()
        assert archived, f"{side}: the file was not archived"
        assert result["control_list"] and Path(result["control_list"]).is_file(), "no control list"
    if "postgresql" in ours:
        assert ours["postgresql"]["booked"] == ours["sqlite"]["booked"], "the two databases booked different totals"
    anchor, anchor_peak = in_child(run_iterparse, made["copy"])
    print(f"iterparse: {anchor['seconds']:8.2f} s  peak {anchor_peak:6.0f} MB  {anchor['entries']} Ntry, cleared")
    assert anchor["entries"] == args.entries, f"iterparse saw {anchor['entries']} entries"
    return ours, anchor, peak


if __name__ == "__main__":
    main()
