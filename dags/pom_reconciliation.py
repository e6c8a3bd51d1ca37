"""
### POM reconciliation (nightly backstop)

Every night, after the callbacks of the day: POM's status of every open
payment request we hold, read per account at the account's rate limit.

1. **paid** → the payment is booked on its reference, once (a callback that
   already booked it is recognised); paid more than was open, or paid on a
   reference that was already closed → on the report, to refund;
2. cancelled or expired at POM → recorded;
3. **only then** (seed 000, 4.5: paid before cancelled) the requests still open
   whose reference is overdue (its due date before today in Brussels, where
   POM ends it) and whose type auto-cancels are cancelled.

Report: `var/reports/pom_reconciliation/<date>/pom_reconciliation.{csv,html}`.

An account POM refuses (or without its Connection `pom_<account>`) is named in the report and fails the
run, after the other accounts are done.
When POM does not answer for some requests (or a cancel fails), the others
are done and the report written, then the task fails so that its retries
(two, ten minutes apart) ask again; what POM still does not answer stays on
the report, and the run red, for a person. A request POM answers in a status
Innen does not know (or "paid" without a payment) is on the report for a
person and fails nothing: asking again gives the same answer.

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
    dag_id="pom_reconciliation",
    schedule="0 4 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Brussels"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=10), "owner": "finance"},
    tags=["innen", "pom", "reconciliation"],
    params={
        "as_of": Param(None, type=["null", "string"], format="date-time", title="As of (UTC; empty: now)",
                       description="For replaying a night; leave empty."),
    },
    access_control=access_control("pom_reconciliation"),
    doc_md=__doc__,
)
def pom_reconciliation() -> None:
    @task
    def reconcile_requests() -> dict:
        from airflow.sdk import Connection
        from airflow.sdk.exceptions import AirflowFailException

        from include.errors import Unavailable
        from include.finance.db import get_engine
        from include.pom.accounts import PomClients, accounts_from_connections, accounts_in_use
        from include.pom.reconciliation import ReconciliationIncomplete, reconcile
        from include.runtime import ParamError, actor, as_of

        context = get_current_context()
        try:
            moment = as_of(context)
        except ParamError as exc:  # a person's param: no retry cures it
            raise AirflowFailException(str(exc)) from None
        engine = get_engine()
        accounts = accounts_from_connections(accounts_in_use(engine), Connection.get)
        try:
            with PomClients(accounts) as clients:
                report = reconcile(engine, clients, actor(context), moment)
        except ReconciliationIncomplete as incomplete:  # an account refused or without its Connection
            # A failed task returns nothing: pushed by hand so the run's Reports tab still finds the report.
            context["ti"].xcom_push("return_value", incomplete.report.as_dict())
            raise
        result = report.as_dict()
        log.info("POM reconciliation: %s", result)
        if missed := report.unanswered:
            # POM did not answer for these: the rest is booked and the report written, and the task fails so that
            # Airflow's retry asks again (booking is idempotent) instead of leaving a payment for tomorrow night.
            # The report's other errors (a status Innen does not know, 404s) are a person's: no retry cures them.
            context["ti"].xcom_push("return_value", result)
            raise Unavailable(f"{missed} open request(s) not reconciled: POM did not answer for them (report "
                              f"{report.html}); the others are done")
        return result

    reconcile_requests()


pom_reconciliation()
