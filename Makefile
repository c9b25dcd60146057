# Thin aliases of the `wedsync-cs` CLI and pytest. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 3000
WORKERS ?= 2

.DEFAULT_GOAL := help
.PHONY: help install demo serve test lint bench clean

help: ## Show the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) ## Create .venv with the pinned dependency set

demo: install ## Simulate, build features, train, score the day, serve the API and call it (state in CS_HOME)
	$(BIN)/wedsync-cs demo

serve: install ## Serve the API on 127.0.0.1 (PORT=3000, WORKERS=2; tokens in CS_API_TOKENS)
	$(BIN)/wedsync-cs serve --port $(PORT) --workers $(WORKERS)

test: install ## Run every test (PostgreSQL and Redis tests need the servers)
	$(BIN)/pytest -n 2 --dist loadgroup tests

lint: install ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install ## Print the benchmark figures
	$(BIN)/python benchmarks/run.py

clean: ## Remove the venv and the default CS_HOME
	rm -rf $(VENV) .cs-home
