# Two entry points for a fresh machine: `make demo` and `make test` (see README).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_WORKERS ?= 2
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-12)

.PHONY: env demo test test-fast lint ui validate clean-data

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
	$(MAKE) --no-print-directory test-fast
	@# the slow tests (model training) one after the other, alone on the machine: each uses every core, and two of
	@# them (or one beside the fast tests) on 2 cores made each several times slower; exit 5 = none selected
	$(BIN)/python -m pytest -q -ra --timeout=1800 -m slow $(PYTEST_ARGS) || [ $$? -eq 5 ]

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -ra --timeout=900 -n $(PYTEST_WORKERS) -m "not slow" $(PYTEST_ARGS) || [ $$? -eq 5 ]

lint: $(STAMP)
	$(BIN)/ruff check .

ui: $(STAMP)
	DAGSTER_HOME=$(CURDIR) $(BIN)/dagster dev -w workspace.yaml

clean-data:
	rm -rf stickypi-data
