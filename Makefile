# The two commands: `make run` (the demo) and `make test` (the checks and the whole suite, as CI
# runs them). Both install what is missing first: system packages (apt-get as root, else the
# command to run) and a .venv with stockbridge and its test tools.
# While developing: `make test-quick` (unit, integration and contract tiers, a few minutes less).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=
# The suite waits on servers, timers and subprocesses far more than it computes (about 3 of its
# 6.5 serial minutes are CPU): three pytest-xdist workers on CI's 2 cores keep it well inside the
# 10-minute budget. A file's tests stay on one worker, in order (--dist loadfile: tests/browser builds
# on its own order). PYTEST_WORKERS=0 runs it in one process (pytest -p no:xdist for a debugger).
PYTEST_WORKERS ?= 3

.PHONY: run test test-quick lint typecheck bench clean

$(BIN)/stockbridge: pyproject.toml
	@.ci/system-deps run
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

run: $(BIN)/stockbridge
	$(BIN)/stockbridge demo

# pytest exits 5 when it collected no test: that is a broken suite, never a pass.
define pytest
	@$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(1); status=$$?; \
	if [ $$status -eq 5 ]; then echo "error: no tests ran" >&2; exit 1; fi; exit $$status
endef

# What CI runs (.ci/run): ruff (lint and format), mypy, then every test. The first failure stops it.
test: $(BIN)/stockbridge lint typecheck
	@.ci/system-deps test
	$(call pytest,$(PYTEST_ARGS))

# The quick tiers alone: everything but the end-to-end tests (tests/e2e, marked `slow` by its
# conftest). No lint or type check: `make lint typecheck` for those.
test-quick: $(BIN)/stockbridge
	@.ci/system-deps test
	$(call pytest,-m "not slow" $(PYTEST_ARGS))

# Benchmarks against lftp, OpenSSH sftp, exiftool -stay_open and Pillow (bench/README.md). Not part
# of `make test`: it takes minutes. BENCH_ARGS=--quick for a ~2-minute run, --scale full for issue 6's.
BENCH_ARGS ?=
bench: $(BIN)/stockbridge
	@.ci/system-deps bench
	$(BIN)/python -m bench.run $(BENCH_ARGS)

lint: $(BIN)/stockbridge
	$(BIN)/ruff check stockbridge tests bench
	$(BIN)/ruff format --check stockbridge tests bench

typecheck: $(BIN)/stockbridge
	$(BIN)/mypy stockbridge bench

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
