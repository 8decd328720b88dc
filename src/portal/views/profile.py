"""The person's profile: names, phone, language; the email shown read-only."""

from __future__ import annotations

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.response import Template

from portal.i18n import LANGUAGE_COOKIE, LANGUAGES
from portal.services import profile
from portal.services.errors import DomainError
from portal.views.forms import INVALID, client_of, field_errors, form_values
from portal.views.rendering import redirect, render, safe_next, scope_of, settings_of
from portal.web.guards import requires_identity


class ProfileController(Controller):
    path = "/profile"
    guards = [requires_identity]

    @get("/")
    async def show(self, request: Request) -> Template:
        values = await profile.get(scope_of(request))
        return render(
            request,
            "profile.html",
            {"title": "Profil", "values": values, "errors": {}},
            partial="partials/profile_form.html",
        )

    @post("/")
    async def save(self, request: Request) -> Response:
        scope = scope_of(request)
        values = await form_values(request, *profile.FIELDS)
        try:
            await profile.update(scope, values, client_of(request))
        except DomainError as error:
            return render(
                request,
                "profile.html",
                {"title": "Profil", "values": values, "errors": field_errors(error)},
                partial="partials/profile_form.html",
                status=INVALID,
            )
        # A full reload: the language of the whole interface may have changed.
        return redirect(request, "/profile", flash="Zapisano profil.")


@post("/language", opt={"public": True})
async def choose_language(request: Request) -> Response:
    """The footer's switch (Polski / English), a plain form: signed out it is remembered in a
    cookie, signed in it is the profile's language (and the cookie, for after sign-out).
    Anything but pl/en changes nothing; either way back to the page it was sent from."""
    values = await form_values(request, "language", "next")
    target = safe_next(values["next"], "/")
    language = values["language"]
    if language not in LANGUAGES:
        return redirect(request, target)
    scope = scope_of(request)
    if scope is not None:
        await profile.set_language(scope, language, client_of(request))
    response = redirect(request, target)
    settings = settings_of(request)
    response.set_cookie(Cookie(key=LANGUAGE_COOKIE, value=language, path="/",
                               max_age=365 * 24 * 3600, httponly=True, samesite="lax",
                               secure=settings.https))
    return response
