# Two commands from a fresh clone: `make mock-up` and `make test` (each creates .venv by itself).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8080
SEED   ?=
TARGET ?= mock

.PHONY: mock-up test contract lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

mock-up: $(STAMP)
	$(VENV)/bin/tradefence-mock --host $(HOST) --port $(PORT) $(if $(SEED),--seed $(SEED))

test: $(STAMP) node_modules/.installed
	$(PY) -m pytest -q -p no:cacheprovider

contract: $(STAMP)
	$(PY) -m pytest contracts -q --target=$(TARGET)

lint: $(STAMP) node_modules/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/openapi-spec-validator openapi.yaml
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true node_modules/.bin/redocly lint openapi.yaml
	node scripts/validate-asyncapi.mjs asyncapi.yaml

# make bench: never part of make test. Prism goes into .bench/node_modules (not the repo's package.json);
# wrk comes from Debian if it is missing (without it the bench falls back to a slower asyncio load generator).
PRISM_VERSION := 5.16.0
BENCH_STAMP   := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	touch $@

.bench/prism-$(PRISM_VERSION).installed:
	mkdir -p .bench
	npm install --prefix .bench --no-audit --no-fund --loglevel=error @stoplight/prism-cli@$(PRISM_VERSION)
	touch $@

bench: $(BENCH_STAMP) .bench/prism-$(PRISM_VERSION).installed
	@command -v wrk >/dev/null || { \
	  apt-cache policy wrk 2>/dev/null | grep -q 'Candidate: [0-9]' || apt-get update -q >/dev/null; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null; } \
	  || echo "wrk unavailable: the bench falls back to its asyncio load generator"
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache .hypothesis
