# Two entry points (README): `make serve` and `make test`. Everything they need installs from here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint typecheck pytest bench clean js

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/bulkforce serve --data-dir ./data

# jsforce compatibility tests need node + npm; without them those tests skip with the reason.
js:
	@if command -v npm >/dev/null 2>&1; then \
		cd tests/js && npm install --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: jsforce tests will be skipped"; fi

lint: $(STAMP)
	$(BIN)/ruff check bulkforce tests bench
	$(BIN)/ruff format --check bulkforce tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) js
	$(BIN)/pytest -q

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m bench.ingest --rows 100000 --upsert-rows 10000 $(BENCH_ARGS)

clean:
	rm -rf $(VENV) tests/js/node_modules
