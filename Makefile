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

# Run the whole test suite (installs what it needs first).
test: setup
	bash scripts/install-test-deps.sh
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
