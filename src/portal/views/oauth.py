"""OpenID Connect endpoints: discovery, JWKS, authorize (with consent), token, userinfo,
revocation and RP-initiated logout. Browser endpoints answer pages; the rest answer JSON."""

from __future__ import annotations

import base64
from urllib.parse import unquote, urlencode

from litestar import Controller, HttpMethod, MediaType, Request, Response, get, post, route
from litestar.response import Redirect, Template

from portal.i18n import translator
from portal.services import (
    mfa,
    oidc,
    oidc_authorization,
    oidc_clients,
    oidc_keys,
    oidc_logout,
    oidc_tokens,
    sessions,
)
from portal.views.auth import mfa_cookie
from portal.views.forms import client_of, form_values
from portal.views.rendering import redirect, render, scope_of, settings_of
from portal.web.guards import requires_identity
from portal.web.headers import csp_with_form_targets
from portal.web.middleware import set_session

PUBLIC = {"public": True}
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
#: Discovery and the JWKS may be kept a while: much less than a retired signing key stays
#: published (oidc_keys.PUBLISH_AFTER_RETIRE), and clients fetch the JWKS again when a token
#: names a kid they do not have.
PUBLIC_DOCUMENT = {"Cache-Control": f"public, max-age={oidc_keys.JWKS_MAX_AGE}"}
#: The endpoints a browser-based (public) client calls itself, with CORS.
BROWSER_ENDPOINTS = ["/.well-known/openid-configuration", "/oauth/jwks", "/oauth/token",
                     "/oauth/userinfo", "/oauth/revoke"]
AUTHORIZE_FIELDS = ("client_id", "redirect_uri", "response_type", "scope", "state", "nonce",
                    "code_challenge", "code_challenge_method", "prompt", "max_age",
                    "acr_values", "account", "request", "request_uri", "ui_locales")


def _json(body: dict, status: int = 200, headers: dict | None = None) -> Response:
    """JSON, never stored unless ``headers`` say how long it may be kept."""
    headers = headers or {}
    return Response(body, status_code=status, media_type=MediaType.JSON,
                    headers={**({} if "Cache-Control" in headers else NO_STORE), **headers})


async def _cors(request: Request, origins: frozenset[str] | None = None) -> dict[str, str]:
    """CORS headers for a browser at a public client's registered origin (``origins``: the
    calling client's; by default any public client's). Others get none: their browser keeps
    the answer from the page. No credentials: these endpoints never read cookies."""
    origin = request.headers.get("origin")
    if not origin:
        return {}
    allowed = origins if origins is not None else await oidc_clients.public_origins()
    if origin not in allowed:
        return {"Vary": "Origin"}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
            "Access-Control-Expose-Headers": "WWW-Authenticate"}


def oauth_error(error: oidc.OAuthError, headers: dict | None = None) -> Response:
    """An error as RFC 6749 5.2 answers it: JSON ``error`` (and description), never stored;
    also views/errors.py's 503 while the database is unreachable."""
    headers = dict(headers or {})
    if error.status == 401:
        headers["WWW-Authenticate"] = (
            'Bearer error="invalid_token"' if error.error == "invalid_token" else "Basic")
    body = {"error": error.error}
    if error.description:
        body["error_description"] = error.description
    return _json(body, error.status, headers)


def _error_page(request: Request, message: str, status: int = 400) -> Template:
    return render(request, "error.html", {"title": "Nie można zalogować do aplikacji",
                                          "message": message}, status=status)


def _logout_refused(request: Request) -> Template:
    """The person sees why in their language; the protocol detail stays out of the page."""
    return _error_page(request, "Aplikacja poprosiła o wylogowanie w nieprawidłowy sposób "
                                "(nieznany token albo niezarejestrowany adres powrotu). "
                                "Nie wylogowaliśmy Cię.")


def _authorize_params(source) -> dict[str, str]:
    params = {}
    for name in AUTHORIZE_FIELDS:
        value = source.get(name)
        if isinstance(value, str):
            params[name] = value
    return params


