"""
### POM delivery reports: why an e-mailed invoice did not arrive (seed 003)

POM writes one line per attempt to e-mail an invoice to one recipient. This
DAG reads those reports, joins them to the invoices we sent in the batch and
to each customer's contacts and addresses, and gives **every invoice ×
recipient one diagnosis and one action** for finance.

**When**

* every 15 minutes: the reports waiting in `var/inbox/pom_reports/` (finance
  downloads one from the POM portal: Artikelen – POM accounts – the POM user –
  Rapporten – Batch – Ophalen, and saves it there as CSV);
* nightly (the 03:00 run): the reports of the batches sent in the last 4 days,
  fetched from POM with the Connection `pom_default` and that of every other
  account that e-mailed invoices in those days (`pom_<account>`, the reference
  type's); a temporary failure is retried by POM for 48 hours, so a batch is
  looked at again until it settles;
* by hand: `path` (a file or a folder inside the inbox; one outside it, missing, or a folder with no `.csv`
  or `.txt` in it fails the run at once, naming the param) and/or `fetch_days`; `as_of` (ISO with an offset, UTC without one;
  empty: now) replays a night: the moment of the 48-hour rule and of the fetch window. A malformed value fails
  the run at once, naming it.

**What the report says → what to do**

| report | diagnosis | action |
|---|---|---|
| no line for a contact | not attempted: "E-mail ontvanger" off, or a contact on a later address without "copy per address" on the address *and* the sales journal | fix the customer record (each flag named, and where) |
| `DELIVERED` | delivered | nothing; if it "never arrived": spam filter, safe senders |
| "… Retrying might result …", "… mailbox is full." | retrying (< 48 h) / given up (≥ 48 h, no later DELIVERED) | wait / send another way |
| "… It will be blacklisted …", "EmailAddress of recipient is blacklisted." | bad address | correct or replace it |
| "User has unsubscribed from receiving pom mails." | unsubscribed | send another way |
| "DocumentId already used." | duplicate document id | contact POM support |
| anything else | unknown (raw text kept) | contact POM support |

The latest attempt decides. Rerunning a batch replaces its earlier analysis.

**Output**: `var/reports/pom_delivery/<batch>/index.html`, `action-list.csv`
(`;`, what finance must do, grouped by action), `delivered.csv` (every
delivered invoice × recipient, to look up) and `summary.csv`; tables
`delivery_report`, `delivery_report_line`, `delivery_diagnosis`. An analysed file moves to `var/archive/pom_reports/`; a
refused one (empty, binary, wrong encoding, a required column missing …) to
`var/quarantine/pom_reports/` with `<file>.reason.txt`, nothing of it is
stored, and its task fails.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from include.airflow_roles import access_control

log = logging.getLogger(__name__)


@dag(
    dag_id="pom_delivery_report",
    schedule="*/15 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Brussels"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=5), "owner": "finance"},
    tags=["innen", "pom", "delivery-report"],
    params={
        "path": Param(
            None, type=["null", "string"], title="File or folder",
            description="A delivery report (CSV) or a folder of them, inside the inbox (relative: to it). "
                        "Empty: the inbox var/inbox/pom_reports.",
        ),
        "fetch_days": Param(
            None, type=["null", "integer"], minimum=1, maximum=90, title="Fetch from POM (days)",
            description="Fetch the reports of the batches sent in the last N days. Empty: only on the nightly "
            "run, for 4 days.",
        ),
        "as_of": Param(
            None, type=["null", "string"], format="date-time", title="As of (UTC; empty: now)",
            description="The moment of the 48-hour rule, for replaying a night; leave empty.",
        ),
    },
    access_control=access_control("pom_delivery_report"),
    doc_md=__doc__,
)
def pom_delivery_report() -> None:
    @task
    def reports_in_inbox() -> list[str]:
        from airflow.sdk.exceptions import AirflowFailException

        from include.errors import InnenError
        from include.pom.delivery_files import pending_reports

        try:
            files = [str(path) for path in pending_reports(get_current_context()["params"].get("path"))]
        except InnenError as refusal:  # a person's param: no retry cures it
            raise AirflowFailException(f"param path: {refusal}") from None
        log.info("delivery reports to analyse: %s", files or "none")
        return files

    @task(max_active_tis_per_dagrun=1)
    def analyse_file(path: str) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from include.pom.delivery_files import analyse_report_file
        from include.pom.delivery_reader import DeliveryReportRefused
        from include.runtime import ParamError, actor, as_of

        context = get_current_context()
        try:
            moment = as_of(context)
        except ParamError as exc:  # a person's param: no retry cures it
            raise AirflowFailException(str(exc)) from None
        try:
            result = analyse_report_file(path, actor(context), now=moment)
        except DeliveryReportRefused as refusal:
            raise AirflowFailException(f"refused and quarantined: {refusal}") from None
        log.info("%s: %s lines, %s invoice × recipient, %s; action lists %s", result["file"], result["lines"],
                 result["recipients"], result["summary"], [a["html"] for a in result["action_lists"]])
        return result

    @task
    def fetch_from_pom() -> dict:
        from airflow.sdk import Connection
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

        from include.pom.accounts import PomClients, accounts_from_connections
        from include.pom.delivery_files import delivery_report_accounts, fetch_delivery_reports, fetch_window
        from include.pom.payment_requests import PomSyncIncomplete
        from include.runtime import ParamError, actor, as_of

        context = get_current_context()
        try:
            moment = as_of(context)
        except ParamError as exc:  # a person's param: no retry cures it
            raise AirflowFailException(str(exc)) from None
        params, dag_run = context["params"], context.get("dag_run")
        # The nightly slot is the run's scheduled time (a late start still counts); as_of replays a night.
        slot = moment if (params.get("as_of") or "").strip() else (
            getattr(dag_run, "run_after", None) or context.get("logical_date"))
        window = fetch_window(params.get("fetch_days"), getattr(dag_run, "run_type", None), slot)
        if window is None:
            raise AirflowSkipException("not the nightly run and no fetch_days given: nothing fetched from POM")
        names = delivery_report_accounts(window)
        with PomClients(accounts_from_connections(names, Connection.get)) as clients:
            result = fetch_delivery_reports(clients, names, window, actor(context), now=moment)
        log.info("batches sent since %s: %s analysed, refused %s, accounts not read %s", window,
                 len(result["analysed"]), result["refused"], result["failed"])
        if result["refused"] or result["failed"]:
            # A failed task returns nothing: pushed by hand so the run's Reports tab still finds the action lists
            # of the batches that were analysed.
            context["ti"].xcom_push("return_value", result)
        if result["refused"]:
            raise AirflowFailException("refused and quarantined: " + "; ".join(
                f"{batch}: {why}" for batch, why in result["refused"].items())
                + f" ({len(result['analysed'])} other batch(es) analysed)")
        if result["failed"]:  # POM down or a Connection to fix: the retry (or the next night) reads them
            raise PomSyncIncomplete(f"delivery reports of POM account(s) not fetched: {result['failed']}")
        return result

    analyse_file.expand(path=reports_in_inbox())
    fetch_from_pom()


pom_delivery_report()
