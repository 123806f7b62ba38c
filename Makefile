# Audience Engine. `make demo` and `make test` work on a fresh machine with Python 3.11.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export PYTHONPATH := $(CURDIR)/layers/audience:$(CURDIR)/infra
export SAM_CLI_TELEMETRY := 0
AWS_PORT ?= 4566
API_PORT ?= 3000
EMBEDDED := $(BIN)/python -m embedded --aws-port $(AWS_PORT) --api-port $(API_PORT)
# make local PARAMETERS="MaxEventAgeDays=20000 StreamBatchSize=100": template parameters, as
# `sam deploy --parameter-overrides` takes them, over samconfig.toml's (CONFIG_ENV picks its env).
export PARAMETERS CONFIG_ENV

.PHONY: sql replay browser browser-sdks screenshots fuzz security openapi help venv demo retrain bench source source-origins revoke-source sources test test-fast test-unit test-integration test-e2e lint local invoke build validate lock clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements.lock requirements-dev.txt layers/audience/requirements.txt layers/ml/requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) on PATH (or make PYTHON=/path/to/python3.11)"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	touch $@

venv: $(BIN)/.installed

demo: $(BIN)/.installed ## start the embedded stack, send sample events, print the profiles, stop
	$(EMBEDDED) demo

DEMO ?= 1
local: $(BIN)/.installed ## start the embedded stack with the demo's data (DEMO=0: empty) and keep it up (Ctrl-C stops it); PARAMETERS="Key=Value ..."
	$(EMBEDDED) local $(if $(filter 1,$(DEMO)),--demo-data)

retrain: $(BIN)/.installed ## against `make local`: what the schedule sends; AS_OF=2010-12-10T00:00:00Z CALIBRATION_END=2010-09-09: a value backtest
	@event=tests/events/retrain_scheduled.json; \
	if [ -n "$(AS_OF)$(CALIBRATION_END)" ]; then event=$$(mktemp --suffix=.json); \
	  $(BIN)/python -c 'import json, sys; a, c = sys.argv[1:]; print(json.dumps({"action": "retrain", \
	    **({"asOf": a} if a else {}), **({"calibrationEnd": c} if c else {})}))' "$(AS_OF)" "$(CALIBRATION_END)" > $$event; fi; \
	$(EMBEDDED) invoke RetrainFunction $$event

# The query reaches the script through the environment, never through the shell's quoting: it may
# hold quotes, span lines and hold $ (JSON paths): the README's queries do.
override QUERY := $(value QUERY)
export QUERY
sql: $(BIN)/.installed ## against `make local`: DuckDB over the events archive and the profile snapshots: make sql QUERY="SELECT event, count(*) FROM events GROUP BY ALL"
	@test -n "$$QUERY" || { echo 'usage: make sql QUERY="SELECT ... FROM events | profiles | latest_profiles"'; exit 2; }
	@AWS_ENDPOINT_URL=http://127.0.0.1:$(AWS_PORT) $(BIN)/python infra/lake_sql.py

replay: $(BIN)/.installed ## against `make local`: rebuild profiles from the archived events of those days, exactly once: make replay FROM=2026-11-01 TO=2026-11-30
	@test -n "$(FROM)" -a -n "$(TO)" || { echo "usage: make replay FROM=<YYYY-MM-DD> TO=<YYYY-MM-DD>"; exit 2; }
	@event=$$(mktemp --suffix=.json); printf '{"action": "replay", "from": "%s", "to": "%s"}' "$(FROM)" "$(TO)" > $$event; \
	$(EMBEDDED) invoke LakeFunction $$event

# Sources of the tracking API: against `make local` by default, against your AWS account with TARGET=aws.
ifeq ($(TARGET),aws)
SOURCES := $(BIN)/python infra/sources.py --stack $(or $(STACK),audience-engine)
else
SOURCES := AWS_ENDPOINT_URL=http://127.0.0.1:$(AWS_PORT) AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=local \
	AWS_SECRET_ACCESS_KEY=local $(BIN)/python infra/sources.py
endif

