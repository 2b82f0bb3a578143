# Every target that needs Python installs the project first (idempotent, quick when done).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test run lint bench bench-quick clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# One worker per core; a module's tests stay on one worker, so its shared fixtures run once.
test: $(STAMP)
	$(BIN)/python -m pytest -n auto --dist loadscope

# The method on a small default: c3rl on 20 pendulum agents in 3 wind groups, then its plots;
# pass other options with ARGS="--task ... --episodes ...".
ARGS ?= --sharing c3rl --episodes 40 --overwrite  # the demo replaces its own earlier run
run: $(STAMP)
	$(BIN)/c3rl train --plot $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check c3rl_jax tests benchmarks
	$(BIN)/ruff format --check c3rl_jax tests benchmarks

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks.run_all --quick

clean:
	rm -rf $(VENV) build *.egg-info
