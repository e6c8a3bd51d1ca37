"""
### Bank files for collection runs (pain.008, SAFESEPA, CSV, BXML), approved by finance

Scheduled by the asset `innen_collection_runs_ready` (set by
`mandate_execution`), and by hand (finance).

* **runs_to_export**: the run named in the `collection_run` param, or every
  run still `ready` whose hub has an export format (not one waiting for
  approval, nor one finance rejected: that one is exported again by hand).
* **export_run** (one mapped task per run): writes the hub's format. SEPA and
  SAFESEPA files are validated against the official pain.008 XSD while they
  are written; a file that fails is never released, the run is marked
  `failed` with the first error and the task fails without retrying. The same
  run exported twice gives byte-identical files. A hub with
  `approval_required` (the default) gets the file in `var/staging/`; a hub
  without goes straight to `var/outbox/` as before.
* **approve** (one per run): finance's approval in Airflow's *Required
  actions*: hub, creditor account, collection date, transactions and totals
  per sequence type, the control sum, the file's SHA-256, amendments and a
  link to the file (which only finance may open: it shows every debtor's name
  and account), read from Innen's database (what `export_run` returns,
  which Airflow logs, names no account). **Approve** or **Reject** (with a reason). No timeout:
  nothing is ever approved by itself. On a `four_eyes` hub (default) the
  person who triggered this run may not approve it: their answer is recorded
  as refused and the file keeps waiting for someone else. Finance gets an
  e-mail when a file waits (Connection `innen_finance_mail`, if set).
  The answer is acted on at once: approved → the file is moved into
  `var/outbox/` in one rename, then its `.sha256` is written beside it, and
  the run is `exported`, recorded with the approver (a run that changed while
  its file waited, references deleted, is not released: export it again); rejected → the file is removed from staging,
  the run says who rejected it and why. A retried task finds the decision in
  the database and never asks twice.
* **release**: finishes and reports what the answer did (idempotent).

Only `finance` and `finance-admin` may trigger this DAG and answer its
approvals (`access_control`).

Params (manual run): `collection_run` (e.g. `fj:BIB:12`; re-exports an
exported, failed or rejected run; a confirmed or deleted run gets no file,
the run fails naming it) and `export_format` (override the hub's format for
that run; refused without `collection_run`).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pendulum
from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLOperator
from airflow.sdk import Asset, Param, dag, get_current_context, task, task_group

from include.airflow_roles import access_control
from include.assets import COLLECTION_RUNS_READY as READY
from include.param_patterns import RUN_OR_EMPTY

log = logging.getLogger(__name__)
COLLECTION_RUNS_READY = Asset(**READY)
FILE_VIEW = "/innen-finance/bank-files/{approval_id}"  # the plugin's app serves the file to who may answer its approval


class BankFileApproval(ApprovalOperator):
    """Airflow's ApprovalOperator on one staged bank file: Approve or Reject, with four eyes.

    A reject does not skip the release task: that task records the rejection (who, why) on the run.
    """

    template_fields = (*ApprovalOperator.template_fields, "staged")

    def __init__(self, *, staged: Any, **kwargs: Any) -> None:
        from airflow.sdk.definitions.param import ParamsDict

        kwargs.setdefault("subject", "Bank file waiting for approval")  # unmapping passes it in again
        # The form's one field. Airflow hands the DAG's params in here already (and keeps only task-sourced ones
        # for the form), so the field is added to what comes in, marked as the task's.
        reason = Param(None, type=["null", "string"], title="Reason", source="task",
                       description="Why you reject the file (kept on the run); optional on approval.")
        given = kwargs.get("params")
        known = {key: given.get_param(key) for key in given} if isinstance(given, ParamsDict) else dict(given or {})
        kwargs["params"] = ParamsDict({**known, "reason": reason})
        super().__init__(**kwargs)
        self.staged = staged

    def execute(self, context: Any) -> Any:
        staged = self.staged or {}
        if not staged.get("approval_required"):
            log.info("%s: the hub needs no approval (%s)", staged.get("run"), staged.get("status"))
            return {"chosen_options": [], "automatic": True}
        from include.sepa.bank_file_approval import decision

        if done := decision(staged["approval_id"]):  # a retry after the answer was acted on: never ask twice
            log.info("%s: already %s by %s", staged["run"], done["verdict"], done["by"])
            return done
        if answered := self._answer_on_record(context):  # answered while this try was being scheduled
            return self.execute_complete(context, answered)
        self._question(staged)
        from include.finance_mail import approval_waiting_mail  # Airflow's SmtpNotifier, if a Connection says where

        approval_waiting_mail(context, staged)
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        answer = HITLOperator.execute_complete(self, context, event)  # the answer, without skipping the release
        from include.runtime import actor
        from include.sepa.bank_file_approval import Verdict, judge, refuse, reject, release

        staged = self.staged
        judgement = judge(answer, requested_by=staged.get("requested_by"), four_eyes=bool(staged.get("four_eyes")))
        if judgement.verdict is Verdict.REFUSED:
            log.warning("%s: %s", staged["run"], judgement.message)
            refuse(staged["approval_id"], judgement.by or "", judgement.message, actor(context))
            return self._ask_again(context)
        # Acted on at once, in Innen's database: a retry of this task (Airflow may fail a task it has just resumed)
        # then finds the decision there instead of asking again and losing the answer.
        if judgement.verdict is Verdict.RELEASE:
            release(staged["approval_id"], judgement.by, actor(context))
        else:
            reject(staged["approval_id"], judgement.by, judgement.reason, actor(context))
        return {"verdict": judgement.verdict.value, "by": judgement.by, "reason": judgement.reason,
                "chosen_options": answer["chosen_options"]}

    def _question(self, staged: dict[str, Any]) -> None:
        """Subject and body of the question. The body (with the creditor account) is read from Innen's database:
        the export task returns no account, since Airflow logs what a task returns."""
        from include.sepa.bank_file_approval import approval_body

        self.subject = (f"Approve bank file {staged['file_name']}: {staged['transactions']} collections, "
                        f"EUR {staged['total']}?")
        self.body = approval_body(staged["approval_id"], view_url=FILE_VIEW)

    def _answer_on_record(self, context: Any) -> dict[str, Any] | None:
        """The answer Airflow holds for this task instance already, if any (upserting the question would erase it)."""
        from airflow.sdk.execution_time.hitl import get_hitl_detail_content_detail

        try:
            detail = get_hitl_detail_content_detail(context["task_instance"].id)
        except Exception:  # no question asked yet: Airflow answers 404
            return None
        if not detail.response_received:
            return None
        user = detail.responded_by_user
        return {"chosen_options": detail.chosen_options or [], "params_input": detail.params_input or {},
                "responded_by_user": {"id": user.id, "name": user.name} if user else None,
                "responded_at": detail.responded_at}

    def _ask_again(self, context: Any) -> Any:
        """Clear the refused answer and wait again (Airflow keeps one answer per task instance)."""
        from airflow.sdk.exceptions import TaskAwaitingInput
        from airflow.sdk.execution_time.hitl import upsert_hitl_detail

        self._question(self.staged)  # this try resumed in a new process: the question is asked again in full
        upsert_hitl_detail(ti_id=context["task_instance"].id, options=self.options, subject=self.subject,
                           body=self.body, defaults=self.defaults, multiple=self.multiple,
                           params=self.serialized_params, assigned_users=self.assigned_users)
        raise TaskAwaitingInput(method_name="execute_complete", timeout=self.response_timeout)


def chosen_runs(context: Any) -> list[str]:
    """The runs to export: the ``collection_run`` param's (spaces ignored), else every ready run.

    A run that does not exist, or that is confirmed or deleted (no file to make), fails the DAG run at once,
    naming the param (it failed each mapped export in turn, retried; a confirmed run's file was made again)."""
    from airflow.sdk.exceptions import AirflowFailException
    from sqlalchemy import select

    from include.errors import echoed
    from include.finance.db import transaction
    from include.finance.models import CollectionRun
    from include.sepa.export import not_exportable
    from include.sepa.export import runs_to_export as ready_runs

    requested = (context["params"].get("collection_run") or "").strip()
    if (chosen_format := context["params"].get("export_format")) and not requested:
        raise AirflowFailException(f"param export_format: {chosen_format} is for one run: name it in collection_run "
                                   "(every ready run keeps its hub's format)")
    with transaction(readonly=True) as session:
        if requested:
            status = session.scalar(select(CollectionRun.status).where(CollectionRun.loi == requested))
            if status is None:
                raise AirflowFailException(f"param collection_run: there is no collection run {echoed(requested)}")
            if why := not_exportable(status):
                raise AirflowFailException(f"param collection_run: {requested} is {status} ({why}): "
                                           "no bank file is made again")
            return [requested]
        runs = ready_runs(session)
    log.info("runs to export: %s", runs or "none")
    return runs


@dag(
    dag_id="pain_export",
    schedule=[COLLECTION_RUNS_READY],
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Brussels"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=2), "owner": "finance"},
    tags=["innen", "sepa", "direct-debit", "bank-file"],
    params={
        "collection_run": Param(
            None, type=["null", "string"], pattern=RUN_OR_EMPTY, title="Collection run",
            description="Identifier of one run to export (fj:SYS:n). Empty: every ready run.",
        ),
        "export_format": Param(
            None, type=["null", "string"], enum=[None, "SEPA", "SAFESEPA", "CSV", "BXML"], title="Export format",
            description="Override the hub's export format for the run named above (refused without one).",
        ),
    },
    access_control=access_control("pain_export"),
    doc_md=__doc__,
)
def pain_export() -> None:
    @task
    def runs_to_export() -> list[str]:
        return chosen_runs(get_current_context())

    @task(max_active_tis_per_dagrun=2)
    def export_run(run_loi: str) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from include.airflow_roles import person
        from include.errors import ExportRejected
        from include.runtime import actor
        from include.sepa.bank_file_approval import stage_run

        context = get_current_context()
        ti = context["ti"]
        try:
            result = stage_run(
                run_loi, actor(context), requested_by=person(context),
                airflow_task=f"{ti.dag_id}/{ti.run_id}/bank_file.approve/{ti.map_index}",
                export_format=context["params"].get("export_format"),
            )
        except ExportRejected as exc:
            raise AirflowFailException(str(exc)) from None
        log.info("%s: %s %s sha256=%s, %d transactions, EUR %s", result["run"],
                 "waiting for approval" if result.get("approval_id") else result.get("status"),
                 result.get("file_name") or result.get("file_path") or result.get("message"), result.get("sha256"),
                 result.get("transactions", 0), result.get("total"))
        return result

    @task
    def release(staged: dict, answer: dict) -> dict:
        from include.runtime import actor
        from include.sepa.bank_file_approval import Verdict, reject
        from include.sepa.bank_file_approval import release as release_file

        if not staged.get("approval_required"):
            return staged
        context = get_current_context()
        if answer.get("verdict") == Verdict.REJECT.value:
            result = reject(staged["approval_id"], answer.get("by"), answer.get("reason") or "", actor(context))
            log.info("%s: bank file rejected by %s: %s", result["run"], result["rejected_by"], result["reason"])
            return result
        result = release_file(staged["approval_id"], answer.get("by"), actor(context))
        log.info("%s: released %s (sha256 %s), approved by %s", result["run"], result["file_path"], result["sha256"],
                 result["approved_by"])
        return result

    @task_group
    def bank_file(run_loi: str) -> None:
        """One run's file: written, approved, released; each run goes on as soon as its own answer is in."""
        staged = export_run(run_loi)
        answer = BankFileApproval(task_id="approve", staged=staged)
        release(staged, answer.output)

    bank_file.expand(run_loi=runs_to_export())


pain_export()
