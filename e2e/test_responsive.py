"""Every screen (e2e/screens.py) works from a 320 px phone to a desktop (issue 13).

For each persona — signed out; the demo account's owner and member; a new, empty account's
owner and member; an ID without an account; support staff — every screen is opened at 320,
390, 768 and 1366 px. A screen fails when the page scrolls sideways (WCAG 1.4.10), when its
main heading is not within the first screen at 390 px, when a control is narrower or shorter
than 24 px (WCAG 2.5.8), or when axe reports a serious or critical issue. Each test collects
every failure of its persona and width and reports them together.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from e2e import axe
from e2e.data import Person
from e2e.pages import LoginPage
from e2e.screens import HEIGHTS, PERSONAS, WIDTHS, Screen, screens_for
from e2e.server import Server
from portal.services import demo

MIN_TARGET = 24
#: What counts as a control for the size check: inline links in running text are exempt
#: (WCAG 2.5.8), links styled or placed as controls are not.
CONTROLS = ("button, input:not([type=hidden]), select, textarea, summary, a.button, "
            "[role=button], .sidenav a, .pagination a, .tile-links a, .jump-links a, "
            ".footer-links a")

_MEASURE = """([selector, min]) => {
  const doc = document.documentElement;
  const describe = (el) => {
    const name = (el.getAttribute('aria-label') || el.textContent || el.getAttribute('name') || '')
      .trim().replace(/\\s+/g, ' ').slice(0, 40);
    return `<${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}> ${name}`;
  };
  const small = [];
  for (const el of document.querySelectorAll(selector)) {
    if (!el.checkVisibility({ visibilityProperty: true, opacityProperty: true })) continue;
    if (el.closest('.visually-hidden')) continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    if (box.width < min - 0.5 || box.height < min - 0.5) {
      small.push(`${describe(el)} ${box.width.toFixed(0)}x${box.height.toFixed(0)}`);
    }
  }
  const wide = [];
  if (doc.scrollWidth > window.innerWidth + 1) {
    for (const el of document.querySelectorAll('body *')) {
      const box = el.getBoundingClientRect();
      if (box.right > window.innerWidth + 1 && box.width > 0 && el.checkVisibility()) {
        wide.push(describe(el));
        if (wide.length > 3) break;
      }
    }
  }
  const h1 = document.querySelector('main h1');
  const heading = h1 ? h1.getBoundingClientRect() : null;
  return {
    scrollWidth: doc.scrollWidth, width: window.innerWidth, height: window.innerHeight,
    wide, small,
    heading: heading && { top: heading.top, bottom: heading.bottom, text: h1.textContent.trim() },
  };
}"""


@pytest.fixture
async def demo_data(engine: None) -> None:
    # Safe to load again; the e2e server shares this database.
    await demo.load()


async def persona_page(browser: Browser, server: Server, persona: str, width: int,
                       make_person) -> Page:
    context = await browser.new_context(base_url=server.base_url, locale="pl-PL",
                                        viewport={"width": width, "height": HEIGHTS[width]})
    context.set_default_timeout(15_000)
    page = await context.new_page()
    email, password = None, None
    if persona in ("owner", "member", "staff"):
        email = {"owner": demo.PEOPLE[0][0], "member": demo.PEOPLE[2][0],
                 "staff": demo.STAFF[0]}[persona]
        password = demo.DEMO_PASSWORD
    elif persona != "public":
        person: Person = await make_person(
            label=persona, with_account=persona != "newcomer",
            role="member" if persona == "new-member" else "owner",
            account_name="Nowe Konto Sp. z o.o.")
        email, password = person.email, person.password
    if email:
        await LoginPage(page).sign_in(email, password)
    return page


async def open_screen(page: Page, screen: Screen) -> bool:
    response = await page.goto(screen.path)
    if screen.follow:
        link = page.locator(screen.follow).first
        if not await link.count():
            return False
        response = await page.goto(await link.get_attribute("href"))
    assert response is not None
    return True


async def problems_of(page: Page, screen: Screen, width: int) -> list[str]:
    found = []
    measured = await page.evaluate(_MEASURE, [CONTROLS, MIN_TARGET])
    if measured["scrollWidth"] > measured["width"] + 1:
        found.append(f"scrolls sideways: {measured['scrollWidth']} px wide at {width} px "
                     f"({', '.join(measured['wide'])})")
    heading = measured["heading"]
    if heading is None:
        found.append("no main heading (main h1)")
    elif width == 390 and (heading["top"] < 0 or heading["bottom"] > measured["height"]):
        found.append(f"main heading {heading['text']!r} is not in the first screen "
                     f"(at {heading['top']:.0f}-{heading['bottom']:.0f} px of "
                     f"{measured['height']})")
    if measured["small"]:
        found.append("controls under 24 px: " + "; ".join(measured["small"][:6]))
    blocking = await axe.violations(page)
    if blocking:
        found.append("axe: " + axe.describe(blocking))
    return [f"{screen.name} ({screen.path}) at {width} px: {problem}" for problem in found]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("persona", PERSONAS)
async def test_every_screen_fits_every_width(browser: Browser, server: Server, demo_data: None,
                                             make_person, persona: str, width: int):
    page = await persona_page(browser, server, persona, width, make_person)
    problems: list[str] = []
    opened = 0
    try:
        for screen in screens_for(persona):
            if not await open_screen(page, screen):
                continue
            opened += 1
            problems += await problems_of(page, screen, width)
    finally:
        await page.context.close()
    assert opened, f"no screen opened for {persona}"
    assert not problems, "\n".join(problems)


async def test_the_menu_folds_on_a_phone_and_opens_by_keyboard(browser: Browser, server: Server,
                                                              make_person):
    page = await persona_page(browser, server, "new-owner", 390, make_person)
    try:
        menu = page.get_by_role("navigation", name="Nawigacja główna")
        toggle = menu.get_by_text("Menu", exact=True)
        link = menu.get_by_role("link", name="Firmy", exact=True)
        assert not await link.is_visible()
        await toggle.focus()
        await page.keyboard.press("Enter")
        assert await link.is_visible()
        await link.focus()
        await page.keyboard.press("Enter")
        await page.wait_for_url("**/companies")
        # On a desktop the same navigation is simply there, without a menu button.
        await page.set_viewport_size({"width": 1366, "height": 768})
        assert await menu.get_by_role("link", name="Konto", exact=True).is_visible()
        assert not await toggle.is_visible()
    finally:
        await page.context.close()


async def test_the_switcher_panel_stays_on_a_phone_screen(browser: Browser, server: Server,
                                                         demo_data: None, make_person):
    page = await persona_page(browser, server, "owner", 320, make_person)
    try:
        toggle = page.get_by_role("banner").get_by_role("button", name="Bieżące konto firmy:",
                                                        exact=False)
        await toggle.focus()
        await page.keyboard.press("Enter")
        panel = page.get_by_role("region", name="Zmień konto firmy")
        await panel.get_by_role("button").first.wait_for()
        box = await panel.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 320
        await page.keyboard.press("Escape")
        assert await toggle.evaluate("el => el === document.activeElement")
    finally:
        await page.context.close()


async def test_the_matrix_filter_and_set_all_by_keyboard(page: Page, make_person):
    from portal.testing import factories

    owner: Person = await make_person(label="macierz")
    for name in ("Piekarnia Pod Lipą", "Piekarnia Nowa", "Warsztat Kowal"):
        await factories.company(owner.account["id"], name=name)
    await page.set_viewport_size({"width": 390, "height": 844})
    await LoginPage(page).sign_in(owner.email, owner.password)
    await page.goto("/users/new")
    matrix = page.locator("#add-matrix")
    await page.get_by_role("searchbox", name="Filtruj firmy po nazwie").focus()
    await page.keyboard.type("piekarnia")
    await page.get_by_text("Pokazane firmy: 2").wait_for()
    assert await matrix.get_by_role("radiogroup").count() == 2
    await page.keyboard.press("Tab")
    await page.keyboard.press("End")  # the select's last level: Zarządzanie
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")  # "Ustaw": the shown rows only, nothing is sent
    assert page.url.endswith("/users/new")
    for name in ("Piekarnia Pod Lipą", "Piekarnia Nowa"):
        group = matrix.get_by_role("radiogroup", name=name)
        assert await group.get_by_role("radio", name="Zarządzanie").is_checked()
    await page.get_by_role("searchbox", name="Filtruj firmy po nazwie").fill("")
    kowal = matrix.get_by_role("radiogroup", name="Warsztat Kowal")
    assert await kowal.get_by_role("radio", name="Brak dostępu").is_checked()
    await axe.assert_no_serious_violations(page)


async def test_the_footer_language_switch_by_keyboard_signed_out(browser: Browser,
                                                                server: Server, make_person):
    page = await persona_page(browser, server, "public", 390, make_person)
    try:
        await page.goto("/register")
        english = page.get_by_role("contentinfo").get_by_role("button", name="English")
        await english.focus()
        await page.keyboard.press("Enter")
        # expect() polls outside the page: a string predicate is an eval the CSP refuses.
        await expect(page.locator("html")).to_have_attribute("lang", "en")
        assert page.url.endswith("/register")
        polski = page.get_by_role("contentinfo").get_by_role("button", name="Polski")
        assert await page.get_by_role("contentinfo").get_by_role(
            "button", name="English").get_attribute("aria-current") == "true"
        await polski.focus()
        await page.keyboard.press("Enter")
        await expect(page.locator("html")).to_have_attribute("lang", "pl")
    finally:
        await page.context.close()
