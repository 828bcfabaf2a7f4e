# The two set-up commands of the README: `make run` and `make test`. Each creates the
# virtual environment (.venv) on first use and refreshes it when pyproject.toml changes.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit peers sysdeps bench clean

$(STAMP): pyproject.toml setup.py hub/cap/_build.pyx
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

# The voice channel's system packages (Debian): the SIP user agent and test peers (baresip,
# sipp from sip-tester) and speech (espeak-ng, sox); installed only when a command is missing,
# with sudo when not root.
VOICE_COMMANDS := sipp baresip espeak-ng sox
sysdeps:
	@missing=""; for c in $(VOICE_COMMANDS); do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing the voice packages (missing:$$missing)"; \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    sip-tester baresip espeak-ng sox; \
	fi

unit: $(STAMP) peers sysdeps
	$(BIN)/pytest

bench: $(STAMP) peers sysdeps
	for b in bench/[!_]*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
