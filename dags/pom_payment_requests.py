"""
### POM payment requests (QR code and pay link per reference)

Nightly, and by hand: for every **sealed, unpaid** payment reference whose
type allows online payment (and that is not collected by direct debit),
exactly one open POM payment request, with its QR code stored for invoices
(`{invoice_qr}`) and the payer's status page:

* missing → created (journalled first, with an idempotency key: a retry
  never makes a second request at POM);
* amount changed (partly paid, lines changed) → cancelled at POM and made
  again (seed 000, 4.4);
* QR code older than 90 days or expiring within `renew_within_days` → a new
  QR code on the same request;
* reference paid another way, deleted or expired → request cancelled (a
  payment that came in meanwhile is booked or reported for a refund).

Accounts: a payment reference type names its POM account or `default`;
account `x` is the Airflow Connection `pom_x` (host, login, password; extra:
`sender_id`, `sender_contract_number`, `callback_secret`, `beta`,
`rate_limit_per_second`). If POM cannot be reached for some references, the
rest is done and the task fails so that its retry finishes the job: up to
four retries, the first a minute later, each wait twice the one before.

**Param** `as_of` (by hand, to replay a night; empty: now): the moment the run acts as of, ISO with an
offset (`2026-11-20T02:00:00+01:00`; UTC without one). A malformed value fails the run at once, naming it.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from include.airflow_roles import access_control

log = logging.getLogger(__name__)


@dag(
    dag_id="pom_payment_requests",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Brussels"),
    catchup=False,
    max_active_runs=1,
    # A lost worker's task is retried a minute after the scheduler fails it; POM being down, the waits double
    # (1-2, 2-4, 4-8, 8-16 minutes: about half an hour of outage ridden out). Retrying is safe: creates are journalled
    # with their idempotency key first.
    default_args={"retries": 4, "retry_delay": timedelta(minutes=1), "retry_exponential_backoff": 2.0,
                  "max_retry_delay": timedelta(minutes=30), "owner": "finance"},
    tags=["innen", "pom", "online-payment"],
    params={
        "renew_within_days": Param(
            14, type="integer", minimum=0, maximum=89, title="Renew QR codes expiring within (days)",
            description="A payment request whose QR code expires within this many days gets a new one (0-89).",
        ),
        "as_of": Param(None, type=["null", "string"], format="date-time", title="As of (UTC; empty: now)",
                       description="For replaying a night; leave empty."),
    },
    access_control=access_control("pom_payment_requests"),
    doc_md=__doc__,
)
def pom_payment_requests() -> None:
    @task
    def sync_requests() -> dict:
        from airflow.sdk import Connection
        from airflow.sdk.exceptions import AirflowFailException

        from include.finance.db import get_engine
        from include.pom.accounts import PomClients, accounts_from_connections, accounts_in_use
        from include.pom.payment_requests import sync_payment_requests
        from include.runtime import ParamError, actor, as_of

        context = get_current_context()
        try:
            moment = as_of(context)
        except ParamError as exc:  # a person's param: no retry cures it
            raise AirflowFailException(str(exc)) from None
        engine = get_engine()
        accounts = accounts_from_connections(accounts_in_use(engine), Connection.get)
        with PomClients(accounts) as clients:
            summary = sync_payment_requests(engine, clients, actor(context), moment,
                                            renew_within_days=int(context["params"]["renew_within_days"]))
        log.info("POM payment requests: %s", summary.as_dict())
        return summary.as_dict()

    sync_requests()


pom_payment_requests()
