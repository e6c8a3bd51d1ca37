"""
### Mandate execution (daily)

Checks every SEPA direct-debit mandate and collects what is due.

1. **check_mandates** writes the four lists of the seed's mandate check to
   `var/reports/mandate_check/<run date>/` (CSV `;` and `index.html`):
   *active-ok* (with next due date, next collection date and the eligible open
   debt), *active-err*, *nonactive-ok*, *nonactive-err* (each error with its
   reason).
2. **execute_mandates** checks the due active-ok mandates again, inside its
   transaction, and turns each one with eligible open debt into a sealed payment reference and a collection (FRST, RCUR, FNAL or
   OOFF), grouped per bank hub and collection date into collection runs
   (`fj:SYS:n`; a new run when that date's file waits for approval). Debt
   above EUR 999 999 999.99 for one mandate, more than one SEPA direct debit
   carries, is not collected but named in the log. One transaction: all or
   nothing. Rerunning the same date
   creates nothing new. A collection keeps the mandate id, debtor account and
   creditor id it was made with; when one changed since the mandate's
   previous collection, it carries the mandate amendment (original id,
   original account, or SMNDA for a move to another bank).
3. **announce_ready_runs** updates the asset `innen_collection_runs_ready`,
   which schedules `pain_export`; skipped when no run was made.
4. **direct_invoices**: references of types printed at once (`direct`) get
   their invoice, the debtor's pre-notification, right away; it belongs to
   the next day's printing (`var/invoices/<run date + 1>/`), which the next
   night's `invoice_run` puts in its print overview and `print.pdf` (the run
   date's own ran at 02:30, before this run). The others wait for the
   nightly `invoice_run`.
   A template that cannot be used fails this task at once, naming it; the
   collections stand.

**Run date**: the logical date in Europe/Brussels, or the `run_date` param of a
manual run. A mandate is due when its next slot falls within its hub's lead
days; the collection date is the first TARGET2 business day on or after the
later of that slot and the run date plus the lead days.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task

from include.airflow_roles import access_control
from include.assets import COLLECTION_RUNS_READY as READY

log = logging.getLogger(__name__)
COLLECTION_RUNS_READY = Asset(**READY)


@dag(
    dag_id="mandate_execution",
    schedule="0 5 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Brussels"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5), "owner": "finance"},
    tags=["innen", "sepa", "direct-debit"],
    params={
        "run_date": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Run date",
            description="Business date to execute for (YYYY-MM-DD). Empty: the run's logical date.",
        ),
    },
    access_control=access_control("mandate_execution"),
    doc_md=__doc__,
)
def mandate_execution() -> None:
    @task
    def check_mandates() -> dict:
        from dataclasses import asdict

        from include.finance.db import transaction
        from include.runtime import run_date
        from include.sepa.mandate_check import check_mandates as check
        from include.sepa.mandate_reports import write_mandate_lists

        day = run_date(get_current_context())
        with transaction(readonly=True) as session:
            lists = write_mandate_lists(check(session, day, with_amounts=True), day)
        log.info("mandate check %s: %s; lists in %s", day, lists.counts, lists.html)
        return asdict(lists)

    @task
    def execute_mandates(lists: dict) -> dict:
        from dataclasses import asdict

        from include.finance.db import transaction
        from include.runtime import actor, run_date
        from include.sepa.mandate_execution import execute_mandates as execute
        from include.sepa.mandate_reports import expand_ids

        context = get_current_context()
        with transaction() as session:
            result = execute(session, run_date(context), actor(context), mandate_ids=expand_ids(lists["due_ids"]))
        log.info(
            "%d mandates due, %d without eligible debt; %d collections for EUR %s %s; runs %s",
            result.due, result.without_debt, result.collections, result.total, result.by_sequence_type,
            result.ready_runs,
        )
        for loi, amount in result.too_large:
            log.warning("%s owes EUR %s, more than one SEPA direct debit may carry: not collected", loi, amount)
        return asdict(result)

    @task(outlets=[COLLECTION_RUNS_READY])
    def announce_ready_runs(result: dict) -> list[str]:
        from airflow.sdk.exceptions import AirflowSkipException

        runs = [run["loi"] for run in result["runs"]]
        if not runs:
            raise AirflowSkipException("no collection run was made")
        get_current_context()["outlet_events"][COLLECTION_RUNS_READY].extra = {"runs": runs}
        return runs

    @task
    def direct_invoices(result: dict) -> dict:
        """Types printed at once (seed 2.5.2 ``direct``): their collections' notices now, not at night."""
        from airflow.sdk.exceptions import AirflowFailException

        from include.finance.db import get_engine
        from include.invoices.making import direct_references_of_runs, make_invoices, next_print_day
        from include.invoices.templates import TemplateError
        from include.runtime import actor, as_of, run_date

        context = get_current_context()
        engine = get_engine()
        runs = [run["loi"] for run in result["runs"]]
        wanted = direct_references_of_runs(engine, runs)
        if not wanted:
            return {"references": 0}
        try:
            # printed by the next night's invoice_run: the run date's own ran at 02:30, before this run
            made = make_invoices(engine, actor(context), as_of(context), print_day=next_print_day(run_date(context)),
                                 reference_ids=wanted)
        except TemplateError as exc:  # the institution's template file: a retry reads the same file
            raise AirflowFailException(f"no invoice for the direct-print references of {', '.join(runs)}: {exc} "
                                       "(the collections stand; fix the template and rerun this task)") from None
        log.info("invoices of direct-print types: %s", made.as_dict())
        if made.refused:  # the collections stand; the nightly invoice run fails on these until their data is fixed
            log.warning("no invoice for %d reference(s): %s", len(made.refused), "; ".join(made.refused))
        return made.as_dict()

    executed = execute_mandates(check_mandates())
    announce_ready_runs(executed)
    direct_invoices(executed)


mandate_execution()
