"""The account card (/account), creating an account (/accounts/new), the person's accounts
(/accounts, the switcher's list) and switching the current account (/accounts/switch)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromQuery
from litestar.response import Template
from litestar.routes import HTTPRoute

from portal.security.permissions import Permission, permissions_for
from portal.services import accounts, companies, company_data, invitations
from portal.services.errors import DomainError, NotFound
from portal.views.forms import INVALID, client_of, field_errors, form_values
from portal.views.rendering import is_htmx, redirect, render, safe_next, scope_of
from portal.web.guards import requires_identity, requires_permission


def refuse(error: DomainError) -> None:
    """Map the service's refusals to HTTP: a row of another account is 404, a rule 403."""
    if isinstance(error, NotFound):
        raise NotFoundException() from error
    if isinstance(error, (accounts.NotAllowed, companies.NotAllowed)):
        raise PermissionDeniedException() from error


def form_context(request: Request, **values: Any) -> dict[str, Any]:
    return {"countries": company_data.COUNTRIES, "htmx": is_htmx(request), **values}


async def _mfa_policy_context(scope, *, errors: dict[str, str] | None = None,
                              saved: bool = False) -> dict[str, Any]:
    from portal.services import people

    return {
        "mfa_policy": scope.account_mfa_policy,
        "mfa_policies": accounts.MFA_POLICIES,
        "mfa_missing": await people.mfa_missing(scope),
        "policy_errors": errors or {},
        "policy_saved": saved,
        "can_edit_policy": scope.can(Permission.ACCOUNT_EDIT),
    }


class AccountController(Controller):
    """The current account's card: read by every member, edited inline by owners and admins."""

    path = "/account"

    async def _card(
        self,
        request: Request,
        *,
        editing: bool = False,
        saved: bool = False,
        partial: str = "partials/account_card.html",
    ) -> Template:
        scope = scope_of(request)
        try:
            card = await accounts.card(scope)
        except DomainError as error:
            refuse(error)
            raise
        return render(
            request,
            "account.html",
            form_context(
                request,
                title="Konto",
                card=card,
                can_edit=scope.can(Permission.ACCOUNT_EDIT),
                editing=editing,
                saved=saved,
                values=accounts.form_values(card),
                errors={},
                **await _mfa_policy_context(scope),
            ),
            partial=partial,
        )

    @get("/", guards=[requires_permission], opt={"permission": Permission.ACCOUNT_VIEW})
    async def show(self, request: Request) -> Template:
        return await self._card(request)

    @post("/mfa-policy", guards=[requires_permission],
          opt={"permission": Permission.ACCOUNT_EDIT})
    async def save_mfa_policy(self, request: Request) -> Response:
        """The account's MFA policy (issue 4): a small form under the card."""
        scope = scope_of(request)
        values = await form_values(request, "mfa_policy")
        try:
            policy = await accounts.set_mfa_policy(scope, values["mfa_policy"],
                                                   client_of(request))
        except (NotFound, accounts.NotAllowed) as error:
            refuse(error)
            raise
        except DomainError as error:
            context = await _mfa_policy_context(scope, errors=field_errors(error))
            return render(request, "account.html",
                          form_context(request, title="Konto", card=await accounts.card(scope),
                                       can_edit=True, editing=False, saved=False,
                                       errors={}, **context),
                          partial="partials/account_mfa_policy.html", status=INVALID)
        if not is_htmx(request):
            return redirect(request, "/account",
                            flash="Zapisano wymóg logowania dwuetapowego.")
        context = await _mfa_policy_context(replace(scope, account_mfa_policy=policy),
                                            saved=True)
        return render(request, "account.html", form_context(request, **context),
                      partial="partials/account_mfa_policy.html")

    @get("/edit", guards=[requires_permission], opt={"permission": Permission.ACCOUNT_EDIT})
    async def edit(self, request: Request) -> Template:
        return await self._card(request, editing=True, partial="partials/account_form.html")

    @post("/", guards=[requires_permission], opt={"permission": Permission.ACCOUNT_EDIT})
    async def save(self, request: Request) -> Response:
        scope = scope_of(request)
        values = await form_values(request, *accounts.FIELDS)
        try:
            await accounts.update(scope, values, client_of(request))
        except (NotFound, accounts.NotAllowed) as error:
            refuse(error)
            raise
        except DomainError as error:
            card = await accounts.card(scope)
            return render(
                request,
                "account.html",
                form_context(
                    request,
                    title="Konto",
                    card=card,
                    can_edit=True,
                    editing=True,
                    values={**values, "is_accounting_office": accounts.flag(
                        values["is_accounting_office"])},
                    errors=field_errors(error),
                ),
                partial="partials/account_form.html",
                status=INVALID,
            )
        if is_htmx(request):
            # Inline edit: the card comes back in place of the form, and the live region says so.
            return await self._card(request, saved=True)
        return redirect(request, "/account", flash="Zapisano dane konta.")


