"""Back office: registering the applications that sign people in with the ID (OIDC clients)."""

from __future__ import annotations

from litestar import Controller, Request, Response, get, post
from litestar.response import Template

from portal.security.permissions import Permission
from portal.services import oidc, oidc_clients
from portal.services.errors import DomainError
from portal.tables import OAuthClient
from portal.views.forms import INVALID, client_of, field_errors
from portal.views.rendering import render, scope_of
from portal.web.guards import requires_permission

FIELDS = ("name", "redirect_uris", "post_logout_redirect_uris", "backchannel_logout_uri",
          "auth_method", "jwks", "jwks_uri", "service_scopes", "id_token_signed_response_alg")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


class StaffClientsController(Controller):
    path = "/staff/clients"
    guards = [requires_permission]
    opt = {"permission": Permission.STAFF}

    async def _page(self, request: Request, *, values=None, errors=None, created=None,
                    status=200) -> Template:
        clients = await OAuthClient.select(
            OAuthClient.client_id, OAuthClient.name, OAuthClient.redirect_uris,
            OAuthClient.first_party, OAuthClient.require_mfa, OAuthClient.auth_method,
            OAuthClient.jwks_uri, OAuthClient.service_scopes,
            OAuthClient.id_token_signed_response_alg,
        ).order_by(OAuthClient.name)
        return render(request, "staff_clients.html", {
            "title": "Aplikacje logujące przez Konto ID", "clients": clients,
            "values": values or {"auth_method": "client_secret_basic"}, "errors": errors or {},
            "created": created, "scopes": oidc.SCOPES, "auth_methods": oidc.AUTH_METHODS,
        }, partial="partials/staff_client_form.html", status=status)

    @get("/")
    async def index(self, request: Request) -> Template:
        return await self._page(request)

    @post("/")
    async def register(self, request: Request) -> Response:
        form = await request.form()
        values = {name: form.get(name, "") if isinstance(form.get(name, ""), str) else ""
                  for name in FIELDS}
        scopes = [s for s in form.getall("allowed_scopes", []) if s in oidc.SCOPES]
        first_party = form.get("first_party") == "on"
        require_mfa = form.get("require_mfa") == "on"
        try:
            client_id, secret = await oidc_clients.register_client(
                name=values["name"], redirect_uris=_lines(values["redirect_uris"]),
                post_logout_redirect_uris=_lines(values["post_logout_redirect_uris"]),
                backchannel_logout_uri=values["backchannel_logout_uri"].strip(),
                allowed_scopes=scopes, first_party=first_party, require_mfa=require_mfa,
                auth_method=values["auth_method"], jwks=values["jwks"],
                jwks_uri=values["jwks_uri"], service_scopes=values["service_scopes"].split(),
                id_token_signed_response_alg=values["id_token_signed_response_alg"] or "RS256",
                actor=scope_of(request),
                client=client_of(request))
        except DomainError as error:
            return await self._page(request, values={**values, "scopes": scopes,
                                                     "first_party": first_party,
                                                     "require_mfa": require_mfa},
                                    errors=field_errors(error), status=INVALID)
        return await self._page(request, created={"client_id": client_id, "secret": secret,
                                                  "name": values["name"]})
