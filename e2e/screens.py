"""Every screen of the portal, for the responsive check (e2e/test_responsive.py) and the
screenshots (e2e/screenshot.py). **Add your screen here** when you build one.

A screen is opened by each persona in ``who``:

- ``public``: signed out;
- ``owner`` / ``member``: the demo account's owner (Anna Nowak) / member (Ewa Kowalczyk), with
  the demo data (``portal demo``);
- ``new-owner`` / ``new-member``: a new, empty account (only its main company) as its owner /
  one member;
- ``newcomer``: a new ID that has no account yet;
- ``staff``: support staff (wsparcie@example.com of the demo data).

``path`` is opened as it is; with ``follow`` (a CSS selector), the first matching link on
``path`` is followed instead (a detail page whose id only the list knows). A persona for whom
the link does not exist (an empty account has no order) simply skips the screen.
"""

from __future__ import annotations

from dataclasses import dataclass

PERSONAS = ("public", "owner", "member", "new-owner", "new-member", "newcomer", "staff")
SIGNED_IN = ("owner", "member", "new-owner", "new-member")
EVERYONE_SIGNED_IN = (*SIGNED_IN, "newcomer")


@dataclass(frozen=True)
class Screen:
    name: str
    path: str
    who: tuple[str, ...]
    follow: str | None = None

    def slug(self) -> str:
        return self.name


SCREENS: list[Screen] = [
    # signed out
    Screen("login", "/login", ("public",)),
    Screen("register", "/register", ("public",)),
    Screen("password-forgot", "/password/forgot", ("public",)),
    # the portal
    Screen("home", "/", SIGNED_IN),
    Screen("apps", "/apps", EVERYONE_SIGNED_IN),
    Screen("support", "/support", EVERYONE_SIGNED_IN),
    Screen("ticket", "/support", ("owner", "member"),
           follow="#ticket-list a[href^='/support/tickets/']"),
    Screen("orders", "/orders", SIGNED_IN),
    Screen("order", "/orders", ("owner", "member"), follow="#order-list a[href^='/orders/']"),
    Screen("products", "/products", SIGNED_IN),
    Screen("billing", "/billing", SIGNED_IN),
    Screen("billing-edit", "/billing/edit", ("owner", "new-owner")),
    Screen("account", "/account", SIGNED_IN),
    Screen("account-edit", "/account/edit", ("owner", "new-owner")),
    Screen("account-offices", "/account/offices", ("owner", "new-owner")),
    Screen("office-clients", "/office/clients", ("owner",)),
    Screen("accounts", "/accounts", SIGNED_IN),
    Screen("accounts-new", "/accounts/new", ("owner", "newcomer")),
    Screen("companies", "/companies", SIGNED_IN),
    Screen("company-new", "/companies/new", ("owner", "new-owner")),
    Screen("company", "/companies", ("owner", "member", "new-owner"),
           follow="#company-list a[href^='/companies/']"),
    Screen("users", "/users", SIGNED_IN),
    Screen("user-new", "/users/new", ("owner", "new-owner")),
    Screen("person", "/users", ("owner",), follow="#people-list a[href^='/users/']"),
    Screen("users-audit", "/users/audit", ("owner", "new-owner")),
    Screen("users-leave", "/users/leave", ("member", "new-member")),
    Screen("api-keys", "/api-keys", ("owner", "new-owner", "member")),
    Screen("profile", "/profile", EVERYONE_SIGNED_IN),
    Screen("security", "/security", EVERYONE_SIGNED_IN),
    # back office
    Screen("staff", "/staff", ("staff",)),
    Screen("staff-tickets", "/staff/tickets", ("staff",)),
    Screen("staff-clients", "/staff/clients", ("staff",)),
]

#: The widths every screen is checked at; the first screen's height for the heading check.
WIDTHS = (320, 390, 768, 1366)
HEIGHTS = {320: 640, 390: 844, 768: 1024, 1366: 768}


def screens_for(persona: str) -> list[Screen]:
    return [screen for screen in SCREENS if persona in screen.who]
