# The commands a user types. Only python3 and make are needed; everything else is installed
# into .venv from the package registries.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)/dagster_home

DBT_SOURCES := $(shell find dbt_project/models dbt_project/seeds dbt_project/macros dbt_project/tests -type f 2>/dev/null) dbt_project/dbt_project.yml dbt_project/profiles.yml
MANIFEST := dbt_project/target/manifest.json

.PHONY: install install-dev prepare demo test dev lint format clean help

help:
	@echo "make demo   - install, load the sandbox brand's history, build every mart, publish the BI snapshot"
	@echo "make report - rebuild the HTML report (data/serving/report.html) from the current snapshot"
	@echo "make test   - install with dev extras and run the whole test suite"
	@echo "make dev    - open the Dagster UI at http://127.0.0.1:3000"
	@echo "make lint   - ruff"
	@echo "make clean  - remove the warehouse, snapshot and Dagster run history (keeps .venv)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# The dbt manifest is prepared here, once per change of the dbt project, so that Dagster never
# parses the project when it loads definitions. It is parsed with the warehouse path Dagster will
# give dbt (absolute): dbt's partial parsing is keyed on the rendered profile, and with another path
# every build would first re-parse the whole project (~8 s of CPU).
$(MANIFEST): $(VENV)/.installed $(DBT_SOURCES)
	cd dbt_project && WAREHOUSE_PATH="$${WAREHOUSE_PATH:-$(realpath $(CURDIR))/data/warehouse.duckdb}" \
		../$(BIN)/dbt parse --profiles-dir . --quiet
	@touch $@

prepare: $(MANIFEST)

demo: install prepare
	$(BIN)/python -m orchestration.demo

.PHONY: report
report: install
	$(BIN)/python -m orchestration.report

test: install-dev prepare
	$(BIN)/python -m pytest

dev: install prepare
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf data dbt_project/target dbt_project/logs
	find dagster_home -mindepth 1 ! -name dagster.yaml -exec rm -rf {} +
