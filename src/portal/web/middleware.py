"""Resolve the session cookie into a Scope once per request (``connection.user``)."""

from __future__ import annotations

from litestar.datastructures import Cookie
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Send
from litestar.types import Scope as ASGIScope

from portal.services import audit, sessions
from portal.settings import Settings

STATIC_PREFIX = "/static/"


class SessionMiddleware(ASGIMiddleware):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lifetimes = sessions.Lifetimes.of(settings)

    async def handle(self, scope: ASGIScope, receive: Receive, send: Send, next_app: ASGIApp):
        scope["user"] = None
        scope["auth"] = None
        if not scope["path"].startswith(STATIC_PREFIX):
            raw = _cookie(scope, self.settings.session_cookie)
            if raw:
                scope["user"] = await sessions.load(raw, self.lifetimes)
                if scope["user"] is None:
                    scope.setdefault("state", {})["clear_session_cookie"] = True
        user = scope["user"]
        if user is None or user.delegation is None:
            await next_app(scope, receive, send)
            return
        # An office's person in a client account: their audit events name the office too.
        token = audit.ACTING_THROUGH.set(user)
        try:
            await next_app(scope, receive, send)
        finally:
            audit.ACTING_THROUGH.reset(token)


def _cookie(scope: ASGIScope, name: str) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k == name and v:
                    return v
    return None


def session_cookie(settings: Settings, value: str | None) -> Cookie:
    """The session cookie; ``None`` makes one that deletes it."""
    return Cookie(
        key=settings.session_cookie,
        value=value or "",
        path="/",
        httponly=True,
        secure=settings.https,
        samesite="lax",
        max_age=settings.session_absolute_seconds if value else 0,
    )


def set_session(request, response, raw: str | None) -> None:
    """Start (``raw``) or end (``None``) the browser's session in ``response``; the CSRF token
    follows the session, so forms rendered in this response already carry the new one."""
    from portal.web import csrf

    settings = request.app.state.settings
    response.set_cookie(session_cookie(settings, raw))
    csrf.rebind(request.scope, settings, raw)
