"""Benchmark: one nightly POM reconciliation of --n unpaid requests against a simulator limited to R requests/s.

The simulator runs in its own process (``python -m sandbox.pom_simulator
--rate-limit R``), so the server's work does not share our interpreter. It is
seeded (untimed) with ``--n`` open requests through ``/_sim/seed-requests``;
one in ``--paid-every`` is then paid without a callback. Our SQLite database
(in a temp dir) is bulk-loaded with one sealed reference and one open
``pom_payment_request`` per seeded request.

Timed: :func:`include.pom.reconciliation.reconcile` — every status read
(paced by the client to the account's rate, a few requests in flight), the
paid ones booked, the report written. The anchor is the limit itself: the
best a client can do is R requests a second, so

    achieved = requests read / seconds,   ratio = achieved / R   (target ≥ 0.8)

The last line is ``ratio=<achieved/R> seconds=<s>``.

    .venv/bin/python bench/pom_reconcile.py                        # 100 000 requests, R = 500/s (~4 minutes)
    .venv/bin/python bench/pom_reconcile.py --n 5000 --rate 200    # quick
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

ACCOUNT = {"env": "prod", "username": "bench", "password": "bench-password", "sender_id": "BENCH",
           "sender_contract_number": "BENCH-1", "callback_secret": "bench-callback-secret", "auto_cancel": False}
AMOUNT = "25.00"
TARGET = 0.8


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_simulator(folder: Path, rate: float) -> tuple[subprocess.Popen[bytes], str]:
    accounts = folder / "accounts.json"
    accounts.write_text(json.dumps([ACCOUNT]))
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.pom_simulator", "--port", str(port), "--accounts-json", str(accounts),
         "--rate-limit", str(rate)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"{base}/_sim/clock", timeout=1).raise_for_status()
            return process, base
        except httpx.HTTPError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise SystemExit("the simulator did not start")
            time.sleep(0.1)


def seed(base: str, n: int, paid_every: int) -> tuple[list[str], int]:
    """Untimed: n open requests at POM, one in ``paid_every`` paid without a callback."""
    ids: list[str] = []
    with httpx.Client(base_url=base, timeout=120) as http:
        for start in range(0, n, 50_000):
            count = min(50_000, n - start)
            response = http.post("/_sim/seed-requests", json={"env": "prod", "username": "bench", "count": count,
                                                              "amount": AMOUNT, "start_counter": start + 1})
            response.raise_for_status()
            ids.extend(response.json()["ids"])
        paid = 0
        for pom_id in ids[::paid_every]:
            http.post(f"/_sim/pay/{pom_id}", json={"channel": "bancontact", "callback": False}).raise_for_status()
            paid += 1
    return ids, paid


def load(url: str, pom_ids: list[str]) -> None:
    """Untimed: one end user, then per POM request a sealed reference with one debt line and its request row."""
    from include.finance.bulk import insert_many
    from include.finance.db import create_schema, get_engine, transaction
    from include.finance.models import (
        DebtLine, EndUser, FinancialSystem, PaymentReference, PaymentReferenceLine, PaymentReferenceType,
        PomPaymentRequest,
    )
    from include.finance.reference_numbers import ogm

    engine = get_engine(url)
    create_schema(engine)
    now = datetime.now(timezone.utc)
    amount = Decimal(AMOUNT)
    with transaction(engine) as session:
        system = FinancialSystem(code="BIB", name="Bench library")
        online = PaymentReferenceType(code="ONLINE", name="Online", allowed_online=True)
        user = EndUser(eloi="e:BENCH:1", first_name="Bench", last_name="Payer")
        session.add_all([system, online, user])
        session.flush()
        n = len(pom_ids)
        insert_many(session, PaymentReference.__table__, (
            {"id": i, "loi": f"fp:BIB:{i}", "financial_system_id": system.id, "type_id": online.id,
             "end_user_id": user.id, "status": "sealed", "amount": amount, "open_amount": amount,
             "reference_number": ogm("", i), "due_date": date.today() + timedelta(days=30), "created_at": now}
            for i in range(1, n + 1)))
        insert_many(session, DebtLine.__table__, (
            {"id": i, "financial_system_id": system.id, "end_user_id": user.id, "transaction_code": "ZAAL",
             "amount": amount, "open_amount": amount, "created_on": date.today(), "payment_reference_id": i}
            for i in range(1, n + 1)))
        insert_many(session, PaymentReferenceLine.__table__, (
            {"id": i, "payment_reference_id": i, "debt_line_id": i, "transaction_code": "ZAAL", "amount": amount}
            for i in range(1, n + 1)))
        insert_many(session, PomPaymentRequest.__table__, (
            {"id": i, "payment_reference_id": i, "account": "default", "pom_id": pom_id,
             "idempotency_key": f"bench:{i}", "amount": amount, "communication": ogm("", i), "status": "open",
             "created_at": now, "updated_at": now}
            for i, pom_id in enumerate(pom_ids, 1)))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="open requests (default 100000)")
    parser.add_argument("--rate", type=float, default=500.0, help="the simulator's limit R, requests/s (default 500)")
    parser.add_argument("--paid-every", type=int, default=10, help="one in this many requests is paid (default 10)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="innen-bench-pom-") as tmp:
        folder = Path(tmp)
        os.environ["INNEN_VAR_DIR"] = str(folder / "var")
        simulator, base = start_simulator(folder, args.rate)
        try:
            started = time.perf_counter()
            pom_ids, paid = seed(base, args.n, args.paid_every)
            url = f"sqlite:///{folder / 'innen.sqlite'}"
            load(url, pom_ids)
            print(f"setup (untimed) {time.perf_counter() - started:.1f} s: {len(pom_ids)} open requests at POM, "
                  f"{paid} of them paid without a callback; limit R = {args.rate:g}/s")

            from include.finance.db import get_engine
            from include.pom.accounts import PomClients
            from include.pom.client import PomAccount
            from include.pom.reconciliation import reconcile

            account = PomAccount(
                name="default", base_url=base, env="prod", username=ACCOUNT["username"], password=ACCOUNT["password"],
                sender_id=ACCOUNT["sender_id"], sender_contract_number=ACCOUNT["sender_contract_number"],
                callback_secret=ACCOUNT["callback_secret"], rate_limit_per_second=args.rate,
                max_concurrency=args.concurrency,
            )
            engine = get_engine(url)
            with PomClients({"default": account}) as clients:
                started = time.perf_counter()
                report = reconcile(engine, clients, "bench", datetime.now(timezone.utc))
                seconds = time.perf_counter() - started
            hits = httpx.get(f"{base}/_sim/hits", params={"path_contains": "/payment-requests/"}, timeout=30).json()
        finally:
            simulator.terminate()
            simulator.wait(timeout=10)
    counts = report.counts
    achieved = args.n / seconds
    ratio = achieved / args.rate
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"reconcile: {seconds:.1f} s for {args.n} requests: booked {counts.get('booked', 0)}, "
          f"errors {counts.get('error', 0)}; server answers {hits.get('statuses')}")
    print(f"achieved {achieved:.1f} requests/s of R = {args.rate:g}/s; peak {peak:.0f} MB; "
          f"target ratio >= {TARGET}: {'met' if ratio >= TARGET else 'MISSED'}")
    print(f"ratio={ratio:.3f} seconds={seconds:.1f}")


if __name__ == "__main__":
    main()
