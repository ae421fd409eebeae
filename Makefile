# gexe — the commands a developer and CI use. `make test` works from a fresh clone:
# it makes the virtualenv and installs the npm tools itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup test test-quick lint fmt demo dev dev-smoke programs programs-check contracts contracts-check bench bench-quick fuzz fuzz-quick faults soak clean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

node_modules/.installed: package.json
	npm install --no-audit --no-fund
	touch $@

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-quick: setup
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The local program demo: run the example ping program in the sandbox.
demo: setup
	$(VENV)/bin/gexe program run programs/ping/ping.wasm --send PING --send hello

# The local network: anvil (1-second blocks), contracts, 4 validators (validator 0 also the
# sequencer), the example programs and a demo of requests answered on chain; runs until
# Ctrl-C. dev-smoke runs the demo and exits 0 only if every reply arrived.
dev: setup
	$(PY) -m gexe dev

dev-smoke: setup
	$(PY) -m gexe dev --smoke

# Rebuild every example program from source (Debian's rustc/cargo with the wasm32 std).
programs:
	bash programs/build.sh

# Rebuild and fail if the committed wasm differs from what the sources give.
programs-check: programs
	git diff --exit-code --stat -- 'programs/*.wasm' 'programs/**/*.wasm'

contracts: node_modules/.installed
	node contracts/build.js

contracts-check: contracts
	git diff --exit-code --stat -- contracts/artifacts

# The CI-sized fault suite (issue #9, tests/faults, ~8 minutes; also part of `make test`):
# crash, chain and network faults injected on a dev network during request streams, then a
# short load; prints the trials and totals. FAULT_SEED=<n> replays a run's random choices.
faults: setup
	$(PY) -m pytest -q tests/faults $(PYTEST_ARGS)

# The soak (issue #9): the highest request rate the dev network holds for 10 minutes, then
# 60 fault trials; prints JSON and writes bench/results/faults.json. A short one:
# make soak SOAK_ARGS="--minutes 1 --trials 12"
soak: setup
	$(PY) faults/soak.py $(SOAK_ARGS)

bench: setup
	$(PY) bench/run_all.py

bench-quick: setup
	$(PY) bench/run_all.py --quick

# Soak-mode fuzzing of the hostile-input surfaces (RELIABILITY.md): FUZZ_CASES per
# target (WASM validation, syscalls, gossip decoding, RPC dispatcher, RPC HTTP layer),
# coverage-guided with atheris when it installs, else Hypothesis. Prints JSON (also in
# fuzz/results/latest.json); exits 1 on any crash, its input saved in fuzz/crashes/.
FUZZ_CASES ?= 10000

fuzz: setup
	@$(PY) -c "import atheris" 2>/dev/null || $(PY) -m pip install -q atheris \
	  || echo "atheris did not install: fuzzing with Hypothesis"
	$(PY) fuzz/run.py --target all --cases $(FUZZ_CASES) --out fuzz/results/latest.json

fuzz-quick: setup
	$(PY) fuzz/run.py --target all --cases 1000

clean:
	rm -rf build dist *.egg-info programs/target bench/results fuzz/results .pytest_cache
