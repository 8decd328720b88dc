"""Every route declares who may enter: a new screen cannot ship unprotected."""

from __future__ import annotations

import pytest
from litestar.routes import HTTPRoute

from portal.api.auth import requires_api_key
from portal.security.permissions import Permission
from portal.web.guards import PROTECTING_GUARDS

#: Routes anyone may open. Adding one here is a decision a reviewer sees.
PUBLIC = {
    "/healthz",
    "/login",
    "/logout",
    "/register",
    "/verify/{token:str}",
    "/password/forgot",
    "/password/reset/{token:str}",
    "/static",
    "/dev/mail",
    "/login/mfa",
    "/login/mfa/email-code",
    # Passkeys: a challenge for the sign-in attempt (its cookie), the sign-in with a passkey.
    "/login/mfa/passkey/options",
    "/login/passkey",
    "/login/passkey/options",
    "/.well-known/openid-configuration",
    "/oauth/jwks",
    "/oauth/authorize",
    "/oauth/token",
    "/oauth/revoke",
    "/oauth/introspect",
    "/oauth/userinfo",
    "/oauth/logout",
    # RP-initiated logout confirmed: a signed-out person is simply sent back to the app.
    "/oauth/end-session",
    # The invitation link: the invitee may have no ID yet (the token is the proof).
    "/invitations/{token:str}",
    "/invitations/{token:str}/decline",
    # The footer's language switch works signed out too (a cookie; signed in: the profile).
    "/language",
}


#: Litestar's own OpenAPI document of the JSON API (no data, like the API docs it is).
SCHEMA = {"/api/v1/schema", "/api/v1/schema/openapi.json", "/api/v1/schema/{path:str}"}
API_PREFIX = "/api/v1/"


def http_handlers(app):
    """Every handler of the app, except Litestar's automatic OPTIONS answers."""
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                if handler.http_methods != {"OPTIONS"}:
                    yield route.path, handler


def guard_functions(handler):
    return [getattr(guard, "func", guard) for guard in handler.resolve_guards()]


def test_every_route_is_public_by_decision_or_guarded(app):
    unguarded = []
    for path, handler in http_handlers(app):
        guards = guard_functions(handler)
        if handler.opt.get("public"):
            assert path in PUBLIC or path.startswith("/static"), f"{path} is marked public"
            continue
        if path in SCHEMA:
            continue
        accepted = (requires_api_key,) if path.startswith(API_PREFIX) else PROTECTING_GUARDS
        if not any(guard in accepted for guard in guards):
            unguarded.append(path)
    assert unguarded == []


def test_permission_guard_routes_name_a_permission(app):
    from portal.web.guards import requires_permission

    for path, handler in http_handlers(app):
        if requires_permission in guard_functions(handler):
            assert isinstance(handler.opt.get("permission"), Permission), path


def protected_paths(app):
    out = []
    for path, handler in http_handlers(app):
        if handler.opt.get("public") or "{" in path or path in SCHEMA:
            continue
        for method in sorted(handler.http_methods - {"HEAD", "OPTIONS"}):
            out.append((method, path))
    return out


async def test_anonymous_requests_are_sent_to_sign_in_never_served(app, client):
    paths = protected_paths(app)
    assert ("GET", "/") in paths
    for method, path in paths:
        headers = {"x-csrftoken": await client.csrf()}
        response = await client.request(method, path, headers=headers, follow_redirects=False)
        if path.startswith(API_PREFIX):  # the API answers JSON, with no key: 401
            assert response.status_code == 401, (method, path, response.status_code)
            assert response.json()["error"]["code"] == "unauthorized"
            continue
        assert response.status_code == 303, (method, path, response.status_code)
        assert response.headers["location"].startswith("/login?next="), (method, path)


@pytest.mark.parametrize("path", ["/", "/apps", "/companies"])
async def test_htmx_requests_get_a_client_redirect_to_sign_in(client, path):
    response = await client.get(path, headers={"HX-Request": "true"}, follow_redirects=False)
    assert response.status_code == 200
    assert response.headers["HX-Redirect"].startswith("/login?next=")
