PYTHON ?= python3
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
