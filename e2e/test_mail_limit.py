"""Past the mails per client network (issue 17): /register and /password/forgot say so, "too
many requests from your network, try again in N minutes", with a 429 and Retry-After, instead
of a "we sent you a mail" that no mail follows; with and without JavaScript.

This file's server believes ``X-Forwarded-For`` from 127.0.0.1 (``PORTAL_TRUSTED_PROXIES``), so
each test speaks from a network of its own (an IPv6 /64 of the documentation prefix) and fills
only that network's count: the suite's other flows, all from 127.0.0.1, keep theirs.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import AsyncIterator, Iterator

import pytest
from playwright.async_api import Browser, BrowserContext, Page, Response, expect

from e2e import axe, mailbox
from e2e.data import unique_email
from e2e.pages import tab_to
from e2e.server import Server, running_server
from portal.services import throttle
from portal.tables import Identity

TOO_MANY = re.compile(r"Zbyt wiele próśb z Twojej sieci\. Spróbuj ponownie za (\d+) min\.")


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory) -> Iterator[Server]:
    """This file's server, behind a "proxy" at 127.0.0.1: conftest's context and page use it."""
    with running_server(database_url, tmp_path_factory.mktemp("e2e-mail-limit"),
                        settings={"PORTAL_TRUSTED_PROXIES": "127.0.0.1"}) as running:
        yield running


def new_network() -> str:
    """A /64 nobody else in the run uses, as its first four groups."""
    return f"2001:db8:{secrets.randbelow(0xffff):x}:{secrets.randbelow(0xffff):x}"


async def mails_already_sent(network: str, count: int) -> None:
    """``count`` mails this hour from addresses all over ``network`` (the office's other
    computers), counted by the portal's own limit."""
    for host in range(1, count + 1):
        assert await throttle.reserve((throttle.MAIL_ADDRESS, f"{network}::{host:x}"))


@pytest.fixture
async def office(browser: Browser, server: Server, engine) -> AsyncIterator[tuple[str, Page]]:
    """A browser in an office network of its own (with JavaScript): (network, page)."""
    network = new_network()
    context = await office_context(browser, server, f"{network}:0:0:0:abcd")
    try:
        yield network, await context.new_page()
    finally:
        await context.close()


async def office_context(browser: Browser, server: Server, address: str, *,
                         javascript: bool = True) -> BrowserContext:
    context = await browser.new_context(
        base_url=server.base_url, locale="pl-PL", java_script_enabled=javascript,
        extra_http_headers={"X-Forwarded-For": address})
    context.set_default_timeout(10_000)
    return context


def posted_to(path: str):
    return lambda r: r.request.method == "POST" and r.url.endswith(path)


async def assert_says_too_many(page: Page, answer: Response) -> None:
    assert answer.status == 429
    alert = page.get_by_role("alert")
    await expect(alert).to_have_text(TOO_MANY)
    minutes = int(TOO_MANY.search(await alert.inner_text()).group(1))
    assert minutes == math.ceil(int(answer.headers["retry-after"]) / 60)
    assert 1 <= minutes <= 60
    await expect(page.get_by_role("heading", name="Sprawdź skrzynkę")).to_have_count(0)


async def test_keyboard_only_the_last_mail_goes_and_the_next_request_is_told_to_wait(
        office: tuple[str, Page]):
    network, page = office
    await mails_already_sent(network, throttle.MAIL_ADDRESS.per_window - 1)

    first = unique_email("biuro-ostatni")
    await page.goto("/register")
    await tab_to(page, page.get_by_label("E-mail", exact=True))
    await page.keyboard.type(first)
    async with page.expect_response(posted_to("/register")) as sent:
        await page.keyboard.press("Enter")
    assert (await sent.value).status == 200
    await expect(page.get_by_role("heading", name="Sprawdź skrzynkę").first).to_be_visible()
    assert "/verify/" in await mailbox.latest(first)  # the hour's last mail from this network

    await page.goto("/password/forgot")
    email = page.get_by_label("E-mail", exact=True)
    await tab_to(page, email)
    second = unique_email("biuro-nastepny")
    await page.keyboard.type(second)
    async with page.expect_response(posted_to("/password/forgot")) as refused:
        await page.keyboard.press("Enter")
    answer = await refused.value
    assert answer.request.headers.get("hx-request") == "true"  # a swapped fragment
    await assert_says_too_many(page, answer)
    await expect(email).to_have_value(second)
    await axe.assert_no_serious_violations(page)

    await page.goto("/register")
    await tab_to(page, page.get_by_label("E-mail", exact=True))
    await page.keyboard.type(second)
    async with page.expect_response(posted_to("/register")) as refused:
        await page.keyboard.press("Enter")
    await assert_says_too_many(page, await refused.value)
    await axe.assert_no_serious_violations(page)
    assert await mailbox.count(second) == 0
    assert await Identity.count().where(Identity.email == second) == 0


async def test_without_javascript_both_pages_say_so_and_the_next_network_is_not_affected(
        browser: Browser, server: Server, engine, make_person):
    network = new_network()
    await mails_already_sent(network, throttle.MAIL_ADDRESS.per_window)
    person = await make_person(label="biuro-reset")
    context = await office_context(browser, server, f"{network}::beef", javascript=False)
    try:
        page = await context.new_page()
        for path, button, email in (("/register", "Załóż Konto ID", unique_email("biuro-nowy")),
                                    ("/password/forgot", "Wyślij link", person.email)):
            await page.goto(path)
            await page.get_by_label("E-mail", exact=True).fill(email)
            async with page.expect_navigation() as refused:
                await page.get_by_role("button", name=button, exact=True).click()
            await assert_says_too_many(page, await refused.value)
            await expect(page.get_by_label("E-mail", exact=True)).to_have_value(email)
            assert await mailbox.count(email) == 0, path
    finally:
        await context.close()

    # The office next door (another /64) still gets its mail.
    neighbour = await office_context(browser, server, f"{new_network()}::1", javascript=False)
    try:
        page = await neighbour.new_page()
        await page.goto("/password/forgot")
        await page.get_by_label("E-mail", exact=True).fill(person.email)
        await page.get_by_role("button", name="Wyślij link", exact=True).click()
        await expect(page.get_by_role("heading", name="Sprawdź skrzynkę").first).to_be_visible()
        assert "/password/reset/" in await mailbox.latest(person.email)
    finally:
        await neighbour.close()
