"""
### Expiry of unpaid payment references

Hourly: unpaid references (draft or sealed) whose type has a lifetime
(`dies`, seed 2.5.2) and whose creation + lifetime has passed.

For each: POM is asked first (a payment that came in is booked, and the
reference is then not expired); its open request is cancelled; then the
reference is marked **expired** and its debt lines are open again. Payments
already booked stay. Every change is audited. A reference whose request POM
could not confirm is left for the next run, and the task fails so the
operator sees it. A reference being collected (its collection in a run, ready
or sent) is not expired while the collection stands.

**Param** `as_of` (by hand, to replay an hour; empty: now): the moment the run acts as of, ISO with an
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
    dag_id="payment_reference_expiry",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Brussels"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=5), "owner": "finance"},
    tags=["innen", "pom", "payment-reference"],
    params={
        "as_of": Param(None, type=["null", "string"], format="date-time", title="As of (UTC; empty: now)",
                       description="For replaying an hour; leave empty."),
    },
    access_control=access_control("payment_reference_expiry"),
    doc_md=__doc__,
)
def payment_reference_expiry() -> None:
    @task
    def expire() -> dict:
        from airflow.sdk import Connection
        from airflow.sdk.exceptions import AirflowFailException

        from include.finance.db import get_engine
        from include.pom.accounts import PomClients, accounts_from_connections, accounts_in_use
        from include.pom.expiry import expire_references
        from include.runtime import ParamError, actor, as_of

        context = get_current_context()
        try:
            moment = as_of(context)
        except ParamError as exc:  # a person's param: no retry cures it
            raise AirflowFailException(str(exc)) from None
        engine = get_engine()
        accounts = accounts_from_connections(accounts_in_use(engine), Connection.get)
        with PomClients(accounts) as clients:
            summary = expire_references(engine, clients, actor(context), moment)
        log.info("expiry: %s", summary.as_dict())
        return summary.as_dict()

    expire()


payment_reference_expiry()
