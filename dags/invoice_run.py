"""
### Invoices (seed 004, 2.3.1 "Drukwerk", 2.3.4.1 "Overzicht van het drukwerk")

Nightly after the POM requests, and by hand: every **sealed** payment
reference with something left to pay gets its invoice, a PDF made from the
template its type's print state names (`templates/invoices/<lnstate>.<nl|fr>.typ`,
else `default`), in the end user's language, with the seed's placeholders
filled in, the EPC bank-transfer QR code and, for types paid online, POM's QR
code in POM's layout (`{invoice_qr}`).

1. `pom_requests`: the POM requests of the references about to get an
   invoice are brought up to date first, so the invoice carries a live code.
2. `make`: invoices made (a reference whose open amount changed gets a new
   one under a new document id; an unsealed, deleted or expired reference's
   invoice is withdrawn). Files: `var/invoices/<day>/<document>.pdf`, the
   same bytes for the same reference and template.
   A template that cannot be used (a placeholder Innen does not know, Typst
   that does not compile) fails this task at once, without a retry, naming
   the template, line and placeholder: fix the file (`INNEN_TEMPLATE_DIR`)
   and rerun.
3. `overview`: the day's printing per financial system, type and sales
   journal (count, total, channel) and `print.pdf`, every paper invoice of
   the day for the print room, laid out for printing on both sides (an
   invoice of an odd number of pages gets a blank back):
   `var/reports/invoice_run/<day>/index.html`. Updates the asset that
   starts `invoice_mailing`.
4. `refusals`: fails the run, naming each reference and why, when a
   reference's own data cannot make an invoice (e.g. its hub's account or an
   amount an EPC code cannot carry); every other invoice is made all the same.

Types with **direct** printing get their invoice at once when sealed
(`payment_reference_create`, `payment_reference_seal`, `mandate_execution`);
such an invoice belongs to the next day's printing (seed 2.5.2: "bij een
volgende run"), so the next night's run keeps it as it is and prints it in
that day's overview and `print.pdf`, once. This run catches up anything
left. A rerun makes nothing twice.

**Param** `run_date` (by hand): the print day the invoices belong to (their folder and the overview);
empty: the run's date in Brussels.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task

from include.airflow_roles import access_control
from include.assets import INVOICES_READY as READY

log = logging.getLogger(__name__)

INVOICES_READY = Asset(**READY)


@dag(
    dag_id="invoice_run",
    schedule="30 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Brussels"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=10), "owner": "finance"},
    tags=["innen", "invoices"],
    params={
        "run_date": Param(None, type=["null", "string"], format="date", title="Print day (empty: today)",
                          description="The day whose printing the invoices belong to."),
    },
    access_control=access_control("invoice_run"),
    doc_md=__doc__,
)
def invoice_run() -> None:
    @task
    def pom_requests() -> dict:
        from airflow.sdk import Connection

        from include.finance.db import get_engine
        from include.invoices.making import waiting_for_pom
        from include.pom.accounts import PomClients, accounts_from_connections, accounts_in_use
        from include.pom.payment_requests import sync_payment_requests
        from include.runtime import actor, as_of

        context = get_current_context()
        engine = get_engine()
        wanted = waiting_for_pom(engine)
        if not wanted:
            return {"references": 0}
        accounts = accounts_from_connections(accounts_in_use(engine), Connection.get)
        with PomClients(accounts) as clients:
            summary = sync_payment_requests(engine, clients, actor(context), as_of(context), reference_ids=wanted)
        log.info("POM requests of %d references about to be invoiced: %s", len(wanted), summary.as_dict())
        return {"references": len(wanted), **summary.as_dict()}

    @task
    def make() -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from include.finance.db import get_engine
        from include.invoices.making import make_invoices
        from include.invoices.templates import TemplateError
        from include.runtime import actor, as_of, run_date

        context = get_current_context()
        try:
            result = make_invoices(get_engine(), actor(context), as_of(context), print_day=run_date(context))
        except TemplateError as exc:  # the institution's template file: a retry reads the same file
            raise AirflowFailException(str(exc)) from None
        log.info("invoices: %s", result.as_dict())
        return result.as_dict()

    @task(outlets=[INVOICES_READY])
    def overview() -> dict:
        from include.finance.db import get_engine, transaction
        from include.invoices.print_overview import write_print_overview
        from include.runtime import run_date

        context = get_current_context()
        day = run_date(context)
        with transaction(get_engine(), readonly=True) as session:
            written = write_print_overview(session, day)
        log.info("print overview of %s: %s (%d invoices, %d on paper)", day, written.folder, written.invoices,
                 written.paper)
        context["outlet_events"][INVOICES_READY].extra = {"day": day.isoformat()}
        return {"folder": str(written.folder), "invoices": written.invoices, "paper": written.paper,
                "print_pdf": str(written.print_pdf) if written.print_pdf else None}

    @task
    def refusals(made: dict) -> None:
        """The run fails, after the others' invoices and the overview are made, when a reference's data could not
        make its invoice: finance sees which and why, fixes the data, and a rerun makes only those."""
        from airflow.sdk.exceptions import AirflowFailException

        if made["counts"].get("refused"):  # a retry would find the same data: fail at once
            raise AirflowFailException(f"{made['counts']['refused']} reference(s) got no invoice: "
                                       + "; ".join(made["refused"]))

    made = make()
    pom_requests() >> made >> overview() >> refusals(made)


invoice_run()
