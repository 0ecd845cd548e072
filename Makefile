# resnet-keras-course: `make course` runs the course, `make test` checks everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup test test-unit test-backends test-notebooks lint course lab bench clean

setup: $(STAMP)

# The CPU build of PyTorch is installed first, pinned: an unpinned `torch`
# (from the `torch` extra) would pull a CUDA build of several GB.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev,jax,torch]'
	touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test-unit: setup
	KERAS_BACKEND=tensorflow $(VENV)/bin/pytest -q tests

# The layers and models run on every Keras backend.
test-backends: setup
	KERAS_BACKEND=jax $(VENV)/bin/pytest -q -m backend tests
	KERAS_BACKEND=torch $(VENV)/bin/pytest -q -m backend tests

test-notebooks: setup
	if ls notebooks/*.ipynb >/dev/null 2>&1; then \
	  RESNET_KERAS_PROFILE=ci KERAS_BACKEND=tensorflow $(VENV)/bin/pytest -q -p no:cacheprovider --nbval-lax notebooks/; \
	else echo "no notebooks yet"; fi

test: lint test-unit test-backends test-notebooks

course: setup
	$(PY) -m resnet_keras.course

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

bench: setup
	$(PY) -m benchmarks

clean:
	rm -rf build runs .pytest_cache
