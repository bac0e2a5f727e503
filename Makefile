# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export TF_USE_LEGACY_KERAS := 1
# 3: TensorFlow's C++ INFO, WARNING and ERROR lines ("failed call to cuInit" where CUDA libraries are
# installed without a GPU) stay out of what the commands print.
export TF_CPP_MIN_LOG_LEVEL := 3

.PHONY: install demo test lint docs clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/bnnzoo demo

# Two pytest-xdist workers, one test file each at a time (module fixtures are built once); most of a
# test's time is one busy thread (conversions, exports), so two share 2 cores. JOBS=0 runs in one process.
JOBS ?= 2

test: lint
	$(PY) -m pytest -q -n $(JOBS) --dist loadfile $(PYTEST_ARGS)

# ruff's rules are in pyproject.toml ([tool.ruff]); `make test` runs this before the suite.
lint: $(STAMP)
	$(VENV)/bin/ruff check .

# The documentation site into site/ (mkdocs.yml; tests/test_docs.py builds it too, strictly, in the suite).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV) build site *.egg-info
