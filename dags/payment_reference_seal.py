"""
### Seal or unseal payment references (by hand)

Seed 2.3.1: only a sealed payment reference gets an invoice and can be
collected; unsealing ("ontdooien") turns it back into a draft to edit, and
its invoice is withdrawn. Give the `references` (`fp:SYS:n`, one per line)
and the `action`:

* **seal**: drafts become sealed (the type's transaction cost is added once);
  needs the type's **write** lock (`accwrite`) or its admin lock. Those of
  a type with *direct* printing (seed 2.5.2 `direct`: a file at once when
  the reference is sealed) get their invoice made right away, for the next
  day's printing (the next night's `invoice_run` prints it); when a
  reference's data (or the invoice template) cannot make one, it stays
  sealed and the run fails at once naming why, without a retry. The others
  get theirs from the nightly invoice run.
* **unseal**: sealed references become drafts; breaking a seal
  ("doorbreken") needs the type's **admin** lock (`accadmin`), and a type
  whose admin lock is empty lets nobody unseal. Refused for a paid reference
  and for one being collected (a collection run, ready or exported, still
  carries it: delete the run's references instead). Unsealed references
  that had an open POM payment request get it cancelled at POM right away.

The locks name roles, and they are checked for the user who triggered the
run, for every reference first: one refusal refuses them all, and the
message lists every reference refused, the lock it needs and your roles. A
run nobody triggered in person (a schedule, `dag.test`) holds no roles. A
refusal fails the run without a retry; nothing is changed then. Every change
is audited with the user who triggered the run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from include.airflow_roles import access_control
from include.param_patterns import REFERENCES

log = logging.getLogger(__name__)


def _lois(values: Any) -> list[str]:
    """The form's references: a list (one per line), each item possibly several separated by commas."""
    items = [values] if isinstance(values, str) else list(values or [])
    return [loi.strip() for item in items for loi in str(item).split(",") if loi.strip()]


def seal_or_unseal(context: Mapping[str, Any], role_source: Any) -> dict:
    """The task's work: check every reference's lock for the person ``role_source`` names, then seal or unseal.

    ``role_source``: context → (person or None, roles); :func:`include.airflow_roles.run_roles` in a run.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from include.errors import InnenError, Unavailable
    from include.finance.access import check_references, reference_ids
    from include.finance.db import transaction
    from include.finance.sealing import direct_print_ids, seal, unseal
    from include.runtime import actor, as_of

    params = context["params"]
    action = params["action"]
    lois = _lois(params.get("references"))
    user, roles = role_source(context)  # a lookup that fails is a fault (retried), not a refusal
    log.info("%s %d reference(s) for %s, roles: %s", action, len(lois), user or "no person",
             ", ".join(sorted(roles)) or "none")
    try:
        with transaction() as session:
            ids = reference_ids(session, lois)
            refusals = check_references(session, ids, action, roles)
            if refusals:
                nobody = "" if user else (" (no person triggered this run — a schedule, an asset or dag.test — "
                                          "so it holds no roles)")
                raise InnenError(f"nothing {action}ed{nobody}: " + "; ".join(refusals))
            change = seal if action == "seal" else unseal
            changed = change(session, ids, actor(context, with_user=True), as_of(context))
            direct = direct_print_ids(session, changed) if action == "seal" else []
    except Unavailable:  # the database not answering now: Airflow's retry may find it back
        raise
    except InnenError as refusal:  # a person's choice or rights to correct, not a fault a retry would cure
        raise AirflowFailException(f"refused: {refusal}") from None
    done = set(changed)
    result = {"action": action, "user": user, "references": lois, "changed": changed,
              "unchanged": [loi for loi in lois if loi not in done], "direct_print": direct}
    log.info("%sed: %s; already so: %s", action, ", ".join(changed) or "none", ", ".join(result["unchanged"]) or "none")
    return result


@dag(
    dag_id="payment_reference_seal",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Brussels"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=1), "owner": "finance"},
    tags=["innen", "finance", "payment-reference"],
    params={
        "references": Param(
            type="array", items={"type": "string", "pattern": REFERENCES}, minItems=1,
            title="Payment references",
            description="One per line, e.g. fp:BIB:30",
        ),
        "action": Param("seal", type="string", enum=["seal", "unseal"], title="Action",
                        description="seal: draft → sealed (write lock); unseal: sealed → draft (admin lock)"),
    },
    access_control=access_control("payment_reference_seal"),
    doc_md=__doc__,
)
def payment_reference_seal() -> None:
    @task
    def apply() -> dict:
        from include import airflow_roles

        return seal_or_unseal(get_current_context(), airflow_roles.run_roles)

    @task
    def cancel_pom_requests(result: dict) -> dict:
        from airflow.sdk import Connection

        from include.finance.db import get_engine
        from include.pom.payment_requests import retire_requests_of_lois
        from include.runtime import actor, as_of

        if result["action"] != "unseal" or not result["changed"]:
            return {"cancelled": 0}
        context = get_current_context()
        summary = retire_requests_of_lois(get_engine(), result["changed"], actor(context, with_user=True), as_of(context), Connection.get)
        log.info("POM requests of the unsealed references: %s", summary)
        return summary

    @task
    def direct_invoice(result: dict) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        if not result.get("direct_print"):
            raise AirflowSkipException(
                "no reference of a type with direct printing was sealed: the nightly invoice run makes the invoices"
            )

        from airflow.sdk.exceptions import AirflowFailException

        from include.finance.db import get_engine
        from include.invoices.making import make_invoices, next_print_day
        from include.invoices.templates import TemplateError
        from include.runtime import actor, as_of, brussels_day

        context = get_current_context()
        now = as_of(context)  # the next day's print run prints it ("bij een volgende run", seed 2.5.2)
        sealed = ", ".join(result["changed"])
        try:
            run = make_invoices(get_engine(), actor(context), now, print_day=next_print_day(brussels_day(now)),
                                reference_ids=set(result["direct_print"]))
        except TemplateError as exc:  # the institution's template file: a retry reads the same file
            raise AirflowFailException(f"sealed ({sealed}), but no invoice made: {exc} "
                                       "(fix the template and rerun this task)") from None
        log.info("invoices of the references sealed with direct printing: %s", run.as_dict())
        if run.refused:  # the references stay sealed; their invoices wait until their data can make them
            # The references' own data refused them: a retry would meet the same data, so the run fails at once.
            raise AirflowFailException(f"sealed, without an invoice: {'; '.join(run.refused)}")
        return run.as_dict()

    applied = apply()
    cancel_pom_requests(applied)
    direct_invoice(applied)


payment_reference_seal()
