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

.PHONY: install lock test-py312 test-py313 browser experiments book test lint clean

# The book's environment is Python 3.11 with the exact versions of the lock file; torch is installed first
# from it (the CPU build), so that nothing later can pull a CUDA build.
LOCK := requirements/lock-py311.txt
TORCH_CPU := 2.13.0
$(VENV)/.installed: pyproject.toml $(LOCK)
	@$(PYTHON_SYSTEM) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { echo "error: the book's \
	lock $(LOCK) is for Python 3.11; $(PYTHON_SYSTEM) is Python $$($(PYTHON_SYSTEM) -c 'import platform; \
	print(platform.python_version())') (set PYTHON_SYSTEM=python3.11, or use the library on its own: README)" >&2; exit 1; }
	$(PYTHON_SYSTEM) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet -c $(LOCK) torch
	$(PYTHON) -m pip install --quiet -c $(LOCK) -e ".[envs,book,cluster,test]"
	touch $@

# Re-resolve the book's environment from pyproject.toml's ranges and write the lock file (a pip freeze).
lock:
	rm -rf .venv-lock
	$(PYTHON_SYSTEM) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet torch==$(TORCH_CPU)
	.venv-lock/bin/python -m pip install --quiet -c <(echo torch==$(TORCH_CPU)) ".[envs,book,cluster,test]"
	{ echo "# The book's environment (Python 3.11, torch's CPU build): made by \`make lock\` from pyproject.toml's ranges."; \
	  .venv-lock/bin/python -m pip freeze --exclude-editable | grep -v -i '^ipl[-_]core' | sed 's/+cpu$$//'; } > $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK)
	rm -rf .venv-lock

# The library on another Python with the versions of requirements/test-py3NN.txt (the GPU image's torch and
# numpy): a fresh environment installs torch and numpy, then ipl_core with the chapters' own Colab install
# command (which must keep that torch), then runs the pytest suite: `make test-py312`, `make test-py313`.
# torch comes from the registry as a CUDA build of several GB (it runs on a CPU); .venv-py3NN keeps it.
test-py312 test-py313: test-py3%:
	test -x .venv-py3$*/bin/python || $(firstword $(wildcard $(HOME)/.pyenv/versions/3.$*.*/bin/python3.$*) python3.$*) -m venv .venv-py3$*
	.venv-py3$*/bin/python -m pip install --quiet -c requirements/test-py3$*.txt torch numpy
	.venv-py3$*/bin/python tests/colab_install.py book/online/sac.ipynb
	.venv-py3$*/bin/python -m pip install --quiet -c requirements/test-py3$*.txt -e ".[envs,book,test]"
	.venv-py3$*/bin/python -m pip freeze > .venv-py3$*/tested.txt
	MUJOCO_GL=egl .venv-py3$*/bin/python -m pytest -n $(JOBS) --dist loadfile tests
	@echo "Passed on $$(.venv-py3$*/bin/python -c 'import platform, torch, numpy; print(f"Python {platform.python_version()}, torch {torch.__version__}, numpy {numpy.__version__}")'); versions in .venv-py3$*/tested.txt"

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
