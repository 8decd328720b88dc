"""Passkey screens: the list, registration, rename and removal in /security, and the sign-in
with a passkey on /login. The browser half (navigator.credentials) is static/js/passkeys.js:
it asks the ``options`` endpoints for a challenge (JSON), runs the ceremony, puts the result
in the form's ``credential`` field and submits the form as usual."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, MediaType, Request, Response, post
from litestar.datastructures import Cookie
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from portal.security.tokens import new_token
from portal.services import mfa, passkeys
from portal.services.errors import DomainError, NotFound
from portal.settings import Settings
from portal.views.auth import _sign_in_page, sign_in
from portal.views.forms import INVALID, client_of, field_errors, form_values, reauthenticated
from portal.views.rendering import redirect, render, safe_next, scope_of, settings_of
from portal.views.security import security_context
from portal.web.guards import requires_identity

PUBLIC = {"public": True}
#: The passwordless sign-in attempt a login challenge is bound to (5 minutes, like it).
LOGIN_COOKIE = "portal_passkey"


def options_response(options_json: str, cookie: Cookie | None = None) -> Response:
    return Response(options_json, media_type=MediaType.JSON,
                    headers={"Cache-Control": "no-store"}, cookies=[cookie] if cookie else [])


def login_cookie(settings: Settings, raw: str | None) -> Cookie:
    return Cookie(key=LOGIN_COOKIE, value=raw or "", path="/login", httponly=True,
                  secure=settings.https, samesite="strict",
                  max_age=int(passkeys.CHALLENGE_LIFETIME.total_seconds()) if raw else 0)


class PasskeySettingsController(Controller):
    path = "/security/passkeys"
    guards = [requires_identity]

    async def _section(self, request: Request, *, errors: dict | None = None,
                       values: dict | None = None, status: int = 200,
                       codes: list[str] | None = None) -> Response:
        context = {**await security_context(request), "passkey_errors": errors or {},
                   "passkey_values": values or {}}
        if codes is not None:
            from urllib.parse import quote

            context["codes"] = codes
            context["codes_download"] = "data:text/plain;charset=utf-8," + quote(
                "\n".join(codes) + "\n")
            # The codes are shown in the MFA section: the whole page, whatever asked.
            return render(request, "security.html", context, status=status)
        return render(request, "security.html", context,
                      partial="partials/passkey_settings.html", status=status)

    @post("/options")
    async def options(self, request: Request) -> Response:
        return options_response(await passkeys.registration_options(settings_of(request),
                                                                    scope_of(request)))

    @post("/")
    async def register(self, request: Request) -> Response:
        values = await form_values(request, "credential", "name")
        try:
            codes = await passkeys.register(settings_of(request), scope_of(request),
                                            values["credential"], values["name"],
                                            client_of(request))
        except DomainError as error:
            return await self._section(request, errors={**field_errors(error),
                                                        "target": "register"},
                                       values={"name": values["name"]}, status=INVALID)
        if codes:
            return await self._section(request, codes=codes)
        return redirect(request, "/security", flash="Dodano klucz dostępu.")

    @post("/{passkey_id:uuid}/rename")
    async def rename(self, request: Request, passkey_id: FromPath[UUID]) -> Response:
        values = await form_values(request, "name")
        try:
            await passkeys.rename(settings_of(request), scope_of(request), passkey_id,
                                  values["name"], client_of(request))
        except NotFound:
            raise NotFoundException() from None
        except DomainError as error:
            return await self._section(request, errors={
                **field_errors(error), "target": f"rename-{passkey_id}"}, status=INVALID)
        return redirect(request, "/security", flash="Zmieniono nazwę klucza dostępu.")

    @post("/{passkey_id:uuid}/remove")
    async def remove(self, request: Request, passkey_id: FromPath[UUID]) -> Response:
        values = await form_values(request, "password", "code")
        try:
            scope = await reauthenticated(request, values)
            await passkeys.remove(settings_of(request), scope, passkey_id, client_of(request))
        except NotFound:
            raise NotFoundException() from None
        except DomainError as error:
            found = field_errors(error)
            errors = {"reauth": found["reauth"]} if "reauth" in found else {
                "remove": error.message}
            return await self._section(request, errors={**errors,
                                                        "target": f"remove-{passkey_id}"},
                                       status=INVALID)
        return redirect(request, "/security", flash="Usunięto klucz dostępu.")


class PasskeyLoginController(Controller):
    """Signing in with a passkey and no password: a complete sign-in, no second step."""

    path = "/login/passkey"

    @post("/options", opt=PUBLIC)
    async def options(self, request: Request) -> Response:
        settings = settings_of(request)
        raw = request.cookies.get(LOGIN_COOKIE) or new_token()
        try:
            body = await passkeys.authentication_options(
                settings, passkeys.LOGIN, passkeys.binding_of(raw), client=client_of(request))
        except passkeys.TooManyAttempts as error:
            return Response({"error": error.message}, status_code=429,
                            headers={"Retry-After": "300", "Cache-Control": "no-store"})
        return options_response(body, login_cookie(settings, raw))

    @post("/", opt=PUBLIC)
    async def sign_in(self, request: Request) -> Response:
        values = await form_values(request, "credential", "next")
        settings = settings_of(request)
        target = safe_next(values["next"])
        try:
            found = await passkeys.sign_in(
                settings, passkeys.binding_of(request.cookies.get(LOGIN_COOKIE) or ""),
                values["credential"], client_of(request))
        except DomainError as error:
            return await _sign_in_page(request, {
                "title": "Zaloguj się", "values": {}, "errors": {},
                "passkey_error": error.message, "next": target}, status=INVALID,
                partial="partials/passkey_login.html")
        response = await sign_in(request, {"id": found.identity_id, "last_account_id": None},
                                 target, amr=passkeys.AMR)
        response.set_cookie(login_cookie(settings, None))
        return response


async def second_factor_options(request: Request, raw_attempt: str | None) -> Response:
    """A challenge for the passkey step of a sign-in attempt (the MFA screen's)."""
    current = await mfa.attempt(raw_attempt)
    if "passkey" not in current.methods:
        raise mfa.FactorMissing()
    return options_response(await passkeys.authentication_options(
        settings_of(request), passkeys.SECOND_FACTOR, passkeys.binding_of(raw_attempt or ""),
        current.identity_id))
