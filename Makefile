# Two commands do all the set-up on a fresh machine:
#   make up     install, then run the workshop on this machine (book + hub + identity provider + Dask)
#   make test   install, then run every test (unit, notebooks, real hub, browser)
# and one for the hub the facilities run:
#   make test-hub-image   the cap, chart and hub integration tests on the charts' hub image's
#                         packages (JupyterHub 5.5.0, OAuthenticator 17.4.0, tornado 6.5.7)
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.casabook-installed
NODE_LOCK := $(wildcard package-lock.json)
# A second, small environment pinned like zero-to-jupyterhub 4.4.0's hub image: only what the cap,
# chart and hub integration tests import (pyproject's hub-image group); casabook itself without
# its dependencies (the book, the notebooks' packages).
HUB_IMAGE_VENV ?= .venv-jh55
HUB_IMAGE_BIN := $(HUB_IMAGE_VENV)/bin
HUB_IMAGE_STAMP := $(HUB_IMAGE_VENV)/.casabook-installed
HUB_IMAGE_CONSTRAINTS := .ci/hub-image-constraints.txt
HUB_IMAGE_TESTS := tests/test_caps.py tests/test_helm_chart.py tests/test_own_authenticator_hub.py \
  tests/test_hub_integration.py

.PHONY: setup up test test-hub-image check browser-deps clean

$(STAMP): pyproject.toml $(NODE_LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(if $(NODE_LOCK),npm ci --no-audit --no-fund --loglevel=error)
	@# matplotlib announces building its font cache on first import: do it now, not inside a notebook's output.
	MPLBACKEND=Agg $(BIN)/python -c "import matplotlib.pyplot"
	touch $@

setup: $(STAMP)

up: setup
	$(BIN)/casabook up

check: setup
	$(BIN)/casabook check

# The browser tests drive Debian's Chromium; a browser downloaded by a test tool cannot run here.
browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core); \
	  else echo "the browser tests need Debian's chromium: sudo apt-get install chromium"; exit 1; fi; \
	fi

test: setup browser-deps
	$(BIN)/casabook data fetch
	$(BIN)/pytest

$(HUB_IMAGE_STAMP): pyproject.toml $(HUB_IMAGE_CONSTRAINTS)
	$(PYTHON) -m venv $(HUB_IMAGE_VENV)
	$(HUB_IMAGE_BIN)/python -m pip install --quiet --upgrade pip
	@# --group (pip 25.1+) installs a dependency group without the project's own dependencies.
	$(HUB_IMAGE_BIN)/python -m pip install --quiet -c $(HUB_IMAGE_CONSTRAINTS) --group hub-image
	$(HUB_IMAGE_BIN)/python -m pip install --quiet --no-deps -e .
	@# For the log: the versions the constraints gave.
	$(HUB_IMAGE_BIN)/python -c "import jupyterhub, oauthenticator, tornado; \
	  print('hub image: jupyterhub', jupyterhub.__version__, 'oauthenticator', oauthenticator.__version__, 'tornado', tornado.version)"
	touch $@

# The proxy comes from the repository's node_modules (setup's npm ci). The project's pytest options
# name nbval, which this environment does not have: only the plain ones here.
test-hub-image: setup $(HUB_IMAGE_STAMP)
	$(HUB_IMAGE_BIN)/pytest -o addopts="-ra --strict-markers" $(HUB_IMAGE_TESTS)

clean:
	rm -rf $(VENV) $(HUB_IMAGE_VENV) node_modules build book/_build .casabook/state
