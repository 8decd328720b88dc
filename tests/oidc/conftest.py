"""Helpers for OpenID Connect tests: a registered client, PKCE, the code flow via HTTP."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from portal.services import oidc, oidc_clients
from portal.testing import factories

REDIRECT = "https://app.example.com/callback"


@dataclass
class App:
    client_id: str
    secret: str | None
    redirect_uri: str = REDIRECT

    def basic(self) -> tuple[str, str]:
        return (self.client_id, self.secret or "")


async def register(**kwargs) -> App:
    defaults = {"name": "e-Faktury", "redirect_uris": [REDIRECT], "first_party": True,
                "post_logout_redirect_uris": ["https://app.example.com/bye"]}
    client_id, secret = await oidc_clients.register_client(**{**defaults, **kwargs})
    return App(client_id, secret, kwargs.get("redirect_uris", [REDIRECT])[0])


@pytest.fixture
async def app_client() -> App:
    return await register()


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, oidc.s256(verifier)


def authorize_url(app: App, challenge: str, **extra) -> str:
    params = {"client_id": app.client_id, "redirect_uri": app.redirect_uri,
              "response_type": "code", "scope": "openid email profile", "state": "st-123",
              "nonce": "n-456", "code_challenge": challenge, "code_challenge_method": "S256",
              **extra}
    return "/oauth/authorize?" + urlencode({k: v for k, v in params.items() if v is not None})


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}


async def signed_in(client, email: str = "sso@example.com", *, account: bool = True):
    identity_id = await factories.identity(email, first_name="Anna", last_name="Nowak")
    acc = await factories.account(identity_id) if account else None
    await client.sign_in(email, factories.PASSWORD)
    return identity_id, acc


async def code_for(client, app: App, **extra) -> tuple[str, str]:
    verifier, challenge = pkce()
    response = await client.get(authorize_url(app, challenge, **extra))
    assert response.status_code == 302, response.text[:500]
    query = query_of(response.headers["location"])
    assert "code" in query, query
    return query["code"], verifier


async def exchange(client, app: App, code: str, verifier: str, **extra):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": app.redirect_uri,
            "code_verifier": verifier, **extra}
    return await client.raw.post("/oauth/token", data=data, auth=app.basic())


async def jwks(client) -> KeySet:
    return KeySet.import_key_set((await client.get("/oauth/jwks")).json())


async def decode(client, token: str):
    return jwt.decode(token, await jwks(client))


@pytest.fixture(autouse=True)
def forget_client_caches():
    """The per-process caches of client keys and public-client origins start empty."""
    oidc_clients.forget_fetched_keys()
    oidc_clients.forget_origins()
    yield
    oidc_clients.forget_origins()
