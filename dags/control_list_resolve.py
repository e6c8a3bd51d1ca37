"""
### Resolve a control-list item (by hand)

Seed 2.3.5.2: the control list gathers what the processing of external
payments left for a person, from bank statements and from POM. Give the
item's number (`item`, as on the control list and the Finance page) and the `action`:

* **book**: its money onto an open payment reference (`reference`: `fp:SYS:n`
  or the structured communication, e.g. `+++062/0000/00159+++`), booked as the
  statement import books a credit: equal to the open amount → paid; less →
  partly paid; more → the open amount is booked and the rest stays on the
  control list as a new open item to refund. Only money received and not yet
  booked can be booked (an unmatched credit, a credit on a closed reference,
  an over-payment's excess); debits, returns and notes about a statement are
  handled instead.
* **handle**: nothing is booked; the `note` says what was done (refunded,
  paid at the cash desk, not ours, …) and is required.

Booking needs the **write** lock (`accwrite`) of the reference's type, or
its admin lock (`accadmin`); a type whose write lock is empty lets whoever
may read it (its `accread`) book. The lock names a role, checked for the
user who triggered the run before anything is booked; a run nobody
triggered in person (a schedule, `dag.test`) holds no roles. Handling
touches no reference and needs no lock.

An item is resolved once: when two people resolve it at the same time, one
wins and the other's run fails with who resolved it and when, having booked
nothing. A refusal (no lock, unknown item or reference, a closed reference,
no note) fails the run without a retry, with the reason in the task log. The
resolution is audited with the user who triggered the run. Then
`var/reports/control_list/` lists every item still open (`open.csv`,
`index.html`).
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


def resolve_by_hand(context: Mapping[str, Any], role_source: Any) -> dict:
    """The task's work: resolve the item; booking checks the reference's lock for the person ``role_source`` names.

    ``role_source``: context → (person or None, roles); :func:`include.airflow_roles.run_roles` in a run.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from include.airflow_roles import NO_ROLES, person
    from include.errors import InnenError, Unavailable
    from include.finance.access import explained
    from include.finance.control_list_resolution import resolve_item, touches_reference
    from include.finance.db import transaction
    from include.runtime import actor, as_of

    params = context["params"]
    action = params["action"]
    if touches_reference(action):
        user, roles = role_source(context)  # a lookup that fails is a fault (retried), not a refusal
    else:  # no lock to check: no roles to look up, and no lookup that could fail
        user, roles = person(context), NO_ROLES
    log.info("%s item %s for %s, roles: %s", action, params["item"], user or "no person",
             ", ".join(sorted(roles)) or "none")
    try:
        with transaction() as session:
            resolution = resolve_item(
                session, int(params["item"]), action=action, reference=params.get("reference"),
                note=params.get("note"), actor=actor(context, with_user=True), now=as_of(context), roles=roles,
            )
    except Unavailable:  # the database not answering now: Airflow's retry may find it back
        raise
    except InnenError as refusal:  # a person's choice or rights to correct (or someone was first), not a fault
        raise AirflowFailException(f"refused: {explained(refusal, user)}") from None
    log.info("%s", resolution.message)
    return resolution.as_dict()


@dag(
    dag_id="control_list_resolve",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Brussels"),
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=1), "owner": "finance"},
    tags=["innen", "finance", "control-list"],
    params={
        "item": Param(type="integer", minimum=1, title="Control-list item", description="Its number, e.g. 42"),
        "action": Param("book", type="string", enum=["book", "handle"], title="Action",
                        description="book: onto a payment reference (its type's write lock); handle: nothing "
                                    "booked, with a note (no lock)"),
        "reference": Param(
            None, type=["null", "string"], title="Payment reference (book)",
            description="fp:SYS:n or its structured communication, e.g. +++062/0000/00159+++",
        ),
        "note": Param(None, type=["null", "string"], format="multiline", title="Note",
                      description="Required to handle: refunded, cash desk, not ours, …; optional to book."),
    },
    access_control=access_control("control_list_resolve"),
    doc_md=__doc__,
)
def control_list_resolve() -> None:
    @task
    def resolve() -> dict:
        from include import airflow_roles

        return resolve_by_hand(get_current_context(), airflow_roles.run_roles)

    @task
    def open_list(resolution: dict) -> dict:
        from include.finance.control_list_resolution import write_open_list
        from include.finance.db import transaction

        with transaction(readonly=True) as session:
            report, count = write_open_list(session)
        log.info("%d control-list item(s) still open: %s", count, report)
        return {"open": count, "report": report}

    open_list(resolve())


control_list_resolve()
