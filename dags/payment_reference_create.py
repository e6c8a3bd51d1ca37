"""
### Make a payment reference (by hand)

Seed 2.3.1, "Nieuw/bewerk betalingskenmerk": group an end user's open debt
lines of one financial system into a payment reference (`fp:SYS:n`).

* **End user** (`end_user`): the e-loi; **type** (`reference_type`): the payment reference type's code (it
  decides the reference number, the invoice number and the transaction cost);
  **financial system** (`financial_system`): optional, the system of the chosen lines otherwise.
* **The debt**: either the debt lines' ids (`debt_lines`), or a transaction-code `pattern`
  (`LID`, or a prefix ending in `*` such as `BOETE*`; several separated by
  commas) for all the user's open lines that match. A line must be open and
  in no other open payment reference; lines of two financial systems are
  refused.
* **Te betalen tegen** (`due_date`) and a **description** (`description`, several lines; an
  invoice may show it) are optional.
* **Seal** (`seal`): on (the default) the reference is sealed at once, which adds the
  type's transaction cost where the financial system has a tariff for it, and
  a type with *direct* printing gets its invoice made right away, printed by
  the next night's `invoice_run` (it belongs to the next day's printing; when
  the reference's data cannot make one, e.g. an amount an EPC code cannot
  carry, the reference stands and the run fails naming why); off leaves a
  draft to seal later.

Making a reference of a type (and sealing it) needs the type's **write**
lock (`accwrite`) or its admin lock (`accadmin`); a type whose write lock is
empty lets whoever may read it (its `accread`) write. The lock names a role,
checked for the user who triggered the run before anything is made; a run
nobody triggered in person (a schedule, `dag.test`) holds no roles.

A refusal (no lock, unknown user, a line already in another reference,
nothing that matches the pattern, …) fails the run without a retry, with the
reason in the task log; nothing is changed then. Every change is audited.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from include.airflow_roles import access_control

log = logging.getLogger(__name__)


def make_reference(context: Mapping[str, Any], role_source: Any) -> dict:
    """The task's work: check the type's lock for the person ``role_source`` names, then make the reference.

    ``role_source``: context → (person or None, roles); :func:`include.airflow_roles.run_roles` in a run.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from include.errors import InnenError, Unavailable
    from include.finance.access import explained, require_type
    from include.finance.db import transaction
    from include.finance.models import PaymentReferenceType
    from include.finance.sealing import create_reference
    from include.runtime import actor, as_of, parse_date_param

    params = context["params"]
    end_user, type_code = str(params["end_user"]).strip(), str(params["reference_type"]).strip()
    system, pattern = (params.get("financial_system") or "").strip() or None, (params.get("pattern") or "").strip() or None
    user, roles = role_source(context)  # a lookup that fails is a fault (retried), not a refusal
    log.info("a %s reference for %s, roles: %s", type_code, user or "no person",
             ", ".join(sorted(roles)) or "none")
    try:
        with transaction() as session:
            require_type(session, type_code, "create", roles)
            reference = create_reference(
                session, end_user=end_user, type_code=type_code, financial_system=system,
                debt_line_ids=[int(line_id) for line_id in params.get("debt_lines") or []],
                pattern=pattern, due_date=parse_date_param("due_date", params.get("due_date")),
                description=params.get("description"), seal=bool(params["seal"]), actor=actor(context, with_user=True),
                now=as_of(context),
            )
            type_ = session.get(PaymentReferenceType, reference.type_id)
            direct_print = bool(type_ and type_.direct_print)
    except Unavailable:  # the database not answering now: Airflow's retry may find it back
        raise
    except InnenError as refusal:  # a person's choice or rights to correct, not a fault a retry would cure
        raise AirflowFailException(f"refused: {explained(refusal, user)}") from None
    result = {
        "id": reference.id, "loi": reference.loi, "status": reference.status, "amount": str(reference.amount),
        "reference_number": reference.reference_number, "invoice_number": reference.invoice_number,
        "direct_print": direct_print,
    }
    log.info("payment reference made: %s", result)
    return result


@dag(
    dag_id="payment_reference_create",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Brussels"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=1), "owner": "finance"},
    tags=["innen", "finance", "payment-reference"],
    params={
        "end_user": Param("", type="string", minLength=1, title="End user (e-loi)", description="e.g. e:LEU:10001"),
        "reference_type": Param(
            "", type="string", minLength=1, title="Payment reference type",
            description="Its code, e.g. FACTUUR-BIB; you need its write lock (accwrite)"
        ),
        "financial_system": Param(
            None, type=["null", "string"], title="Financial system",
            description="e.g. BIB; empty: the financial system of the chosen debt lines",
        ),
        "debt_lines": Param(
            [], type=["null", "array"], items={"type": "integer"}, title="Debt lines",
            description="Their ids as a list, e.g. [1201, 1202]; empty for a pattern.",
        ),
        "pattern": Param(
            None, type=["null", "string"], title="Transaction-code pattern",
            description="All the user's open debt whose code matches, e.g. BOETE* or LID, BOETE*; or give debt lines.",
        ),
        "due_date": Param(None, type=["null", "string"], format="date", title="Te betalen tegen",
                          description="The date it is to be paid by (optional)."),
        "description": Param(None, type=["null", "string"], format="multiline", title="Description",
                             description="Free text; the invoice may show it."),
        "seal": Param(True, type="boolean", title="Seal", description="Seal at once (Maak op en verzegel)."),
    },
    access_control=access_control("payment_reference_create"),
    doc_md=__doc__,
)
def payment_reference_create() -> None:
    @task
    def create() -> dict:
        from include import airflow_roles

        return make_reference(get_current_context(), airflow_roles.run_roles)

    @task
    def direct_invoice(created: dict) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        if created["status"] != "sealed" or not created["direct_print"]:
            raise AirflowSkipException(
                "not a sealed reference of a type with direct printing: the nightly invoice run makes its invoice"
            )

        from airflow.sdk.exceptions import AirflowFailException

        from include.finance.db import get_engine
        from include.invoices.making import make_invoices, next_print_day
        from include.invoices.templates import TemplateError
        from include.runtime import actor, as_of, brussels_day

        context = get_current_context()
        now = as_of(context)  # the next day's print run prints it ("bij een volgende run", seed 2.5.2)
        try:
            run = make_invoices(get_engine(), actor(context), now, print_day=next_print_day(brussels_day(now)),
                                reference_ids={created["id"]})
        except TemplateError as exc:  # the institution's template file: a retry reads the same file
            raise AirflowFailException(f"{created['loi']} stands, sealed, without an invoice: {exc}") from None
        log.info("invoice of %s: %s", created["loi"], run.as_dict())
        if run.refused:  # the reference stands; its invoice waits until its data can make one
            # The reference's own data refused it: a retry would meet the same data, so the run fails at once.
            raise AirflowFailException(f"{created['loi']} stands, sealed, without an invoice: {'; '.join(run.refused)}")
        return run.as_dict()

    direct_invoice(create())


payment_reference_create()
