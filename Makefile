# The two set-up commands: `make demo` and `make test`. Both are idempotent: the venv is
# rebuilt only when pyproject.toml changes, and datasets come from the parm data cache.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test venv clean help gpu-data espeak-ng

help:
	@echo "make demo   create $(VENV), install parm, fetch the datasets, run the main job"
	@echo "make test   create $(VENV) with the test extras and run the whole test suite"
	@echo "make espeak-ng  install espeak-ng with apt where missing (the speech dataset needs it; venv does it)"
	@echo "make gpu-data  copy Fashion-MNIST from the parm cache into .gpu-data/ for benchmarks/gpu_suite.py on a GPU"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# espeak-ng speaks the synthetic speech dataset (parm.data.speech). CI runs as root on Debian, so apt installs it
# there; anywhere else a failed install is a warning, never a failed build: the dataset and its tests are skipped.
espeak-ng:
	@command -v espeak-ng >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null) || \
		echo "warning: could not install espeak-ng; the speech dataset and its tests are skipped"

$(VENV)/.installed: pyproject.toml | $(BIN)/python espeak-ng
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# The main job on Fashion-MNIST: train the base model F (Base-MLP), train the parity model of the
# sum code (k = 2), evaluate degraded-mode accuracy, then serve both with `parm serve`'s stack and
# replay 300 test queries with base instance 0 slowed down by 50 ms. --resume makes a second run
# reuse finished checkpoints instead of training again.
demo: venv
	$(BIN)/parm data fetch fashion-mnist mnist
	$(BIN)/parm train-base --dataset fashion-mnist --model base-mlp --resume
	$(BIN)/parm train-parity --dataset fashion-mnist --model base-mlp --k 2 --code sum --resume
	$(BIN)/parm evaluate runs/parity/fashion-mnist-base-mlp-sum-k2-r1
	$(BIN)/parm replay runs/parity/fashion-mnist-base-mlp-sum-k2-r1 --queries 300 --slow 0=50

test: venv
	$(BIN)/python -m pytest

# The GPU suite's data, for a GPU machine that reaches no registry: Fashion-MNIST copied from the parm data
# cache into .gpu-data/ (ignored by git), to carry there and read with PARM_DATA=.gpu-data (docs/RESULTS.md).
gpu-data: venv
	$(BIN)/parm data fetch fashion-mnist
	mkdir -p .gpu-data
	cp "$$($(BIN)/python -c 'from parm.data.cache import default_cache_dir; print(default_cache_dir())')"/fashion-mnist.* .gpu-data/

clean:
	rm -rf $(VENV) runs
