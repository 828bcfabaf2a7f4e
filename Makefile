# The two set-up commands of the README: `make run` and `make test`. Each creates the
# virtual environment (.venv) on first use and refreshes it when pyproject.toml changes.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit peers bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Runs the hub on embedded defaults: SQLite in data/, the in-process broker.
run: $(STAMP)
	$(BIN)/cap-hub serve --data data

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check hub tests bench

typecheck: $(STAMP)
	$(BIN)/mypy --strict hub

# The test peers that are not Python: the SMSC simulator (npm package smpp, pinned by its lock).
peers:
	npm ci --prefix tests/peers/smsc --no-audit --no-fund --loglevel=error

unit: $(STAMP) peers
	$(BIN)/pytest

bench: $(STAMP) peers
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
