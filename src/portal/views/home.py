"""The home page and the screens whose own issues have not landed yet."""

from __future__ import annotations

from litestar import Controller, Request, get
from litestar.response import Template

from portal.security.guards import requires_permission
from portal.security.permissions import Permission
from portal.views.rendering import render


class HomeController(Controller):
    @get("/", guards=[requires_permission], opt={"permission": Permission.APPS_USE})
    async def home(self, request: Request) -> Template:
        return render(request, "home.html", {"title": "Strona główna"})


def _screen(path: str, title: str, permission: Permission):
    @get(path, guards=[requires_permission], opt={"permission": permission}, name=f"screen:{path}")
    async def screen(request: Request) -> Template:
        return render(request, "screen.html", {"title": title})

    return screen


#: Navigation targets rendered as "in preparation" until their issue builds them.
PENDING_SCREENS = [
    _screen("/apps", "Aplikacje i usługi", Permission.APPS_USE),
    _screen("/support", "Centrum wsparcia", Permission.SUPPORT_USE),
    _screen("/orders", "Zamówienia", Permission.ORDERS_VIEW),
    _screen("/products", "Moje produkty", Permission.PRODUCTS_VIEW),
    _screen("/billing", "Dane do faktury", Permission.BILLING_VIEW),
    _screen("/users", "Użytkownicy", Permission.PEOPLE_VIEW),
]
