"""The person's profile: names, phone, language; the email shown read-only."""

from __future__ import annotations

from litestar import Controller, Request, Response, get, post
from litestar.response import Template

from portal.security.guards import requires_identity
from portal.services import profile
from portal.services.errors import DomainError
from portal.views.forms import INVALID, client_of, field_errors, form_values
from portal.views.rendering import redirect, render, scope_of


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