class OAuthController(Controller):
    @get("/.well-known/openid-configuration", opt=PUBLIC)
    async def discovery(self, request: Request) -> Response:
        return _json(oidc.discovery(settings_of(request)),
                     headers={**PUBLIC_DOCUMENT, **await _cors(request)})

    @get("/oauth/jwks", opt=PUBLIC)
    async def jwks(self, request: Request) -> Response:
        for alg in oidc_keys.ALGORITHMS:  # made on first use
            await oidc_keys.current(settings_of(request).secret_key, alg)
        return _json(await oidc_keys.published(),
                     headers={**PUBLIC_DOCUMENT, **await _cors(request)})

    @route(BROWSER_ENDPOINTS, http_method=[HttpMethod.OPTIONS], opt=PUBLIC)
    async def preflight(self, request: Request) -> Response:
        """CORS preflight (userinfo is called with an Authorization header)."""
        headers = await _cors(request)
        if "Access-Control-Allow-Origin" in headers:
            headers.update({"Access-Control-Allow-Methods": "GET, POST",
                            "Access-Control-Allow-Headers": "Authorization, Content-Type",
                            "Access-Control-Max-Age": "600"})
        return Response(None, status_code=204, headers=headers)

    @get("/oauth/authorize", opt=PUBLIC)
    async def authorize(self, request: Request) -> Response:
        return await self._authorize(request, _authorize_params(request.query_params))

    @post("/oauth/authorize", opt=PUBLIC)
    async def authorize_post(self, request: Request) -> Response:
        """The same authorization request sent as a form (OpenID Connect Core 3.1.2.1: GET
        and POST must both work). Exempt from the CSRF check (``CSRF_EXEMPT`` in app.py): it
        changes nothing that the same request by GET would not, and its answer goes only to
        the client's registered redirect URI. The person's own decision on consent is
        POST /oauth/consent, which keeps the check."""
        return await self._authorize(request, _authorize_params(await request.form()),
                                     posted=True)

    async def _authorize(self, request: Request, params: dict[str, str],
                         decision: str | None = None, posted: bool = False) -> Response:
        settings = settings_of(request)
        try:
            req = await oidc_authorization.parse_authorize(params)
        except oidc.BadClientRedirect as error:
            return _error_page(request, error.description)
        except oidc.OAuthError as error:
            await _audit_failure(request, params, error)
            return Redirect(error.request.error_redirect(settings, error.error,
                                                         error.description), status_code=302)
        scope = scope_of(request)
        session = await sessions.details(scope) if scope else None
        if scope is None or session is None or "login" in req.prompt or _too_old(req, session):
            if "none" in req.prompt:
                return Redirect(req.error_redirect(settings, "login_required"), status_code=302)
            return redirect(request, "/login?" + urlencode({"next": _again(params)}))
        if not oidc_authorization.satisfies(req, session):
            if "none" in req.prompt:
                return Redirect(req.error_redirect(settings, "interaction_required"),
                                status_code=302)
            return await _step_up(request, scope, params, passkey=req.wants_phr)
        if decision is None and await oidc_authorization.needs_consent(scope.identity_id, req):
            if "none" in req.prompt:
                return Redirect(req.error_redirect(settings, "consent_required"),
                                status_code=302)
            if posted:
                # The consent page carries a CSRF token, which a response on an exempt path
                # does not get: ask for the same request by GET, where it does.
                return redirect(request, "/oauth/authorize?" + urlencode(params))
            return render(request, "consent.html", {
                "title": "Zgoda na udostępnienie danych", "client": req.client,
                "scopes": [oidc.SCOPE_DESCRIPTIONS[s] for s in req.scopes],
                "params": params, **_language(req.language),
            }, headers={"Content-Security-Policy": csp_with_form_targets(req.redirect_uri)})
        if decision == "deny":
            await _audit_failure(request, params, oidc.OAuthError("access_denied"))
            return Redirect(req.error_redirect(settings, "access_denied"), status_code=303)
        if decision == "allow":
            await oidc_authorization.grant_consent(scope, req, client_of(request))
        url = await oidc_authorization.issue_code(settings, scope, req, session, client_of(request))
        return Redirect(url, status_code=303 if decision or posted else 302)

    @post("/oauth/consent", guards=[requires_identity])
    async def consent(self, request: Request) -> Response:
        """The person's answer on the consent page (a form of the portal: CSRF-checked); it
        goes through the authorization request's own path with the decision."""
        form = await request.form()
        decision = form.get("decision")
        if decision not in ("allow", "deny"):
            return _error_page(request, "Wybierz: zezwól albo odmów.")
        return await self._authorize(request, _authorize_params(form), decision=decision)

    @post("/oauth/token", opt=PUBLIC)
    async def token(self, request: Request) -> Response:
        settings = settings_of(request)
        values = await form_values(request, "grant_type", "code", "redirect_uri",
                                   "code_verifier", "refresh_token", "scope", "client_id",
                                   "client_secret", "client_assertion_type", "client_assertion")
        cors: dict[str, str] = {}
        try:
            client_id, secret = _basic_auth(request, values)
            if client_id and secret and not values["client_assertion"]:
                # The hot paths: the client's check and the grant in one statement.
                done = None
                if values["grant_type"] == "refresh_token":
                    done = await oidc_tokens.refresh_for_secret(
                        settings, client_id, secret, values["refresh_token"],
                        client_of(request))
                elif values["grant_type"] == "authorization_code":
                    done = await oidc_tokens.exchange_for_secret(
                        settings, client_id, secret, values["code"], values["redirect_uri"],
                        values["code_verifier"], client_of(request))
                if done is not None:
                    return _json(done[1])  # a confidential client: no CORS
            client_row = await oidc_clients.authenticate_client(
                settings, client_id=client_id, client_secret=secret,
                assertion_type=values["client_assertion_type"] or None,
                assertion=values["client_assertion"] or None)
            cors = await _cors(request, oidc_clients.origins_of(client_row))
            if values["grant_type"] == "authorization_code":
                body = await oidc_tokens.exchange_code(
                    settings, client_row, values["code"], values["redirect_uri"],
                    values["code_verifier"], client_of(request))
            elif values["grant_type"] == "refresh_token":
                body = await oidc_tokens.refresh(settings, client_row, values["refresh_token"],
                                                 client_of(request))
            elif values["grant_type"] == "client_credentials":
                body = await oidc_tokens.client_credentials(settings, client_row,
                                                            values["scope"])
            else:
                raise oidc.OAuthError("unsupported_grant_type")
        except oidc.OAuthError as error:
            await _audit_failure(request, {"client_id": values["client_id"]}, error)
            return oauth_error(error, cors)
        return _json(body, headers=cors)

    @post("/oauth/revoke", opt=PUBLIC)
    async def revoke(self, request: Request) -> Response:
        values = await form_values(request, "token", "client_id", "client_secret",
                                   "client_assertion_type", "client_assertion")
        try:
            client_id, secret = _basic_auth(request, values)
            client_row = await oidc_clients.authenticate_client(
                settings_of(request), client_id=client_id, client_secret=secret,
                assertion_type=values["client_assertion_type"] or None,
                assertion=values["client_assertion"] or None, endpoint="/oauth/revoke")
        except oidc.OAuthError as error:
            return oauth_error(error)
        await oidc_tokens.revoke_token(settings_of(request), client_row, values["token"],
                                       client_of(request))
        return _json({}, headers=await _cors(request, oidc_clients.origins_of(client_row)))

    @post("/oauth/introspect", opt=PUBLIC)
    async def introspect(self, request: Request) -> Response:
        """Token introspection (RFC 7662) for resource servers, as confidential clients."""
        values = await form_values(request, "token", "token_type_hint", "client_id",
                                   "client_secret", "client_assertion_type", "client_assertion")
        settings = settings_of(request)
        try:
            client_id, secret = _basic_auth(request, values)
            caller = await oidc_clients.authenticate_client(
                settings, client_id=client_id, client_secret=secret,
                assertion_type=values["client_assertion_type"] or None,
                assertion=values["client_assertion"] or None, endpoint="/oauth/introspect")
            if not values["token"]:
                raise oidc.OAuthError("invalid_request", "the token parameter is required")
            return _json(await oidc_tokens.introspect(settings, caller, values["token"]))
        except oidc.OAuthError as error:
            return oauth_error(error)

    @get("/oauth/userinfo", opt=PUBLIC)
    async def userinfo(self, request: Request) -> Response:
        return await self._userinfo(request)

    @post("/oauth/userinfo", opt=PUBLIC)
    async def userinfo_post(self, request: Request) -> Response:
        return await self._userinfo(request)

    async def _userinfo(self, request: Request) -> Response:
        cors = await _cors(request)
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return oauth_error(oidc.OAuthError("invalid_token", "a Bearer token is required",
                                                401), cors)
        try:
            return _json(await oidc_tokens.userinfo(settings_of(request), token.strip()),
                         headers=cors)
        except oidc.OAuthError as error:
            return oauth_error(error, cors)

    @get("/oauth/logout", opt=PUBLIC)
    async def end_session_form(self, request: Request) -> Response:
        """RP-initiated logout asks the person to confirm: no state changes here."""
        return await self._end_session_form(request, dict(request.query_params))

    @post("/oauth/logout", opt=PUBLIC)
    async def end_session_post(self, request: Request) -> Response:
        """The same logout request sent as a form (RP-Initiated Logout 1.0 §2: GET and POST).
        Exempt from the CSRF check (``CSRF_EXEMPT`` in app.py): like GET it only asks the
        person to confirm; the confirmation is POST /oauth/end-session, which keeps the
        check. The question is asked on a GET page, which carries the CSRF token."""
        params = _logout_params(await request.form())
        try:
            await oidc_logout.check_end_session(
                settings_of(request), params.get("id_token_hint"),
                params.get("post_logout_redirect_uri"), params.get("client_id"))
        except oidc.OAuthError:
            return _logout_refused(request)
        return redirect(request, "/oauth/logout?" + urlencode(params))

    async def _end_session_form(self, request: Request, query) -> Response:
        params = _logout_params(query)
        try:
            client_row = await oidc_logout.check_end_session(
                settings_of(request), params.get("id_token_hint"),
                params.get("post_logout_redirect_uri"), params.get("client_id"))
        except oidc.OAuthError:
            return _logout_refused(request)
        targets = [params["post_logout_redirect_uri"]] if client_row and params.get(
            "post_logout_redirect_uri") else []
        return render(request, "end_session.html", {
            "title": "Wylogowanie", "client": client_row, "params": params,
            **_language(oidc_authorization.ui_language(params.get("ui_locales")))},
            headers={"Content-Security-Policy": csp_with_form_targets(*targets)})

    @post("/oauth/end-session", opt=PUBLIC)
    async def end_session(self, request: Request) -> Response:
        """The person confirmed: end the portal session and go back to the application."""
        settings = settings_of(request)
        values = await form_values(request, *LOGOUT_FIELDS)
        try:
            await oidc_logout.check_end_session(
                settings, values["id_token_hint"] or None,
                values["post_logout_redirect_uri"] or None, values["client_id"] or None)
        except oidc.OAuthError:
            return _logout_refused(request)
        scope = scope_of(request)
        if scope is not None:
            await sessions.sign_out(scope, client_of(request))
        target = oidc_logout.after_logout(values["post_logout_redirect_uri"] or None,
                                          values["state"] or None)
        response = (Redirect(target, status_code=303) if target
                    else redirect(request, "/login", flash="Wylogowano."))
        set_session(request, response, None)
        return response


