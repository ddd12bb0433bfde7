# The two commands a newcomer needs (see README):
#   make demo   install, then run the demo against the bundled Plex emulator
#   make test   run the test suite on every Python 3.11-3.13 present, each in its own venv
#   make check  the suite once, on the default .venv (quicker while working)
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test check sdist-check test-large bench bench-scale clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py

test:
	scripts/test_pythons.sh

check: $(STAMP)
	$(PY) -m pytest -q

sdist-check:
	scripts/check_sdist.sh $(PYTHON)

# A million tracks (tests/test_large.py): exactness and the memory bound; 2 minutes on a quiet
# 2-core machine (2026-12-06), up to 10-20 when it is busy.
test-large: $(STAMP)
	$(PY) -m pytest -q -m large -p no:cacheprovider

bench-scale: $(STAMP)
	$(PY) scripts/bench_scale.py

bench: $(STAMP)
	$(PY) scripts/bench_sync.py
	$(PY) scripts/bench_query.py
	$(PY) scripts/bench_resume.py

clean:
	rm -rf $(VENV) .venv-3.* build dist *.egg-info
