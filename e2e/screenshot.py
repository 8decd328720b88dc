"""Screenshots of every screen (e2e/screens.py) at 390 and 1366 px, into docs/screens/, and
docs/screenshot.png (the signed-in home page, desktop) for the README.

    .venv/bin/python -m e2e.screenshot [OUTPUT_DIR]

Runs ``portal serve --demo`` against a throw-away database (PORTAL_TEST_DATABASE_URL's server,
else an embedded one). Each screen is shot as the first of its personas that the demo data has:
signed out, the demo owner (Anna Nowak), or support staff. Files: ``<screen>-<width>.png``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from playwright.async_api import Page, async_playwright

from e2e.browser import CHROMIUM_ARGS, chromium_path
from e2e.pages import LoginPage
from e2e.screens import HEIGHTS, SCREENS, Screen
from e2e.server import running_server
from portal.services.demo import DEMO_PASSWORD, PEOPLE, STAFF
from portal.testing.database import test_database

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "screens"
WIDTHS = (390, 1366)
#: Personas the demo data has, in the order a screen's shooter is chosen.
DEMO = {"public": None, "owner": PEOPLE[0][0], "staff": STAFF[0]}


async def open_screen(page: Page, screen: Screen) -> bool:
    """Open ``screen``; False when its ``follow`` link is not there."""
    await page.goto(screen.path)
    if screen.follow:
        link = page.locator(screen.follow).first
        if not await link.count():
            return False
        await page.goto(await link.get_attribute("href"))
    return True


async def shoot(base_url: str, output: Path) -> list[Path]:
    written = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path(),
                                                   args=CHROMIUM_ARGS)
        for persona, email in DEMO.items():
            screens = [s for s in SCREENS
                       if next((p for p in s.who if p in DEMO), None) == persona]
            for width in WIDTHS:
                context = await browser.new_context(
                    base_url=base_url, locale="pl-PL",
                    viewport={"width": width, "height": HEIGHTS[width]})
                page = await context.new_page()
                if email:
                    await LoginPage(page).sign_in(email, DEMO_PASSWORD)
                for screen in screens:
                    if not await open_screen(page, screen):
                        continue
                    path = output / f"{screen.name}-{width}.png"
                    await page.screenshot(path=str(path), full_page=True)
                    written.append(path)
                    if screen.name == "home" and width == 1366:
                        await page.screenshot(path=str(ROOT / "docs" / "screenshot.png"))
                await context.close()
        await browser.close()
    return written


def main() -> int:
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT
    output.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PORTAL_SECRET_KEY", "screenshot-secret-key-not-for-production")
    with tempfile.TemporaryDirectory(prefix="portal-shot-") as work, \
            test_database("portal_shot") as url, \
            running_server(url, Path(work), "--demo") as server:
        written = asyncio.run(shoot(server.base_url, output))
    print(f"wrote {len(written)} screenshots to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
