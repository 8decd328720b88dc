"""Small page objects: controls found by role and accessible name, as a user finds them."""

from __future__ import annotations

import re
from urllib.parse import urlparse

from playwright.async_api import Locator, Page, expect

#: The left navigation of DESIGN.md: (link name, path), in order ("Panel klienta" is a group
#: label, not a link).
NAVIGATION = [
    ("Strona główna", "/"),
    ("Aplikacje i usługi", "/apps"),
    ("Centrum wsparcia", "/support"),
    ("Zamówienia", "/orders"),
    ("Moje produkty", "/products"),
    ("Dane do faktury", "/billing"),
    ("Konto", "/account"),
    ("Firmy", "/companies"),
    ("Użytkownicy", "/users"),
    ("Klucze API", "/api-keys"),
]

_ON_LOGIN = re.compile(r"/login(?:[?#].*)?$")


def path_of(page: Page) -> str:
    return urlparse(page.url).path


class LoginPage:
    path = "/login"

    def __init__(self, page: Page) -> None:
        self.page = page
        self.email = page.get_by_label("E-mail", exact=True)
        self.password = page.get_by_label("Hasło", exact=True)
        self.submit = page.get_by_role("button", name="Zaloguj się", exact=True)
        self.form_error = page.get_by_role("alert")

    async def open(self) -> LoginPage:
        await self.page.goto(self.path)
        return self

    async def sign_in(self, email: str, password: str) -> Layout:
        """Open /login, fill the form, press "Zaloguj się"; return once the page has left
        /login (fails with the form's message when sign-in is refused)."""
        await self.open()
        await self.email.fill(email)
        await self.password.fill(password)
        await self.submit.click()
        try:
            await expect(self.page).not_to_have_url(_ON_LOGIN)
        except AssertionError:
            message = "(no message)"
            if await self.form_error.count():
                message = await self.form_error.first.inner_text()
            raise AssertionError(f"sign-in as {email} was refused: {message}") from None
        return Layout(self.page)


class Layout:
    """The signed-in frame around every screen: top bar, left navigation, main, live region."""

    NAVIGATION_NAME = "Nawigacja główna"

    def __init__(self, page: Page) -> None:
        self.page = page
        self.skip_link = page.get_by_role("link", name="Przejdź do treści", exact=True)
        self.banner = page.get_by_role("banner")
        self.navigation = page.get_by_role("navigation", name=self.NAVIGATION_NAME, exact=True)
        self.main = page.get_by_role("main")
        # A live region is often empty (and so may be hidden): look for it in the DOM too.
        self.live_region = page.get_by_role("status", include_hidden=True)

    def nav_link(self, name: str) -> Locator:
        return self.navigation.get_by_role("link", name=name, exact=True)

    async def nav_link_names(self) -> list[str]:
        links = self.navigation.get_by_role("link")
        return [name.strip() for name in await links.all_inner_texts()]

    async def current_nav_links(self) -> list[str]:
        """Names of the navigation links marked aria-current="page"."""
        marked = self.navigation.locator('a[aria-current="page"]')
        return [name.strip() for name in await marked.all_inner_texts()]


async def is_focused(locator: Locator) -> bool:
    return await locator.evaluate("element => element === document.activeElement", timeout=2_000)


async def describe_focus(page: Page) -> str:
    return await page.evaluate(
        """() => {
          const el = document.activeElement;
          if (!el || el === document.body) return "(body)";
          const name = (el.getAttribute("aria-label") || el.textContent || "").trim().slice(0, 40);
          return `<${el.tagName.toLowerCase()}> ${name}`;
        }"""
    )


async def tab_to(page: Page, target: Locator, *, max_presses: int = 60) -> int:
    """Press Tab until ``target`` has focus, as a keyboard user would; return the presses used.
    Fails listing what received focus on the way."""
    await expect(target, f"{target} is not on {page.url}").to_be_attached()
    seen = []
    for presses in range(1, max_presses + 1):
        await page.keyboard.press("Tab")
        if await is_focused(target):
            return presses
        seen.append(await describe_focus(page))
    raise AssertionError(
        f"{target} never received focus in {max_presses} Tab presses; focus went: "
        + " → ".join(seen)
    )