LOGOUT_FIELDS = ("id_token_hint", "post_logout_redirect_uri", "state", "client_id",
                 "ui_locales")


def _logout_params(source) -> dict[str, str]:
    return {name: value for name in LOGOUT_FIELDS
            if isinstance(value := source.get(name), str) and value}


def _language(language: str | None) -> dict:
    """Context that makes a page speak the language a relying party asked for
    (``ui_locales``), over the profile's and the browser's."""
    return {"lang": language, "_": translator(language)} if language else {}


def _again(params: dict[str, str]) -> str:
    """The authorization request to come back to after sign-in (without prompt=login, or it
    would ask forever)."""
    kept = {k: v for k, v in params.items() if k != "prompt" and k != "max_age"}
    return "/oauth/authorize?" + urlencode(kept)


def _too_old(req: oidc_authorization.AuthorizeRequest, session: dict) -> bool:
    if req.max_age is None:
        return False
    from datetime import UTC, datetime

    return (datetime.now(UTC) - session["created_at"]).total_seconds() > req.max_age


async def _step_up(request: Request, scope, params: dict[str, str],
                   passkey: bool = False) -> Response:
    """The application needs a second factor this session has not used (or, with
    ``passkey``, a phishing-resistant one): ask for it."""
    status = await mfa.status(scope.identity_id)
    if passkey and not status.passkeys:
        return redirect(request, "/security",
                        flash="Ta aplikacja wymaga logowania kluczem dostępu. Dodaj klucz "
                              "dostępu, aby kontynuować.")
    if not status.enabled:
        return redirect(request, "/security",
                        flash="Ta aplikacja wymaga weryfikacji dwuetapowej. Włącz ją, aby "
                              "kontynuować.")
    raw = await mfa.begin_login(scope.identity_id, _again(params),
                                only="passkey" if passkey else None)
    response = redirect(request, "/login/mfa")
    response.set_cookie(mfa_cookie(settings_of(request), raw))
    return response


def _basic_auth(request: Request, values: dict[str, str]) -> tuple[str | None, str | None]:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() == "basic" and encoded:
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            raise oidc.OAuthError("invalid_client", "malformed Basic credentials", 401) from None
        client_id, _, secret = decoded.partition(":")
        return unquote(client_id), unquote(secret)
    return values["client_id"] or None, values["client_secret"] or None


async def _audit_failure(request: Request, params: dict[str, str],
                         error: oidc.OAuthError) -> None:
    from portal.services import audit

    scope = scope_of(request)
    await audit.record("oauth:request:failure", client=client_of(request),
                       identity_id=scope.identity_id if scope else None,
                       client_id=(params.get("client_id") or "")[:64], error=error.error)
