# Two entry points for a fresh machine: `make demo` and `make test` (see README).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_WORKERS ?= 2
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-12)

.PHONY: env demo test test-fast lint ui validate clean-data

$(STAMP): pyproject.toml
	@# the UI smoke tests' browser (Debian packages; CI machines start without them)
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

env: $(STAMP)

# The demo's days (its default sample: 2 days from 2020-06-20), so that the UI lists only those partitions, unless
# you set STICKYPI_START_DATE or STICKYPI_END_DATE yourself (for your own data).
ifeq ($(STICKYPI_START_DATE)$(STICKYPI_END_DATE),)
DEMO_DATES := STICKYPI_START_DATE=2020-06-20 STICKYPI_END_DATE=2020-06-21
endif

demo: $(STAMP)
	DAGSTER_HOME=$(CURDIR) $(DEMO_DATES) $(BIN)/stickypi demo

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
	DAGSTER_HOME=$(CURDIR) $(DEMO_DATES) $(BIN)/dagster dev -w workspace.yaml

clean-data:
	rm -rf stickypi-data
