"""Benchmark: 10 hubs × 10 000 collections exported through Airflow on the local cluster, by one Celery worker and two.

The cluster of ``make cluster`` (started here when it is not running; :mod:`sandbox.cluster`) gets, in its Innen
database (emptied first), one financial system with ``--hubs`` bank hubs, each with one ``ready`` collection run of
``--collections`` direct debits (their end users, mandates and sealed references), loaded untimed with COPY. The
hubs release their files without finance's approval, so nobody has to answer. Then, timed from the REST call that
triggers ``pain_export`` until Airflow reports its run successful, the run exports every collection run (one mapped
``bank_file`` group per run: ``export_run`` writes and records the pain.008 file, ``approve`` and ``release`` pass
it on), twice:

* **one worker**: ``worker-1`` alone, with one task slot (``--concurrency 1``); ``worker-2`` stopped;
* **two workers**: ``worker-1`` and ``worker-2``, one task slot each.

Between the two the runs are made ``ready`` again and the outbox emptied. Last, the floor: the same exports
in-process (``export_collection_run``, no Airflow), one after the other in one process, then two processes at once.
Every other DAG is paused while the bench runs; the workers, the pauses and (if the bench started it) the cluster
are put back as they were.

The last line is ``speedup=<one worker's seconds / two workers' seconds> seconds=<two workers' seconds>``.

    .venv/bin/python bench/cluster.py                                 # 10 hubs × 10 000 collections
    .venv/bin/python bench/cluster.py --hubs 4 --collections 2000     # quick
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from statistics import median
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from children import in_child  # noqa: E402

from include.storage import location  # noqa: E402
from sandbox import cluster  # noqa: E402

RUN_DATE = date(2026, 3, 2)
COLLECTION_DATE = date(2026, 3, 4)
CREATED_AT = datetime(2026, 3, 2, 6, 0, tzinfo=timezone.utc)
ACCOUNTS = 5_000  # distinct debtor accounts, shared as families share them
FRST_EVERY = 5  # one collection in five is a first one
OTHER_WORKER = cluster.WORKERS[1]


# --- synthetic data ---------------------------------------------------------------------------------------------


def _spread(number: int) -> int:
    """A well-mixed deterministic integer per collection (Knuth's multiplicative hash)."""
    return (number * 2654435761) % 4294967296


def _cents(number: int) -> int:
    k = _spread(number)
    return 500 + k % 24_500 if k % 10 else 25_000 + k % 125_000


def load(url: str, hubs: int, per_hub: int) -> dict[str, Any]:
    """Innen's schema afresh, then the hubs, their runs and their collections (untimed)."""
    import random
    from decimal import Decimal

    from schwifty import IBAN
    from sqlalchemy import insert

    from include.finance.db import create_schema, get_engine
    from include.finance.models import (
        BankHub,
        Base,
        Collection,
        CollectionRun,
        EndUser,
        FinancialSystem,
        Mandate,
        PaymentReference,
        PaymentReferenceType,
    )
    from include.finance.names import name_key
    from include.finance.reference_numbers import ogm
    from include.sepa.identifiers import creditor_id, enterprise_number
    from sandbox.bench_loading import copy_all
    from sandbox.demo_institution import BANK_CODES, FIRST_NAMES, LAST_NAMES

    started = time.perf_counter()
    rng = random.Random(20260302)
    accounts: dict[str, str] = {}
    while len(accounts) < ACCOUNTS:
        iban = IBAN.generate("BE", rng.choice(BANK_CODES), f"{rng.randrange(10**7):07d}")
        accounts[iban.compact] = str(iban.bic)
    debtors = list(accounts.items())
    names = [(first, last, name_key(f"{first} {last}")) for first in FIRST_NAMES for last in LAST_NAMES]
    creditors = {h: creditor_id("BE", enterprise_number(2074625 + h)) for h in range(1, hubs + 1)}
    total = hubs * per_hub

    def hub_of(n: int) -> int:
        return (n - 1) // per_hub + 1

    engine = get_engine(url)
    Base.metadata.drop_all(engine)
    create_schema(engine)
    with engine.begin() as connection:
        connection.execute(insert(FinancialSystem.__table__), [
            {"id": 1, "code": "BIB", "name": "Bibliotheeknetwerk Regio Leuven", "merchant_name": "Bibliotheek Leuven"}])
        connection.execute(insert(PaymentReferenceType.__table__), [
            {"id": 1, "code": "DOM-BIB", "name": "Domiciliëring", "reference_format": "OGM",
             "reference_counter": "ogm-bib", "reference_prefix": "062"}])
        hub_rows = []
        for h in range(1, hubs + 1):
            account = IBAN.generate("BE", "734", f"{190000 + h:07d}")
            hub_rows.append({
                "id": h, "code": f"HUB-{h:02d}", "name": f"Hub {h:02d} — bibliotheek", "financial_system_id": 1,
                "creditor_iban": account.compact, "creditor_bic": str(account.bic),
                "creditor_name": f"Bibliotheek {h:02d}", "initiator_name": "Bibliotheeknetwerk Regio Leuven",
                "creditor_id": creditors[h], "creditor_street": "Rijschoolstraat", "creditor_house_number": "4",
                "creditor_postal_code": "3000", "creditor_city": "Leuven", "creditor_country": "BE",
                "export_format": "SEPA", "lead_days": 2, "approval_required": False, "four_eyes": False,
            })
        connection.execute(insert(BankHub.__table__), hub_rows)
        connection.execute(insert(CollectionRun.__table__), [
            {"id": h, "loi": f"fj:BIB:{h}", "hub_id": h, "collection_date": COLLECTION_DATE, "run_date": RUN_DATE,
             "status": "ready", "transaction_count": per_hub, "created_at": CREATED_AT, "created_by": "bench",
             "total_amount": Decimal(sum(_cents(n) for n in range(h * per_hub - per_hub + 1, h * per_hub + 1)))
             .scaleb(-2)} for h in range(1, hubs + 1)])

    def users():  # type: ignore[no-untyped-def]
        for n in range(1, total + 1):
            first, last, key = names[(_spread(n) >> 8) % len(names)]
            yield {"id": n, "eloi": f"e:LEU:{n}", "first_name": first, "last_name": last, "name_key": key,
                   "language": "nl"}

    def mandates():  # type: ignore[no-untyped-def]
        for n in range(1, total + 1):
            iban, bic = debtors[_spread(n) % len(debtors)]
            yield {"id": n, "loi": f"fm:BIB:{n}", "financial_system_id": 1, "reference": f"BIB-M-{n:07d}",
                   "active": True, "type_id": 1, "signature_date": date(2024, 1, 15) - timedelta(days=n % 700),
                   "hub_id": hub_of(n), "end_user_id": n, "debtor_id": n, "debtor_iban": iban, "debtor_bic": bic,
                   "created_at": CREATED_AT}

    def references():  # type: ignore[no-untyped-def]
        for n in range(1, total + 1):
            amount = Decimal(_cents(n)).scaleb(-2)
            yield {"id": n, "loi": f"fp:BIB:{n}", "financial_system_id": 1, "type_id": 1, "end_user_id": n,
                   "mandate_id": n, "hub_id": hub_of(n), "status": "sealed", "amount": amount, "open_amount": amount,
                   "reference_number": ogm("062", n), "due_date": COLLECTION_DATE, "created_at": CREATED_AT,
                   "sealed_at": CREATED_AT}

    def collections():  # type: ignore[no-untyped-def]
        for n in range(1, total + 1):
            iban, bic = debtors[_spread(n) % len(debtors)]
            yield {"id": n, "run_id": hub_of(n), "mandate_id": n, "payment_reference_id": n,
                   "sequence_type": "FRST" if n % FRST_EVERY == 1 else "RCUR", "due_date": COLLECTION_DATE,
                   "amount": Decimal(_cents(n)).scaleb(-2), "end_to_end_id": f"fp:BIB:{n}", "status": "pending",
                   "mandate_reference": f"BIB-M-{n:07d}", "debtor_iban": iban, "debtor_bic": bic,
                   "creditor_id": creditors[hub_of(n)], "debtor_agent_changed": False}

    counts = {}
    for table, rows in ((EndUser.__table__, users()), (Mandate.__table__, mandates()),
                        (PaymentReference.__table__, references()), (Collection.__table__, collections())):
        with engine.begin() as connection:
            counts[table.name] = copy_all(connection, table, rows)
    with engine.begin() as connection:  # the ids were ours: the sequences go on after them
        for table in ("financial_system", "payment_reference_type", "bank_hub", "collection_run", "end_user",
                      "mandate", "payment_reference", "collection"):
            connection.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                       f"(SELECT max(id) FROM {table}))")
    _vacuum(engine)
    engine.dispose()
    return {"counts": counts, "seconds": time.perf_counter() - started}


