# Quick start: `make demo` and `make test` work on a fresh clone with Python 3.11 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest explore bench bench-check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev,c]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/qnxsim demo

lint: $(STAMP)
	$(BIN)/ruff check qnxsim tests benchmarks examples
	$(BIN)/ruff format --check qnxsim tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy --strict qnxsim

pytest: $(STAMP)
	$(BIN)/python -m pytest

test: lint typecheck pytest

# Random exploration (not part of `make test`, which is deterministic): the whole suite
# with hypothesis drawing from SEED (default: the time), printed first so that a failure
# can be run again with `make explore SEED=N`.
SEED ?= $(shell date +%s)
explore: $(STAMP)
	@echo "make explore SEED=$(SEED)"
	$(BIN)/python -m pytest -q --hypothesis-seed=$(SEED)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

# The speed regression guard (not part of `make test`): exits non-zero when a flat row's
# median at 100,000 mappings exceeds 2x its median at 1,000 (DESIGN.md, "Speed").
bench-check: $(STAMP)
	$(BIN)/python benchmarks/check_ratios.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
