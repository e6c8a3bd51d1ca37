"""Innen's Airflow plugin: template macros for finance-facing text, and POM's callback and return pages.

``{{ macros.innen.ogm('123456789002') }}`` → ``+++123/4567/89002+++``;
``{{ macros.innen.mask_iban(iban) }}`` keeps an IBAN out of logs.

The API server mounts ``include.pom.callbacks`` at ``/innen``: POM posts its
transaction feedback to ``/innen/pom/callback/<account>`` and sends payers
back to ``/innen/pom/return/...``. The app is built on its first request, so
no Airflow component pays for importing it when it loads the plugin. It has
no Airflow login (POM and payers have none): its callbacks are signed.

A second app, at ``/innen-finance``, is for finance and operators and
requires Airflow's login (the UI's ``_token`` cookie, or ``Authorization:
Bearer`` from ``POST /auth/token``), checked by Airflow's own
``requires_access_dag``:

* ``GET /innen-finance/runs/<dag>/<run>/reports`` — the run's reports (the
  "Reports" tab of every DAG run), found from its tasks' return values
  (:mod:`include.run_reports`); ``.../files/<path>`` and ``.../file?path=``
  serve one of them (HTML inline, CSV as a download), nothing else, and since
  reports name payers only to finance and to who may run that DAG;
* ``GET /innen-finance/bank-files/<approval>`` — the bank file an approval is
  about, as plain text (link in the approval's body), to who may answer its approval (finance);
* ``GET /innen-finance/finance`` — the "Finance" page in the navigation
  (:mod:`include.finance_page`), ``/innen-finance/finance/<section>.csv`` its tables; to who may answer the
  approvals (finance): it names payers.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin


def ogm(number: str) -> str:
    from include.finance.reference_numbers import display_reference

    return display_reference(number)


def mask_iban(value: str) -> str:
    from include.sepa.identifiers import mask_iban as mask

    return mask(value)


class _ConnectionAccounts:
    """POM accounts read from Airflow Connections when a request names one (``pom_<account>``)."""

    def get(self, name: str) -> Any:
        from airflow.models.connection import Connection

        from include.pom.accounts import accounts_from_connections

        return accounts_from_connections([name], Connection.get_connection_from_secrets).get(name)


class _CallbackApp:
    """ASGI app that builds the real one on first use."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            from include.pom.callbacks import create_app

            accounts = _ConnectionAccounts()
            self._app = create_app(accounts_provider=lambda: accounts)
        await self._app(scope, receive, send)


FINANCE_PREFIX = "/innen-finance"
# The Finance page shows what these DAGs' runs did: a user must be allowed to read their runs.
FINANCE_DAGS = ("camt053_import", "control_list_resolve", "pain_export", "collection_confirm", "pom_reconciliation")
# Our pages and the reports are self-contained (inline CSS, no script): nothing else may load, and only the
# Airflow UI (same origin) may frame them.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
}


