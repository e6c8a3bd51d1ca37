"""
### Confirm a collection run against the amount received (by hand, in one run)

Seed 2.3.3.3, all or nothing. Trigger it with the run (`fj:SYS:n`) and, if you
have it, the amount the bank credited for it (from the statement). The run
then goes through three tasks:

1. **preview**: a dry run with the amount given (0.00 when none): the run's
   open total (references of its collections that are not returned or
   cancelled), the difference with the amount, and each collection with what
   was already paid on it some other way. Nothing is booked; the dry-run report
   is written.
2. **decide**: waits for finance, without a time limit (task state *awaiting
   input*; answered on the task's *Required Actions* tab, also listed on the
   Finance page). It shows the dry run's summary and a form: the **amount
   received** (prefilled with the amount given) and **Confirm** or **Abort**.
3. **book**:
   * **Confirm**: the amount entered in the form is compared with the open
     total again. Equal: every collection is booked as paid and the run is
     confirmed. Different: nothing is booked, the report says why, and the task
     fails (red) with that message.
   * **Abort**: nothing is booked.

Either way the decision is audited: the run's audit row (`confirmed`, or
`confirmation_aborted` with nothing booked) names who answered, when, and
the dry run they were shown (open total, difference, report); the actor is
the DAG run and task followed by `confirmed by` / `aborted by` and their name.

The reports (`dry-run`, then `booked` or `refused`, CSV and HTML) land in
`var/reports/collection_confirm/<run>/` and on the run's Reports tab.

**Params**: `collection_run`, the run (`fj:SYS:n`, required); `received_amount`, optional, digits with a
decimal point (`1234.56`, no comma): it only prefills the form of **decide**.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pendulum
from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param, dag, get_current_context, task

from include.airflow_roles import access_control
from include.param_patterns import AMOUNT, RUN

log = logging.getLogger(__name__)

AMOUNT_HELP = "What the bank credited for the run, e.g. 1234.56"


def preview_run(context: Mapping[str, Any]) -> dict:
    """The dry run with the amount the run was triggered with; its ``summary`` is the question's body."""
    from dataclasses import asdict

    from airflow.sdk.exceptions import AirflowFailException

    from include.errors import InnenError, Unavailable
    from include.finance.db import transaction
    from include.runtime import actor
    from include.sepa.collection_confirm import confirm_collection_run, confirmation_summary
    from include.sepa.manual_reports import write_confirmation

    params = context["params"]
    given = (params.get("received_amount") or "").strip() or None
    try:
        with transaction(readonly=True) as session:
            result = confirm_collection_run(
                session, params["collection_run"].strip(), given or "0.00", actor(context), dry_run=True,
            )
    except Unavailable:  # the database not answering now: Airflow's retry may find it back
        raise
    except InnenError as refusal:  # an unknown run, a run not exported: the person's choice, no retry cures it
        raise AirflowFailException(f"nothing to confirm: {refusal}") from None
    report = write_confirmation(result)
    log.info("%s (report %s)", result.message, report)
    value = {**asdict(result), "report": report, "amount_given": given}
    value["summary"] = confirmation_summary(value)
    return value


def book_decision(context: Mapping[str, Any]) -> dict:
    """What finance answered in ``decide``, carried out: booked, refused (the task fails) or aborted."""
    from dataclasses import asdict

    from airflow.sdk.exceptions import AirflowFailException

    from include.errors import InnenError, Unavailable
    from include.finance.db import transaction
    from include.runtime import actor
    from include.sepa.collection_confirm import (
        approval_facts,
        confirm_collection_run,
        decided_actor,
        read_decision,
        record_abort,
    )
    from include.sepa.manual_reports import write_confirmation

    ti = context["ti"]
    run_loi = context["params"]["collection_run"].strip()
    shown = ti.xcom_pull(task_ids="preview") or {}
    decision = read_decision(ti.xcom_pull(task_ids="decide"))
    if decision.action == "invalid":
        raise AirflowFailException(f"nothing booked for {run_loi}: {decision.reason}")
    verb = "confirmed" if decision.action == "confirm" else "aborted"
    who = decided_actor(actor(context, with_user=True), verb, decision.user)

    if decision.action == "abort":
        with transaction() as session:
            record_abort(session, run_loi, decision, who, shown)
        log.info("%s: aborted by %s at %s; nothing booked", run_loi, decision.user, decision.at)
        return {"run": run_loi, "decision": "abort", "aborted_by": decision.user, "responded_at": decision.at,
                "booked": False, "report": shown.get("report")}

    try:
        with transaction() as session:
            result = confirm_collection_run(session, run_loi, decision.amount, who, dry_run=False,
                                            approval=approval_facts(decision, shown))
    except Unavailable:  # the database not answering now: Airflow's retry may find it back
        raise
    except InnenError as refusal:
        # A refusal (the run is not exported) stays one on retry.
        raise AirflowFailException(f"nothing booked: {refusal}") from None
    report = write_confirmation(result, decided_by=decision.user)
    value = {**asdict(result), "report": report, "decision": "confirm", "confirmed_by": decision.user,
             "responded_at": decision.at}
    if not result.booked:
        # A failed task returns nothing: pushed by hand so the run's Reports tab still finds the refused report.
        ti.xcom_push("return_value", value)
        raise AirflowFailException(f"{result.message} (report {report})")
    log.info("%s (confirmed by %s at %s; report %s)", result.message, decision.user, decision.at, report)
    return value


class AmountQuestion(HITLOperator):
    """The HITL question, its amount field prefilled at run time with the amount the run was triggered with
    (an operator's form params are fixed when the DAG file is parsed)."""

    def execute(self, context: Any) -> Any:
        given = context["params"].get("received_amount")
        if given:
            self.params["received_amount"] = given
        return super().execute(context)


@dag(
    dag_id="collection_confirm",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Brussels"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=1), "owner": "finance"},
    tags=["innen", "sepa", "direct-debit", "finance"],
    params={
        "collection_run": Param("", type="string", minLength=1, pattern=RUN, title="Collection run",
                                description="The run to confirm, e.g. fj:BIB:12"),
        "received_amount": Param(
            None, type=["null", "string"], pattern=AMOUNT, title="Amount received",
            description=f"{AMOUNT_HELP}; optional: it prefills the confirmation form",
        ),
    },
    access_control=access_control("collection_confirm"),
    doc_md=__doc__,
)
def collection_confirm() -> None:
    @task
    def preview() -> dict:
        return preview_run(get_current_context())

    decide = AmountQuestion(
        task_id="decide",
        subject="Confirm collection run {{ ti.xcom_pull(task_ids='preview')['run'] }}?",
        body="{{ ti.xcom_pull(task_ids='preview')['summary'] }}",
        options=["Confirm", "Abort"],
        # No default and no timeout: only a person's answer books or aborts.
        defaults=None,
        response_timeout=None,
        params={
            # Nullable like the DAG's param of the same name: the run's conf (null when no amount was given)
            # is validated against this one too before the task starts.
            "received_amount": Param(
                None, type=["null", "string"], pattern=AMOUNT, title="Amount received",
                description=AMOUNT_HELP,
            ),
        },
    )

    @task
    def book() -> dict:
        return book_decision(get_current_context())

    preview() >> decide >> book()


collection_confirm()
