# Innen's environment for Airflow, relative to the project root: the same values the Makefile exports
# (tests/dags/test_airflow_wrapper.py checks that the two agree). Sourced by bin/airflow; an operator
# may also `source bin/innen-env.sh` in a shell. Like the Makefile, AIRFLOW_HOME and the API port keep
# a value already set; everything else is Innen's.
# shellcheck shell=bash

INNEN_ROOT="$(cd -- "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/.." && pwd -P)"
export INNEN_ROOT
export PYTHONPATH="$INNEN_ROOT"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$INNEN_ROOT/var/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$INNEN_ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$INNEN_ROOT/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__PARALLELISM=4
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=True
export AIRFLOW__CORE__AUTH_MANAGER=airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager
export AIRFLOW__API__PORT="${AIRFLOW__API__PORT:-8080}"
