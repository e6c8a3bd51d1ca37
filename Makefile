# Innen — two commands on a fresh machine: `make demo`, `make test`. `make ui` for the Airflow UI.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export INNEN_ROOT := $(CURDIR)
export PYTHONPATH := $(CURDIR)
export AIRFLOW_HOME ?= $(CURDIR)/var/airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__PARALLELISM := 4
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION := True
export AIRFLOW__API__PORT ?= 8080

.PHONY: help install demo test ui bench postgres qr-tools airflow-db clean

help:
	@echo "make demo   install, build the demo institution, run the direct-debit cycle, print the outputs"
	@echo "make test   install, then the whole test suite (unit, DAG integrity, integration, end-to-end)"
	@echo "make ui     airflow standalone with Innen's DAGs on http://localhost:$(AIRFLOW__API__PORT)"
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

airflow-db: $(STAMP)
	@mkdir -p $(AIRFLOW_HOME)
	@$(VENV)/bin/airflow db migrate >$(AIRFLOW_HOME)/db-migrate.log 2>&1 || { cat $(AIRFLOW_HOME)/db-migrate.log; exit 1; }

demo: airflow-db
	@$(VPY) scripts/demo.py

test: $(STAMP) postgres qr-tools
	@$(VPY) -m pytest

# standalone starts its components as `airflow …` subprocesses: the venv goes first on PATH.
ui: airflow-db
	@echo "Airflow UI: http://localhost:$(AIRFLOW__API__PORT)  (user admin; password in $(AIRFLOW_HOME)/simple_auth_manager_passwords.json.generated)"
	@PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/airflow standalone

bench: $(STAMP)
	@$(VPY) bench/pain008.py
	@$(VPY) bench/mandates.py

clean:
	rm -rf var .pytest_cache
