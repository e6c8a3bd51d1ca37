"""`make demo`: build the demo institution and run the direct-debit cycle through Airflow.

1. (Re)builds the demo database ``var/innen.sqlite`` and clears the demo's
   outbox and reports (a second ``make demo`` starts over, and says so).
2. Loads the demo institution (``sandbox/demo_institution.py``) dated around today.
3. Runs the DAG ``mandate_execution`` with ``dag.test()`` (a real Airflow
   run, in this process, against the metadata database under ``var/airflow``;
   task logs in ``var/demo/airflow.log``). Then starts Airflow itself
   (api-server, scheduler, dag-processor; :mod:`sandbox.airflow_services`):
   the demo user ``finance`` triggers ``pain_export`` through the REST API,
   both bank files wait in staging for approval, and ``finance2`` (four
   eyes) approves the library's; the academy's stays waiting (``make ui``:
   Browse → Required Actions).
4. Writes the library's bank statement for the collection date into the
   inbox (the run credited, two returns, invoices paid in full, in part and
   too much, an unknown transfer, a fee) and runs ``camt053_import``.
5. Starts the POM simulator and our callback app on loopback ports, runs
   ``pom_payment_requests`` (a QR code per open invoice and academy booking),
   lets payers pay some requests (most with a callback, some without), then
   ``pom_reconciliation`` (books what the callbacks missed) and
   ``payment_reference_expiry`` (bookings past their type's 7-day lifetime).
6. Runs the next night's ``invoice_run`` (run date the day after: every open
   sealed reference's invoice as PDF, with the EPC transfer code and POM's
   code, and that day's print overview, whose ``print.pdf`` also holds the
   academy's direct-debit notices ``mandate_execution`` made at once, as a
   type printed at once belongs to the next day's printing) and
   ``invoice_mailing`` (the e-mail invoices through POM, one batch per sales
   journal; the simulator's mail servers answer with the seed's messages),
   moves POM's clock two days on, drops the delivery reports in
   ``var/inbox/pom_reports/`` and runs ``pom_delivery_report``: one
   diagnosis and action per invoice × recipient.
7. Starts Airflow again: ``finance`` resolves one control-list item by hand
   (``control_list_resolve`` triggered through the REST API), and the demo
   prints where the Finance page and a run's Reports tab are.
8. Prints what came out of it, all read back from the database.

``INNEN_DEMO_DATE=YYYY-MM-DD`` runs the demo for another date.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from datetime import date, datetime, time as clock
from pathlib import Path
from typing import Any, Iterator, TextIO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from include.config import (  # noqa: E402
    DB_URL_SETTING,
    STORAGE_URL_SETTING,
    archive_dir,
    inbox_dir,
    invoices_dir,
    outbox_dir,
    quarantine_dir,
    reports_dir,
    staging_dir,
    storage_root,
    var_dir,
)
from include.runtime import LOCAL_ZONE  # noqa: E402
from include.storage import is_local  # noqa: E402


def _show(path: Path | str) -> str:
    """A path as the reader can use it: relative to the project when inside it."""
    if not isinstance(path, (str, Path)):
        return str(path)  # an object store's URL
    path = Path(path)
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _today() -> date:
    if os.environ.get("INNEN_DEMO_DATE"):
        return date.fromisoformat(os.environ["INNEN_DEMO_DATE"])
    return datetime.now(LOCAL_ZONE).date()


def _fresh_database() -> str:
    if os.environ.get(DB_URL_SETTING):
        print(f"Using {DB_URL_SETTING} from the environment; the demo loads only into an empty database.")
        return os.environ[DB_URL_SETTING]
    database = var_dir() / "innen.sqlite"
    if database.exists():
        print(f"Rebuilding the demo database {_show(database)} (the previous demo's data, outbox and reports are removed).")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    for folder in (outbox_dir(), staging_dir(), reports_dir(), storage_root() / "inbox", archive_dir(),
                   quarantine_dir(), invoices_dir()):
        if is_local(folder):
            shutil.rmtree(folder, ignore_errors=True)
        elif folder.exists():
            folder.fs.rm(folder.path, recursive=True)
    url = f"sqlite:///{database}"
    os.environ[DB_URL_SETTING] = url
    return url


@contextlib.contextmanager
def _output_to(log: TextIO) -> Iterator[None]:
    """Send file descriptors 1 and 2 to ``log`` (Airflow's loggers hold on to the real stdout)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def _run_dag(dag_id: str, logical_date: datetime | None, log: TextIO, conf: dict[str, Any] | None = None) -> None:
    from airflow.dag_processing.dagbag import DagBag

    started = time.perf_counter()
    with _output_to(log):
        bag = DagBag(dag_folder=str(ROOT / "dags"))
        if bag.import_errors:
            raise SystemExit(f"DAG import errors: {bag.import_errors}")
        run = bag.get_dag(dag_id).test(logical_date=logical_date, run_conf=conf)
    state = str(getattr(run, "state", "unknown"))
    print(f"  {dag_id}: {state} in {time.perf_counter() - started:.1f} s")
    if not state.endswith("success"):
        raise SystemExit(f"{dag_id} ended {state}; see {log.name}")


def _summary(url: str, run_date: date) -> None:
    from sqlalchemy import func, select

    from include.finance.db import get_engine, transaction
    from include.finance.models import BankFileApproval, BankHub, Collection, CollectionRun
    from include.finance.money import ZERO

    folder = reports_dir() / "mandate_check" / run_date.isoformat()
    print(f"\nMandate check {run_date} ({_show(folder)}/index.html):")
    for name in ("active-ok", "active-err", "nonactive-ok", "nonactive-err"):
        rows = sum(1 for _ in (folder / f"{name}.csv").open(encoding="utf-8-sig")) - 1
        print(f"  {name:<14}{rows:>5}")
    with transaction(get_engine(url), readonly=True) as session:
        runs = session.execute(
            select(CollectionRun, BankHub.code).join(BankHub, BankHub.id == CollectionRun.hub_id).order_by(CollectionRun.id)
        ).all()
        print("\nCollection runs:")
        for run, hub in runs:
            by_type = dict(
                session.execute(
                    select(Collection.sequence_type, func.count())
                    .where(Collection.run_id == run.id)
                    .group_by(Collection.sequence_type)
                ).all()
            )
            kinds = " ".join(f"{k} {by_type[k]}" for k in ("FRST", "RCUR", "FNAL", "OOFF") if k in by_type)
            print(
                f"  {run.loi:<10} {hub:<12} collect {run.collection_date}  {run.status:<8} "
                f"{run.transaction_count:>4} collections  EUR {run.total_amount:>10}   {kinds}"
            )
        print("\nBank files in the outbox:")
        total = ZERO
        for run, _hub in runs:
            if run.file_path:
                total += run.total_amount
                print(f"  {_show(Path(run.file_path))}")
                print(f"    sha256 {run.file_sha256}  {run.transaction_count} transactions  EUR {run.total_amount}")
            elif run.error:
                print(f"  {run.loi}: no file: {run.error}")
        for approval, loi in session.execute(
            select(BankFileApproval, CollectionRun.loi).join(CollectionRun, CollectionRun.id == BankFileApproval.run_id)
            .where(BankFileApproval.status == "waiting")
        ):
            print(f"  {loi}: waiting for approval in staging: {_show(Path(approval.staged_path))} "
                  f"(sha256 {approval.file_sha256}, {approval.transaction_count} transactions, "
                  f"EUR {approval.total_amount})")
        print(f"  total EUR {total}")
        from include.sepa.hubs import hub_problems

        for hub in session.scalars(select(BankHub).order_by(BankHub.id)):
            if problems := hub_problems(hub):
                print(f"  hub {hub.code}: no file: " + "; ".join(problems) + " (its mandates are on active-err)")


def main() -> None:
    started = time.perf_counter()
    run_date = _today()
    url = _fresh_database()

    import json

    from include.files import atomic_write
    from include.finance.db import create_schema, get_engine, transaction
    from sandbox.demo_cycle import cycle_figures, pay_some
    from sandbox.demo_institution import load_demo

    from sqlalchemy import func, select

    from include.finance.models import FinancialSystem

    engine = get_engine(url)
    create_schema(engine)
    with transaction(engine) as session:
        if session.scalar(select(func.count()).select_from(FinancialSystem)):
            raise SystemExit(f"{DB_URL_SETTING} points at a database that already holds data; the demo needs an empty one.")
        demo = load_demo(session, run_date)
    print(f"Demo institution loaded for {run_date}: {demo.users} end users, {demo.mandates} mandates, {demo.debt_lines} debt lines.")

    log_path = var_dir() / "demo" / "airflow.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"Running the direct-debit cycle through Airflow (task logs: {_show(log_path)}):")
    logical = datetime.combine(run_date, clock(5, 0), tzinfo=LOCAL_ZONE)
    log = log_path.open("w", encoding="utf-8")
    _run_dag("mandate_execution", logical, log)
    _approve_in_airflow(url)
    _summary(url, run_date)

    statement = _write_statement(engine)
    print(f"\nThe bank's statement arrives: {_show(statement)}; importing it through Airflow:")
    _run_dag("camt053_import", None, log)
    _statement_summary(engine)

    with _pom_services() as sim:
        print(f"\nPOM (simulator on {sim.base_url}, callbacks on {os.environ['INNEN_PUBLIC_URL']}):")
        _run_dag("pom_payment_requests", None, log)
        by_callback, silent = pay_some(engine, sim.base_url)
        print(f"  payers pay {by_callback} requests with a callback and {silent} without one (lost feedback)")
        _run_dag("pom_reconciliation", None, log)
        _run_dag("payment_reference_expiry", None, log)
        _pom_summary(engine)
        as_of = _invoices_and_mailing(engine, sim.base_url, run_date, log)
        print("  POM's delivery reports land in the inbox two days later; analysing them through Airflow:")
        _run_dag("pom_delivery_report", None, log, conf={"as_of": as_of})
        _delivery_summary(engine)
    _resolve_in_airflow(url)
    figures = var_dir() / "demo" / "figures.json"
    atomic_write(figures, json.dumps(cycle_figures(engine), indent=1, sort_keys=True).encode())
    print(f"\nThe cycle's figures (make cluster-check compares its own with them): {_show(figures)}")
    print(f"\nDone in {time.perf_counter() - started:.0f} s. Reports: {_show(reports_dir())}/, "
          f"bank files: {_show(outbox_dir())}/, statements: {_show(archive_dir())}/. "
          "`make ui` shows the runs in Airflow.")


def _airflow(url: str) -> Any:
    """Airflow on the demo's metadata database (``var/airflow``), Innen's database and folders."""
    from sandbox.airflow_services import AirflowServices

    return AirflowServices.prepare(Path(os.environ["AIRFLOW_HOME"]),
                                   env={DB_URL_SETTING: url, "INNEN_VAR_DIR": str(var_dir()),
                                        STORAGE_URL_SETTING: str(storage_root())})


def _approve_in_airflow(url: str) -> None:
    """finance triggers pain_export; finance2 approves the library's file over REST, the academy's waits."""
    from urllib.parse import quote

    from sqlalchemy import select

    from include.finance.db import get_engine, transaction
    from include.finance.models import BankFileApproval, BankHub, CollectionRun

    services = _airflow(url)
    started = time.perf_counter()
    print(f"  Airflow (api-server, scheduler, dag-processor) on {services.base}; finance triggers pain_export:")
    with services.running():
        with services.client("finance") as finance, services.client("finance2") as finance2:
            services.wait_for_dag(finance, "pain_export")
            started_run = services.trigger(finance, "pain_export")  # queued while the DAG is paused
            started_run.raise_for_status()
            run_id = started_run.json()["dag_run_id"]
            with services.client("admin") as admin:  # a previous demo's runs belong to the database it rebuilt
                old = admin.get("/api/v2/dags/pain_export/dagRuns", params={"state": ["queued", "running"]}).json()
                for run in old.get("dag_runs") or []:
                    if run["dag_run_id"] != run_id:
                        path = f"/api/v2/dags/pain_export/dagRuns/{quote(run['dag_run_id'], safe='')}"
                        admin.patch(path, json={"state": "failed"}).raise_for_status()
                        admin.delete(path).raise_for_status()
                        print(f"    an earlier run {run['dag_run_id']} removed (its database was rebuilt)")
            services.unpause("pain_export")
            with transaction(get_engine(url), readonly=True) as session:
                expected = len(session.scalars(select(CollectionRun.id).where(CollectionRun.status == "ready")).all())
            waiting = services.awaiting(finance, "pain_export", run_id, "bank_file.approve", count=expected)
            with transaction(get_engine(url), readonly=True) as session:
                staged = {a.airflow_task: (hub, a) for a, hub in session.execute(
                    select(BankFileApproval, BankHub.code)
                    .join(CollectionRun, CollectionRun.id == BankFileApproval.run_id)
                    .join(BankHub, BankHub.id == CollectionRun.hub_id)
                    .where(BankFileApproval.status == "waiting"))}
            for ti in waiting:
                hub, approval = staged[f"pain_export/{run_id}/bank_file.approve/{ti['map_index']}"]
                print(f"    waiting for approval: {approval.summary['file_name']} ({hub}, "
                      f"{approval.transaction_count} collections, EUR {approval.total_amount}, "
                      f"sha256 {approval.file_sha256[:16]}…)")
                if hub == "KBC-BIB":
                    answer = services.answer(finance2, "pain_export", run_id, "bank_file.approve", ti["map_index"],
                                             "Approve", {"reason": ""})
                    answer.raise_for_status()
                    services.wait_until(finance, "pain_export", run_id, lambda tis, i=ti["map_index"]: any(
                        t["task_id"] == "bank_file.release" and t["map_index"] == i and t["state"] == "success"
                        for t in tis), what="released")
                    print(f"    approved by finance2 through the REST API (four eyes: finance triggered it): "
                          f"{approval.summary['file_name']} released to the outbox")
                else:
                    print("    left waiting: approve or reject it in `make ui` (Browse → Required Actions) as "
                          "finance2 or finance-admin")
    print(f"  pain_export: files staged and one approved in {time.perf_counter() - started:.1f} s")


def _resolve_in_airflow(url: str) -> None:
    """finance resolves one control-list item by hand, through control_list_resolve over REST."""
    from sqlalchemy import select

    from include.finance.db import get_engine, transaction
    from include.finance.models import ControlListItem

    with transaction(get_engine(url), readonly=True) as session:
        item = session.scalars(select(ControlListItem).where(ControlListItem.resolved_at.is_(None),
                                                             ControlListItem.kind == "unmatched")
                               .order_by(ControlListItem.id)).first()
        if item is None:
            item = session.scalars(select(ControlListItem).where(ControlListItem.resolved_at.is_(None))
                                   .order_by(ControlListItem.id)).first()
    if item is None:
        print("\nNo open control-list item to resolve.")
        return
    services = _airflow(url)
    print(f"\nFinance in Airflow ({services.base}):")
    with services.running():
        services.unpause("control_list_resolve")
        with services.client("finance") as finance:
            started = services.trigger(finance, "control_list_resolve", {
                "item": item.id, "action": "handle", "note": "refunded to the payer by bank transfer (demo)"})
            started.raise_for_status()
            run_id = started.json()["dag_run_id"]
            state = services.finished(finance, "control_list_resolve", run_id)
        with transaction(get_engine(url), readonly=True) as session:
            done = session.get(ControlListItem, item.id)
            print(f"  control-list item {item.id} ({item.kind}, EUR {item.amount}): control_list_resolve {state}; "
                  f"{done.resolution} by {done.resolved_by}: {done.resolution_note}")
        with services.client("finance") as finance:
            exports = finance.get("/api/v2/dags/pain_export/dagRuns", params={"order_by": "-run_after", "limit": 1})
            export_run = (exports.json().get("dag_runs") or [{}])[0].get("dag_run_id", "")
    from urllib.parse import quote

    port = os.environ.get("AIRFLOW__API__PORT", "8080")
    ui = f"http://localhost:{port}"
    print(f"  `make ui`, then log in (users in {_show(services.home / 'innen-demo-users.json')}):")
    print(f"    Finance page:  {ui}/plugin/innen-finance   (the page itself: {ui}/innen-finance/finance)")
    if export_run:
        print(f"    Reports tab of the bank-file run: {ui}/dags/pain_export/runs/{quote(export_run, safe='')}"
              f"/plugin/innen-reports")
        print(f"    Waiting approvals: {ui}/required_actions (Browse → Required Actions)")


@contextlib.contextmanager
def _pom_services() -> Iterator[Any]:
    """The POM simulator and our callback app, each on a free loopback port, for the demo's run.

    The demo's POM account gets fresh random credentials, registered with the
    simulator and handed to Airflow as the Connection ``pom_default``
    (``AIRFLOW_CONN_POM_DEFAULT``): no secret lives in the code.
    """
    import json
    import logging

    from include.pom.callbacks import RunningApp, create_app
    from sandbox.demo_cycle import fresh_pom_account, pom_connection
    from sandbox.pom_simulator import run_in_thread

    account = fresh_pom_account()
    logging.getLogger("include.pom.callbacks").setLevel(logging.WARNING)  # one line per callback is for the UI's logs
    with run_in_thread(accounts=[account]) as sim, RunningApp(create_app()) as callbacks:
        os.environ["INNEN_PUBLIC_URL"] = callbacks.base_url
        os.environ["AIRFLOW_CONN_POM_DEFAULT"] = json.dumps(pom_connection(account, sim.base_url))
        yield sim


def _pom_summary(engine) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from include.finance.db import transaction
    from include.finance.models import PaymentReference, PomEvent, PomPaymentRequest

    with transaction(engine, readonly=True) as session:
        statuses = dict(session.execute(
            select(PomPaymentRequest.status, func.count()).group_by(PomPaymentRequest.status)).all())
        events = dict(session.execute(select(PomEvent.outcome, func.count()).group_by(PomEvent.outcome)).all())
        expired = session.scalar(select(func.count()).select_from(PaymentReference).where(PaymentReference.status == "expired"))
    print("  requests: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
    print("  callbacks taken: " + (", ".join(f"{k} {v}" for k, v in sorted(events.items())) or "none"))
    print(f"  references expired after their type's lifetime: {expired}")
    print(f"  reconciliation report: {_show(reports_dir() / 'pom_reconciliation')}/")


def _invoices_and_mailing(engine, base_url: str, run_date: date, log: TextIO) -> str:  # type: ignore[no-untyped-def]
    """Make the invoices (``invoice_run``) and e-mail them through POM (``invoice_mailing``); returns the analysis moment.

    The first recipients' mail servers are scripted to answer with the seed's
    messages; two customers' records keep POM from mailing them (see
    ``sandbox/demo_institution.py``). Two days later each batch's delivery report lands in
    the inbox.
    """
    from sqlalchemy import func, select

    from include.finance.db import transaction
    from include.finance.models import Invoice, PaymentReference, PaymentReferenceType
    from include.invoices.making import next_print_day
    from include.invoices.print_overview import PAPER, folder_for
    from include.pom.accounts import PomClients, accounts_from_env
    from sandbox.demo_cycle import deliver_reports, mailed_batches, script_mail_servers

    # mandate_execution (05:00) made the academy's notices at once, after that day's 02:30 run: the next night's
    # run prints them, with the invoices it makes itself.
    night = next_print_day(run_date)
    print(f"\nInvoices, the night of {night} (templates: {_show(ROOT / 'templates' / 'invoices')}/):")
    _run_dag("invoice_run", None, log, conf={"run_date": night.isoformat()})
    with transaction(engine, readonly=True) as session:
        channels = dict(session.execute(select(Invoice.channel, func.count()).where(Invoice.withdrawn_at.is_(None))
                                        .group_by(Invoice.channel)).all())
        printed = dict(session.execute(
            select(PaymentReferenceType.direct_print, func.count())
            .join(PaymentReference, PaymentReference.type_id == PaymentReferenceType.id)
            .join(Invoice, Invoice.payment_reference_id == PaymentReference.id)
            .where(Invoice.print_day == night, Invoice.withdrawn_at.is_(None), Invoice.channel.in_(PAPER))
            .group_by(PaymentReferenceType.direct_print)).all())
    overview = folder_for(night)
    print("  invoices: " + ", ".join(f"{k} {v}" for k, v in sorted(channels.items()))
          + f" ({_show(invoices_dir() / night.isoformat())}/)")
    print(f"  the day's printing: {_show(overview / 'index.html')}, for the print room {_show(overview / 'print.pdf')}")
    print(f"  print.pdf: {sum(printed.values())} paper invoices, of which {printed.get(True, 0)} direct-debit "
          f"notices mandate_execution made at once on {run_date} (a type printed at once goes to the next "
          "day's printing)")
    script_mail_servers(engine, base_url)
    _run_dag("invoice_mailing", None, log, conf={"day": night.isoformat()})
    print("  e-mailed through POM: " + ", ".join(f"batch {b} ({n} invoices)" for b, n in mailed_batches(engine)))
    with PomClients(accounts_from_env(["default"])) as clients:
        return deliver_reports(engine, base_url, clients.client("default"), inbox_dir("pom_reports"))


def _delivery_summary(engine) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from include.finance.db import transaction
    from include.finance.models import DeliveryDiagnosis

    with transaction(engine, readonly=True) as session:
        counts = dict(session.execute(
            select(DeliveryDiagnosis.diagnosis, func.count()).group_by(DeliveryDiagnosis.diagnosis)).all())
    print("  diagnoses: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    folders = sorted((reports_dir() / "pom_delivery").glob("*/index.html"))
    for page in folders:
        print(f"  action list: {_show(page)}")


def _write_statement(engine) -> Path:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from sandbox.demo_institution import write_demo_statement
    from include.finance.db import transaction
    from include.finance.models import BankHub, CollectionRun

    with transaction(engine, readonly=True) as session:
        day = session.scalars(
            select(CollectionRun.collection_date).join(BankHub, BankHub.id == CollectionRun.hub_id).where(BankHub.code == "KBC-BIB")
        ).first()
        return write_demo_statement(session, inbox_dir("camt053"), day)


def _statement_summary(engine) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from include.finance.db import transaction
    from include.finance.models import BankEntry, BankStatement, Collection, CollectionRun, ControlListItem, Mandate, Payment
    from include.sepa.control_list import folder_for

    with transaction(engine, readonly=True) as session:
        for statement in session.scalars(select(BankStatement).order_by(BankStatement.id)):
            outcomes = dict(session.execute(
                select(BankEntry.outcome, func.count()).where(BankEntry.statement_id == statement.id).group_by(BankEntry.outcome)
            ).all())
            items = session.scalar(select(func.count()).select_from(ControlListItem).where(ControlListItem.statement_id == statement.id))
            print(f"  statement {statement.statement_id} of {statement.account}: {statement.new_lines} lines: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
            print(f"  control list ({items} items): {_show(folder_for(session, statement) / 'index.html')}")
        booked = session.scalar(select(func.coalesce(func.sum(Payment.amount), 0)).where(Payment.amount > 0))
        returned = session.scalar(select(func.count()).select_from(Collection).where(Collection.status == "returned"))
        blocked = session.scalar(select(func.count()).select_from(Mandate).where(Mandate.blocked_reason.is_not(None)))
        confirmed = session.scalars(select(CollectionRun.loi).where(CollectionRun.status == "confirmed")).all()
        print(f"  payments booked EUR {booked}; collections returned {returned}; mandates blocked {blocked}")
        print(f"  collection runs settled by the statement (confirmed): {', '.join(confirmed) or 'none'}")


if __name__ == "__main__":
    from include.errors import InnenError

    try:
        main()
    except InnenError as exc:
        raise SystemExit(f"demo stopped: {exc}") from None