source: $(BIN)/.installed ## issue a write key for a source: make source NAME=web [ORIGINS="https://shop.example.com,http://localhost:*"] (TARGET=aws: on AWS)
	@test -n "$(NAME)" || { echo "usage: make source NAME=<source> [ORIGINS=<origin,...>] [TARGET=aws] [STACK=...]"; exit 2; }
	$(SOURCES) create $(NAME) $(if $(ORIGINS),--origins "$(ORIGINS)")

source-origins: $(BIN)/.installed ## the origins a source's pages may send from: make source-origins NAME=web ORIGINS="https://shop.example.com" (empty: servers only)
	@test -n "$(NAME)" || { echo "usage: make source-origins NAME=<source> ORIGINS=<origin,...> [TARGET=aws]"; exit 2; }
	$(SOURCES) origins $(NAME) "$(ORIGINS)"

revoke-source: $(BIN)/.installed ## revoke a source's keys: make revoke-source NAME=web [KEY=<key id>]
	@test -n "$(NAME)" || { echo "usage: make revoke-source NAME=<source> [KEY=<key id>] [TARGET=aws]"; exit 2; }
	$(SOURCES) revoke $(NAME) $(if $(KEY),--key $(KEY))

sources: $(BIN)/.installed ## list the sources, their origins and their write keys' ids
	$(SOURCES) list

invoke: $(BIN)/.installed ## run one handler: make invoke FUNCTION=IngestFunction EVENT=tests/events/ingest_order_completed.json
	@test -n "$(FUNCTION)" -a -n "$(EVENT)" || { echo "usage: make invoke FUNCTION=<logical id> EVENT=<file>"; exit 2; }
	$(EMBEDDED) invoke $(FUNCTION) $(EVENT)

# What a function has in Lambda: the layer's requirements and the runtime's boto3, nothing of
# the dev tools (the SAM CLI brings awscrt, which slows boto3's import). Import times use it.
LAMBDA_VENV := .venv-lambda
$(LAMBDA_VENV)/.installed: layers/audience/requirements.txt
	test -d $(LAMBDA_VENV) || $(PYTHON) -m venv $(LAMBDA_VENV)
	$(LAMBDA_VENV)/bin/python -m pip install --quiet -r layers/audience/requirements.txt $$(grep '^boto3==' requirements.lock)
	touch $@

# lifetimes (the baseline of the value models) in a venv of its own: its pins are not ours.
LIFETIMES_VENV := .venv-lifetimes
$(LIFETIMES_VENV)/.installed:
	test -d $(LIFETIMES_VENV) || $(PYTHON) -m venv $(LIFETIMES_VENV)
	$(LIFETIMES_VENV)/bin/python -m pip install --quiet lifetimes==0.11.3
	touch $@

# implicit (ALS): the recommendations' strongest baseline, in a venv of its own.
IMPLICIT_VENV := .venv-implicit
$(IMPLICIT_VENV)/.installed:
	test -d $(IMPLICIT_VENV) || $(PYTHON) -m venv $(IMPLICIT_VENV)
	$(IMPLICIT_VENV)/bin/python -m pip install --quiet implicit==0.7.3
	touch $@

bench: $(BIN)/.installed $(LAMBDA_VENV)/.installed $(LIFETIMES_VENV)/.installed $(IMPLICIT_VENV)/.installed ## print the benchmark tables (docs/benchmarks.md records them)
	LAMBDA_PYTHON=$(LAMBDA_VENV)/bin/python LIFETIMES_PYTHON=$(LIFETIMES_VENV)/bin/python \
		IMPLICIT_PYTHON=$(IMPLICIT_VENV)/bin/python \
		PYTHONPATH=$(PYTHONPATH):$(CURDIR) $(BIN)/python -m tests.benchmarks.profile_engine

# checkov in a venv of its own: its dependency tree conflicts with the project's pins.
CHECKOV_VENV := .venv-checkov
CHECKOV := checkov==3.3.30
$(CHECKOV_VENV)/.installed:
	test -d $(CHECKOV_VENV) || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet $(CHECKOV)
	touch $@

