# One venv (.venv, made with $(PYTHON)) serves every target; `make test` on a fresh clone needs
# only python3 >= 3.11 and make. `make test` also runs pytest under the other Pythons in
# PYTHON_VERSIONS that it finds (python3.12 on PATH, or pyenv's), one venv each (.venv-3.12).
PYTHON ?= python3
PYTHON_VERSIONS ?= 3.11 3.12 3.13
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck pytest pytest-other-pythons demo compat stress stress-short bench bench-quick docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# pip >= 25.1 reads pyproject.toml's dependency groups (--group), so pip is upgraded first.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e . --group test --group lint --group compat --group bench --group docs
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

pytest-other-pythons: $(STAMP)
	PYTHON_VERSIONS='$(PYTHON_VERSIONS)' sh .ci/pytest_each_python.sh $(BIN)/python

test: lint typecheck pytest pytest-other-pythons

demo: $(STAMP)
	$(BIN)/python examples/bridge_demo.py
	$(BIN)/python examples/stateless_demo.py
	$(BIN)/python examples/wsgi_demo.py
	$(BIN)/python examples/asgi_to_wsgi_demo.py
	$(BIN)/python examples/metrics_demo.py

# asgiref 3.13's own test suite against this package; see compat/run.py.
compat: $(STAMP)
	$(BIN)/python compat/run.py

# Randomised storms against the bridge and the WSGI adapter; see tests/stress/.
stress: $(STAMP)
	$(BIN)/python -m tests.stress

stress-short: $(STAMP)
	$(BIN)/python -m tests.stress --short

# Benchmarks: one process compares us with asgiref, a2wsgi and raw anyio; see benchmarks/README.md.
bench: $(STAMP)
	$(BIN)/python -m benchmarks

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks --quick

# Sphinx HTML with warnings as errors; works offline (no intersphinx).
docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) .venv-* .compat .mypy_cache .pytest_cache .ruff_cache docs/_build
