# The project's vocabulary: make demo, make test, make lint, make bench.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-unit test-localstack lint format bench package checkov checkov-install catalog up down clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## demo: run the pipeline end to end on the embedded emulator
demo: $(STAMP)
	$(BIN)/pipeline demo

## test: install what the tests need and run them all (unit, contract, integration, e2e)
test: $(STAMP) checkov-install
	$(BIN)/pytest

## test-unit: the fast tier, no emulator and no Terraform apply
test-unit: $(STAMP)
	$(BIN)/pytest tests/unit

## test-localstack: the suite with PIPELINE_TARGET=localstack (docs/localstack.md); needs Docker
## and a running LocalStack, and says how to start one if nothing answers
test-localstack:
	scripts/localstack-ready.sh
	$(MAKE) --no-print-directory $(STAMP)
	PIPELINE_TARGET=localstack $(BIN)/pytest tests/unit tests/contract tests/integration tests/e2e tests/localstack

## lint: ruff and mypy
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy pipelines pipelines_local functions

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## bench: throughput and size figures (not part of make test)
bench: $(STAMP)
	$(BIN)/python -m tests.benchmarks

## package: the Lambda deployment package, build/lambda/pipelines.zip (deterministic)
package: $(STAMP)
	$(BIN)/pipeline package

## checkov: static security checks over terraform/ (zero failed checks); own venv
checkov-install:
	scripts/checkov.sh --install-only

checkov: checkov-install
	scripts/checkov.sh

## catalog: regenerate the Glue columns (terraform/modules/catalog/tables.json) from schemas/
catalog: $(STAMP)
	$(BIN)/python -m pipelines_local.catalog

## up / down: the local workspace on the embedded emulator
up: $(STAMP)
	$(BIN)/pipeline up

down: $(STAMP)
	$(BIN)/pipeline down

clean:
	rm -rf $(VENV) .venv-checkov build dist .pytest_cache .ruff_cache .mypy_cache