security: $(CHECKOV_VENV)/.installed ## checkov over template.yaml (each skipped check is justified in the template)
	$(CHECKOV_VENV)/bin/checkov -f template.yaml --framework cloudformation --skip-download --compact --quiet

# Tests spread over the cores (pytest-xdist; each worker that runs end-to-end tests starts its own
# embedded stack on free ports). (`--dist loadgroup` was tried: it reported 324 of 348 tests run.)
# TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= auto

browser: browser-sdks ## Debian's chromium for the browser tests (installed with apt-get when missing), and the SDKs they load
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || [ -n "$$CHROMIUM" ] || { \
	  echo "installing Debian's chromium for tests/browser"; \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq chromium >/dev/null; }

# The browser SDKs tests/browser/test_sdks.py drives (Segment's analytics-next, RudderStack's JS v3):
# the npm packages pinned in package-lock.json, each bundled (esbuild, pinned too) into one IIFE file in
# tests/browser/sdks/dist/, served to the test pages by the tests' own server: nothing from a CDN.
# Rebuilt only when the pins or the entry files change (the stamps), in a few seconds.
SDKS := tests/browser/sdks
$(SDKS)/node_modules/.installed: $(SDKS)/package.json $(SDKS)/package-lock.json
	@command -v npm >/dev/null || { echo "needs Node.js (18 or later) and npm for the browser SDKs (tests/browser/sdks)"; exit 1; }
	cd $(SDKS) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

$(SDKS)/dist/.built: $(SDKS)/node_modules/.installed $(wildcard $(SDKS)/src/*.js)
	cd $(SDKS) && npm run --silent build
	touch $@

browser-sdks: $(SDKS)/dist/.built ## bundle the pinned browser SDKs (npm ci + esbuild) that tests/browser/test_sdks.py loads

screenshots: $(BIN)/.installed browser ## the console's screenshots in docs/console/ (the browser tests, saving each page)
	CONSOLE_SCREENSHOTS=1 $(BIN)/pytest tests/browser -q -p no:randomly

# One OpenMP thread per test worker: scikit-learn's fits with a thread per core on top of a worker
# per core oversubscribe the machine (5-10x slower fits on two busy cores).
test test-fast test-unit test-e2e: export OMP_NUM_THREADS := 1

test: $(BIN)/.installed security browser browser-sdks ## the whole suite: lint, types, checkov, unit, integration, end to end, template (cfn-lint)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/pytest -n $(TEST_WORKERS)

test-fast: $(BIN)/.installed ## the inner loop: lint, unit and template tests (no moto, no SAM CLI), about two minutes on two cores
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/pytest -n $(TEST_WORKERS) tests/unit tests/template -m "not slow" -q

fuzz: $(BIN)/.installed ## schemathesis against the embedded stack, 500 examples per operation; prints the counts (docs/security.md)
	FUZZ_EXAMPLES=500 $(BIN)/pytest tests/e2e/test_fuzzing.py -q -s -p no:cacheprovider

test-unit: $(BIN)/.installed
	$(BIN)/pytest tests/unit

test-integration: $(BIN)/.installed
	$(BIN)/pytest tests/integration

test-e2e: $(BIN)/.installed
	$(BIN)/pytest tests/e2e

lint: $(BIN)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports && $(BIN)/mypy

openapi: $(BIN)/.installed ## regenerate docs/openapi.json from the API functions' routes
	$(BIN)/python infra/openapi_document.py > docs/openapi.json

validate: $(BIN)/.installed ## sam validate --lint
	$(BIN)/sam validate --lint

build: $(BIN)/.installed ## sam build (the layer and every function)
	$(BIN)/sam build

lock: ## re-pin the whole dependency tree from requirements-dev.txt
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet -r requirements-dev.txt
	.lock-venv/bin/python -m pip freeze --exclude-editable | sort > requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) $(LAMBDA_VENV) $(LIFETIMES_VENV) $(IMPLICIT_VENV) .aws-sam .local .pytest_cache .mypy_cache .ruff_cache $(SDKS)/node_modules $(SDKS)/dist