def reset(url: str) -> None:
    """Every run ``ready`` again and its collections ``pending``, as loaded (the export's audit rows gone)."""
    from include.finance.db import get_engine

    engine = get_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE collection_run SET status = 'ready', export_format = NULL, file_path = NULL,"
                                   " file_sha256 = NULL, error = NULL, exported_at = NULL")
        connection.exec_driver_sql("UPDATE collection SET status = 'pending'")
        connection.exec_driver_sql("DELETE FROM audit_log")
    _vacuum(engine)
    engine.dispose()


def _vacuum(engine: Any) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")  # as autovacuum would leave the tables


def _empty(folder: Path) -> None:
    for path in folder.glob("*") if folder.exists() else []:
        if path.is_file():
            path.unlink()


# --- through Airflow --------------------------------------------------------------------------------------------


def _workers(count: int) -> None:
    """``count`` workers consuming, one task slot each (untimed: a Celery worker takes seconds to start)."""
    cluster.restart_worker(cluster.WORKERS[0], concurrency=1)
    if count == 2:
        cluster.restart_worker(OTHER_WORKER, concurrency=1)
    else:
        cluster.stop_worker(OTHER_WORKER)


def _when(value: str | None) -> float | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


def through_airflow(services: Any, url: str, hubs: int, per_hub: int, timeout: float) -> dict[str, Any]:
    """Trigger ``pain_export`` as finance and wait for its run; the wall time and the task instances' times."""
    from include.finance.db import get_engine, transaction
    from include.finance.models import CollectionRun

    with services.client("finance") as finance:
        started = time.time()
        answer = services.trigger(finance, "pain_export", {})
        answer.raise_for_status()
        run_id = answer.json()["dag_run_id"]
        path = f"/api/v2/dags/pain_export/dagRuns/{quote(run_id, safe='')}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = finance.get(path).json()["state"]
            if state in ("success", "failed"):
                break
            time.sleep(0.2)
        seconds = time.time() - started
        run = finance.get(path).json()
        tis = services.task_instances(finance, "pain_export", run_id)
    if state != "success":
        logs = services.task_logs("pain_export", run_id)
        raise SystemExit(f"pain_export {run_id}: {state} after {seconds:.0f} s:\n{logs}")
    with transaction(get_engine(url), readonly=True) as session:
        runs = session.query(CollectionRun).all()
        exported = [r for r in runs if r.status == "exported" and r.transaction_count == per_hub
                    and r.file_path and Path(r.file_path).is_file()]
    if len(exported) != hubs:
        raise SystemExit(f"{len(exported)} of {hubs} runs exported with their file: "
                         f"{[(r.loi, r.status) for r in runs]}")
    return {"seconds": seconds, "started": started, "run": run, "tis": tis,
            "files": sorted(Path(r.file_path).name for r in exported)}


