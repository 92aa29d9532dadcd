# callgate: `make run` serves the gateway on embedded SQLite; `make test` runs the whole suite.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck check bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/callgate migrate
	$(BIN)/callgate serve

test: $(STAMP)
	$(BIN)/ruff check gateway adapters tests bench examples
	$(BIN)/ruff format --check gateway adapters tests bench examples
	$(BIN)/mypy
	@# the console's browser tests drive Debian's chromium (they skip without it): install it when we can
	@command -v chromium >/dev/null || (command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && apt-get install -y -q chromium >/dev/null 2>&1) || true
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check gateway adapters tests bench examples
	$(BIN)/ruff format --check gateway adapters tests bench examples

typecheck: $(STAMP)
	$(BIN)/mypy

# the per-webhook stages and the CRM syncs, outside the table; then bench.suite: every target, measured
# in one run, as one table (printed last, and build/bench.json). BENCH_ARGS: --quick, --only PART, ...
bench: $(STAMP)
	$(BIN)/python -m bench.stages
	$(BIN)/python -m bench.crm --calls 100
	$(BIN)/python -m bench.suite $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
