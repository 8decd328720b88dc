"""Klucze API: make a key (shown once), list keys, revoke one."""

from __future__ import annotations

from datetime import UTC, datetime

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Template

from portal.security.permissions import Permission
from portal.services import api_keys
from portal.services.errors import DomainError
from portal.views.forms import (
    INVALID,
    client_of,
    field_errors,
    mfa_context,
    reauthenticated,
    searches_companies,
)
from portal.views.rendering import redirect, render, scope_of, settings_of
from portal.web.guards import requires_permission


class ApiKeysController(Controller):
    path = "/api-keys"
    guards = [requires_permission]
    opt = {"permission": Permission.API_KEY_MANAGE}

    async def _page(self, request: Request, *, values=None, errors=None, created=None,
                    status=200) -> Template:
        scope = scope_of(request)
        return render(request, "api_keys.html", {
            "title": "Klucze API",
            "keys": await api_keys.listing(scope),
            "picker": await api_keys.company_choices(
                scope, (values or {}).get("company_q"), (values or {}).get("company_ids")),
            "values": values or {"scopes": ["read"], "company_ids": []},
            "errors": errors or {}, "created": created,
            "api_base": settings_of(request).base_url + "/api/v1",
            "now": datetime.now(UTC),
            **await mfa_context(request),
        }, partial="partials/api_keys_update.html", status=status)

    @get("/")
    async def index(self, request: Request) -> Template:
        return await self._page(request)

    @post("/")
    async def create(self, request: Request) -> Response:
        form = await request.form()
        values = {
            "name": form.get("name") if isinstance(form.get("name"), str) else "",
            "scopes": [v for v in form.getall("scopes", []) if isinstance(v, str)],
            "company_ids": [v for v in form.getall("company_ids", []) if isinstance(v, str)],
            "expires_on": form.get("expires_on") if isinstance(form.get("expires_on"),
                                                               str) else "",
            "company_q": form.get("company_q") if isinstance(form.get("company_q"), str) else "",
        }
        if searches_companies(form):  # "Szukaj firmy": the form again, its list narrowed
            return await self._page(request, values=values)
        reauth = {k: form.get(k) if isinstance(form.get(k), str) else ""
                  for k in ("password", "code")}
        try:
            scope = await reauthenticated(request, reauth)
            row, secret = await api_keys.create(scope, values, client_of(request))
        except DomainError as error:
            errors = {**field_errors(error), "target": "api-key"}
            return await self._page(request, values=values, errors=errors, status=INVALID)
        return await self._page(request, created={"name": row["name"], "secret": secret})

    @get("/{key_id:str}/revoke")
    async def confirm_revoke(self, request: Request, key_id: FromPath[str]) -> Template:
        from portal.services import tenancy
        from portal.tables import ApiKey

        row = await tenancy.get(ApiKey, scope_of(request), key_id, ApiKey.id, ApiKey.name,
                                ApiKey.key_id, ApiKey.revoked_at)
        return render(request, "api_key_revoke.html", {"title": "Unieważnij klucz API",
                                                       "key": row})

    @post("/{key_id:str}/revoke")
    async def revoke(self, request: Request, key_id: FromPath[str]) -> Response:
        await api_keys.revoke(scope_of(request), key_id, client_of(request))
        return redirect(request, "/api-keys", flash="Klucz API został unieważniony.")