def _workloads(worker_logs: list[Path]) -> dict[str, tuple[float, float]]:
    """Task instance id → (start, end) of the Celery workload that ran it, from the workers' own accounting."""
    import re

    finished = re.compile(r"^(\S+) .*Workload finished .*duration=([0-9.]+).*workload_id=(\S+)")
    spans = {}
    for path in worker_logs:
        for line in path.read_text(errors="replace").splitlines():
            if (match := finished.match(line)) is not None:
                end = _when(match.group(1))
                spans[match.group(3)] = (end - float(match.group(2)), end)
    return spans


def breakdown(result: dict[str, Any], slots: int) -> list[str]:
    """Where the wall time went: Airflow's task instances (queued, started, ended) and the workers' workloads."""
    tis, started, wall = result["tis"], result["started"], result["seconds"]
    spans = _workloads(sorted((cluster.CLUSTER / "airflow").glob("worker-*.log")))
    key = {t["id"]: (t["task_id"].split(".")[-1], t["map_index"]) for t in tis}
    queued = {key[t["id"]]: _when(t["queued_when"]) for t in tis}
    begun = {key[t["id"]]: _when(t["start_date"]) for t in tis}
    ended = {key[t["id"]]: _when(t["end_date"]) for t in tis}
    slot = {key[i]: spans[i] for i in key if i in spans}
    upstream = {"export_run": "runs_to_export", "approve": "export_run", "release": "approve"}
    gaps = []  # an upstream task ended → its downstream task queued: the scheduler's reaction
    for (task, index), moment in queued.items():
        if (parent := upstream.get(task)) is not None:
            gaps.append(moment - ended[(parent, -1 if parent == "runs_to_export" else index)])
    lines = [f"  trigger → first task queued {min(queued.values()) - started:.2f} s; "
             f"upstream ended → downstream queued median {median(gaps):.2f} s, max {max(gaps):.2f} s; "
             f"last task ended → run success seen {started + wall - max(ended.values()):.2f} s"]
    for task in ("runs_to_export", "export_run", "approve", "release"):
        keys = [k for k in queued if k[0] == task]
        waits = [begun[k] - queued[k] for k in keys]
        runs = [ended[k] - begun[k] for k in keys]
        before = [begun[k] - slot[k][0] for k in keys if k in slot]
        after = [slot[k][1] - ended[k] for k in keys if k in slot]
        lines.append(f"  {task:14s} x{len(keys):<3d} queued → started median {median(waits):5.2f} s; running median "
                     f"{median(runs):5.2f} s (sum {sum(runs):6.1f})" + (
                         f"; worker slot held before it {median(before):4.2f} s, after it {median(after):4.2f} s "
                         f"(sum {sum(after):5.1f})" if after else ""))
    running = sum(ended[k] - begun[k] for k in ended)
    held = sum(end - begin for begin, end in slot.values())
    lines.append(f"  worker slots ({slots} × {wall:.1f} s = {slots * wall:.1f} s): tasks running {running:.1f} s, "
                 f"held by their workloads {held:.1f} s, idle {slots * wall - held:.1f} s")
    return lines


