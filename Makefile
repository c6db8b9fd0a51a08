# Two entry points (README): `make serve` and `make test`. Everything they need installs from here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint typecheck pytest bench clean js chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

# `make serve PORT=8001` when 8000 is taken (or set BULKFORCE_PORT)
serve: $(STAMP)
	$(BIN)/bulkforce serve --data-dir ./data $(if $(PORT),--port $(PORT))

# jsforce compatibility tests need node + npm; without them those tests skip with the reason.
js:
	@if command -v npm >/dev/null 2>&1; then \
		cd tests/js && npm install --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: jsforce tests will be skipped"; fi

# The console's browser tests drive Debian's Chromium (Playwright never downloads a browser).
# Installed when missing and we can (root with apt-get); otherwise those tests skip and say why.
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "chromium missing and not installable here (needs root and apt-get): browser tests will be skipped"; fi

lint: $(STAMP)
	$(BIN)/ruff check bulkforce tests bench
	$(BIN)/ruff format --check bulkforce tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) js chromium
	$(BIN)/pytest -q

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m bench.ingest --rows 100000 --upsert-rows 10000 $(BENCH_ARGS)

clean:
	rm -rf $(VENV) tests/js/node_modules
