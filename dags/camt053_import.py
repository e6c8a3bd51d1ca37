"""
### Bank statements in (camt.053 / camt.054)

Every 15 minutes, and by hand: imports the files waiting in
`var/inbox/camt053/` (or the file or folder inside it named in the `path` param;
a `path` outside the inbox, that does not exist, or a folder with no statement
file in it fails the run at once, naming the param).

Per file (one mapped task each, one at a time): read safely and streamed
(entities, DTDs and network off; size limit `INNEN_CAMT_MAX_BYTES`, default
160 MiB); opening balance + booked entries must equal the closing balance;
then, in one transaction, every new entry is stored and matched:

* credits to open payment references by the end-to-end id of our collection,
  the structured communication (OGM or RF), or an OGM/RF in the free text:
  paid, partly paid, or over-paid (the rest on the control list);
* a batch credit naming one of our collection runs (`Btch/PmtInfId` or
  `MsgId`) without per-collection details: all or nothing, as
  `collection_confirm`; an exported run left with nothing waiting is confirmed;
* returns of our collections: what the collection booked is reversed (a
  payment at the counter, by transfer or through POM stands), the debt open
  again unless the reference was paid another way, the mandate blocked for
  reasons such as MD01;
* everything else a person must look at goes to the statement's control list
  in `var/reports/camt053/<hub>_<statement>_<id>/` (CSV `;` and HTML; the
  hub's code, or the account masked when it belongs to no hub).

The same statement twice adds nothing ("already imported"); overlapping
statements add only their new entries. A statement is told apart by its
currency (when not the euro) and, sent in pages, by its page. A pending or
zero-amount line is stored, not booked. A refused file moves to
`var/quarantine/` with `<file>.reason.txt` naming file, statement and element,
nothing from it is booked, and its task fails; imported files move to
`var/archive/`.

Afterwards (when every file was imported), the POM payment requests of
references the statements paid or partly paid are cancelled, or remade for
the new amount, right away, so a QR code on an invoice paid by transfer
cannot be paid a second time; otherwise the nightly `pom_payment_requests`
does it.

Then, when the statements put new items on control lists, finance gets one
e-mail (Airflow's `SmtpNotifier`, Connection `innen_finance_mail`): per
statement the count, the total amount and where its control list is. Without
that Connection nothing is sent.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from include.airflow_roles import access_control

log = logging.getLogger(__name__)


@dag(
    dag_id="camt053_import",
    schedule="*/15 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Brussels"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=2), "owner": "finance"},
    tags=["innen", "bank-statement", "reconciliation"],
    params={
        "path": Param(
            None, type=["null", "string"], title="File or folder",
            description="A camt.053/camt.054 file, or a folder of them, inside the inbox (relative: to it). "
                        "Empty: the inbox var/inbox/camt053.",
        ),
    },
    access_control=access_control("camt053_import"),
    doc_md=__doc__,
)
def camt053_import() -> None:
    @task(show_return_value_in_logs=False)  # the paths hold the banks' file names, often with the account in full
    def files_to_import() -> list[str]:
        from airflow.sdk.exceptions import AirflowFailException

        from include.errors import InnenError
        from include.sepa.identifiers import mask_ibans_in
        from include.sepa.statement_files import pending_files
        from include.storage import name_of

        try:
            files = [str(path) for path in pending_files(get_current_context()["params"].get("path"))]
        except InnenError as refusal:  # a person's param: no retry cures it
            raise AirflowFailException(f"param path: {mask_ibans_in(str(refusal))}") from None
        log.info("files to import: %s", [mask_ibans_in(name_of(path)) for path in files] or "none")
        return files

    @task(max_active_tis_per_dagrun=1)
    def import_file(path: str) -> dict:

        from airflow.sdk.exceptions import AirflowFailException

        from include.runtime import actor
        from include.sepa.camt import CamtRefused
        from include.sepa.identifiers import mask_ibans_in
        from include.sepa.statement_files import import_statement_file, max_bytes_setting

        try:
            result = import_statement_file(path, actor(get_current_context()), max_bytes=max_bytes_setting())
        except CamtRefused as refusal:
            raise AirflowFailException(f"refused and quarantined: {mask_ibans_in(str(refusal))}") from None
        # Logged as is, and returned (Airflow logs that too): accounts and file names come masked.
        log.info("%s; outcomes %s; control lists %s", result["message"], result["outcomes"], result["control_lists"])
        return result

    @task
    def update_pom_requests() -> dict:
        from airflow.sdk import Connection

        from include.finance.db import get_engine
        from include.pom.accounts import PomClients, accounts_from_connections
        from include.pom.payment_requests import stale_request_accounts, sync_payment_requests
        from include.runtime import actor, as_of

        engine = get_engine()
        stale = stale_request_accounts(engine)
        if not stale:
            return {"updated": 0}
        context = get_current_context()
        with PomClients(accounts_from_connections(set(stale.values()), Connection.get)) as clients:
            summary = sync_payment_requests(engine, clients, actor(context), as_of(context), reference_ids=set(stale))
        log.info("POM requests of references paid by these statements: %s", summary.as_dict())
        return summary.as_dict()

    @task(trigger_rule="all_done")
    def notify_finance(results: list[dict | None]) -> dict:
        from include.finance.db import get_engine, transaction
        from include.finance_mail import base_url, send_to_finance
        from include.notifications import (
            control_list_mail,
            control_list_totals,
            new_control_list_items,
            run_reports_url,
        )

        results = [result for result in (results or []) if result]
        ids = [s.get("statement_db_id") for result in results for s in result.get("statements") or []]
        with transaction(get_engine(), readonly=True) as session:
            found = new_control_list_items(results, control_list_totals(session, ids))
        context = get_current_context()
        mail = control_list_mail(found, run_reports_url(base_url(), context["dag"].dag_id, context["run_id"]))
        items = sum(f.items for f in found)
        if mail is None:
            return {"sent": False, "items": 0}
        subject, body = mail
        sent = send_to_finance(context, subject, body)
        return {"sent": sent, "items": items, **({"subject": subject} if sent else {})}

    imported = import_file.expand(path=files_to_import())
    imported >> update_pom_requests()
    notify_finance(imported)


camt053_import()
