# PLP Alert: `make run` runs the whole system locally; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
PORT ?= 5000
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)

PRISM := tests/contract/node_modules/.bin/prism

.PHONY: install contract-mock run test lint format bench clean

install: $(STAMP)

# Prism, the validating mock of Twilio's published API that the contract tests use,
# from tests/contract/package-lock.json. Without npm those tests are skipped (in CI,
# where CI=true, they fail instead, so a broken install cannot pass unnoticed).
contract-mock: $(PRISM)

$(PRISM): tests/contract/package-lock.json
	@if command -v npm >/dev/null; then \
	  npm ci --prefix tests/contract --no-audit --no-fund --loglevel=error >/dev/null && touch $@; \
	else echo "npm not found: the Twilio contract tests will be skipped (apt-get install npm)"; fi

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "PLP Alert needs Python 3.11 or newer (found $$($(PYTHON) --version))"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || \
	  { echo "python3 -m venv failed: on Debian/Ubuntu run: sudo apt-get install python3-venv"; exit 1; }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
	  -r requirements.txt -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

# Migrate, load the demo into an empty database, then run Procfile.dev's processes
# (web, worker with scheduler, and the carrier simulator) until Ctrl-C; the embedded
# Redis is stopped on exit.
run: install
	@$(FLASK) db upgrade
	@$(FLASK) redis start >/dev/null
	@$(FLASK) demo --if-empty
	@echo
	@echo "  PLP Alert is up: http://127.0.0.1:$(PORT)/healthz"
	@echo "  Simulated phones (PHONE_PROVIDER=simulator): http://127.0.0.1:$(PORT)/simulator"
	@echo "  Ctrl-C stops everything."
	@echo
	@trap '$(FLASK) redis stop >/dev/null 2>&1 || true' EXIT; \
	  if [ -z "$$PUBLIC_BASE_URL" ] && ! grep -qs '^ *PUBLIC_BASE_URL *=' .env; then \
	    export PUBLIC_BASE_URL=http://127.0.0.1:$(PORT); fi; \
	  PATH="$(CURDIR)/$(BIN):$$PATH" HOST=127.0.0.1 $(BIN)/honcho start -f Procfile.dev -p $(PORT)

test: install contract-mock
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python bench/roster_import.py
	$(BIN)/python bench/pacing.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache tests/contract/node_modules
