"""The trigger form's params: what a person may type, checked by Airflow before any run starts."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tests.dag_bag import dag_bag

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_IDS = sorted(p.stem for p in DAGS.glob("*.py"))


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_every_param_has_a_title_and_a_description(dag_id: str) -> None:
    params = dag_bag().dags[dag_id].params
    missing = [name for name in params if not (params.get_param(name).schema.get("title")
                                               and params.get_param(name).description)]
    assert not missing, f"{dag_id}: {missing} need a title and a description for the trigger form"



@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_the_doc_names_every_param(dag_id: str) -> None:
    dag = dag_bag().dags[dag_id]
    missing = [name for name in dag.params if f"`{name}`" not in (dag.doc_md or "")]
    assert not missing, f"{dag_id}: the doc_md does not say what {missing} do"

def _accepts(dag_id: str, name: str, value: object) -> bool:
    from airflow.sdk.definitions.param import ParamValidationError

    param = copy.deepcopy(dag_bag().dags[dag_id].params.get_param(name))  # resolve() keeps the value
    try:
        param.resolve(value)
    except ParamValidationError:
        return False
    return True


@pytest.mark.parametrize(("dag_id", "name", "value", "accepted"), [
    ("pain_export", "collection_run", None, True),
    ("pain_export", "collection_run", "", True),
    ("pain_export", "collection_run", " fj:BIB:12 ", True),
    ("pain_export", "collection_run", "fp:BIB:12", False),  # a reference, not a run
    ("pain_export", "collection_run", "12", False),
    ("pain_export", "collection_run", "fj:BIB:12, fj:BIB:13", False),
    ("payment_reference_delete", "collection_run", "fj:KBC-BIB:3", True),
    ("payment_reference_delete", "collection_run", "BIB:3", False),
    ("payment_reference_delete", "references", None, True),
    ("payment_reference_delete", "references", "fp:BIB:30, fp:BIB:31", True),
    ("payment_reference_delete", "references", " fp:BIB:30,fp:BIB:31, ", True),
    ("payment_reference_delete", "references", "fp:BIB:30 fp:BIB:31", False),  # one 'reference' with a space
    ("payment_reference_delete", "references", "+++062/0000/00159+++", False),
    ("payment_reference_delete", "references", "fj:BIB:12", False),
    ("payment_reference_seal", "references", ["fp:BIB:30", " fp:BIB:31, fp:BIB:32"], True),
    ("payment_reference_seal", "references", ["fp:BIB:30", ""], False),
    ("payment_reference_seal", "references", ["  "], False),
    ("payment_reference_seal", "references", ["fp:BIB:x"], False),
    ("collection_confirm", "collection_run", "fj:BIB:12", True),
    ("collection_confirm", "collection_run", " fj:BIB:12\n", True),
    ("collection_confirm", "collection_run", "   ", False),
    ("collection_confirm", "collection_run", "fj:BIB:0", False),
    ("collection_confirm", "collection_run", "fj:BIB:12;", False),
    ("collection_confirm", "received_amount", "1234.56", True),
    ("collection_confirm", "received_amount", "1234,56", False),
    ("mandate_execution", "run_date", "2026-11-20", True),
    ("mandate_execution", "run_date", "20261120", False),
    ("mandate_execution", "run_date", " 2026-11-20", False),
    ("pom_delivery_report", "fetch_days", 91, False),
    ("pom_payment_requests", "renew_within_days", -1, False),
])
def test_the_trigger_form_checks_what_a_person_types(dag_id: str, name: str, value: object, accepted: bool) -> None:
    assert _accepts(dag_id, name, value) is accepted


@pytest.mark.parametrize(("dag_id", "task_id"), [
    ("payment_reference_expiry", "expire"),
    ("pom_reconciliation", "reconcile_requests"),
    ("pom_payment_requests", "sync_requests"),
    ("pom_delivery_report", "analyse_file"),
    ("pom_delivery_report", "fetch_from_pom"),
])
def test_a_malformed_as_of_fails_the_run_at_once(dag_id: str, task_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The form does not check ``format: date-time`` (no rfc3339-validator): a bad as_of reached the task as a
    ValueError ('Invalid isoformat string') that was retried. Now: AirflowFailException naming the param, before
    any database or POM is touched."""
    from airflow.sdk.exceptions import AirflowFailException

    task = dag_bag().dags[dag_id].get_task(task_id)
    work = getattr(task, "python_callable", None) or task.partial_kwargs["python_callable"]
    monkeypatch.setitem(work.__globals__, "get_current_context", lambda: {"params": {"as_of": "2026-11-20 2h"}})
    with pytest.raises(AirflowFailException, match=r"^param as_of: '2026-11-20 2h' is not a date-time"):
        work(*(["report.csv"] if task_id == "analyse_file" else []))


@pytest.mark.parametrize(("dag_id", "task_id"), [("camt053_import", "files_to_import"),
                                                 ("pom_delivery_report", "reports_in_inbox")])
@pytest.mark.parametrize("path", ["lost.xml", "../../innen.sqlite"])
def test_a_path_that_cannot_be_taken_fails_the_run_at_once(dag_id: str, task_id: str, path: str, var_dir: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing file was 'nothing to import' (the run looked done); one outside the inbox was retried."""
    from airflow.sdk.exceptions import AirflowFailException

    work = dag_bag().dags[dag_id].get_task(task_id).python_callable
    monkeypatch.setitem(work.__globals__, "get_current_context", lambda: {"params": {"path": f" {path} "}})
    with pytest.raises(AirflowFailException, match=rf"^param path: {path}: (no such file|not inside the inbox)"):
        work()
