# The README's two commands: `make run` and `make test` (plus `make lint`).
# Both create .venv when it is missing and reinstall only when pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint chromium node

# PORTAL_DEV=1 unless set: without an SMTP server, mail (e.g. registration links) is read at /dev/mail.
run: $(VENV)/.installed
	PORTAL_DEV=$${PORTAL_DEV-1} $(BIN)/portal serve --demo

test: $(VENV)/.installed-test chromium node
	$(BIN)/ruff check src tests e2e
	$(BIN)/python -m pytest tests e2e

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests e2e

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# The test extras include everything `run` needs, so they satisfy both stamps.
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
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