# --- accounts, companies and the account switcher (issue 5) ------------------------------------


class AccountForm:
    """The account form (/accounts/new, and the card's inline edit): fields by their labels."""

    def __init__(self, page: Page, root: Locator | None = None) -> None:
        self.page = page
        scope = root or page.get_by_role("main")
        self.name = scope.get_by_label("Nazwa", exact=True)
        self.nip = scope.get_by_label("NIP", exact=True)
        self.accounting_office = scope.get_by_label("Prowadzę biuro rachunkowe", exact=True)
        self.street = scope.get_by_label("Ulica i numer", exact=True)
        self.postal_code = scope.get_by_label("Kod pocztowy", exact=True)
        self.city = scope.get_by_label("Miejscowość", exact=True)
        self.country = scope.get_by_label("Kraj", exact=True)

    async def fill(self, *, name: str, nip: str, street: str = "ul. Prosta 1",
                   postal_code: str = "00-838", city: str = "Warszawa",
                   accounting_office: bool = False) -> None:
        await self.name.fill(name)
        await self.nip.fill(nip)
        await self.accounting_office.set_checked(accounting_office)
        await self.street.fill(street)
        await self.postal_code.fill(postal_code)
        await self.city.fill(city)


class NewAccountPage:
    path = "/accounts/new"

    def __init__(self, page: Page) -> None:
        self.page = page
        self.heading = page.get_by_role("heading", name="Załóż konto firmy", level=1)
        self.form = AccountForm(page)
        self.submit = page.get_by_role("button", name="Załóż konto firmy", exact=True)

    async def open(self) -> NewAccountPage:
        await self.page.goto(self.path)
        return self

    async def create(self, name: str, nip: str, **fields) -> AccountPage:
        """Fill and submit; returns the account card the creation leads to."""
        await self.form.fill(name=name, nip=nip, **fields)
        await self.submit.click()
        await expect(self.page).to_have_url(re.compile(r"/account$"))
        return AccountPage(self.page)


class AccountPage:
    """The account card (/account)."""

    path = "/account"

    def __init__(self, page: Page) -> None:
        self.page = page
        self.card = page.get_by_role("region", name="Dane konta firmy")
        self.edit = page.get_by_role("link", name="Edytuj dane konta", exact=True)
        self.new_account = page.get_by_role("link", name="Załóż kolejne konto firmy", exact=True)

    async def open(self) -> AccountPage:
        await self.page.goto(self.path)
        return self

    async def fact(self, label: str) -> str:
        """The value shown next to ``label`` on the card."""
        term = self.card.locator("dt", has_text=re.compile(rf"^{re.escape(label)}$"))
        return (await term.locator("xpath=following-sibling::dd[1]").inner_text()).strip()


class CompaniesPage:
    """The company list (/companies): search as you type, sort, pages, add inline."""

    path = "/companies"

    def __init__(self, page: Page) -> None:
        self.page = page
        self.search = page.get_by_role("searchbox", name="Szukaj po nazwie lub NIP")
        self.sort = page.get_by_label("Sortuj", exact=True)
        self.add = page.get_by_role("link", name="Dodaj firmę", exact=True)
        self.table = page.get_by_role("main").get_by_role("table")
        self.summary = page.locator("#company-list-summary")
        self.new_form = page.get_by_role("form", name="Nowa firma")

    async def open(self, query: str = "") -> CompaniesPage:
        await self.page.goto(self.path + (f"?{query}" if query else ""))
        return self

    def company_link(self, name: str) -> Locator:
        return self.table.get_by_role("link", name=name, exact=True)

    async def names(self) -> list[str]:
        """The company names on the current page of the list, in order."""
        if not await self.table.count():
            return []
        links = self.table.get_by_role("rowheader").get_by_role("link")
        return [name.strip() for name in await links.all_inner_texts()]

    async def add_company(self, name: str, nip: str = "", city: str = "Kraków") -> None:
        """Add a company with the inline form; ends on the new company's page."""
        await self.add.click()
        form = self.new_form
        await expect(form).to_be_visible()
        await form.get_by_label("Nazwa", exact=True).fill(name)
        await form.get_by_label("NIP", exact=True).fill(nip)
        await form.get_by_label("Miejscowość", exact=True).fill(city)
        await form.get_by_role("button", name="Zapisz firmę").click()
        await expect(self.page.get_by_role("heading", name=name, level=1)).to_be_visible()


