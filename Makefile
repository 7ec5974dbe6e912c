# Khuyến học Bot — developer tasks. GNU make; Python >= 3.11.
#   make demo     migrate, seed sample units, print invite codes, web chat on http://127.0.0.1:8080
#   make test     the test suite (PostgreSQL tests need TEST_DATABASE_URL; .ci/run sets one up)
#   make lint     ruff + mypy          make fix    ruff --fix + ruff format
#   make migration m="add x to y"     autogenerate the next migration after a model change

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
BENCH ?= bench/dialogue.py bench/channels.py bench/broadcast.py bench/reports.py bench/scaleout.py

PYTHON_OK := $(shell $(PYTHON) -c 'import sys; print(int(sys.version_info >= (3, 11)))' 2>/dev/null)
ifneq ($(PYTHON_OK),1)
$(error $(PYTHON) is missing or older than Python 3.11 ($(shell $(PYTHON) --version 2>&1 | head -n 1)). \
Install Python >= 3.11 and run e.g. `make PYTHON=python3.11 ...`)
endif

.DEFAULT_GOAL := help
.PHONY: help venv demo run test lint fix migration migrate bench ci clean

help:
	@echo "make venv | demo | run | test | lint | fix | migration m=\"msg\" | migrate | bench | ci | clean"

# The virtual environment, with the dev extras; reinstalled only when pyproject.toml changes.
venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(STAMP)
	$(BIN)/khuyenhoc demo

run: $(STAMP)
	$(BIN)/khuyenhoc run

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

fix: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Compares the models with a fresh SQLite database at head and writes
# storage/migrations/versions/NNNN_<msg>.py: review it, then commit it.
migration: $(STAMP)
	@test -n "$(m)" || { echo 'usage: make migration m="what changed"' >&2; exit 2; }
	$(BIN)/python -m storage.migrate revision -m "$(m)"

# Upgrade the database named by DATABASE_URL (default: the embedded SQLite file).
migrate: $(STAMP)
	$(BIN)/python -m storage.migrate upgrade "$${DATABASE_URL:-sqlite:///data/khuyenhoc.db}"

# Every benchmark, one after another (see BENCHMARKS.md); `make bench BENCH=bench/reports.py` for one.
# bench/scaleout.py needs a PostgreSQL server: TEST_DATABASE_URL=postgresql://… make bench
bench: $(STAMP)
	set -e; for script in $(BENCH); do echo "== $$script"; $(BIN)/python $$script; done

ci:
	bash .ci/run

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -prune -exec rm -rf {} +
