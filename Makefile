# One venv (.venv) serves every target; `make test` on a fresh clone needs only python3 >= 3.11 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck pytest demo compat stress stress-short bench bench-quick docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,compat,bench,docs]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

test: lint typecheck pytest

demo: $(STAMP)
	$(BIN)/python examples/bridge_demo.py
	$(BIN)/python examples/stateless_demo.py
	$(BIN)/python examples/wsgi_demo.py
	$(BIN)/python examples/metrics_demo.py

# asgiref 3.13's own test suite against this package (issue 7); see compat/run.py.
compat: $(STAMP)
	$(BIN)/python compat/run.py

# Randomised storms against the bridge and the WSGI adapter; see tests/stress/.
stress: $(STAMP)
	$(BIN)/python -m tests.stress

stress-short: $(STAMP)
	$(BIN)/python -m tests.stress --short

# Benchmarks (issue 8): one process compares us with asgiref, a2wsgi and raw anyio; see benchmarks/README.md.
bench: $(STAMP)
	$(BIN)/python -m benchmarks

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks --quick

# Sphinx HTML with warnings as errors (issue 9); works offline (no intersphinx).
docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) .compat .mypy_cache .pytest_cache .ruff_cache docs/_build
