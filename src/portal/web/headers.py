"""Security headers on every response: pages, fragments, errors and static files."""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

from portal.settings import Settings

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)


def csp_with_form_targets(*urls: str) -> str:
    """The policy for a page whose form redirects to another origin afterwards (consent and
    logout confirmation send the person back to the application): browsers apply
    ``form-action`` to the redirect too."""
    from urllib.parse import urlparse

    origins = sorted({f"{p.scheme}://{p.netloc}" for p in map(urlparse, urls) if p.netloc})
    return CSP.replace("form-action 'self'", " ".join(["form-action 'self'", *origins]))


def security_headers(settings: Settings):
    from portal.web.middleware import session_cookie

    fixed = {
        "content-security-policy": CSP,
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",
        "x-frame-options": "DENY",
        "cross-origin-opener-policy": "same-origin",
        "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
    }
    if settings.https:
        fixed["strict-transport-security"] = "max-age=63072000; includeSubDomains"
    clear_cookie = session_cookie(settings, None).to_header(header="")
    cookie_prefix = settings.session_cookie + "="

    async def before_send(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = MutableScopeHeaders.from_message(message)
        for name, value in fixed.items():
            if name != "content-security-policy" or name not in headers:
                headers[name] = value
        is_static = scope.get("path", "").startswith("/static/")
        # A public document that says how long it may be kept (the OpenID discovery document
        # and JWKS, "public, max-age=..."), asked for without a session, keeps its word.
        public_document = scope.get("user") is None and headers.get(
            "cache-control", "").startswith("public")
        if (scope.get("user") is not None or not is_static) and not public_document:
            # Signed-in pages must never be stored; public pages carry tokens (CSRF) too.
            headers["cache-control"] = "no-store"
        if scope.get("state", {}).get("clear_session_cookie") and not any(
            value.startswith(cookie_prefix) for value in headers.getall("set-cookie", [])
        ):
            headers.add("set-cookie", clear_cookie)

    return before_send