def _run_results(session: Any, dag_id: str, run_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The run (its state and date facts) and its tasks' return values: task id → value, a mapped task's values as a
    list by map index, tasks in the order they returned. None when Airflow knows no such run."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
    if run is None:
        return None
    facts = {"state": str(run.state) if run.state else None, "conf": dict(run.conf or {}),
             "logical_date": run.logical_date, "run_after": run.run_after}
    rows = session.execute(
        select(XComModel.task_id, XComModel.map_index, XComModel.value)
        .where(XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.key == "return_value")
        .order_by(XComModel.timestamp, XComModel.task_id, XComModel.map_index)
    ).all()
    mapped: dict[str, dict[int, Any]] = {}
    results: dict[str, Any] = {}
    for row in rows:
        value = XComModel.deserialize_value(row)
        if row.map_index < 0:
            results[row.task_id] = value
        else:
            mapped.setdefault(row.task_id, {})[row.map_index] = value
            results[row.task_id] = None  # keeps the task's place in the order
    for task_id, values in mapped.items():
        results[task_id] = [values[index] for index in sorted(values)]
    return facts, results


def _run_date(facts: dict[str, Any]) -> Any:
    """The run's business date as its tasks see it (``run_date`` param, else its logical date in Brussels)."""
    from types import SimpleNamespace

    from include.runtime import run_date

    try:
        return run_date({"params": facts["conf"], "logical_date": facts["logical_date"],
                         "dag_run": SimpleNamespace(run_after=facts["run_after"])})
    except (TypeError, ValueError):
        return None


def _waiting_approvals(session: Any) -> list[Any]:
    """Task instances of the approval DAGs waiting for a person's answer (HITL: state ``awaiting_input``)."""
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    from include.finance_page import APPROVAL_DAGS, Approval

    rows = session.execute(
        select(TI.dag_id, TI.run_id, TI.task_id, TI.map_index, HITLDetail.subject, HITLDetail.created_at,
               TI.start_date)
        .outerjoin(HITLDetail, HITLDetail.ti_id == TI.id)
        .where(TI.dag_id.in_(APPROVAL_DAGS), TI.state == TaskInstanceState.AWAITING_INPUT)
    ).all()
    return [Approval(r.dag_id, r.run_id, r.task_id, r.map_index, r.subject or "", r.created_at or r.start_date)
            for r in rows]


def create_finance_app() -> Any:
    """The app behind the Reports tab and the Finance page; every route requires Airflow's login."""
    from datetime import datetime
    from urllib.parse import urlparse

    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from airflow.api_fastapi.core_api.security import get_user, requires_access_dag
    from airflow.configuration import conf
    from airflow.utils.session import create_session
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.responses import FileResponse, HTMLResponse, Response, StreamingResponse

    from include.errors import ConfigError
    from include.finance.db import transaction
    from include.finance_page import (
        APPROVAL_DAGS,
        HTML_LIMIT,
        SECTION_KEYS,
        finance_sections,
        render_finance_page,
        section_csv,
    )
    from include.run_reports import ReportNotFound, render_reports_page, reports_of, run_file
    from include.runtime import LOCAL_ZONE

    # The run's dag_id comes from the path: the user must be allowed to read its runs and their results (XComs).
    run_access = [Depends(requires_access_dag("GET", DagAccessEntity.RUN)),
                  Depends(requires_access_dag("GET", DagAccessEntity.XCOM))]
    # The Finance page names payers and what to refund them: for finance, who may answer the approvals (not the
    # operators and viewers, who read the same runs).
    finance_access = [Depends(requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id=dag_id))
                      for dag_id in FINANCE_DAGS]
    finance_access += [Depends(requires_access_dag("PUT", DagAccessEntity.HITL_DETAIL, param_dag_id=dag_id))
                       for dag_id in APPROVAL_DAGS]

    def payer_data_access(dag_id: str, user=Depends(get_user)):  # type: ignore[no-untyped-def]
        """A report's files name payers (control lists, mandate lists, delivery action lists): finance reads
        them, and so does who runs the DAG that wrote them (its access_control); who only reads runs does not."""
        manager = get_auth_manager()

        def may(method: str, entity: Any, dag: str) -> bool:
            return manager.is_authorized_dag(method=method, access_entity=entity, details=DagDetails(id=dag),
                                             user=user)

        if may("PUT", DagAccessEntity.RUN, dag_id) or any(
                may("PUT", DagAccessEntity.HITL_DETAIL, dag) for dag in APPROVAL_DAGS):
            return
        raise HTTPException(403, "a report's files name payers: only finance and who runs this DAG may open them")

    report_file_access = [*run_access, Depends(payer_data_access)]

    app = FastAPI(title="Innen reports and finance", docs_url=None, redoc_url=None, openapi_url=None)
    # Route functions carry no return annotations: this module postpones annotations, and FastAPI would
    # have to resolve names imported here, inside the function.
    ui_base = urlparse(conf.get("api", "base_url", fallback="/") or "/").path.rstrip("/")  # where the UI lives

    def reports_of_run(dag_id: str, run_id: str) -> tuple[dict[str, Any], list[Any]]:
        with create_session() as session:
            found = _run_results(session, dag_id, run_id)
        if found is None:
            raise HTTPException(404, f"no run {run_id} of {dag_id}")
        facts, results = found
        return facts, reports_of(dag_id, results, _run_date(facts))

    def file_response(target: Any, media_type: str, filename: str | None = None) -> Response:
        """A file from Innen's storage: sent by the server from a local folder, streamed from an object store."""
        from include.storage import is_local

        if is_local(target):
            return FileResponse(target, media_type=media_type, filename=filename, headers=PAGE_HEADERS)

        def chunks():  # type: ignore[no-untyped-def]
            with target.open("rb") as handle:
                while block := handle.read(1 << 20):
                    yield block

        headers = dict(PAGE_HEADERS)
        if filename:
            headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        return StreamingResponse(chunks(), media_type=media_type, headers=headers)

    def serve(dag_id: str, run_id: str, path: str) -> Response:
        _facts, reports = reports_of_run(dag_id, run_id)
        try:
            target = run_file(reports, path)
        except ReportNotFound:
            raise HTTPException(404, "no such report file of this run") from None
        if target.suffix.lower() == ".csv":
            return file_response(target, "text/csv; charset=utf-8", filename=target.name)
        return file_response(target, "text/html; charset=utf-8")

    @app.get("/runs/{dag_id}/{run_id}/reports", dependencies=run_access)
    def reports_page(dag_id: str, run_id: str):  # type: ignore[no-untyped-def]
        facts, reports = reports_of_run(dag_id, run_id)
        page = render_reports_page(dag_id, run_id, reports, run_date=_run_date(facts), state=facts["state"])
        return HTMLResponse(page, headers=PAGE_HEADERS)

    @app.get("/runs/{dag_id}/{run_id}/file", dependencies=report_file_access)
    def report_file_by_query(dag_id: str, run_id: str, path: str):  # type: ignore[no-untyped-def]
        return serve(dag_id, run_id, path)

    @app.get("/runs/{dag_id}/{run_id}/files/{path:path}", dependencies=report_file_access)
    def report_file_by_path(dag_id: str, run_id: str, path: str):  # type: ignore[no-untyped-def]
        """The same, as a path: the links a report's page makes to its CSVs (relative) land here."""
        return serve(dag_id, run_id, path)

    # A bank file shows every debtor's name and full account: only who may answer its approval (finance) reads it,
    # not everyone who may read the export's runs (operators, viewers).
    bank_file_access = [Depends(requires_access_dag("PUT", DagAccessEntity.HITL_DETAIL, param_dag_id="pain_export"))]

    @app.get("/bank-files/{approval_id}", dependencies=bank_file_access)
    def bank_file(approval_id: int):  # type: ignore[no-untyped-def]
        """The file an approval is about, as text: in staging while it waits, in the outbox once approved."""
        from include.sepa.bank_file_approval import file_to_view

        try:
            path = file_to_view(approval_id)
        except LookupError as gone:
            raise HTTPException(404, str(gone)) from None
        return file_response(path, "text/plain; charset=utf-8")

    def sections(limit: int | None) -> list[Any]:
        today = datetime.now(LOCAL_ZONE).date()
        with create_session() as session:
            approvals = _waiting_approvals(session)
        try:
            with transaction(readonly=True) as session:
                return finance_sections(session, today, approvals, limit=limit)
        except ConfigError as exc:
            raise HTTPException(503, str(exc)) from None

    @app.get("/finance", dependencies=finance_access)
    def finance():  # type: ignore[no-untyped-def]
        page = render_finance_page(sections(limit=HTML_LIMIT), datetime.now(LOCAL_ZONE).date(), ui_base=ui_base)
        return HTMLResponse(page, headers=PAGE_HEADERS)

    @app.get("/finance/{section}.csv", dependencies=finance_access)
    def finance_csv(section: str):  # type: ignore[no-untyped-def]
        if section not in SECTION_KEYS:
            raise HTTPException(404, f"no section {section}")
        (chosen,) = [s for s in sections(limit=None) if s.key == section]
        day = datetime.now(LOCAL_ZONE).date().isoformat()
        return Response(section_csv(chosen), media_type="text/csv; charset=utf-8", headers={
            **PAGE_HEADERS, "Content-Disposition": f'attachment; filename="finance-{section}-{day}.csv"'})

    return app


class _FinanceApp:
    """ASGI app that builds the reports and finance app on first use (like the callback app)."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            self._app = create_finance_app()
        await self._app(scope, receive, send)


class InnenPlugin(AirflowPlugin):
    name = "innen"
    macros = [ogm, mask_iban]
    fastapi_apps = [
        {"app": _CallbackApp(), "url_prefix": "/innen", "name": "Innen POM callbacks and return pages"},
        {"app": _FinanceApp(), "url_prefix": FINANCE_PREFIX, "name": "Innen reports and finance (Airflow login)"},
    ]
    external_views = [
        {"name": "Reports", "href": FINANCE_PREFIX + "/runs/{DAG_ID}/{RUN_ID}/reports", "destination": "dag_run",
         "url_route": "innen-reports"},
        {"name": "Finance", "href": FINANCE_PREFIX + "/finance", "destination": "nav", "url_route": "innen-finance",
         "category": "browse"},
    ]
