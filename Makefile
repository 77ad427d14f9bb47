# Two entry points for a fresh machine: `make demo` and `make test` (see README).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_WORKERS ?= 2
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-12)

.PHONY: env demo test lint ui validate clean-data

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

env: $(STAMP)

demo: $(STAMP)
	DAGSTER_HOME=$(CURDIR) $(BIN)/stickypi demo

test: $(STAMP)
	$(BIN)/ruff check .
	DAGSTER_HOME= $(BIN)/dagster definitions validate -w workspace.yaml
	$(BIN)/python -m pytest -q -ra --timeout=1800 -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

ui: $(STAMP)
	DAGSTER_HOME=$(CURDIR) $(BIN)/dagster dev -w workspace.yaml

clean-data:
	rm -rf stickypi-data
