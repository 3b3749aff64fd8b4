# vpr-bench: `make demo` runs the main job on the embedded synthetic city; `make test` runs the tests.
# Everything installs into .venv from the repository's own files.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PLUGINS := $(sort $(wildcard plugins/*/pyproject.toml))
PLUGIN_DIRS := $(patsubst %/pyproject.toml,%,$(PLUGINS))
STAMP := $(VENV)/.installed

.PHONY: install demo demo-publish test test-all lint format bench bench-all gpu-check leaderboard clean

install: $(STAMP)

$(STAMP): pyproject.toml $(PLUGINS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned to the wheels this project is tested with (CPU and CUDA alike).
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q -e '.[cpu,dev]' $(foreach p,$(PLUGIN_DIRS),-e '$(p)[test]')
	@touch $(STAMP)

# The demo writes its records, pages and runs under runs/ (not in git) and prints its board;
# `make demo-publish` is the one command that refreshes the committed leaderboards/.
DEMO := run --plugins netvlad,sare --dataset synthcity --profile quick

demo: install
	$(BIN)/vpr-bench $(DEMO) --leaderboards runs/leaderboards --runs-dir runs

demo-publish: install
	$(BIN)/vpr-bench $(DEMO) --leaderboards leaderboards --runs-dir runs

test: install
	$(BIN)/pytest
	$(BIN)/vpr-bench leaderboard build --check

test-all: install
	$(BIN)/pytest -m "" --run-slow

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/pytest benchmarks -m "not slow and not gpu" --benchmark-only

bench-all: install
	$(BIN)/pytest benchmarks -m "" --run-slow --run-gpu --benchmark-only

# The GPU proof on a CUDA machine with torch preinstalled (no .venv, no network):
# make gpu-check OUT=/tmp/gpu-proof [PYTHON=python3]; add GPU_CHECK_ARGS=--device=cpu for dry mode.
OUT ?= /tmp/vpr-bench-gpu-proof
gpu-check:
	PYTHON=$(PYTHON) benchmarks/gpu/run.sh $(OUT) $(GPU_CHECK_ARGS)

leaderboard: install
	$(BIN)/vpr-bench leaderboard build

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .benchmarks
