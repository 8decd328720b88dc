"""Cross-site request forgery: a token bound to the session, and the browser's own word on
where a request comes from.

Two independent checks guard every state-changing request from a browser:

1. **Fetch Metadata.** Browsers say where a request comes from (``Sec-Fetch-Site``); only
   ``same-origin`` may change state. A page on another port of the same host or on a sibling
   subdomain is ``same-site``, not ``same-origin``, and is refused. Browsers that send no
   Fetch Metadata are judged by ``Origin`` instead (it must be the portal's own origin).
2. **A token bound to the session.** The token is ``nonce || HMAC(secret, nonce ||
   session id)``. A cookie planted from a sibling origin (cookies ignore ports, and a
   subdomain can set them for its parent) carries the attacker's own token, made for the
   attacker's session (or for nobody's), and fails for the victim's; signed in, only the
   token sent with the form or header counts, so a planted cookie cannot lock anyone out
   either. Signed out there is no session: the token must also equal the cookie (double
   submit), and Fetch Metadata is what stops a sibling origin there. The same value is in
   the cookie, the form field ``_csrf_token`` and the ``x-csrftoken`` header; under https
   the cookie is ``__Host-csrftoken``.

A request that changes the session (sign-in, sign-out, a new session id after an MFA change)
calls ``rebind`` so the page rendered in the same response, and the cookie, carry the token
of the new session. htmx fragments learn it from the ``X-CSRF-Token`` response header
(``static/js/portal.js`` updates ``hx-headers`` and the forms on the page).

Paths that applications call with their own authentication (API keys, OAuth client
authentication) are exempt: see ``EXEMPT`` in ``app.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from urllib.parse import urlparse

from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.enums import RequestEncodingType
from litestar.exceptions import PermissionDeniedException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Send
from litestar.types import Scope as ASGIScope
from litestar.utils.scope.state import ScopeState

from portal.settings import Settings

FIELD = "_csrf_token"
HEADER = "x-csrftoken"
RESPONSE_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_NONCE_HEX = 32
_TOKEN = re.compile(r"[0-9a-f]{96}")
#: Where ``rebind`` leaves the session the response starts (or "" for none).
_REBOUND = "csrf_rebound_session"


def cookie_name(settings: Settings) -> str:
    return "__Host-csrftoken" if settings.https else "csrftoken"


def _mac(secret: str, nonce: str, session: str) -> str:
    message = f"csrf|{nonce}|{session}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def new_token(secret: str, session: str) -> str:
    nonce = secrets.token_hex(_NONCE_HEX // 2)
    return nonce + _mac(secret, nonce, session)


def valid(secret: str, token: str | None, session: str) -> bool:
    """Whether ``token`` was made by the portal for this session ('' when signed out)."""
    if not token or not _TOKEN.fullmatch(token):
        return False
    nonce, mac = token[:_NONCE_HEX], token[_NONCE_HEX:]
    return hmac.compare_digest(mac, _mac(secret, nonce, session))


def rebind(request_scope: ASGIScope, settings: Settings, session: str | None) -> None:
    """The response starts (or ends) a session: pages rendered from now on, and the cookie,
    carry a token for it."""
    state = request_scope.setdefault("state", {})
    state[_REBOUND] = session or ""
    ScopeState.from_scope(request_scope).csrf_token = new_token(settings.secret_key,
                                                                session or "")


def _cookies(scope: ASGIScope) -> dict[str, list[str]]:
    """Every value of every cookie: a planted cookie arrives next to the real one (same name,
    another domain or path), and either may come first."""
    found: dict[str, list[str]] = {}
    for key, value in scope.get("headers", ()):
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                name, _, raw = part.strip().partition("=")
                found.setdefault(name, []).append(raw)
    return found


def _header(scope: ASGIScope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _own_origins(settings: Settings, scope: ASGIScope) -> set[str]:
    base = urlparse(settings.base_url)
    origins = {f"{base.scheme}://{base.netloc}"}
    host = _header(scope, b"host")
    if host:
        origins.add(f"{scope.get('scheme', 'http')}://{host}")
    return origins


def cross_origin(settings: Settings, scope: ASGIScope) -> bool:
    """Whether the browser says this request comes from anywhere but the portal's own pages."""
    site = _header(scope, b"sec-fetch-site")
    if site is not None:
        return site != "same-origin"
    origin = _header(scope, b"origin")
    if origin is not None:
        return origin not in _own_origins(settings, scope)
    return False  # not a browser that says where it comes from: the token alone decides


class CsrfMiddleware(ASGIMiddleware):
    """Runs after SessionMiddleware (it needs the session cookie the request carries)."""

    def __init__(self, settings: Settings, exempt: tuple[str, ...]) -> None:
        self.settings = settings
        self.exempt = exempt
        self.cookie = cookie_name(settings)

    async def handle(self, scope: ASGIScope, receive: Receive, send: Send, next_app: ASGIApp):
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await next_app(scope, receive, send)
            return
        # Exempt paths skip the checks, not the token: a page they render (the logout
        # confirmation) still needs one for its own form.
        exempt = scope["path"].startswith(self.exempt)
        cookies = _cookies(scope)
        session = self._session(cookies) if scope.get("user") else ""
        secret = self.settings.secret_key
        cookie_token = next((value for value in cookies.get(self.cookie, ())
                             if valid(secret, value, session)), None)
        state = ScopeState.from_scope(scope)
        if scope["method"] not in SAFE_METHODS and not exempt:
            if cross_origin(self.settings, scope):
                raise PermissionDeniedException("Cross-origin request refused")
            sent = _header(scope, HEADER.encode()) or await self._form_token(scope, receive)
            # Signed in, the token must be the session's own (a planted cookie changes
            # nothing, and cannot lock the person out); signed out there is no session to
            # bind to, so the token must also be the cookie's (double submit).
            if not sent or not valid(secret, sent, session) or (
                    not session and not (cookie_token and hmac.compare_digest(sent,
                                                                              cookie_token))):
                raise PermissionDeniedException("CSRF token verification failed")
        state.csrf_token = cookie_token or new_token(secret, session)
        await next_app(scope, receive, self._sender(scope, send, cookie_token))

    def _session(self, cookies: dict[str, list[str]]) -> str:
        """The raw id of the session SessionMiddleware found (the first value, as it reads)."""
        values = [value for value in cookies.get(self.settings.session_cookie, ()) if value]
        return values[0] if values else ""

    async def _form_token(self, scope: ASGIScope, receive: Receive) -> str | None:
        request = scope["litestar_app"].request_class(scope=scope, receive=receive)
        content_type, _ = request.content_type
        if content_type not in {RequestEncodingType.URL_ENCODED, RequestEncodingType.MULTI_PART}:
            return None
        value = (await request.form()).get(FIELD)  # cached: the handler reads it again
        return value if isinstance(value, str) else None

    def _sender(self, scope: ASGIScope, send: Send, cookie_token: str | None) -> Send:
        async def sender(message: Message) -> None:
            if message["type"] == "http.response.start":
                token = ScopeState.from_scope(scope).csrf_token
                if isinstance(token, str) and token != cookie_token:
                    headers = MutableScopeHeaders.from_message(message)
                    headers.add("set-cookie", self._cookie(token).to_header(header=""))
                    if _REBOUND in scope.get("state", {}):
                        headers[RESPONSE_HEADER] = token
            await send(message)

        return sender

    def _cookie(self, token: str) -> Cookie:
        return Cookie(key=self.cookie, value=token, path="/", httponly=True,
                      secure=self.settings.https, samesite="lax")
