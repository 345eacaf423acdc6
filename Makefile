# Quick start: `make app` (set up, seed demo history, open the app) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8501

.PHONY: setup app run system-deps test lint format bench bench-app clean

setup: $(STAMP)

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,dev,bench]'
	touch $(STAMP)

# Seeds simulated demo history into an empty database first; `--no-demo` skips that.
app: setup
	$(BIN)/configurable-agents app --port $(PORT)

run: setup
	$(BIN)/configurable-agents run data/workflows/research_fanout.yaml --simulate \
		--input topic="solar power"

# Chromium for the browser tests (Debian's package; skipped with a message without apt), and
# a Docker daemon with a local Python image for the container sandbox tests (skipped when
# Docker cannot run here, unless CONFIGURABLE_AGENTS_REQUIRE_DOCKER is set, as in CI).
system-deps:
	./scripts/install-system-deps.sh
	./scripts/start-docker.sh && ./scripts/build-sandbox-image.sh \
		|| { echo "Docker unavailable: the container sandbox tests will be skipped"; \
		     [ -z "$$CONFIGURABLE_AGENTS_REQUIRE_DOCKER" ]; }

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: setup system-deps lint
	$(BIN)/python -m pytest -q -rs

bench: setup
	$(BIN)/python bench/engine.py

bench-app: setup
	$(BIN)/python bench/app.py

clean:
	rm -rf $(VENV) data/telemetry.duckdb* data/cache data/memory data/spool
