# vecstore — `make help` lists the targets.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
AZURITE := .tools/node_modules/.bin/azurite-blob
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[all,test,bench]"
	@touch $(STAMP)

$(AZURITE): .tools/package.json
	cd .tools && npm install --no-audit --no-fund --loglevel=error azurite @pinecone-database/pinecone@9.0.0 pinecone-sdk6@npm:@pinecone-database/pinecone@6.1.4
	@touch $(AZURITE)

install: $(STAMP) $(AZURITE) ## Create .venv and install vecstore (editable) with every extra and Azurite

lint: install ## ruff and mypy (strict) on the packages
	$(BIN)/ruff check schemas vecstore pipelines tests benchmarks examples
	$(BIN)/mypy

test: install lint ## Install everything, then run the test suite (lint included; the slow tests: make test-slow)
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

test-slow: install ## The slow tests: kill -9 crashes, storage faults, 60 s of concurrency (CI runs them too)
	$(BIN)/pytest -m slow $(PYTEST_ARGS)

test-fast: install ## Unit tests only (no servers, no cluster)
	$(BIN)/pytest tests/unit -q $(PYTEST_ARGS)

demo: install ## Run the main job: import example data into ./vecstore-data on a LocalCluster, then query
	$(BIN)/python examples/demo.py

bench-import: install ## Import benchmark (1M x 128-d) against the pyarrow floor
	$(BIN)/python benchmarks/import_bench.py

bench-query: install ## Query benchmark: recall@10 vs QPS against FAISS IVF-Flat
	$(BIN)/python benchmarks/query_bench.py

clean: ## Remove caches and demo data (keeps .venv)
	rm -rf vecstore-data examples/data .pytest_cache .mypy_cache .ruff_cache dask-worker-space

.PHONY: help install lint test test-fast demo bench-import bench-query clean
