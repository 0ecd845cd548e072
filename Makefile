# resnet-keras-course: `make course` runs the course, `make test` checks everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# A second environment with the oldest supported releases (min-versions.txt).
VENV_MIN := .venv-min
STAMP_MIN := $(VENV_MIN)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
# pytest-xdist workers. Two, for CI's two cores: a notebook or a test that starts a
# process spends much of its time on one core, so two workers finish the notebooks 2.5x
# and the unit tests 1.4x sooner there. A test file (or notebook) stays in one worker, so
# its module fixtures and its kernel are shared as before. WORKERS=0 runs in one process.
WORKERS ?= 2
XDIST := -n $(WORKERS) --dist loadfile

.PHONY: setup setup-min test test-unit test-backends test-notebooks test-min test-lean lint course lab bench clean

setup: $(STAMP)

# The CPU build of PyTorch is installed first, pinned: an unpinned `torch`
# (from the `torch` extra) would pull a CUDA build of several GB.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[course,dev,jax,torch]'
	touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test-unit: setup
	KERAS_BACKEND=tensorflow $(VENV)/bin/pytest -q $(XDIST) tests

# The layers and models run on every Keras backend.
test-backends: setup
	KERAS_BACKEND=jax $(VENV)/bin/pytest -q -m backend tests
	KERAS_BACKEND=torch $(VENV)/bin/pytest -q -m backend tests

test-notebooks: setup
	if ls notebooks/*.ipynb >/dev/null 2>&1; then \
	  RESNET_KERAS_PROFILE=ci KERAS_BACKEND=tensorflow $(VENV)/bin/pytest -q -p no:cacheprovider $(XDIST) --nbval-lax notebooks/; \
	else echo "no notebooks yet"; fi

# The floors of pyproject.toml, tested: the unit tests and two short notebooks on the
# TensorFlow backend, with the releases of min-versions.txt (about 9 minutes, install
# included). Left out: the slow tests, the benchmarks (they measure speed, not support)
# and the JAX and PyTorch imports (neither is installed there).
setup-min: $(STAMP_MIN)

$(STAMP_MIN): pyproject.toml min-versions.txt
	test -x $(VENV_MIN)/bin/python || $(PYTHON) -m venv $(VENV_MIN)
	$(VENV_MIN)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_MIN)/bin/python -m pip install --quiet -c min-versions.txt -e '.[course,dev]'
	touch $(STAMP_MIN)

test-min: setup-min
	RESNET_KERAS_MIN_VERSIONS=1 KERAS_BACKEND=tensorflow $(VENV_MIN)/bin/pytest -q -p no:cacheprovider $(XDIST) \
	  -m "not slow" --ignore=tests/test_benchmarks.py \
	  --deselect tests/test_runtime.py::test_layers_and_models_import_without_tensorflow tests
	RESNET_KERAS_PROFILE=ci KERAS_BACKEND=tensorflow $(VENV_MIN)/bin/pytest -q -p no:cacheprovider $(XDIST) \
	  --nbval-lax notebooks/00_setup.ipynb notebooks/03_building_resnets.ipynb

# `import resnet_keras` needs Keras and NumPy only: a fresh environment with the package
# (no extras) and JAX imports it, trains a residual network, saves and loads it
# (tests/lean_environment_check.py; about a minute, most of it pip).
VENV_LEAN := .venv-lean
test-lean:
	rm -rf $(VENV_LEAN)
	$(PYTHON) -m venv $(VENV_LEAN)
	$(VENV_LEAN)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_LEAN)/bin/python -m pip install --quiet . jax
	cd tests && KERAS_BACKEND=jax ../$(VENV_LEAN)/bin/python lean_environment_check.py

test: lint test-unit test-backends test-notebooks test-min test-lean

course: setup
	$(PY) -m resnet_keras.course

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

bench: setup
	$(PY) -m benchmarks

clean:
	rm -rf build runs .pytest_cache $(VENV_LEAN)
