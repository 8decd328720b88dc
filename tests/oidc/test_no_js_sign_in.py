"""Signing in to an application without JavaScript (issue 12, item 4): the sign-in form's
POST is answered with redirects to /oauth/authorize and on to the application's callback, and
browsers check every step against the page's CSP ``form-action``. The sign-in pages allow the
registered redirect URI of the authorization request in progress, and nothing else."""

from __future__ import annotations

from urllib.parse import urlencode

from portal.security import totp
from portal.tables import Identity
from portal.testing import factories
from tests.oidc.conftest import authorize_url, pkce, register


def form_action(response) -> str:
    policy = response.headers["content-security-policy"]
    return next(part.strip() for part in policy.split(";") if "form-action" in part)


def login_url(authorize: str) -> str:
    return "/login?" + urlencode({"next": authorize})


async def test_the_second_step_may_continue_to_the_app_too(client, settings):
    app = await register(name="e-Deklaracje", redirect_uris=["https://dekl.example.com/cb"])
    identity_id = await factories.identity("mfa@example.com")
    await Identity.update({Identity.totp_secret_encrypted: totp.encrypt(totp.new_secret(),
                                                                        settings.secret_key),
                           Identity.totp_confirmed_at: Identity.created_at}).where(
        Identity.id == identity_id)
    _, challenge = pkce()
    response = await client.post_form("/login", {
        "email": "mfa@example.com", "password": factories.PASSWORD,
        "next": authorize_url(app, challenge)})
    assert response.headers["location"] == "/login/mfa"
    page = await client.get("/login/mfa")
    assert form_action(page) == "form-action 'self' https://dekl.example.com"
