"""The trigger form's params: what a person may type, checked by Airflow before any run starts."""

from __future__ import annotations

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
