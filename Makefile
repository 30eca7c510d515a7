# ipl-book: two commands do all the set-up on a fresh machine (see README.md).
#   make book   create the environment, run the experiments of PROFILE (default smoke), build the HTML
#   make test   create the environment, run pytest on ipl_core and nbval on every notebook (two workers each)
SHELL := /bin/bash
PYTHON_SYSTEM ?= python3
VENV ?= .venv
PROFILE ?= smoke
JOBS ?= 2
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
export PATH := $(abspath $(BIN)):$(PATH)
export MUJOCO_GL := egl
export PYDEVD_DISABLE_FILE_VALIDATION := 1
export JUPYTER_PLATFORM_DIRS := 1

.PHONY: install browser experiments book test lint clean

# torch is installed first from its exact pin, so that nothing later can pull the CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON_SYSTEM) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet torch==2.13.0
	$(PYTHON) -m pip install --quiet -e ".[envs,book,cluster,test]"
	touch $@

install: $(VENV)/.installed

# Headless Chromium and its driver for the browser tests, and Mesa's EGL for MuJoCo's offscreen rendering
# (Debian packages; the tests that need them skip with the reason when they cannot be installed).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { apt-get update -qq && apt-get install -y -qq chromium chromium-driver libegl-mesa0 libgl1-mesa-dri; } || \
	  echo "warning: could not install chromium chromium-driver (not root?); the browser tests will skip" >&2

experiments: install
	$(PYTHON) -m ipl_core.experiments.run all --profile $(PROFILE) --jobs $(JOBS)

book: experiments
	rm -rf _build/html
	$(BIN)/jupyter-book build . -W -n --keep-going
	@test -f _build/html/index.html || { echo "error: no HTML was produced" >&2; exit 1; }
	@echo "The book is at $(abspath _build/html/index.html)"

# The library's tests, then the smoke experiments (the chapters read their results), then every notebook.
# pytest and nbval run in two workers (pytest-xdist); --dist loadfile keeps a file in one worker, so a
# notebook's cells share one kernel and a test module's fixtures are built once. Slow tests are skipped
# (pyproject's addopts); run them with `pytest -m slow`.
test: install browser
	$(PYTHON) -m pytest -n 2 --dist loadfile tests
	$(PYTHON) -m ipl_core.experiments.run all --profile smoke --jobs $(JOBS)
	$(PYTHON) -m pytest -n 2 --dist loadfile --nbval-lax book

lint: install
	$(BIN)/ruff check ipl_core tests book

clean:
	rm -rf _build .jupyter_cache results/*/smoke
