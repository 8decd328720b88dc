"""Applications and services (/apps): the catalogue for the current account, filtered by
category; opening an application through the portal; starting a trial."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from portal.security.permissions import Permission
from portal.services import accounts, catalogue, company_access
from portal.services.errors import DomainError, NotFound
from portal.views.forms import INVALID, client_of
from portal.views.rendering import (
    VARY,
    is_htmx,
    language_of,
    redirect,
    render,
    scope_of,
    settings_of,
)
from portal.web.guards import requires_permission
from portal.web.headers import csp_with_form_targets

USE = {"permission": Permission.APPS_USE}


async def open_form_headers() -> dict[str, str]:
    """A page with "open" buttons: their form is redirected to the application's sign-in,
    which the Content Security Policy must allow (form-action)."""
    return {"Content-Security-Policy": csp_with_form_targets(*await catalogue.open_origins())}


async def catalogue_page(request: Request, category: object = None, show: object = None, *,
                         errors: dict[str, str] | None = None, status: int = 200) -> Template:
    scope = scope_of(request)
    chosen = catalogue.parse_category(category)
    shown = catalogue.parse_show(show)
    rows = await catalogue.applications(scope, chosen, shown, language_of(request))
    return render(
        request,
        "apps.html",
        {
            "title": "Aplikacje i usługi",
            "applications": rows,
            "categories": catalogue.CATEGORIES,
            "category": chosen,
            "show": shown,
            "errors": errors or {},
            "htmx": is_htmx(request),
        },
        partial="partials/app_list.html",
        status=status,
        headers=await open_form_headers(),
    )


def _not_found(error: DomainError) -> None:
    if isinstance(error, NotFound):
        raise NotFoundException() from error


class AppsController(Controller):
    path = "/apps"
    guards = [requires_permission]
    opt = USE

    @get("/", opt={"without_account": True})
    async def index(self, request: Request, category: FromQuery[str | None] = None,
                    show: FromQuery[str | None] = None) -> Template:
        return await catalogue_page(request, category, show)

    @post("/{slug:str}/open")
    async def open(self, request: Request, slug: FromPath[str]) -> Response:
        """Record the use, then go to the application's sign-in with the account preselected;
        the application signs the person in through the portal (single sign-on)."""
        try:
            target = await catalogue.open_application(scope_of(request), slug)
        except DomainError as error:
            _not_found(error)
            return await catalogue_page(request, errors={"form": error.message},
                                        status=INVALID)
        if is_htmx(request):
            return redirect(request, target)
        return Redirect(path=target, status_code=303, headers=VARY)

    @post("/{slug:str}/trial")
    async def trial(self, request: Request, slug: FromPath[str]) -> Response:
        try:
            await catalogue.start_trial(settings_of(request), scope_of(request), slug,
                                        client_of(request))
        except DomainError as error:
            _not_found(error)
            return await catalogue_page(request, errors={"form": error.message},
                                        status=INVALID)
        return redirect(request, "/products", flash="Rozpoczęto okres próbny aplikacji.")


async def home_context(request: Request) -> dict[str, Any]:
    scope = scope_of(request)
    return {
        "recent": await catalogue.recent(scope, language=language_of(request)),
        "offer": await catalogue.trial_offer(scope, language_of(request)),
        "mine": await company_access.my_access(scope),
        "account_count": await accounts.count_for(scope),
    }
