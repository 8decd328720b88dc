"""e2e fixtures: the real server (``portal serve``) against the run's database, one Chromium for
the session, a fresh browser context and page per test, people made in the database.

The database is the root conftest's ``database_url``; when tests/ and e2e/ run in one pytest
process they share it. Which Chromium runs is e2e.browser's choice.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from e2e.browser import CHROMIUM_ARGS, chromium_path
from e2e.data import Person
from e2e.data import make_person as _make_person
from e2e.pages import Layout, LoginPage
from e2e.server import Server, running_server
from portal.tables import OAuthSigningKey

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-results"

DEFAULT_LOCALE = "pl-PL"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "locale(name): browser locale for an e2e test (pl-PL)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    # Keep each phase's report on the item so the page fixture knows whether the test failed.
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
async def server(database_url: str, engine: None,
                 tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    # tests/ (same run, same database) may leave an OpenID signing key encrypted under its own
    # PORTAL_SECRET_KEY, which this server could not decrypt: it makes its own instead.
    await OAuthSigningKey.delete(force=True)
    with running_server(database_url, tmp_path_factory.mktemp("e2e-server")) as running:
        yield running


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def context(browser: Browser, server: Server,
                  request: pytest.FixtureRequest) -> AsyncIterator[BrowserContext]:
    marker = request.node.get_closest_marker("locale")
    locale = marker.args[0] if marker else DEFAULT_LOCALE
    fresh = await browser.new_context(base_url=server.base_url, locale=locale,
                                      viewport={"width": 1280, "height": 800})
    fresh.set_default_timeout(10_000)
    try:
        yield fresh
    finally:
        await fresh.close()


@pytest.fixture
async def page(context: BrowserContext, request: pytest.FixtureRequest,
               server: Server) -> AsyncIterator[Page]:
    opened = await context.new_page()
    yield opened
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed and not opened.is_closed():
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.nodeid)[-150:]
        shot = ARTIFACTS / f"{name}.png"
        await opened.screenshot(path=str(shot), full_page=True)
        report.sections.append(
            ("e2e artefacts", f"page {opened.url}\nscreenshot {shot}\nserver log "
                              f"{server.log_path}:\n{server.log_tail(30)}")
        )


@pytest.fixture
def make_person(engine: None) -> Callable[..., Awaitable[Person]]:
    """``await make_person(with_account=False, role="member", ...)``: see e2e.data."""
    return _make_person


@pytest.fixture
async def owner(make_person) -> Person:
    """A person who owns one account (with its main company)."""
    return await make_person(label="wlasciciel")


@pytest.fixture
async def signed_in(page: Page, owner: Person) -> Layout:
    """The owner, signed in, on the page sign-in leads to."""
    return await LoginPage(page).sign_in(owner.email, owner.password)
