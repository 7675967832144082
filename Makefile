# One command surface for people and CI (README, .ci/run).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo run test test-notice checks checks-then-smoke screenshots lint typecheck openapi openapi-check pytest pure-coverage bench-smoke clean i18n i18n-compile

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## Set up and run the embedded demo (SQLite, region West) on http://127.0.0.1:8000
demo: setup
	$(BIN)/juisteplek demo

run: demo

## Set up and run everything CI runs: lint, types, OpenAPI drift, tests on SQLite and PostgreSQL
# The test suite (the longest step) runs beside the other checks, which take their turns in the
# second job slot; each step's output is printed in one piece when it ends (-O), and any failing
# step fails `make test`. The benchmark smoke takes the second slot's last turn: it checks
# correctness (equal answers, no overbooking, every event delivered), not speed, so sharing the
# cores with pytest does not change its verdict.
test: test-notice setup
	@echo "make test: pytest runs beside lint, typecheck, openapi-check, pure-coverage and the"
	@echo "  benchmark smoke; each step's output appears when it ends"
	$(MAKE) --no-print-directory -j 2 -O pytest checks-then-smoke

# The steps of `make test` besides pytest, one after the other.
checks: lint typecheck openapi-check pure-coverage

checks-then-smoke: checks
	$(MAKE) --no-print-directory bench-smoke

# What `make test` installs besides .venv, said before it does.
test-notice:
	@echo "make test: installs the Python packages into $(VENV) (pip); starts a throw-away"
	@echo "  PostgreSQL cluster (scripts/pg-cluster.sh), installing Debian's postgresql with apt-get when"
	@echo "  no server binaries are present (root only; or set JUISTEPLEK_TEST_POSTGRES_URL to use yours);"
	@echo "  installs Debian's wrk with apt-get for the benchmark smoke when it is missing (root only)"
	@echo "  and Debian's chromium for the browser tests when it is missing (root only)."
	@echo "  With them present it needs no root."

# lint-imports: the dependency rule's contracts in pyproject.toml (docs/architecture.md).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy app tests bench

openapi: setup
	$(BIN)/juisteplek export-openapi --output openapi/openapi.json

openapi-check: setup
	$(BIN)/juisteplek export-openapi --output $(VENV)/openapi.fresh.json >/dev/null
	diff -u openapi/openapi.json $(VENV)/openapi.fresh.json || \
	  (echo "openapi/openapi.json is out of date: run 'make openapi'" >&2; exit 1)

# Four workers on two cores: many tests wait on servers, browsers and the database, and each
# worker has its own databases, servers and ports.
pytest: setup
	$(BIN)/pytest -q -n 4 --dist loadfile --no-loadscope-reorder --durations=20

# The pure domain modules (triage rules, state machine, KPI formulas, ranking, region file) are
# covered, every line and branch, by their unit tests and by the property tests that hold each KPI's
# SQL against its pure reference formula (on SQLite only: no PostgreSQL is started).
PURE := app.triage.rules app.triage.checks app.triage.urgency app.placement.states \
	app.kpi.formulas app.capacity.ranking app.placement.suitability app.registry.regionfile
PURE_TESTS := tests/unit tests/service/test_kpi_sql_properties.py \
	tests/service/test_kpi_referral_fields_properties.py tests/service/test_kpi_shortage_properties.py \
	tests/service/test_kpi_waiting_properties.py tests/service/test_report_request_kpi_properties.py
pure-coverage: setup
	JUISTEPLEK_TEST_BACKENDS=sqlite $(BIN)/pytest -q -p no:cacheprovider $(PURE_TESTS) --cov-branch \
	  $(addprefix --cov=,$(PURE)) --cov-report=term-missing:skip-covered --cov-fail-under=100

bench-smoke: setup
	CI=true $(BIN)/python -m bench.run_search --smoke
	CI=true $(BIN)/python -m bench.run_holds --smoke
	CI=true $(BIN)/python -m bench.run_stream --smoke

## Web app catalogs: extract messages, merge them into nl/en, compile the .mo files (committed)
LOCALE_DIR := app/web/locale
i18n: setup
	$(BIN)/pybabel extract -F babel.cfg -k tr -k N_ --no-location --sort-output \
	  --project=JuistePlek -o $(LOCALE_DIR)/messages.pot .
	$(BIN)/pybabel update -i $(LOCALE_DIR)/messages.pot -d $(LOCALE_DIR) --no-fuzzy-matching
	$(MAKE) i18n-compile

i18n-compile: setup
	$(BIN)/pybabel compile -d $(LOCALE_DIR) --statistics

## Retake the screenshots in docs/screenshots with the browser tests (SQLite)
screenshots: setup
	JUISTEPLEK_UPDATE_SCREENSHOTS=1 JUISTEPLEK_TEST_BACKENDS=sqlite $(BIN)/pytest -q tests/browser

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache juisteplek-demo.db* juisteplek-demo.env
