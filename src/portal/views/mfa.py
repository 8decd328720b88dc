"""MFA screens: the second step of sign-in, and enrolment / removal under /security/mfa."""

from __future__ import annotations

from urllib.parse import quote

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from portal.i18n import translator
from portal.security import totp
from portal.services import mfa, oidc_authorization, passkeys, sessions
from portal.services.errors import DomainError
from portal.settings import Settings
from portal.views.auth import MFA_COOKIE, mfa_cookie, sign_in
from portal.views.forms import (
    INVALID,
    client_of,
    field_errors,
    form_values,
    mfa_context,
    reauthenticated,
)
from portal.views.passkeys import second_factor_options
from portal.views.rendering import language_of, redirect, render, scope_of, settings_of
from portal.views.security import security_context
from portal.web.guards import requires_identity
from portal.web.headers import csp_with_form_targets
from portal.web.middleware import set_session


def _method(attempt: mfa.Attempt, wanted: str | None) -> str:
    methods = attempt.methods
    if wanted in methods:
        return wanted
    return methods[0] if methods else "app"


class MfaLoginController(Controller):
    """The second step of sign-in. The session is created only after it."""

    path = "/login/mfa"

    async def _form(self, request: Request, method: str | None, *, errors=None, status=200,
                    notice: str | None = None) -> Response:
        try:
            attempt = await mfa.attempt(request.cookies.get(MFA_COOKIE))
        except mfa.AttemptExpired as error:
            return redirect(request, "/login", flash=error.message)
        chosen = _method(attempt, method)
        # Returning to an application: its language, and its redirect URI for the form's
        # redirects without JavaScript (see views/auth.py, _sign_in_page).
        going_on = await oidc_authorization.continuation(attempt.next)
        language = {"lang": going_on.language, "_": translator(going_on.language)} if (
            going_on.language) else {}
        return render(request, "login_mfa.html", {
            "title": "Weryfikacja dwuetapowa", "method": chosen, "attempt": attempt,
            "errors": errors or {}, "notice": notice, **language,
        }, partial="partials/login_mfa_form.html", status=status, headers={
            "Content-Security-Policy": csp_with_form_targets(*going_on.redirect_uris)})

    @get("/", opt={"public": True})
    async def show(self, request: Request, method: FromQuery[str | None] = None) -> Response:
        return await self._form(request, method)

    @post("/", opt={"public": True})
    async def verify(self, request: Request) -> Response:
        values = await form_values(request, "method", "code", "credential")
        settings = settings_of(request)
        raw = request.cookies.get(MFA_COOKIE)
        try:
            if values["method"] == "passkey":
                attempt = await passkeys.complete_second_factor(
                    settings, raw, values["credential"], client_of(request))
                amr = ("pwd", *passkeys.AMR, "mfa")
            else:
                attempt = await mfa.complete_login(settings, raw, values["method"],
                                                   values["code"], client_of(request))
                amr = ("pwd", "otp", "mfa")
        except mfa.AttemptExpired as error:
            return redirect(request, "/login", flash=error.message)
        except DomainError as error:
            return await self._form(request, values["method"], errors=field_errors(error),
                                    status=INVALID)
        response = await sign_in(request, {"id": attempt.identity_id, "last_account_id": None},
                                 attempt.next, amr=amr)
        response.set_cookie(mfa_cookie(settings, None))
        return response

    @post("/passkey/options", opt={"public": True})
    async def passkey_options(self, request: Request) -> Response:
        """A challenge for the passkey step, bound to this sign-in attempt (JSON)."""
        try:
            return await second_factor_options(request, request.cookies.get(MFA_COOKIE))
        except DomainError as error:
            return Response({"error": error.message}, status_code=409)

    @post("/email-code", opt={"public": True})
    async def send_code(self, request: Request) -> Response:
        settings = settings_of(request)
        try:
            await mfa.send_login_code(settings, request.cookies.get(MFA_COOKIE),
                                      language_of(request), client_of(request))
        except mfa.AttemptExpired as error:
            return redirect(request, "/login", flash=error.message)
        except DomainError as error:
            return await self._form(request, "email", errors=field_errors(error), status=INVALID)
        return await self._form(request, "email",
                                notice="Wysłaliśmy kod. Sprawdź skrzynkę (kod działa 10 minut).")