def _new_form(request: Request, values: dict[str, Any], errors: dict[str, str],
              status: int = 200, invitations: list | None = None) -> Template:
    return render(
        request,
        "accounts_new.html",
        form_context(request, title="Załóż konto firmy", values=values, errors=errors,
                     invitations=invitations or []),
        partial="partials/account_form.html",
        status=status,
    )


def screen_after_switch(request: Request, raw_next: str | None, role: str) -> str:
    """The same screen in the new account, if it exists there and the new role may open it;
    otherwise home. Screens with an id in the path (``/companies/{id}``) belong to the old
    account, so they never exist in the new one."""
    path = urlsplit(safe_next(raw_next, "/")).path.rstrip("/") or "/"
    allowed = permissions_for(role)
    for route in request.app.routes:
        if not isinstance(route, HTTPRoute) or route.path != path or "{" in route.path:
            continue
        for handler in route.route_handlers:
            if "GET" not in handler.http_methods:
                continue
            permission = handler.opt.get("permission")
            if isinstance(permission, Permission) and permission not in allowed:
                return "/"
            return path
    return "/"


class AccountsController(Controller):
    """The accounts of the signed-in person: list, create, switch. No account is needed."""

    path = "/accounts"
    guards = [requires_identity]

    @get("/")
    async def index(
        self, request: Request, q: FromQuery[str | None] = None, next: FromQuery[str | None] = None
    ) -> Template:
        scope = scope_of(request)
        found = await accounts.choices(scope, q)
        return render(
            request,
            "accounts.html",
            {
                "title": "Twoje konta firm",
                "choices": found,
                "delegated_groups": await accounts.delegated_choices(scope, q),
                "invitations": await invitations.pending_for(scope),
                "next": safe_next(next, "/"),
                "htmx": is_htmx(request),
            },
            partial="partials/account_options.html",
        )

    @get("/new")
    async def new_form(self, request: Request) -> Template:
        # Invitations waiting for the person are offered here too (no account yet: no switcher).
        offered = await invitations.pending_for(scope_of(request))
        return _new_form(request, {"country": "PL"}, {}, invitations=offered)

    @post("/new")
    async def create(self, request: Request) -> Response:
        values = await form_values(request, *accounts.FIELDS)
        try:
            await accounts.create(scope_of(request), values, client_of(request))
        except DomainError as error:
            kept = {**values, "is_accounting_office": accounts.flag(values["is_accounting_office"])}
            return _new_form(request, kept, field_errors(error), INVALID)
        return redirect(request, "/account", flash="Utworzono konto firmy.")

    @post("/switch")
    async def switch(self, request: Request) -> Response:
        values = await form_values(request, "account", "next")
        try:
            chosen = await accounts.switch(scope_of(request), values["account"])
        except DomainError as error:
            refuse(error)
            raise
        target = screen_after_switch(request, values["next"], chosen["role"])
        return redirect(request, target, flash="Zmieniono konto firmy.")
