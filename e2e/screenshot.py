"""Take docs/screenshot.png: the signed-in home page over the demo data.

    .venv/bin/python -m e2e.screenshot

Runs ``portal serve --demo`` against a throw-away database (PORTAL_TEST_DATABASE_URL's server,
else an embedded one) and signs in as the first demo person.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from playwright.async_api import async_playwright

from e2e.browser import CHROMIUM_ARGS, chromium_path
from e2e.pages import LoginPage
from e2e.server import running_server
from portal.services.demo import DEMO_PASSWORD, PEOPLE
from portal.testing.database import test_database

OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "screenshot.png"


async def shoot(base_url: str, output: Path) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path(),
                                                   args=CHROMIUM_ARGS)
        context = await browser.new_context(base_url=base_url, locale="pl-PL",
                                            viewport={"width": 1280, "height": 720})
        page = await context.new_page()
        await LoginPage(page).sign_in(PEOPLE[0][0], DEMO_PASSWORD)
        output.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(output))
        await browser.close()


def main() -> int:
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT
    os.environ.setdefault("PORTAL_SECRET_KEY", "screenshot-secret-key-not-for-production")
    with tempfile.TemporaryDirectory(prefix="portal-shot-") as work, \
            test_database("portal_shot") as url, \
            running_server(url, Path(work), "--demo") as server:
        asyncio.run(shoot(server.base_url, output))
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
