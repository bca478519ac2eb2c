# Two commands do all the set-up on a fresh machine:
#   make up     install, then run the workshop on this machine (book + hub + identity provider + Dask)
#   make test   install, then run every test (unit, notebooks, real hub, browser)
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.casabook-installed
NODE_LOCK := $(wildcard package-lock.json)

.PHONY: setup up test check browser-deps clean

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

clean:
	rm -rf $(VENV) node_modules build book/_build .casabook/state
