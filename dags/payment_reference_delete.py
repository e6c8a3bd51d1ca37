"""
### Delete payment references (by hand)

Seed 2.3.3.4: when a bank file was lost or refused by the bank. Give a
collection run (`collection_run`, `fj:SYS:n`) or payment references
(`references`, `fp:SYS:n`, comma separated), not both (the run then fails,
deleting nothing), and leave `dry_run` on first. A named reference that does
not exist is listed as refused; when none of them exists the run fails. Deleted references free their debt
lines (open debt again, collected by the next mandate execution); payments
already booked stay. A paid reference is refused with its reason. The
collections of deleted references are cancelled; a run left without
collections is marked deleted. The report lands in
`var/reports/payment_reference_delete/`. Deleted references that had an
open POM payment request get it cancelled at POM right away, so their QR
code can no longer be paid; every deleted reference's invoice is withdrawn
at once (the payer can no longer download it).

Deleting needs the **admin** lock (`accadmin`) of each reference's type
(in both ways of naming them: every reference of the run, or every one
named), and a type whose admin lock is empty lets nobody delete. The lock
names a role, checked for the user who triggered the run; a run nobody
triggered in person (a schedule, `dag.test`) holds no roles. The check is
all or nothing: one reference refused refuses the deletion, the run fails
without a retry, nothing is deleted, and the message lists every reference
refused, the lock it needs and your roles. A **dry run** fails for no lock:
its report lists each reference the real run would be refused for, with the
lock, beside those it would delete. Paid, deleted and expired references
are refused for that, not for a lock.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from include.airflow_roles import access_control
from include.param_patterns import REFERENCES_OR_EMPTY, RUN_OR_EMPTY

log = logging.getLogger(__name__)


def delete_or_report(context: Mapping[str, Any], role_source: Any) -> dict:
    """The task's work: delete (or, in a dry run, report) for the person ``role_source`` names, and write the report.

    ``role_source``: context → (person or None, roles); :func:`include.airflow_roles.run_roles` in a run.
    """
    from dataclasses import asdict

    from airflow.sdk.exceptions import AirflowFailException

    from include.errors import InnenError, Unavailable
    from include.finance.access import NO_PERSON, explained
    from include.finance.db import transaction
    from include.finance.reference_deletion import delete_references
    from include.runtime import actor
    from include.sepa.manual_reports import write_deletion

    params = context["params"]
    lois = [loi.strip() for loi in (params.get("references") or "").split(",") if loi.strip()]
    user, roles = role_source(context)  # a lookup that fails is a fault (retried), not a refusal
    log.info("deleting for %s, roles: %s", user or "no person", ", ".join(sorted(roles)) or "none")
    try:
        with transaction() as session:
            result = delete_references(
                session, actor(context, with_user=True), roles=roles, run_loi=(params.get("collection_run") or "").strip() or None,
                reference_lois=lois or None, dry_run=bool(params["dry_run"]),
            )
    except Unavailable:  # the database not answering now: Airflow's retry may find it back
        raise
    except InnenError as refusal:  # a person's choice or rights to correct, not a fault a retry would cure
        raise AirflowFailException(f"refused: {explained(refusal, user)}") from None
    report = write_deletion(result, params.get("collection_run") or "references")
    log.info("%s (report %s)", result.message, report)
    if result.locked and user is None:
        log.warning("refused for a lock: %s", NO_PERSON)
    return {**asdict(result), "report": report, "user": user}


@dag(
    dag_id="payment_reference_delete",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Brussels"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=1), "owner": "finance"},
    tags=["innen", "finance", "payment-reference"],
    params={
        "collection_run": Param(None, type=["null", "string"], pattern=RUN_OR_EMPTY, title="Collection run",
                                description="Every reference of this run, e.g. fj:BIB:12; or give references"),
        "references": Param(
            None, type=["null", "string"], pattern=REFERENCES_OR_EMPTY, title="Payment references",
            description="Separated by commas, e.g. fp:BIB:30, fp:BIB:31"
        ),
        "dry_run": Param(True, type="boolean", title="Dry run",
                         description="Only report, also what the types' admin locks would refuse; delete nothing."),
    },
    access_control=access_control("payment_reference_delete"),
    doc_md=__doc__,
)
def payment_reference_delete() -> None:
    @task
    def delete() -> dict:
        from include import airflow_roles

        return delete_or_report(get_current_context(), airflow_roles.run_roles)

    @task
    def cancel_pom_requests(deletion: dict) -> dict:
        from airflow.sdk import Connection

        from include.finance.db import get_engine
        from include.pom.payment_requests import retire_requests_of_lois
        from include.runtime import actor, as_of

        if deletion["dry_run"] or not deletion["deleted"]:
            return {"cancelled": 0}
        context = get_current_context()
        summary = retire_requests_of_lois(get_engine(), deletion["deleted"], actor(context, with_user=True), as_of(context), Connection.get)
        log.info("POM requests of the deleted references: %s", summary)
        return summary

    cancel_pom_requests(delete())


payment_reference_delete()