# --- the floor: the same exports without Airflow --------------------------------------------------------------------


def export_in_process(url: str, lois: list[str], outbox: str) -> dict[str, Any]:
    from include.finance.db import get_engine
    from include.sepa.export import export_collection_run

    engine = get_engine(url)
    started = time.perf_counter()
    each = []
    for loi in lois:
        begun = time.perf_counter()
        result = export_collection_run(loi, "bench", engine=engine, outbox=Path(outbox))
        assert result["status"] == "exported", result
        each.append(time.perf_counter() - begun)
    engine.dispose()
    return {"seconds": time.perf_counter() - started, "each": each}


def in_children(function: Any, arguments: list[tuple[Any, ...]]) -> tuple[float, list[Any]]:
    """``function`` in one forked child per argument tuple, all at once; the wall time and their results."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    started = time.perf_counter()
    with context.Pool(len(arguments)) as pool:
        results = pool.starmap(function, arguments)
    return time.perf_counter() - started, results


# --- the bench ---------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hubs", type=int, default=10, help="bank hubs, one collection run each (default 10)")
    parser.add_argument("--collections", type=int, default=10_000, help="collections per run (default 10000)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for one pain_export run")
    args = parser.parse_args()
    if args.hubs < 2 or args.collections < 1:
        parser.error("--hubs must be at least 2 and --collections at least 1")

    started_here = not cluster.running()
    if started_here:
        print("starting the cluster (make cluster)", flush=True)
        cluster.start()
    services = cluster.services(prepare=False)
    url = services.env["INNEN_DB_URL"]
    outbox = location(services.env["INNEN_STORAGE_URL"]) / "outbox"
    print(f"pain.008 export through Airflow on the local cluster: {args.hubs} hubs × {args.collections} collections, "
          f"Innen's database {url.rsplit('@', 1)[-1]} (emptied), {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}", flush=True)
    loaded, _ = in_child(load, url, args.hubs, args.collections)
    print(f"setup (untimed): {loaded['counts']} in {loaded['seconds']:.1f} s", flush=True)

    with services.client("admin") as admin:
        dags = admin.get("/api/v2/dags", params={"limit": 100}).json()["dags"]
        was_paused = {d["dag_id"]: d["is_paused"] for d in dags}
        for dag_id in was_paused:
            admin.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": dag_id != "pain_export"}).raise_for_status()
    results: dict[int, dict[str, Any]] = {}
    try:
        for count in (1, 2):
            if count == 2:
                reset(url)
            _empty(outbox)
            _workers(count)
            time.sleep(5)  # the restarted worker's first heartbeat and the scheduler's view of the slots
            results[count] = through_airflow(services, url, args.hubs, args.collections, args.timeout)
            workers = " and ".join(cluster.WORKERS[:count])
            print(f"{count} worker{'s' if count > 1 else ''} ({workers}, 1 task slot each): "
                  f"{results[count]['seconds']:7.2f} s from trigger to run success, "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
            for line in breakdown(results[count], count):
                print(line)
    finally:
        for worker in cluster.WORKERS:
            cluster.restart_worker(worker)
        with services.client("admin") as admin:
            for dag_id, paused in was_paused.items():
                admin.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": paused})
        _empty(outbox)

    lois = [f"fj:BIB:{h}" for h in range(1, args.hubs + 1)]
    with tempfile.TemporaryDirectory(prefix="innen-bench-cluster-") as tmp:
        reset(url)
        alone, _ = in_child(export_in_process, url, lois, tmp)
        reset(url)
        halves = [(url, lois[0::2], tmp), (url, lois[1::2], tmp)]
        both, _ = in_children(export_in_process, halves)
    print(f"floor, the same exports in-process without Airflow: one process {alone['seconds']:6.2f} s "
          f"(each {median(alone['each']):.2f} s median), two processes at once {both:6.2f} s "
          f"(speedup {alone['seconds'] / both:.2f})")
    if started_here:
        print("stopping the cluster the bench started: " + ", ".join(cluster.stop()))
    one, two = results[1]["seconds"], results[2]["seconds"]
    print(f"speedup={one / two:.2f} seconds={two:.2f}")


if __name__ == "__main__":
    main()
