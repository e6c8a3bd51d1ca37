"""The session's one parse of ``dags/`` hands out DAGs whose params are as parsed, whatever ran before."""

from __future__ import annotations

from tests.dag_bag import dag_bag, parsed_dag


def test_a_runs_conf_does_not_carry_into_the_next_run() -> None:
    dag = parsed_dag("housekeeping")
    parsed = dag.params["dry_run"]
    # What Airflow's process_params does with a run's conf: the conf lands on the DAG's own Param object.
    dag.params["dry_run"] = not parsed
    assert dag_bag().dags["housekeeping"].params["dry_run"] is (not parsed)
    again = parsed_dag("housekeeping")
    assert again is dag  # parsed once
    assert again.params["dry_run"] is parsed
