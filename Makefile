# Innen — two commands on a fresh machine: `make demo`, `make test`. `make ui` for the Airflow UI.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# The same environment as bin/innen-env.sh (what bin/airflow runs with); tests/dags/test_airflow_wrapper.py checks both agree.
export INNEN_ROOT := $(CURDIR)
export PYTHONPATH := $(CURDIR)
export AIRFLOW_HOME ?= $(CURDIR)/var/airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__PARALLELISM := 4
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION := True
# Roles per DAG (finance, finance-admin, operator, viewer) need Flask-AppBuilder's auth manager.
export AIRFLOW__CORE__AUTH_MANAGER := airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager
export AIRFLOW__API__PORT ?= 8080

.PHONY: help install demo test test-quick ui airflow bench postgres qr-tools browser redis cluster cluster-check cluster-stop airflow-db clean

help:
	@echo "make demo   install, build the demo institution, run the direct-debit cycle, print the outputs"
	@echo "make test   install, then the whole test suite (unit, DAG integrity, integration, end-to-end)"
	@echo "make test-quick  unit and DAG tests and the doctests (under a minute; no PostgreSQL, no end-to-end)"
	@echo "make ui     Airflow (api-server, scheduler, dag-processor) with Innen's DAGs on http://localhost:$(AIRFLOW__API__PORT)"
	@echo "make airflow ARGS=\"dags list\"  any airflow command with Innen's environment (the same as bin/airflow dags list)"
	@echo "make cluster / cluster-stop  PostgreSQL, Redis and Airflow with two Celery workers on this machine (deploy/airflow.env)"
	@echo "make bench  the benchmarks in bench/ (minutes; prints ratios against their anchors)"

# uv from PyPI when the machine has none; the venv is rebuilt only when requirements.txt changes.
$(STAMP): requirements.txt
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	@UV="$$(command -v uv || echo "$(PYTHON) -m uv")"; \
	  [ -x $(VPY) ] || $$UV venv --quiet --python $(PYTHON) $(VENV); \
	  $$UV pip sync --quiet --python $(VPY) --compile-bytecode requirements.txt
	@touch $(STAMP)

install: $(STAMP)

# Debian's PostgreSQL binaries, for the tests' throwaway clusters.
postgres:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { \
	  echo "installing Debian's postgresql (the tests start throwaway clusters)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

# poppler's pdftoppm and zbar's zbarimg: the tests rasterise invoice PDFs and scan their QR codes like a phone.
qr-tools:
	@command -v pdftoppm >/dev/null 2>&1 && command -v zbarimg >/dev/null 2>&1 || { \
	  echo "installing Debian's poppler-utils and zbar-tools (the tests scan the QR codes on invoices)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils zbar-tools >/dev/null; }

# Debian's chromium: the browser tests drive it with Playwright (executable_path; Playwright downloads no browser).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium (the browser tests log in to Airflow like a person)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Debian's redis-server: the Celery broker of `make cluster`.
redis:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing Debian's redis-server (the Celery broker of make cluster)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }

# A distributed Airflow on this machine: PostgreSQL, Redis, api-server, scheduler, dag-processor, triggerer and two
# Celery workers in their own folders, configured from deploy/airflow.env (sandbox/cluster.py). Stop: make cluster-stop.
cluster: $(STAMP) postgres redis
	@$(VPY) -m sandbox.cluster start

# The nightly cycle through the cluster's scheduler and Celery workers (tests/cluster, pytest -m cluster).
cluster-check: cluster
	@$(VPY) -m pytest tests/cluster -m cluster -q

cluster-stop: $(STAMP)
	@$(VPY) -m sandbox.cluster stop

airflow-db: $(STAMP)
	@mkdir -p $(AIRFLOW_HOME)
	@$(VENV)/bin/airflow db migrate >$(AIRFLOW_HOME)/db-migrate.log 2>&1 || { cat $(AIRFLOW_HOME)/db-migrate.log; exit 1; }
	@$(VPY) -m sandbox.airflow_users 2>>$(AIRFLOW_HOME)/db-migrate.log | tail -1

demo: airflow-db
	@$(VPY) scripts/demo.py

# Both cores: test files are shared out between two workers (one file stays on one worker: its fixtures are shared).
test: $(STAMP) postgres qr-tools browser
	@$(VPY) -m pytest -n 2 --dist loadfile

test-quick: $(STAMP) qr-tools
	@$(VPY) -m pytest tests/unit tests/dags include -q

# Not `airflow standalone` (it forces the simple auth manager): api-server, scheduler and dag-processor with FAB.
ui: airflow-db
	@$(VPY) -m sandbox.airflow_services

# Any airflow command with Innen's environment: make airflow ARGS="dags test camt053_import" (or bin/airflow …).
airflow: airflow-db
	@bin/airflow $(ARGS)

bench: $(STAMP)
	@$(VPY) bench/pain008.py
	@$(VPY) bench/mandates.py
	@$(VPY) bench/invoices.py

clean:
	rm -rf var .pytest_cache
