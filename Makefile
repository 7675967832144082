# One command surface for people and CI (README, .ci/run).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo run test lint typecheck openapi openapi-check pytest pure-coverage bench-smoke clean i18n i18n-compile

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
test: setup lint typecheck openapi-check pytest pure-coverage bench-smoke

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy app tests bench

openapi: setup
	$(BIN)/juisteplek export-openapi --output openapi/openapi.json

openapi-check: setup
	$(BIN)/juisteplek export-openapi --output $(VENV)/openapi.fresh.json >/dev/null
	diff -u openapi/openapi.json $(VENV)/openapi.fresh.json || \
	  (echo "openapi/openapi.json is out of date: run 'make openapi'" >&2; exit 1)

pytest: setup
	$(BIN)/pytest -q

# The pure domain modules (triage rules, state machine, KPI formulas, ranking) are covered by their
# unit tests alone, every line and branch.
PURE := app.triage.rules app.triage.checks app.triage.urgency app.placement.states \
	app.kpi.formulas app.capacity.ranking app.placement.suitability
pure-coverage: setup
	$(BIN)/pytest -q -p no:cacheprovider tests/unit --cov-branch $(addprefix --cov=,$(PURE)) \
	  --cov-report=term-missing:skip-covered --cov-fail-under=100

bench-smoke: setup
	CI=true $(BIN)/python -m bench.run_search --smoke
	CI=true $(BIN)/python -m bench.run_holds --smoke

## Web app catalogs: extract messages, merge them into nl/en, compile the .mo files (committed)
LOCALE_DIR := app/web/locale
i18n: setup
	$(BIN)/pybabel extract -F babel.cfg -k tr -k N_ --no-location --sort-output \
	  --project=JuistePlek -o $(LOCALE_DIR)/messages.pot .
	$(BIN)/pybabel update -i $(LOCALE_DIR)/messages.pot -d $(LOCALE_DIR) --no-fuzzy-matching
	$(MAKE) i18n-compile

i18n-compile: setup
	$(BIN)/pybabel compile -d $(LOCALE_DIR) --statistics

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache juisteplek-demo.db*
