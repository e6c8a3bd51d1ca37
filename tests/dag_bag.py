"""The DAGs of ``dags/``, parsed once per test session (per xdist worker).

``dag.test(run_conf=…)`` writes the conf's values into the DAG's own
``Param`` objects (Airflow merges the conf into a dict that shares them), so
the next run would start from the last run's conf. :func:`parsed_dag` puts
every param back to its value at parse time. A deep copy of the DAG would not
do: it empties a mapped task's expand input.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

DAGS = Path(__file__).resolve().parents[1] / "dags"


@cache
def dag_bag() -> Any:
    """The session's one parse of ``dags/``."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


@cache
def _parse_time_params(dag_id: str) -> list[tuple[Any, Any]]:
    """Every ``Param`` of the DAG and its tasks, with its value as parsed."""
    dag = dag_bag().dags[dag_id]
    params = {id(param): param for holder in (dag, *dag.tasks) for _, param in (holder.params or {}).items()}
    return [(param, copy.deepcopy(param.value)) for param in params.values()]


def parsed_dag(dag_id: str) -> Any:
    """DAG ``dag_id`` from the session's parse, its params as parsed."""
    for param, value in _parse_time_params(dag_id):
        param.value = copy.deepcopy(value)
    return dag_bag().dags[dag_id]


def fresh_dag(dag_id: str) -> Any:
    """DAG ``dag_id`` parsed anew from its own file, for a test that renders its operators' templates or
    answers them in place (which changes the parsed operators for whoever runs them next)."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS / f"{dag_id}.py")).dags[dag_id]
