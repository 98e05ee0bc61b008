# Signoff: every target installs what it needs, from nothing.
#   make local   start Signoff locally (moto, no AWS account) on http://127.0.0.1:8080
#   make test    lint, type-check and run every test suite
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8080
URL ?= http://127.0.0.1:$(PORT)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONPATH := infra

.PHONY: install browser local synth demo test lint typecheck unit integration infrastructure e2e bench eval cdk-synth clean

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Debian's Chromium and its driver, for the sandbox page's browser test (skipped without them).
browser:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; }

synth: $(VENV)/.installed
	$(BIN)/python infra/app.py

# The local stack runs the example release workflow too (it embeds a checkpoint).
local: install
	SIGNOFF_EXAMPLE=1 $(BIN)/python infra/app.py
	$(BIN)/python -m local --port $(PORT)

demo: $(VENV)/.installed
	$(BIN)/python -m local.demo --url $(URL)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed
	$(BIN)/mypy

test: install browser lint typecheck
	$(BIN)/pytest -n 2 --dist loadgroup

unit: $(VENV)/.installed
	$(BIN)/pytest -m unit
integration: $(VENV)/.installed
	$(BIN)/pytest -m integration
infrastructure: install
	$(BIN)/pytest -m infrastructure
e2e: install browser
	$(BIN)/pytest -m e2e

cdk-synth: install
	npx cdk synth --quiet

bench: install
	$(BIN)/python -m bench.run

# The helpdesk router on the held-out questions (writes eval/results.json).
eval: $(VENV)/.installed
	PYTHONPATH=layers/core $(BIN)/python -m eval.run

clean:
	rm -rf $(VENV) node_modules cdk.out .cache .pytest_cache .mypy_cache .ruff_cache .hypothesis bench/results.json
