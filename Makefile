# Two commands a newcomer needs (see README.md):
#   make demo   set up .venv, then train the demo preset on the embedded demo network (generated on first use)
#   make test   set up .venv (with test extras), check style (ruff) and run the whole test suite
#   make test-fast  the tests without the slow end-to-end runs, for the inner loop
# Set-up is idempotent: .venv is rebuilt only when pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# torch first, pinned to a build that exists everywhere: on CPU-only machines that carry a
# local CPU wheel pip takes it; elsewhere pip takes the registry build (CUDA on Linux).
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup browser demo test test-fast bench bench-graph gpu-wheels gpu-peer-wheels clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e .
	touch $@

# The test tools (pytest, notebooks, browser driver, ruff) only where the tests run.
$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

setup: $(VENV)/.installed

# The dashboard's browser test drives Debian's chromium + chromedriver (never a downloaded
# browser): installed once when absent, only as root on a machine with apt-get.
browser:
	@if [ ! -x /usr/bin/chromedriver ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver; \
	fi

demo: setup
	$(VENV)/bin/social-xlstm train experiment=demo run_dir=runs/demo

# The inner loop while working: everything but the end-to-end runs (slow) and the real data (CI runs all).
test-fast: $(VENV)/.installed-test
	$(PY) -m pytest -n 2 --dist loadgroup -m "not slow and not realdata" -q

test: $(VENV)/.installed-test browser
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .
	$(PY) -m pytest -n 2 --dist loadgroup

# The field's forecasters for scripts/bench_peers.py. basicts goes in without its dependencies:
# it pins setuptools 59.5, tensorboard 2.18, tqdm and transformers 4.40, none of which its
# models use, and would downgrade this environment's.
bench: setup
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) -m pip install --quiet --no-deps basicts==1.1.0 easy-torch==1.3.3

# Graph WaveNet, DCRNN and AGCRN come from torch-spatiotemporal, which needs torch-scatter and
# torch-sparse: PyPI has only their sources for this torch, compiled here against the venv's
# torch (torch-scatter 2.1.2 took 11 min and torch-sparse 0.6.18 16 min on the 2-core Intel Xeon).
bench-graph: bench
	MAX_JOBS=2 $(PY) -m pip install --quiet --no-build-isolation torch-scatter torch-sparse
	$(PY) -m pip install --quiet torch-spatiotemporal==0.9.5

# The pure-Python packages the GPU machine's image lacks (it reaches no registry), at the
# versions this venv runs, for scripts/gpu_checks.sh: the device tool carries the folder
# (pip freeze spells some names with "_": "-" matches either), and setuptools >= 77, which
# reads pyproject's licence string (an image with an older one could not install the project).
GPU_WHEELS := hydra-core omegaconf antlr4-python3-runtime mlstm-kernels pytest pluggy iniconfig einops
# wheels into .gpu-wheels of the packages named in $(1), at the versions this venv runs
venv_wheels = $(PY) -m pip wheel --quiet --no-deps -w .gpu-wheels \
	$$($(PY) -m pip freeze | grep -iE '^($(shell echo $(1) | tr ' -' '|.'))==')
gpu-wheels: $(VENV)/.installed-test
	rm -rf .gpu-wheels
	$(call venv_wheels,$(GPU_WHEELS))
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: -d .gpu-wheels "setuptools>=77"

# scripts/gpu_peers.sh also needs basicts and what its import pulls in beyond the image: the
# pure-Python ones as this venv runs them, and setproctitle (compiled) for the image's Python 3.12.
GPU_PEER_WHEELS := basicts easy-torch easydict
gpu-peer-wheels: bench gpu-wheels
	$(call venv_wheels,$(GPU_PEER_WHEELS))
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .gpu-wheels \
		$$($(PY) -m pip freeze | grep -i '^setproctitle==')

clean:
	rm -rf $(VENV) build *.egg-info .gpu-wheels
