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

.PHONY: setup setup-min test test-unit test-backends test-notebooks executed-notebooks test-site test-min test-lean lint course book browser lab bench clean

setup: $(STAMP)

# The CPU build of PyTorch is installed first, pinned: an unpinned `torch`
# (from the `torch` extra) would pull a CUDA build of several GB.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[book,course,dev,jax,torch]'
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
	RESNET_KERAS_PROFILE=ci KERAS_BACKEND=tensorflow $(VENV)/bin/pytest -q -p no:cacheprovider $(XDIST) --nbval-lax notebooks/

# The site is built from executed notebooks, and nbval keeps none: the course's runner executes
# them a second time (ci profile, $(WORKERS) at a time, about 2 minutes on CI's 2 cores) into
# build/ci/notebooks/, a run that fails on any cell's error as nbval does.
CI_BUILD := build/ci
executed-notebooks: setup
	rm -rf $(CI_BUILD)
	RESNET_KERAS_PROFILE=ci KERAS_BACKEND=tensorflow $(PY) -m resnet_keras.course \
	  --profile ci --jobs $(WORKERS) --build $(CI_BUILD)

# The course's website: Sphinx with myst-nb and sphinx-book-theme (book/conf.py) renders the
# executed notebooks of $(1)/notebooks/ with book/index.md into $(1)/site/; Sphinx executes
# nothing. -W: a warning (a broken reference, a page missing from the navigation) fails it.
define build-site
rm -rf $(1)/book-src $(1)/site
mkdir -p $(1)/book-src
cp book/index.md $(1)/notebooks/[0-9][0-9]_*.ipynb $(1)/book-src/
$(VENV)/bin/sphinx-build -q -W --keep-going -b html -c book $(1)/book-src $(1)/site
endef

# The site of the ci run, checked in headless Chromium (tests/test_site.py): every page loads
# from 127.0.0.1 alone without a console error or a missing image, the math is typeset, the
# chapters are listed in course order, each has its Colab link and folded hints, search works.
test-site: executed-notebooks browser
	$(call build-site,$(CI_BUILD))
	RESNET_KERAS_SITE=$(CI_BUILD)/site $(VENV)/bin/pytest -q -p no:cacheprovider tests/test_site.py

# Debian's Chromium for test-site; Playwright (the `book` extra) drives it and downloads no
# browser of its own. Elsewhere, put a Chromium on PATH as `chromium` or set CHROMIUM.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@if [ -n "$$CHROMIUM" ] || command -v chromium >/dev/null; then :; \
	elif command -v apt-get >/dev/null; then \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	else echo "no chromium and no apt-get: install Chromium, or set CHROMIUM=/path/to/it" >&2; exit 1; fi

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

test: lint test-unit test-backends test-notebooks test-site test-min test-lean

course: setup
	$(PY) -m resnet_keras.course

# The course as a website, build/site/index.html: `make course` (this machine's profile), then
# the site of its executed notebooks. To read it: python3 -m http.server -d build/site 8000
book: course
	$(call build-site,build)

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

bench: setup
	$(PY) -m benchmarks

clean:
	rm -rf build runs .pytest_cache $(VENV_LEAN)
