"""Benchmark: our streamed, chunk-validated pain.008 writer against python-sepaxml.

Both sides produce pain.008.001.02 for the same synthetic collections (same
amounts, IBANs, BICs, mandates, dates, names, remittance), each in a forked
child of its own so that wall time and peak RSS belong to that side alone:

* ours: ``write_pain008`` over batches whose transactions are lazy generators,
  XSD validation included, written to a temp dir;
* anchor: ``sepaxml.SepaDD`` fed one payment dict at a time, then
  ``export(validate=False)`` and the bytes written to the same temp dir.

The last line is ``ratio=<ours/sepaxml seconds> peak_mb=<our peak MB>``.

    .venv/bin/python bench/pain008.py                         # n = 100 000
    .venv/bin/python bench/pain008.py --n 1000000 --skip-anchor
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from children import idle, in_child  # noqa: E402

# Only light imports here: whatever the parent holds is resident in both children too.
from include.finance.reference_numbers import ogm  # noqa: E402

SEED = 20260301
VERSION = "pain.008.001.02"
RUN_DATE = date(2026, 3, 2)
COLLECTION_DATE = date(2026, 3, 4)
CREATED_AT = datetime(2026, 3, 2, 6, 0, 0, tzinfo=timezone.utc)
ACCOUNTS = 20_000  # distinct debtor accounts; schwifty makes ~25 000 IBANs a second
FRST_EVERY = 5  # one collection in five is a first one
VERIFY_MAX = 200_000
TARGET_RATIO = 0.25
TARGET_PEAK_MB = {100_000: 150, 1_000_000: 300}
MB = 1024 * 1024


# --- synthetic data --------------------------------------------------------------------------


def make_data() -> dict[str, Any]:
    """Debtor accounts (IBAN, BIC), the demo's accented names, and the demo library's hub."""
    from schwifty import IBAN

    from sandbox.demo_institution import BANK_CODES, FIRST_NAMES, LAST_NAMES
    from include.sepa.identifiers import creditor_id, enterprise_number

    rng = random.Random(SEED)
    accounts: dict[str, str | None] = {}
    while len(accounts) < ACCOUNTS:
        iban = IBAN.generate("BE", rng.choice(BANK_CODES), f"{rng.randrange(10**7):07d}")
        accounts[iban.compact] = str(iban.bic) if iban.bic else None
    creditor_iban = IBAN.generate("BE", "734", "0190012")
    return {
        "accounts": list(accounts.items()),
        "names": [f"{first} {last}" for first in FIRST_NAMES for last in LAST_NAMES],
        "signature_dates": [RUN_DATE - timedelta(days=days) for days in range(30, 3000)],
        "creditor": {
            "name": "Bibliotheeknetwerk Regio Leuven",
            "iban": creditor_iban.compact,
            "bic": str(creditor_iban.bic),
            "creditor_id": creditor_id("BE", enterprise_number(2074625)),
        },
    }


def batches(n: int) -> list[tuple[str, int, int]]:
    """(sequence type, first collection number, count) of each payment block."""
    frst = n // FRST_EVERY
    return [(seq, start, count) for seq, start, count in (("FRST", 1, frst), ("RCUR", frst + 1, n - frst)) if count]


def _spread(number: int) -> int:
    """A well-mixed deterministic integer per collection (Knuth's multiplicative hash).

    The data must be varied but cheap: the benchmark times the writers, and
    drawing from ``random`` three times a collection would cost as much as
    our whole writer. Both sides get exactly the same values.
    """
    return (number * 2654435761) % 4294967296


def amount_cents(number: int) -> int:
    k = _spread(number)
    return 500 + k % 24_500 if k % 10 else 25_000 + k % 125_000


def amounts(start: int, count: int) -> Iterator[int]:
    return (amount_cents(number) for number in range(start, start + count))


def collections(data: dict[str, Any], seq: str, start: int, count: int) -> Iterator[tuple[Any, ...]]:
    """(end-to-end id, cents, mandate id, signature date, name, IBAN, BIC, OGM) of collections start.."""
    accounts, names, signed = data["accounts"], data["names"], data["signature_dates"]
    for number in range(start, start + count):
        k = _spread(number)
        iban, bic = accounts[k % len(accounts)]
        yield (
            f"fp:BIB:{number}",
            amount_cents(number),
            f"BIB-M-{number:07d}",
            signed[k % len(signed)],
            names[(k >> 8) % len(names)],
            iban,
            bic,
            ogm("062", number),
        )


# --- the measured sides, each run in a child ---------------------------------------------------


def run_ours(data: dict[str, Any], n: int, folder: Path) -> dict[str, Any]:
    from include.sepa.pain008 import Creditor, Message, PaymentBatch, Transaction, write_pain008

    def transactions(seq: str, start: int, count: int) -> Iterator[Transaction]:
        for e2e, cents, mandate, signed, name, iban, bic, reference in collections(data, seq, start, count):
            yield Transaction(e2e, Decimal(cents).scaleb(-2), mandate, signed, name, iban, bic, reference)

    started = time.perf_counter()
    payment_blocks = [
        PaymentBatch(
            payment_id=f"fj:BIB:1/{seq}",
            sequence_type=seq,
            collection_date=COLLECTION_DATE,
            count=count,
            # The declared total comes first, as in the export (a SUM before the stream).
            total=Decimal(sum(amounts(start, count))).scaleb(-2),
            transactions=transactions(seq, start, count),
        )
        for seq, start, count in batches(n)
    ]
    creditor = data["creditor"]
    message = Message(
        version=VERSION,
        message_id="fj:BIB:1",
        created_at=CREATED_AT,
        initiator_name=creditor["name"],
        initiator_id=None,
        creditor=Creditor(creditor["name"], creditor["iban"], creditor["bic"], creditor["creditor_id"]),
        batch_booking=True,
        local_instrument="CORE",
        batches=payment_blocks,
        safe=False,
    )
    written = write_pain008(message, folder / "ours.xml")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "path": written.path, "size": written.size, "total": written.total}


def run_sepaxml(data: dict[str, Any], n: int, folder: Path) -> dict[str, Any]:
    from sepaxml import SepaDD

    from include.finance.reference_numbers import format_ogm

    started = time.perf_counter()
    creditor = data["creditor"]
    config = {
        "name": creditor["name"],
        "IBAN": creditor["iban"],
        "BIC": creditor["bic"],
        "batch": True,
        "creditor_id": creditor["creditor_id"],
        "currency": "EUR",
    }
    # clean=False keeps the accented names, as our SEPA (not SAFESEPA) file does.
    sepa = SepaDD(config, schema=VERSION, clean=False)
    total = 0
    for seq, start, count in batches(n):
        for e2e, cents, mandate, signed, name, iban, bic, reference in collections(data, seq, start, count):
            payment = {
                "name": name,
                "IBAN": iban,
                "amount": cents,
                "type": seq,
                "collection_date": COLLECTION_DATE,
                "mandate_id": mandate,
                "mandate_date": signed,
                "description": format_ogm(reference),
                "endtoend_id": e2e,
            }
            if bic:
                payment["BIC"] = bic
            sepa.add_payment(payment)
            total += cents
    xml = sepa.export(validate=False)
    path = folder / "sepaxml.xml"
    with path.open("wb") as out:  # durable like ours, which fsyncs before its rename
        out.write(xml)
        out.flush()
        os.fsync(out.fileno())
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "path": str(path), "size": len(xml), "total": Decimal(total).scaleb(-2)}




def run_generation(data: dict[str, Any], n: int, folder: Path) -> dict[str, Any]:
    started = time.perf_counter()
    for seq, start, count in batches(n):
        sum(amounts(start, count))
        for _ in collections(data, seq, start, count):
            pass
    return {"seconds": time.perf_counter() - started}


def profiled(side: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """``side`` under cProfile (main thread only), printing the top 15 by cumulative time."""

    def run(*args: Any) -> dict[str, Any]:
        import cProfile
        import pstats

        profile = cProfile.Profile()
        result = profile.runcall(side, *args)
        print(f"\n--- cProfile of {side.__name__} (main thread; top 15 cumulative) ---")
        pstats.Stats(profile, stream=sys.stdout).sort_stats("cumulative").print_stats(15)
        sys.stdout.flush()
        return result

    return run




def verify(path: str) -> None:
    """Whole-file parse and XSD validation, independent of the writer's chunking."""
    from lxml import etree

    from include.sepa.xsd import schema

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    xsd = schema(VERSION)
    if not xsd.validate(etree.parse(path, parser)):
        raise SystemExit(f"our file: INVALID: {xsd.error_log[0]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="collections in the file (default 100000)")
    parser.add_argument("--skip-anchor", action="store_true", help="do not run python-sepaxml (ratio=nan)")
    parser.add_argument("--profile", action="store_true", help="cProfile our side (main thread only; its time then includes the overhead)")
    args = parser.parse_args()
    if args.n < 1:
        parser.error("--n must be at least 1")

    data, _ = in_child(make_data)
    with tempfile.TemporaryDirectory(prefix="innen-bench-pain008-") as tmp:
        folder = Path(tmp)
        blocks = " + ".join(f"{count} {seq}" for seq, _, count in batches(args.n))
        print(f"{VERSION}, n={args.n} ({blocks}), {ACCOUNTS} debtor accounts, seed {SEED}")
        _, baseline = in_child(idle)
        generation, _ = in_child(run_generation, data, args.n, folder)
        print(f"data generation alone: {generation['seconds']:6.2f} s  (lazy, inside both timed parts below)")
        print(f"peak of an idle child: {baseline:6.0f} MB  (part of both peaks below)")

        ours, our_peak = in_child(profiled(run_ours) if args.profile else run_ours, data, args.n, folder)
        print(
            f"ours:    {ours['seconds']:8.2f} s  peak {our_peak:6.0f} MB  file {ours['size'] / MB:7.1f} MB  "
            "write_pain008 over lazy batches, chunked XSD validation included"
        )
        ratio = float("nan")
        if not args.skip_anchor:
            anchor, anchor_peak = in_child(run_sepaxml, data, args.n, folder)
            print(
                f"sepaxml: {anchor['seconds']:8.2f} s  peak {anchor_peak:6.0f} MB  file {anchor['size'] / MB:7.1f} MB  "
                "add_payment per dict + export(validate=False); dicts generated inside the timed part"
            )
            if anchor["total"] != ours["total"]:
                raise SystemExit(f"the two files differ: total {ours['total']} against {anchor['total']}")
            ratio = ours["seconds"] / anchor["seconds"]
            net_ours, net_anchor = ours["seconds"] - generation["seconds"], anchor["seconds"] - generation["seconds"]
            print(
                f"net of data generation: ours {net_ours:.2f} s, sepaxml {net_anchor:.2f} s, "
                f"ratio {net_ours / net_anchor:.3f}"
            )
            os.unlink(anchor["path"])
        print(f"control sum: EUR {ours['total']}" + ("" if args.skip_anchor else " in both files"))

        if args.n <= VERIFY_MAX:
            verify(ours["path"])
            print(f"our file: valid (whole file parsed by lxml, checked against include/sepa/xsd/{VERSION}.xsd)")

    checks = []  # (text, met)
    if args.n == 100_000 and not args.skip_anchor:
        checks.append((f"ratio {ratio:.3f} (target <= {TARGET_RATIO})", ratio <= TARGET_RATIO))
    if args.n in TARGET_PEAK_MB:
        limit = TARGET_PEAK_MB[args.n]
        checks.append((f"peak {our_peak:.0f} MB (target <= {limit} MB)", our_peak <= limit))
    if checks:
        verdict = "met" if all(met for _, met in checks) else "MISSED"
        print(f"targets at n={args.n}: {'; '.join(text for text, _ in checks)}: {verdict}")
    print(f"ratio={ratio:.3f} peak_mb={round(our_peak)}")


if __name__ == "__main__":
    main()
