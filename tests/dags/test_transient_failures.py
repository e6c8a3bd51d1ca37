"""A database that does not answer just now is a fault a retry may cure, not a person's refusal.

The manual DAGs turn Innen's refusals (an unknown run, a missing lock, a malformed param) into
AirflowFailException: no retry. The database not answering reached them as one too (it is raised as a
``ConfigError`` naming ``INNEN_DB_URL``), so a PostgreSQL restart failed a confirmation or a booking for good,
as "refused". Each task's work is called here as Airflow calls it, with a database URL nobody listens on.
"""

from __future__ import annotations

import socket
from types import SimpleNamespace
from typing import Any

import pytest

from tests.dag_bag import parsed_dag

ANSWER = {"chosen_options": ["Confirm"], "params_input": {"received_amount": "10.00"},
          "responded_by_user": {"id": "3", "name": "fiona"}, "responded_at": "2026-11-20T10:00:00+00:00"}
WORK = [
    ("control_list_resolve", "resolve", "resolve_by_hand",
     {"item": 1, "action": "handle", "reference": None, "note": "refunded"}),
    ("control_list_resolve", "resolve", "resolve_by_hand",
     {"item": 1, "action": "book", "reference": "fp:BIB:1", "note": None}),
    ("payment_reference_create", "create", "make_reference",
     {"end_user": "e:BIB:1", "reference_type": "DOM-BIB", "financial_system": None, "debt_lines": [1],
      "pattern": None, "due_date": None, "description": None, "seal": True}),
    ("payment_reference_delete", "delete", "delete_or_report",
     {"collection_run": "fj:BIB:1", "references": None, "dry_run": True}),
    ("payment_reference_seal", "apply", "seal_or_unseal", {"references": ["fp:BIB:1"], "action": "seal"}),
    ("collection_confirm", "preview", "preview_run", {"collection_run": "fj:BIB:1", "received_amount": None}),
    ("collection_confirm", "book", "book_decision", {"collection_run": "fj:BIB:1", "received_amount": "10.00"}),
]


def _closed_port() -> int:
    with socket.socket() as probe:  # bound, never listening: a connection is refused at once
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(("dag_id", "task_id", "name", "params"), WORK, ids=[f"{w[0]}.{w[1]}" for w in WORK])
def test_a_database_that_does_not_answer_is_retried_not_refused(
    monkeypatch: pytest.MonkeyPatch, dag_id: str, task_id: str, name: str, params: dict[str, Any]
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from include.errors import Unavailable

    monkeypatch.setenv("INNEN_DB_URL", f"postgresql+psycopg://innen@127.0.0.1:{_closed_port()}/innen")
    ti = SimpleNamespace(dag_id=dag_id, run_id="manual__test", task_id=task_id, id="ti-1", map_index=-1,
                         xcom_pull=lambda task_ids: {"preview": {"run": "fj:BIB:1"}, "decide": ANSWER}.get(task_ids),
                         xcom_push=lambda key, value: None)
    context = {"params": params, "ti": ti, "task_instance": ti,
               "dag_run": SimpleNamespace(triggering_user_name="fiona")}
    work = parsed_dag(dag_id).get_task(task_id).python_callable.__globals__[name]
    arguments = (context,) if dag_id == "collection_confirm" else (context, lambda _: ("fiona", frozenset({"finance"})))
    with pytest.raises(Exception) as raised:
        work(*arguments)
    assert not isinstance(raised.value, AirflowFailException), f"not retried: {raised.value}"
    assert isinstance(raised.value, Unavailable), raised.value
    assert "INNEN_DB_URL" in str(raised.value) and "cannot connect to the database" in str(raised.value)
