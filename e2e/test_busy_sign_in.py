"""Past the hashing capacity (issue 20), in the browser: the person sees "too many sign-ins
right now, try again in a few seconds" at the form they sent, with and without JavaScript, and
nothing was counted or changed.

A second server of its own runs with PORTAL_DEV_HASH_QUEUE_SIZE=0 (honoured only beside
PORTAL_DEV, which every e2e server has): every hash is refused, as when the queue is full,
without flooding the machine. It shares the run's database and secret key, so a person signed
in on the ordinary server (cookies belong to the host, not the port) is signed in here too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.async_api import Browser, Page, expect

from e2e import axe
from e2e.data import Person
from e2e.pages import LoginPage, tab_to
from e2e.server import Server, running_server
from portal.services import throttle
from portal.tables import AuditEvent, Identity, Session

BUSY = "Zbyt wiele logowań w tej chwili, spróbuj ponownie za kilka sekund."
NEW_PASSWORD = "pięć żółwi płynie pod mostem"


@pytest.fixture(scope="module")
def busy_server(database_url: str, server: Server,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(database_url, tmp_path_factory.mktemp("e2e-busy-server"),
                        settings={"PORTAL_DEV_HASH_QUEUE_SIZE": "0"}) as running:
        yield running


async def nothing_counted(person: Person) -> None:
    """The refusals counted no attempt, recorded no failure and started no session."""
    assert not await throttle.Throttle.exists().where(
        throttle.Throttle.key == throttle.LOGIN_IDENTITY.key(person.email))
    assert not await AuditEvent.exists().where(
        (AuditEvent.identity_id == person.identity_id)
        & AuditEvent.tag.is_in(["identity:login:failure", "identity:login:success"]))


async def test_keyboard_only_sign_in_past_capacity_says_so_at_the_form(
        page: Page, busy_server: Server, owner: Person):
    await page.goto(f"{busy_server.base_url}/login")
    login = LoginPage(page)
    await tab_to(page, login.email)
    await page.keyboard.type(owner.email)
    await tab_to(page, login.password)
    await page.keyboard.type(owner.password)
    await page.keyboard.press("Enter")
    message = page.get_by_role("alert").filter(has_text=BUSY)
    await expect(message).to_be_visible()  # htmx swapped the 503's form in
    await expect(page).to_have_url(f"{busy_server.base_url}/login")
    await expect(login.email).to_have_value(owner.email)  # kept: try again in a moment
    await axe.assert_no_serious_violations(page)
    await nothing_counted(owner)
    assert await Session.count().where(Session.identity == owner.identity_id) == 0


async def test_without_javascript_the_busy_sign_in_is_a_page_with_the_form(
        browser: Browser, busy_server: Server, owner: Person):
    context = await browser.new_context(base_url=busy_server.base_url, locale="pl-PL",
                                        java_script_enabled=False)
    context.set_default_timeout(10_000)
    try:
        page = await context.new_page()
        await page.goto("/login")
        login = LoginPage(page)
        await login.email.fill(owner.email)
        await login.password.fill(owner.password)
        await login.submit.click()
        await expect(page.get_by_role("alert").filter(has_text=BUSY)).to_be_visible()
        await expect(page.get_by_role("heading", level=1)).to_have_text("Zaloguj się")
        await expect(login.email).to_have_value(owner.email)
        # (axe runs in the page's JavaScript: it checks this form in the flows above)
    finally:
        await context.close()
    await nothing_counted(owner)


async def test_changing_the_password_past_capacity_says_so_at_its_form(
        page: Page, server: Server, busy_server: Server, owner: Person):
    await LoginPage(page).sign_in(owner.email, owner.password)  # the ordinary server hashes
    before = (await Identity.select(Identity.password_hash).where(
        Identity.id == owner.identity_id).first())["password_hash"]
    await page.goto(f"{busy_server.base_url}/security")
    form = page.locator("#password-change-form")
    await form.get_by_label("Obecne hasło", exact=True).fill(owner.password)
    await form.get_by_label("Nowe hasło", exact=True).fill(NEW_PASSWORD)
    await form.get_by_label("Powtórz nowe hasło", exact=True).fill(NEW_PASSWORD)
    await form.get_by_role("button", name="Zmień hasło", exact=True).click()
    await expect(page.locator("#password-change-form").get_by_role("alert")).to_have_text(BUSY)
    await expect(page).to_have_url(f"{busy_server.base_url}/security")
    await axe.assert_no_serious_violations(page)
    after = (await Identity.select(Identity.password_hash).where(
        Identity.id == owner.identity_id).first())["password_hash"]
    assert after == before  # nothing changed
    assert await Session.count().where(Session.identity == owner.identity_id) == 1
