"""
### E-mailing invoices through POM (seed 003)

Scheduled by the asset `innen_invoices_ready` (set by `invoice_run` once the
day's invoices are made), and by hand.

**What goes**: every current invoice whose channel is `email` or `both` and
that was not e-mailed yet (an invoice goes once; a remade invoice, with its
new document id, goes again). Its PDF is sent as made (checked against the
SHA-256 recorded when it was made), with the structured communication printed
on it, to the recipients of seed 003's rule: the customer's e-mail contacts
with "E-mail ontvanger" on, on the first address, or on a later address only
when both that address ("Exemplaar factuur/aanmaning") and the sales journal
("Exemplaar per adres") say so; an address on two contacts is one
recipient. An invoice nobody is to receive is recorded but not handed to
POM: `pom_delivery_report` then says "not attempted" and which flag to set.

**Batches**: one per sales journal and day, `<journal code>-<YYYY-MM-DD>-<n>`
(a reference type without a journal: its type code); a second mailing the
same day makes `-2`. Table `sent_document`: batch, document id, invoice, the
PDF's SHA-256, the recipients, `accepted_at`.

**Never twice**: a batch is written to the database before POM is asked and
marked accepted once POM took it. A run that dies in between sends the very
same batch again, which POM answers without sending anything twice. POM
unreachable: the batch stays journalled and the task fails, so that its
retry (or the next run) sends it. POM refusing a batch, or an invoice file
that changed since it was made: the task fails without retrying, naming the
batch or the file.

Accounts: a payment reference type names its POM account or `default`;
account `x` is the Airflow Connection `pom_x`.

Params (manual run): `day` (the date in the batch names; empty: the run's
date in Brussels).
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
    dag_id="invoice_mailing",
    schedule=[INVOICES_READY],
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Brussels"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=10), "owner": "finance"},
    tags=["innen", "pom", "invoices", "e-mail"],
    params={
        "day": Param(
            None, type=["null", "string"], format="date", title="Day",
            description="The date in the batch names (YYYY-MM-DD). Empty: the run's date in Brussels.",
        ),
    },
    access_control=access_control("invoice_mailing"),
    doc_md=__doc__,
)
def invoice_mailing() -> None:
    @task
    def mail() -> dict:
        from datetime import datetime, timezone

        from airflow.sdk import Connection
        from airflow.sdk.exceptions import AirflowFailException

        from include.finance.db import get_engine
        from include.invoices.mailing import MailingRefused, mail_invoices, mailing_accounts
        from include.pom.accounts import PomClients, accounts_from_connections, accounts_in_use
        from include.runtime import actor, run_date

        context = get_current_context()
        day = run_date(context, "day")  # the param (the form checks its format), else the run's date
        engine = get_engine()
        accounts = accounts_from_connections(accounts_in_use(engine) | mailing_accounts(engine), Connection.get)
        with PomClients(accounts) as clients:
            try:
                run = mail_invoices(engine, clients, actor(context), datetime.now(timezone.utc), day=day)
            except MailingRefused as exc:
                log.error("invoice mailing %s: %s", day, exc.run.as_dict())
                raise AirflowFailException(str(exc)) from None
        log.info("invoice mailing %s: %s", day, run.as_dict())
        return run.as_dict()

    mail()


invoice_mailing()
