# The interpreter of .venv: Debian's /usr/bin/python3 when it is 3.11+ and has venv (a
# statically linked, distribution-optimised build: ~20 % less CPU per request in `make bench`
# than the shared-library build pyenv makes), else python3 from PATH. `make clean` to switch.
PYTHON ?= $(shell /usr/bin/python3 -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && echo /usr/bin/python3 || echo python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install lock run test lint bench bench-scaling flakes screenshots clean

install: $(STAMP)

# Locked install, into a fresh venv (--clear): exactly the versions (and sha256 hashes) in
# requirements/test.txt, then the project itself with --no-deps, so nothing is resolved outside
# the lock; the build backend (setuptools, wheel) is in the lock too and used with
# --no-build-isolation. The venv's own pip (from ensurepip) is kept: it is not upgraded from the
# network. The machine's pip settings (a mirror, extra indexes, find-links, constraints, a cache)
# are honoured: with --require-hashes a file whose sha256 is not in the lock is refused
# wherever it comes from.
PIP_INSTALL := PIP_DISABLE_PIP_VERSION_CHECK=1 $(BIN)/pip install --quiet
$(STAMP): setup.cfg pyproject.toml requirements/test.txt
	$(PYTHON) -m venv --clear $(VENV)
	$(PIP_INSTALL) --require-hashes -r requirements/test.txt
	$(PIP_INSTALL) --no-deps --no-build-isolation -e .
	@# Fails when setup.cfg asks for something the lock lacks: run `make lock` then.
	$(BIN)/pip check
	touch $(STAMP)

# Regenerates the lock files from setup.cfg (install_requires, extras test and bot) and
# requirements/build.in (the build backend), for Python 3.11+ on any platform (--universal).
# Versions already in a lock are kept while they still fit: `make lock LOCK_ARGS=--upgrade`
# moves everything to the newest allowed, `LOCK_ARGS="--upgrade-package aiohttp"` one package.
# uv lives in its own venv, .venv-lock/.
UV_VERSION := 0.13.9
LOCK_VENV := .venv-lock
UV := $(LOCK_VENV)/bin/uv
LOCK_ARGS ?=
UV_COMPILE := UV_NO_CACHE=1 $(UV) pip compile --quiet --universal --python-version 3.11 \
	--generate-hashes --custom-compile-command 'make lock' $(LOCK_ARGS)

lock: $(UV)
	$(UV_COMPILE) setup.cfg requirements/build.in --extra test --extra bot -o requirements/test.txt
	$(UV_COMPILE) setup.cfg -c requirements/test.txt -o requirements/runtime.txt
	$(UV_COMPILE) requirements/build.in -c requirements/test.txt -o requirements/build.txt

$(UV):
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet uv==$(UV_VERSION)

run: $(STAMP)
	$(BIN)/leaf7 serve

lint: $(STAMP)
	$(BIN)/ruff check service handlers store tests bench
	$(BIN)/ruff format --check service handlers store tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

# The flake hunt: the whole suite FLAKE_RUNS times while a busy loop keeps every core busy;
# prints per run pass/fail, wall time and the failed tests (bench/flakes.py).
FLAKE_RUNS ?= 5
flakes: $(STAMP)
	$(BIN)/python bench/flakes.py --runs $(FLAKE_RUNS)

# docs/img/: the dashboard pages of docs/dashboard.md at 1280 and 375 px, with realistic data
# (a real leaf7 serve on a temporary data dir, Debian's chromium; bench/screenshots.py).
screenshots: $(STAMP)
	$(BIN)/python bench/screenshots.py

# make bench BENCH_ARGS="--workers 2" | "--cluster" | "--cluster --workers 2" (see bench/run.py);
# signed checks (the route with a nonce) run in the same rounds: their ratio is a target too.
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python bench/run.py --signed $(BENCH_ARGS)

# The four scale-out configurations, one after the other (figures in bench/results/).
bench-scaling: $(STAMP)
	mkdir -p bench/results
	-$(BIN)/python bench/run.py --json bench/results/single-1w.json
	-$(BIN)/python bench/run.py --workers 2 --json bench/results/single-2w.json
	-$(BIN)/python bench/run.py --cluster --json bench/results/cluster-1w.json
	-$(BIN)/python bench/run.py --cluster --workers 2 --json bench/results/cluster-2w.json

clean:
	rm -rf $(VENV) $(LOCK_VENV) build *.egg-info
