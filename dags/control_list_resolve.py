"""
### Resolve a control-list item (by hand)

Seed 2.3.5.2: the control list gathers what the processing of external
payments left for a person, from bank statements and from POM. Give the
item's number (`item`, as on the control list and the Finance page) and:

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

An item is resolved once: when two people resolve it at the same time, one
wins and the other's run fails with who resolved it and when, having booked
nothing. A refusal (unknown item or reference, a closed reference, no note)
fails the run without a retry, with the reason in the task log. The
resolution is audited with the user who triggered the run. Then
`var/reports/control_list/` lists every item still open (`open.csv`,
`index.html`).
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from include.airflow_roles import access_control

log = logging.getLogger(__name__)


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
                        description="book: onto a payment reference; handle: nothing booked, with a note"),
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
        from airflow.sdk.exceptions import AirflowFailException

        from include.errors import InnenError
        from include.finance.control_list_resolution import resolve_item
        from include.finance.db import transaction
        from include.runtime import actor, as_of

        context = get_current_context()
        params = context["params"]
        try:
            with transaction() as session:
                resolution = resolve_item(
                    session, int(params["item"]), action=params["action"], reference=params.get("reference"),
                    note=params.get("note"), actor=actor(context, with_user=True), now=as_of(context),
                )
        except InnenError as refusal:  # a person's choice to correct (or someone was first), not a fault to retry
            raise AirflowFailException(f"refused: {refusal}") from None
        log.info("%s", resolution.message)
        return resolution.as_dict()

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
