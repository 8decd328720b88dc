"""The home page and the screens whose own issues have not landed yet."""

from __future__ import annotations

from litestar import Controller, Request, get
from litestar.response import Template

from portal.security.permissions import Permission
from portal.views.apps import home_context, open_form_headers
from portal.views.rendering import render
from portal.web.guards import requires_permission


class HomeController(Controller):
    @get("/", guards=[requires_permission], opt={"permission": Permission.APPS_USE})
    async def home(self, request: Request) -> Template:
        return render(request, "home.html",
                      {"title": "Strona główna", **await home_context(request)},
                      partial="partials/recent_apps.html", headers=await open_form_headers())


def _screen(path: str, title: str, permission: Permission):
    @get(path, guards=[requires_permission], opt={"permission": permission}, name=f"screen:{path}")
    async def screen(request: Request) -> Template:
        return render(request, "screen.html", {"title": title})

    return screen


#: Navigation targets rendered as "in preparation" until their issue builds them.
PENDING_SCREENS: list = []