async def _rotated(request: Request, response: Response) -> Response:
    """A change of how the person signs in is a privilege change: a new session id."""
    raw = await sessions.rotate(scope_of(request))
    set_session(request, response, raw)
    return response


class MfaSettingsController(Controller):
    path = "/security/mfa"
    guards = [requires_identity]

    async def _section(self, request: Request, *, errors=None, status=200,
                       enrol: dict | None = None, codes: list[str] | None = None) -> Template:
        """The MFA section: a fragment for htmx, the whole security page otherwise."""

        context = {
            "title": "Bezpieczeństwo logowania", "errors": errors or {}, "enrol": enrol,
            "codes": codes, **await mfa_context(request),
        }
        if codes is not None:
            context["codes_download"] = "data:text/plain;charset=utf-8," + quote(
                "\n".join(codes) + "\n")
        return render(request, "security.html", {**await security_context(request), **context},
                      partial="partials/mfa_settings.html", status=status)

    @post("/app/start")
    async def start_app(self, request: Request) -> Template:
        settings = settings_of(request)
        scope = scope_of(request)
        try:
            secret = await mfa.start_app(settings, scope)
        except DomainError as error:
            return await self._section(request, errors=field_errors(error), status=INVALID)
        return await self._section(request, enrol=self._app_enrolment(settings, scope, secret))

    @staticmethod
    def _app_enrolment(settings: Settings, scope, secret: str) -> dict:
        uri = totp.provisioning_uri(secret, scope.email, settings.brand)
        return {"kind": "app", "secret": totp.grouped(secret),
                "qr": totp.qr_svg(uri, "Kod QR do aplikacji uwierzytelniającej")}

    @post("/app/confirm")
    async def confirm_app(self, request: Request) -> Template:
        settings = settings_of(request)
        scope = scope_of(request)
        values = await form_values(request, "code")
        try:
            codes = await mfa.confirm_app(settings, scope, values["code"], client_of(request))
        except DomainError as error:
            secret = await mfa.pending_secret(settings, scope)
            enrol = self._app_enrolment(settings, scope, secret) if secret else None
            return await self._section(request, errors=field_errors(error), status=INVALID,
                                       enrol=enrol)
        return await _rotated(request, await self._section(request, codes=codes))

    @post("/email/start")
    async def start_email(self, request: Request) -> Template:
        try:
            await mfa.start_email(settings_of(request), scope_of(request), client_of(request))
        except DomainError as error:
            return await self._section(request, errors=field_errors(error), status=INVALID)
        return await self._section(request, enrol={"kind": "email"})

    @post("/email/confirm")
    async def confirm_email(self, request: Request) -> Template:
        values = await form_values(request, "code")
        try:
            codes = await mfa.confirm_email(settings_of(request), scope_of(request),
                                            values["code"], client_of(request))
        except DomainError as error:
            return await self._section(request, errors=field_errors(error), status=INVALID,
                                       enrol={"kind": "email"})
        return await _rotated(request, await self._section(request, codes=codes))

    @post("/{method:str}/disable")
    async def disable(self, request: Request, method: FromPath[str]) -> Response:
        values = await form_values(request, "password", "code")
        try:
            scope = await reauthenticated(request, values)
            await mfa.disable(settings_of(request), scope, method, client_of(request))
        except DomainError as error:
            errors = {**field_errors(error), "target": method}
            return await self._section(request, errors=errors, status=INVALID)
        return await _rotated(
            request, redirect(request, "/security", flash="Wyłączono tę metodę logowania.")
        )

    @post("/recovery")
    async def regenerate(self, request: Request) -> Template:
        values = await form_values(request, "password", "code")
        try:
            scope = await reauthenticated(request, values)
            codes = await mfa.regenerate_recovery(settings_of(request), scope,
                                                  client_of(request))
        except DomainError as error:
            errors = {**field_errors(error), "target": "recovery"}
            return await self._section(request, errors=errors, status=INVALID)
        return await self._section(request, codes=codes)
