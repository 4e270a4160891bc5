# The two commands a new user needs:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test lint setup

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[dev]' --config-settings editable_mode=compat
	touch $@

# Set up and run the main job: audit the bundled demo dataset into out/demo/.
demo: setup
	$(BIN)/haulwatch audit data/demo --out out/demo

# Run the whole test suite (installs what it needs first). It passes at any hour, also
# under Debian's `faketime` (e.g. `faketime '2026-12-04 18:30:00' make test`, 02:30 in
# Zhejiang): the project's timed waits go through haulwatch.waiting, because libfaketime
# 0.9.10 makes CPython >= 3.11's Event.wait(t)/Thread.join(t) never return.
test: setup
	bash scripts/install-test-deps.sh
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
