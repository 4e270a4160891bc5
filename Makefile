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
# Not under libfaketime: Debian's `faketime` (0.9.10) gives CPython >= 3.11 a Unix-time
# deadline on the monotonic clock, so threading.Event.wait(t), Thread.join(t) and
# queue.get(timeout=t) never return (futex FUTEX_WAIT_BITSET tv_sec=1796414271 with
# uptime 6652 s), and with FAKETIME_DONT_FAKE_MONOTONIC=1 time.sleep fails with EINVAL
# (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, tv_sec=-1796395550)). No wait in
# Python or its libraries survives both, so the suite runs on the real clock; it does
# not depend on the hour: every test that plans a flight fixes the time it plans for.
test: setup
	bash scripts/install-test-deps.sh
	LD_PRELOAD="$$(printf '%s' "$${LD_PRELOAD:-}" | tr ' :' '\n\n' | grep -v libfaketime | paste -sd: -)" \
	  $(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
