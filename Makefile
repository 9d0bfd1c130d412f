# Two commands a newcomer needs (see README.md):
#   make demo   set up .venv, make the embedded demo network and run the main job on it
#   make test   set up .venv (with test extras) and run the whole test suite
# Set-up is idempotent: .venv is rebuilt only when pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# torch first, pinned to a build that exists everywhere: on CPU-only machines that carry a
# local CPU wheel pip takes it; elsewhere pip takes the registry build (CUDA on Linux).
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup demo test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/social-xlstm data demo --out data/demo
	$(VENV)/bin/social-xlstm data inspect data/demo

test: setup
	$(PY) -m pytest -n 2 --dist loadgroup

clean:
	rm -rf $(VENV) build *.egg-info
