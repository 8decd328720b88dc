"""Which Chromium e2e flows drive, and how it is started.

Debian's ``/usr/bin/chromium`` by default (Playwright's own browser download is not used);
``PORTAL_E2E_CHROMIUM`` points elsewhere; with neither, Playwright's own build is tried.
"""

from __future__ import annotations

import os
from pathlib import Path

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str | None:
    configured = os.environ.get("PORTAL_E2E_CHROMIUM")
    if configured:
        return configured
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
