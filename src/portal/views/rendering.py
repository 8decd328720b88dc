"""One URL, two renderings: the whole page for a normal request, the fragment for htmx.

``render`` is the only place that builds a template response, so every page gets the same
context (scope, language, navigation, flash) and the ``Vary: HX-Request`` header.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from litestar import Request, Response
from litestar.response import Redirect, Template

from portal.i18n import LANGUAGE_COOKIE, choose, translator
from portal.services.scope import Scope
from portal.settings import Settings
from portal.views.flash import clear_flash_cookie, flash_cookie, read_flash
from portal.views.forms import INVALID
from portal.views.navigation import NAVIGATION

VARY = {"Vary": "HX-Request"}


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def scope_of(request: Request) -> Scope | None:
    return request.scope.get("user")


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def language_of(request: Request) -> str:
    scope = scope_of(request)
    return choose(scope.language if scope is not None else None,
                  request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language"))


def base_context(request: Request) -> dict[str, Any]:
    settings = settings_of(request)
    language = language_of(request)
    return {
        "scope": scope_of(request),
        "lang": language,
        "_": translator(language),
        "navigation": NAVIGATION,
        "path": request.url.path,
        "brand": settings.brand,
        "dev": settings.dev,
        "idle_seconds": settings.session_idle_seconds,
        "footer": {"help_url": settings.help_url, "privacy_url": settings.privacy_url,
                   "terms_url": settings.terms_url, "contact": settings.vendor_contact},
    }


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    partial: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Template:
    """Render ``template`` (a page that includes ``partial``), or only ``partial`` for htmx."""
    settings = settings_of(request)
    name = partial if (partial and is_htmx(request)) else template
    ctx = base_context(request)
    cookies = []
    message = read_flash(request, settings.secret_key)
    if message is not None:
        ctx["flash"] = message
        cookies.append(clear_flash_cookie())
    ctx.update(context or {})
    busy = getattr(request.state, "hash_busy", None)
    if busy is not None and status == INVALID:  # views/forms.busy_at_the_form
        status, headers = 503, {**(headers or {}), "Retry-After": str(busy)}
    return Template(
        template_name=name,
        context=ctx,
        status_code=status,
        headers={**VARY, **(headers or {})},
        cookies=cookies,
    )


def redirect(request: Request, url: str, *, flash: str | None = None) -> Response:
    """303 to ``url``; for htmx, ``HX-Redirect`` so the browser navigates as a whole."""
    settings = settings_of(request)
    cookies = [flash_cookie(settings.secret_key, flash, settings.https)] if flash else []
    url = encoded(url)
    if is_htmx(request):
        return Response(
            content=b"", status_code=200, headers={"HX-Redirect": url, **VARY}, cookies=cookies
        )
    return Redirect(path=url, status_code=303, headers=VARY, cookies=cookies)


#: What may stay as it is in a URL (RFC 3986 reserved and unreserved characters, and "%" of
#: sequences already encoded); everything else, controls and spaces included, is encoded.
_URL_SAFE = "/?#[]@!$&'()*+,;=:-._~%"


def encoded(url: str) -> str:
    """``url`` with every character a header or a browser could misread percent-encoded."""
    return quote(url, safe=_URL_SAFE)


def safe_next(url: str | None, default: str = "/") -> str:
    """A redirect target from the request, only ever a path (and query) of this site.

    Browsers drop tabs and newlines from URLs and read a backslash as a slash, so
    "/\t/evil.example" or "/\\evil.example" would leave the site: any control character,
    space or backslash refuses the target. What remains is parsed and rebuilt from its path
    and query alone, percent-encoded."""
    if not url or len(url) > 2048 or any(ord(c) < 0x21 or ord(c) == 0x7F or c == "\\"
                                         for c in url):
        return default
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return default
    if any(segment.lower().replace("%2e", ".") in (".", "..")
           for segment in parts.path.split("/")):
        return default  # dot segments ("/x/../..//host") could resolve to "//host"
    rebuilt = encoded(parts.path) + ("?" + encoded(parts.query) if parts.query else "")
    if rebuilt.startswith("//"):
        return default
    return rebuilt
