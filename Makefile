# The interpreter of .venv: Debian's /usr/bin/python3 when it is 3.11+ and has venv (a
# statically linked, distribution-optimised build: ~20 % less CPU per request in `make bench`
# than the shared-library build pyenv makes), else python3 from PATH. `make clean` to switch.
PYTHON ?= $(shell /usr/bin/python3 -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && echo /usr/bin/python3 || echo python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench bench-scaling clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/leaf7 serve

lint: $(STAMP)
	$(BIN)/ruff check service handlers store tests bench
	$(BIN)/ruff format --check service handlers store tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

# make bench BENCH_ARGS="--workers 2" | "--cluster" | "--cluster --workers 2" (see bench/run.py)
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# The four scale-out configurations, one after the other (figures in bench/results/).
bench-scaling: $(STAMP)
	mkdir -p bench/results
	-$(BIN)/python bench/run.py --json bench/results/single-1w.json
	-$(BIN)/python bench/run.py --workers 2 --json bench/results/single-2w.json
	-$(BIN)/python bench/run.py --cluster --json bench/results/cluster-1w.json
	-$(BIN)/python bench/run.py --cluster --workers 2 --json bench/results/cluster-2w.json

clean:
	rm -rf $(VENV) build *.egg-info
