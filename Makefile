# The README's two commands: `make run` and `make test` (plus `make lint`).
# Both create .venv when it is missing and reinstall only when pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Test workers (pytest-xdist): each has its own database and its own e2e server and browser.
TEST_WORKERS ?= auto

# bash with pipefail: pip's output goes through PROGRESS, and pip's failure must still fail make.
SHELL       := /bin/bash
.SHELLFLAGS := -o pipefail -c

# pip's output as one line of progress (how many packages so far, then the install) instead of
# a silent minute or seventy lines; a failure shows pip's whole output.
PROGRESS = awk '{ out = out $$0 "\n" } \
	/^Collecting / { n++; printf "\r  %d packages resolved", n; fflush() } \
	/^Installing collected packages/ { printf "\r  %d packages resolved, installing...", n; fflush() } \
	/^Successfully installed/ { printf "\r  %d packages resolved, installed.         \n", n; done = 1 } \
	END { if (!done) printf "\n%s", out }'

.PHONY: run test lint chromium node

# PORTAL_DEV=1 unless set: without an SMTP server, mail (e.g. registration links) is read at /dev/mail.
run: $(VENV)/.installed
	PORTAL_DEV=$${PORTAL_DEV-1} $(BIN)/portal serve --demo

test: $(VENV)/.installed-test chromium node
	$(BIN)/ruff check src tests e2e
	$(BIN)/python -m pytest -n $(TEST_WORKERS) tests e2e

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests e2e

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "Installing Portal and its dependencies into $(VENV) (a minute or two the first time)"
	$(BIN)/python -m pip install --progress-bar off -e . 2>&1 | $(PROGRESS)
	touch $@

# The test extras include everything `run` needs, so they satisfy both stamps.
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	@echo "Installing Portal, its dependencies and the test tools into $(VENV) (a few minutes the first time)"
	$(BIN)/python -m pip install --progress-bar off -e '.[test]' 2>&1 | $(PROGRESS)
	touch $(VENV)/.installed $@

# e2e tests drive Debian's Chromium (Playwright's own browser download is not used).
chromium:
	@if [ ! -x /usr/bin/chromium ] && [ -z "$${PORTAL_E2E_CHROMIUM:-}" ]; then \
		echo "Installing Debian's chromium for the e2e tests"; \
		$(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; \
	fi

# The single sign-on e2e suite runs a relying party on openid-client under Node.js; its packages
# come from e2e/clients/node/package-lock.json (`npm ci`, run by the test when they are missing).
node:
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
		echo "Installing Node.js and npm for the e2e tests"; \
		$(SUDO) apt-get update && $(SUDO) apt-get install -y nodejs npm; \
	fi
