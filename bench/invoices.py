"""Benchmark: making 10 000 invoices (both QR codes, three debt lines each) against Typst rendering the template alone.

A fresh SQLite database in a temp dir is bulk-loaded (untimed) with one
library: a financial system with a merchant name, a hub with a valid creditor
IBAN, BIC and identifier, one OGM reference type that may be paid online
(default template, ``thuis;emailonly``), and ``--n`` end users, each with one
address (every other one an e-mail contact too), three debt lines and one
sealed reference with its OGM and invoice number, and an ``open`` POM payment
request carrying POM's QR image (``include.pom.qr_layout.svg``) and its own
pay link. So every invoice carries both QR codes. Then, each in a forked child
of its own:

* ours: ``make_invoices`` over all ``--n`` references (gather, EPC QR code,
  Typst, PDF files written, invoice rows and audit rows recorded);
* engine: one ``Renderer`` on the same template folder rendering one
  reference's data ``--n`` times, no database and no file. Twice: with the
  identical data every time, and with only the invoice number changing. Typst
  memoizes identical inputs inside one compiler, so the identical run
  measures Typst's cache; the varying one is the anchor of the ratio.

The last line is ``ratio=<ours/engine with varying number> per_second=<ours> peak_mb=<ours>``.

    .venv/bin/python bench/invoices.py                 # 10 000 invoices
    .venv/bin/python bench/invoices.py --n 2000        # quick
    .venv/bin/python bench/invoices.py --profile       # cProfile our side
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

from children import idle, in_child, print_profile  # noqa: E402

# Nothing from include/ here: whatever the parent holds is resident in every child too.

TARGET_RATIO = 1.3
TARGET_PEAK_MB = 300
TARGET_N = 10_000
MB = 1024 * 1024
LINES = (  # code, description (accents, an ampersand), base amount in cents
    ("LIDGELD", "Lidgeld 2027 — volwassene", 2_000),
    ("BOETE-LAAT", "Boete te laat: « Crèvecœur & fils »", 50),
    ("RESERVATIE", "Reservatie (één boek)", 100),
)


def _spread(number: int) -> int:
    """A well-mixed deterministic integer per reference (Knuth's multiplicative hash)."""
    return (number * 2654435761) % 4294967296


def line_cents(number: int) -> tuple[int, int, int]:
    """The three debt lines' amounts of reference ``number``, in cents."""
    k = _spread(number)
    return LINES[0][2] + k % 4_000, LINES[1][2] + (k >> 8) % 1_450, LINES[2][2] + (k >> 16) % 300


# --- setup, in a child ------------------------------------------------------------------------


def _pom_svg(item: tuple[str, str, str, str]) -> str:
    from include.pom.qr_layout import QrLayout, svg

    return svg(QrLayout(*item))


def load(url: str, n: int) -> dict[str, int]:
    """The database: metadata through Core, then the n-sized tables through ``insert_many``, a generator each."""
    import multiprocessing
    from datetime import date, datetime, timezone
    from decimal import Decimal

    from schwifty import IBAN
    from sqlalchemy import insert

    from sandbox.demo_institution import FIRST_NAMES, LAST_NAMES, STREETS
    from include.finance.bulk import insert_many
    from include.finance.db import create_schema, get_engine, transaction
    from include.finance.models import (
        Address,
        BankHub,
        Contact,
        Counter,
        DebtLine,
        EndUser,
        FinancialSystem,
        PaymentReference,
        PaymentReferenceLine,
        PaymentReferenceType,
        PomPaymentRequest,
    )
    from include.finance.names import name_key
    from include.finance.reference_numbers import format_ogm, ogm
    from include.sepa.identifiers import creditor_id, enterprise_number

    account = IBAN.generate("BE", "734", "0190012")
    sealed = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
    due, created_on = date(2026, 12, 24), date(2026, 11, 2)
    metadata = [
        (FinancialSystem.__table__, {"id": 1, "code": "BIB", "name": "Bibliotheeknetwerk Regio Leuven",
                                     "merchant_name": "Bibliotheek Crèvecœur & Co"}),
        (PaymentReferenceType.__table__, {
            "id": 1, "code": "FACT-BIB", "name": "Factuur bibliotheek", "reference_format": "OGM",
            "reference_counter": "ogm-bib", "reference_prefix": "062", "invoice_counter": "fact-bib",
            "invoice_prefix": "BIB-", "allowed_online": True, "print_state": None, "address_types": "thuis;emailonly",
        }),
        (BankHub.__table__, {
            "id": 1, "code": "KBC-BIB", "name": "KBC Bank — bibliotheek", "financial_system_id": 1,
            "creditor_iban": account.compact, "creditor_bic": str(account.bic), "cash_register": "KAS-BIB-01",
            "initiator_name": "Bibliotheeknetwerk Regio Leuven", "initiator_id": enterprise_number(2074625),
            "creditor_name": "Bibliotheeknetwerk Regio Leuven",
            "creditor_id": creditor_id("BE", enterprise_number(2074625)), "creditor_street": "Rijschoolstraat",
            "creditor_house_number": "4", "creditor_postal_code": "3000", "creditor_city": "Leuven",
            "creditor_country": "BE", "export_format": "SEPA", "pain008_version": "pain.008.001.02", "lead_days": 2,
        }),
    ]
    counters = [{"name": name, "value": n} for name in ("fp:BIB", "ogm-bib", "fact-bib")]
    keys = {(first, last): name_key(f"{first} {last}") for first in FIRST_NAMES for last in LAST_NAMES}

    def user_name(number: int) -> tuple[str, str]:
        k = _spread(number)
        return FIRST_NAMES[k % len(FIRST_NAMES)], LAST_NAMES[(k >> 8) % len(LAST_NAMES)]

    def total(number: int) -> Decimal:
        return Decimal(sum(line_cents(number))).scaleb(-2)

    # insert_many sends the rows as they are: every NOT NULL column with a Python default is given here.
    def users() -> Iterator[dict[str, Any]]:
        for number in range(1, n + 1):
            first, last = user_name(number)
            yield {"id": number, "eloi": f"e:LEU:{number}", "first_name": first, "last_name": last,
                   "name_key": keys[first, last], "language": "nl"}

    def addresses() -> Iterator[dict[str, Any]]:
        for number in range(1, n + 1):
            street, postal_code, city = STREETS[_spread(number) % len(STREETS)]
            yield {"id": number, "end_user_id": number, "position": 1, "address_type": "thuis", "street": street,
                   "house_number": str(1 + number % 180), "postal_code": postal_code, "city": city, "country": "BE",
                   "copy_per_address": False}

    def contacts() -> Iterator[dict[str, Any]]:
        for number in range(2, n + 1, 2):
            yield {"id": number // 2, "end_user_id": number, "address_id": None, "kind": "email",
                   "value": f"klant{number}@example.be", "email_recipient": True}

    def references() -> Iterator[dict[str, Any]]:
        for number in range(1, n + 1):
            amount = total(number)
            yield {
                "id": number, "loi": f"fp:BIB:{number}", "financial_system_id": 1, "type_id": 1,
                "end_user_id": number, "mandate_id": None, "hub_id": 1, "status": "sealed", "amount": amount,
                "open_amount": amount, "reference_number": ogm("062", number), "invoice_number": f"BIB-{number:06d}",
                "due_date": due, "description": "Lidgeld en boetes\nBibliotheek Crèvecœur", "created_at": sealed,
                "sealed_at": sealed,
            }

    def debt_lines() -> Iterator[dict[str, Any]]:
        for number in range(1, n + 1):
            for index, ((code, text, _), cents) in enumerate(zip(LINES, line_cents(number))):
                amount = Decimal(cents).scaleb(-2)
                yield {"id": 3 * (number - 1) + index + 1, "financial_system_id": 1, "end_user_id": number,
                       "transaction_code": code, "description": text, "amount": amount, "open_amount": amount,
                       "created_on": created_on.replace(day=2 + index), "payment_reference_id": number}

    def reference_lines() -> Iterator[dict[str, Any]]:
        for number in range(1, n + 1):
            for index, ((code, _, _), cents) in enumerate(zip(LINES, line_cents(number))):
                line = 3 * (number - 1) + index + 1
                yield {"id": line, "payment_reference_id": number, "debt_line_id": line, "transaction_code": code,
                       "amount": Decimal(cents).scaleb(-2)}

    def pay_url(number: int) -> str:
        return f"https://pom.example/pay/qr_{number:08d}"

    def layouts() -> Iterator[tuple[str, str, str, str]]:
        for number in range(1, n + 1):
            yield pay_url(number), f"{total(number):.2f}", format_ogm(ogm("062", number)), due.isoformat()

    def requests(svgs: Iterator[str]) -> Iterator[dict[str, Any]]:
        for number, svg in zip(range(1, n + 1), svgs):
            yield {
                "id": number, "payment_reference_id": number, "account": "default", "pom_id": f"pr_{number:08d}",
                "idempotency_key": f"bench-fp:BIB:{number}", "amount": total(number),
                "communication": ogm("062", number), "due_date": due, "status": "open",
                "qr_id": f"qr_{number:08d}", "qr_payload": pay_url(number), "pay_url": pay_url(number),
                "qr_svg": svg, "qr_created_at": sealed, "created_at": sealed, "updated_at": sealed,
            }

    engine = get_engine(url)
    create_schema(engine)
    counts: dict[str, int] = {}
    with transaction(engine) as session:
        for table, row in metadata:  # one row each, through Core so that the columns' defaults apply
            session.execute(insert(table), [row])
        session.execute(insert(Counter.__table__), counters)
    def counted(name: str, rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:
            counts[name] = counts.get(name, 0) + 1
            yield row

    # Foreign keys are on: users, then what points at them; references before their lines and requests.
    for table, rows in (
        (EndUser.__table__, users()), (Address.__table__, addresses()), (Contact.__table__, contacts()),
        (PaymentReference.__table__, references()), (DebtLine.__table__, debt_lines()),
        (PaymentReferenceLine.__table__, reference_lines()),
    ):
        with transaction(engine) as session:
            insert_many(session, table, counted(table.name, rows))
    # POM's QR image is made with segno like the EPC code (~4 ms each): on every core, in order.
    with multiprocessing.get_context("fork").Pool(os.cpu_count() or 1) as pool:
        svgs = pool.imap(_pom_svg, layouts(), chunksize=50)
        with transaction(engine) as session:
            insert_many(session, PomPaymentRequest.__table__, counted(PomPaymentRequest.__tablename__, requests(svgs)))
    engine.dispose()  # the last connection closes: the WAL is checkpointed into the database file
    return counts


def setup(url: str, n: int) -> dict[str, Any]:
    started = time.perf_counter()
    counts = load(url, n)
    return {"counts": counts, "seconds": time.perf_counter() - started}


# --- the measured sides, each run in a child ---------------------------------------------------


def _maxrss_mb() -> tuple[float, float]:
    """This process's peak RSS and that of its largest waited-for child, in MB (Linux: ru_maxrss in KiB)."""
    import resource

    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)


class WorkerPeaks:
    """The peak RSS (``VmHWM``) of this process's render workers, sampled from /proc while they run.

    ``ru_maxrss`` cannot tell: a spawned worker is forked before it executes
    Python afresh, and the kernel counts the parent's pages it shared for that
    instant as the worker's peak. ``VmHWM`` belongs to the worker's own address
    space, made at exec.
    """

    def __init__(self) -> None:
        import threading

        self.peaks: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        me = os.getpid()
        while not self._stop.wait(0.1):
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    status = Path(f"/proc/{entry}/status").read_text()
                except OSError:
                    continue
                fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
                if fields.get("PPid", "").strip() == str(me) and "VmHWM" in fields:
                    kb = int(fields["VmHWM"].split()[0])
                    self.peaks[int(entry)] = max(self.peaks.get(int(entry), 0.0), kb / 1024)

    def stop(self) -> float:
        """The largest worker's peak, in MB."""
        self._stop.set()
        self._thread.join()
        return max(self.peaks.values(), default=0.0)


def run_ours(url: str, n: int, profile: bool) -> dict[str, Any]:
    """``make_invoices`` over every reference, timed; then the rows and files checked (untimed)."""
    from datetime import date, datetime, timezone

    from sqlalchemy import func, select

    from include.config import invoices_dir
    from include.finance.db import get_engine, transaction
    from include.finance.models import Invoice
    from include.invoices.making import make_invoices

    now, day = datetime(2026, 12, 4, 2, 30, tzinfo=timezone.utc), date(2026, 12, 4)
    engine = get_engine(url)
    before = _maxrss_mb()[0]
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    sampler = WorkerPeaks()
    started = time.perf_counter()
    run = make_invoices(engine, "bench", now, print_day=day)
    seconds = time.perf_counter() - started
    if profiler is not None:
        profiler.disable()
    children = sampler.stop()
    own = _maxrss_mb()[0]
    if profiler is not None:
        print_profile(profiler, "make_invoices")

    with transaction(engine, readonly=True) as session:
        rows = session.scalar(select(func.count()).select_from(Invoice).where(Invoice.withdrawn_at.is_(None)))
        channels = dict(session.execute(select(Invoice.channel, func.count()).group_by(Invoice.channel)).all())
        pages = dict(session.execute(select(Invoice.pages, func.count()).group_by(Invoice.pages)).all())
        with_pom = session.scalar(select(func.count()).select_from(Invoice)
                                  .where(Invoice.pom_payment_request_id.is_not(None)))
        paths = session.scalars(select(Invoice.file_path)).all()
    folder = invoices_dir()
    missing = sum(1 for path in paths if not (folder / path).is_file())
    files = list((folder / day.isoformat()).glob("*.pdf"))
    sizes = sum(path.stat().st_size for path in files)
    engine.dispose()
    return {"seconds": seconds, "made": run.counts["made"], "rows": rows, "channels": channels, "pages": pages,
            "with_pom": with_pom, "files": len(files), "missing": missing, "bytes": sizes,
            "rss_before_mb": before, "rss_self_mb": own, "rss_children_mb": children}


def run_engine(url: str, n: int, vary: bool) -> dict[str, Any]:
    """One Renderer, one reference's data computed before the clock; ``render`` n times, no database, no file."""
    from sqlalchemy import select

    from include.config import templates_dir
    from include.finance.db import get_engine, transaction
    from include.finance.models import PaymentReference
    from include.invoices.epc_qr import epc_svg
    from include.invoices.facts import gather, invoice_data
    from include.invoices.render import Renderer
    from include.invoices.templates import template_path

    engine = get_engine(url)
    with transaction(engine, readonly=True) as session:
        (facts,) = gather(session, [session.scalar(select(PaymentReference.id).order_by(PaymentReference.id))])
    engine.dispose()
    assert facts.transfer_qr and facts.pom_svg and facts.pay_url, "the fixed invoice lacks a QR code"
    qr = epc_svg(facts.creditor_name, facts.creditor_iban or "", facts.open_amount, bic=facts.creditor_bic,
                 reference=facts.reference_number).decode("utf-8")
    data = invoice_data(facts, qr)
    renderer = Renderer(templates_dir())
    path = template_path(renderer.folder, facts.print_state, facts.language)
    size = 0
    started = time.perf_counter()
    if vary:
        for i in range(n):
            size += len(renderer.render(path, data | {"State.Cinvoicenr": f"X-{i}"}))
    else:
        for _ in range(n):
            size += len(renderer.render(path, data))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "bytes": size, "template": path.name}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=TARGET_N, help=f"invoices (default {TARGET_N})")
    parser.add_argument("--db", type=Path,
                        help="SQLite file to create and keep (must not exist; default: one in the temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (database, invoices) and print it")
    parser.add_argument("--profile", action="store_true", help="cProfile our side (timed with the overhead)")
    args = parser.parse_args()
    if args.n < 1:
        parser.error("--n must be at least 1")
    if args.db is not None and args.db.exists():
        parser.error(f"--db {args.db} exists already: give a new file")

    tmp = tempfile.mkdtemp(prefix="innen-bench-invoices-")
    folder = Path(tmp)
    # Before anything from include/ is imported (in the children): the invoices are written under it.
    os.environ["INNEN_VAR_DIR"] = str(folder / "var")
    db = args.db.resolve() if args.db is not None else folder / "innen.sqlite"
    url = f"sqlite:///{db}"
    try:
        print(f"{args.n} invoices (both QR codes, three debt lines each), template default.nl.typ")
        made, _ = in_child(setup, url, args.n)
        print(f"setup (untimed): {made['seconds']:.1f} s {made['counts']}")
        _, baseline = in_child(idle)
        print(f"peak of an idle child: {baseline:6.0f} MB  (part of every peak below)")

        ours, _child_peak = in_child(run_ours, url, args.n, args.profile)
        # Ours runs in this child and its render workers (one per core): the peak counted is the child's own
        # plus, for every worker, the largest worker's peak (an upper bound of their sum).
        workers = os.cpu_count() or 1
        peak = ours["rss_self_mb"] + workers * ours["rss_children_mb"]
        per_second = args.n / ours["seconds"]
        print(
            f"ours:   {ours['seconds']:8.2f} s  {per_second:7.1f} invoices/s  peak {peak:6.0f} MB "
            f"(this process {ours['rss_self_mb']:.0f} MB + {workers} x its largest worker "
            f"{ours['rss_children_mb']:.0f} MB) "
            f"(RSS {ours['rss_before_mb']:.0f} MB before the run)  make_invoices: {ours['made']} made, "
            f"{ours['rows']} current invoice rows, {ours['with_pom']} with a POM request, channels "
            f"{dict(sorted(ours['channels'].items()))}, pages {ours['pages']}, {ours['files']} PDF files "
            f"({ours['bytes'] / MB:.1f} MB)"
            + ("  [under cProfile]" if args.profile else "")
        )
        fixed, fixed_peak = in_child(run_engine, url, args.n, False)
        print(
            f"engine, identical data:       {fixed['seconds']:8.2f} s  {args.n / fixed['seconds']:7.1f} /s  "
            f"peak {fixed_peak:6.0f} MB  (Typst memoizes identical inputs: this measures its cache)"
        )
        anchor, anchor_peak = in_child(run_engine, url, args.n, True)
        print(
            f"engine, invoice number varies: {anchor['seconds']:8.2f} s  {args.n / anchor['seconds']:7.1f} /s  "
            f"peak {anchor_peak:6.0f} MB  <- anchor of the ratio"
        )

        assert ours["made"] == args.n, f"{ours['made']} invoices made, expected {args.n}"
        assert ours["rows"] == args.n, f"{ours['rows']} current invoice rows, expected {args.n}"
        assert ours["with_pom"] == args.n, f"{ours['with_pom']} invoices with a POM request, expected {args.n}"
        assert ours["files"] == args.n and ours["missing"] == 0, (
            f"{ours['files']} PDF files on disk, {ours['missing']} recorded files missing")
    finally:
        if args.keep:
            print(f"kept: {folder} (database {db})")
        else:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)

    ratio = ours["seconds"] / anchor["seconds"]
    if args.n == TARGET_N and not args.profile:
        checks = [(f"ratio {ratio:.2f} (target <= {TARGET_RATIO:g})", ratio <= TARGET_RATIO),
                  (f"peak {peak:.0f} MB (target <= {TARGET_PEAK_MB} MB)", peak <= TARGET_PEAK_MB)]
        verdict = "met" if all(met for _, met in checks) else "MISSED"
        print(f"targets at n={TARGET_N}: {'; '.join(text for text, _ in checks)}: {verdict}")
    print(f"ratio={ratio:.2f} per_second={per_second:.1f} peak_mb={peak:.1f}")


if __name__ == "__main__":
    main()
