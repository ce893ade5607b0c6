# The commands a user types. Only python3 and make are needed; everything else is installed
# into .venv from the package registries.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)/dagster_home

DBT_SOURCES := $(shell find dbt_project/models dbt_project/seeds dbt_project/macros dbt_project/tests -type f 2>/dev/null) dbt_project/dbt_project.yml dbt_project/profiles.yml
MANIFEST := dbt_project/target/manifest.json

.PHONY: install install-dev prepare demo doctor backfill refresh test dev serve lint format clean help bi bi-install

help:
	@echo "make demo   - install, load the sandbox brand's history, build every mart, publish the BI snapshot"
	@echo "make doctor - check every source's settings, access and permissions; say what will load"
	@echo "make backfill FROM=YYYY-MM-DD TO=YYYY-MM-DD - load that range from your sources, dbt, snapshot"
	@echo "make refresh - what the nightly runs: the trailing days, dbt, the snapshot"
	@echo "make report - rebuild the HTML report (data/serving/report.html) from the current snapshot"
	@echo "make test   - install with dev extras and run the whole test suite"
	@echo "make dev    - open the Dagster UI at http://127.0.0.1:3000"
	@echo "make serve  - run the Dagster code server, webserver and daemon (the nightly runs by itself; PostgreSQL with DAGSTER_PG_URL)"
	@echo "make bi     - serve the Superset dashboard of the snapshot at http://127.0.0.1:8088 (BI_PORT)"
	@echo "make lint   - ruff and sqlfluff (the dbt project's SQL)"
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
# give dbt (absolute; the environment, then `.env`): dbt's partial parsing is keyed on the rendered
# profile, and with another path every build would first re-parse the whole project (~8 s of CPU).
# The same holds for the brand: it is parsed with DBT_BRAND_VARS of the brand file that applies now
# (orchestration/brand.py).
$(MANIFEST): $(VENV)/.installed $(DBT_SOURCES)
	cd dbt_project && WAREHOUSE_PATH="$$(cd .. && $(BIN)/python -m orchestration.settings warehouse_path)" \
		DBT_BRAND_VARS="$$(cd .. && $(BIN)/python -m orchestration.brand)" ../$(BIN)/dbt parse --profiles-dir . --quiet
	@touch $@

prepare: $(MANIFEST)

demo: install prepare
	$(BIN)/python -m orchestration.demo

doctor: install
	$(BIN)/python -m orchestration.doctor

backfill: install prepare
	$(BIN)/python -m orchestration.refresh --from "$(FROM)" --to "$(TO)"

refresh: install prepare
	$(BIN)/python -m orchestration.refresh

.PHONY: report
report: install
	$(BIN)/python -m orchestration.report

test: install-dev prepare
	$(BIN)/python -m pytest

dev: install prepare
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# sqlfluff's dbt templater compiles the project (.sqlfluff): against a throwaway warehouse and
# target folder, so the prepared manifest, its parse state and the real warehouse are left alone.
SQLFLUFF = tmp=$$(mktemp -d) && WAREHOUSE_PATH=$$tmp/lint.duckdb DBT_TARGET_PATH=$$tmp/target \
	DBT_LOG_PATH=$$tmp/logs DBT_SEND_ANONYMOUS_USAGE_STATS=false $(BIN)/sqlfluff $(1) dbt_project; \
	status=$$?; rm -rf $$tmp; exit $$status

# The code server, the webserver and the daemon, logs in data/logs/, until Ctrl-C or SIGTERM. The
# instance folder follows DAGSTER_STORAGE (sqlite: dagster_home/, postgres: dagster_home/postgres/),
# read from the environment or .env by orchestration/serve.py, not from the DAGSTER_HOME above.
serve: install prepare
	$(BIN)/python -m orchestration.serve

# Superset lives in its own virtual environment: its pins must not move the project's packages.
BI_VENV := .bi-venv
$(BI_VENV)/.installed: bi/requirements.txt
	$(PYTHON) -m venv $(BI_VENV)
	$(BI_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BI_VENV)/bin/pip install --quiet -r bi/requirements.txt
	@touch $@

bi-install: $(BI_VENV)/.installed

bi: bi-install
	BI_VENV=$(BI_VENV) bi/run.sh

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@$(call SQLFLUFF,lint)

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	@$(call SQLFLUFF,fix)

clean:
	rm -rf data dbt_project/target dbt_project/logs
	find dagster_home -mindepth 1 ! -name dagster.yaml ! -path dagster_home/postgres -exec rm -rf {} +