class AccountSwitcher:
    """The account switcher in the top bar: a disclosure button and the region it controls."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.toggle = page.get_by_role("banner").get_by_role(
            "button", name=re.compile(r"^Bieżące konto firmy:"))
        self.panel = page.get_by_role("region", name="Zmień konto firmy")
        self.filter = self.panel.get_by_role("searchbox")
        self.options = self.panel.get_by_role("list", name="Twoje konta firm").get_by_role("button")

    def option(self, account_name: str) -> Locator:
        return self.panel.get_by_role("button", name=re.compile(rf"^{re.escape(account_name)}\b"))

    async def current(self) -> str:
        return (await self.toggle.locator(".account-current").inner_text()).strip()

    async def open(self) -> None:
        await self.toggle.click()
        await expect(self.toggle).to_have_attribute("aria-expanded", "true")
        await expect(self.options.first).to_be_visible()


# --- people of an account (issue 6) -------------------------------------------------------------


class PeoplePage:
    """The people of the account (/users): the list, adding by email, invitations."""

    path = "/users"

    def __init__(self, page: Page) -> None:
        self.page = page
        self.main = page.get_by_role("main")
        self.add = page.get_by_role("link", name="Dodaj osobę", exact=True)
        self.add_form = page.get_by_role("form", name="Dodaj osobę")
        self.search = page.get_by_role("searchbox", name="Szukaj po e-mailu lub imieniu i nazwisku")
        self.table = self.main.get_by_role("table")
        self.summary = page.locator("#people-list-summary")

    async def open(self, query: str = "") -> PeoplePage:
        await self.page.goto(self.path + (f"?{query}" if query else ""))
        return self

    def row(self, email: str) -> Locator:
        return self.table.get_by_role("row").filter(
            has=self.page.get_by_role("rowheader", name=re.compile(re.escape(email), re.I)))

    async def add_person(self, email: str, role: str = "Użytkownik",
                         levels: dict[str, str] | None = None) -> None:
        """Open the inline form, fill it and press "Dodaj osobę" (the form's button)."""
        await self.add.click()
        form = self.add_form
        await expect(form).to_be_visible()
        await form.get_by_label("E-mail", exact=True).fill(email)
        await form.get_by_label("Rola", exact=True).select_option(label=role)
        for company, level in (levels or {}).items():
            await AccessMatrix(form).choose(company, level)
        await form.get_by_role("button", name="Dodaj osobę", exact=True).click()


class AccessMatrix:
    """The access matrix (companies by levels): one radio group per company."""

    def __init__(self, root: Locator) -> None:
        self.root = root

    def group(self, company: str) -> Locator:
        return self.root.get_by_role("radiogroup", name=re.compile(rf"^{re.escape(company)}"))

    def option(self, company: str, level: str) -> Locator:
        return self.group(company).get_by_role("radio", name=level, exact=True)

    async def choose(self, company: str, level: str) -> None:
        await self.option(company, level).check()

    async def level(self, company: str) -> str:
        for name in ("Brak dostępu", "Podgląd", "Edycja", "Zarządzanie"):
            if await self.option(company, name).is_checked():
                return name
        raise AssertionError(f"no level checked for {company}")


class PersonPage:
    """One person of the account (/users/{id}): role, access to companies, removal."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.role = page.get_by_label("Rola", exact=True)
        self.save_role = page.get_by_role("button", name="Zapisz rolę", exact=True)
        self.access = page.get_by_role("region", name="Dostęp do firm")
        self.matrix = AccessMatrix(self.access)
        self.save_access = page.get_by_role("button", name="Zapisz dostęp", exact=True)
        self.remove = page.get_by_role("link", name="Usuń z konta", exact=True)
        self.confirm_remove = page.get_by_role("button", name="Usuń z konta", exact=True)

    async def open(self, membership_id) -> PersonPage:
        await self.page.goto(f"/users/{membership_id}")
        return self
