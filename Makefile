# The two set-up commands: `make demo` and `make test`. Both are idempotent: the venv is
# rebuilt only when pyproject.toml changes, and datasets come from the parm data cache.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test venv clean help

help:
	@echo "make demo   create $(VENV), install parm, fetch the datasets, run the main job"
	@echo "make test   create $(VENV) with the test extras and run the whole test suite"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(BIN)/parm demo

test: venv
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs
