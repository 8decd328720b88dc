"""OpenID Connect clients: the vendor's applications and its customers' tools, registered by
staff, and how each proves who it is at the token, revocation and introspection endpoints
(client secret, private_key_jwt, or none for public clients with PKCE)."""

from __future__ import annotations

import base64
import hmac
import json
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from joserfc import jwt
from joserfc.errors import JoseError

from portal.db import ENGINE
from portal.security.tokens import new_token, token_hash
from portal.services import audit
from portal.services.oidc import (
    ASSERTION_TYPE,
    AUTH_METHODS,
    SCOPES,
    OAuthError,
    issuer,
)
from portal.services.scope import Client, Scope
from portal.settings import Settings
from portal.tables import OAuthClient, OneTimeToken


def _secret_hash(secret: str) -> str:
    return token_hash(secret)


async def register_client(*, name: str, redirect_uris: list[str],
                          post_logout_redirect_uris: list[str] | None = None,
                          backchannel_logout_uri: str = "",
                          allowed_scopes: list[str] | None = None, first_party: bool = False,
                          require_mfa: bool = False, auth_method: str = "client_secret_basic",
                          jwks: dict | None = None, actor: Scope | None = None,
                          client: Client | None = None) -> tuple[str, str | None]:
    """Register an application; returns (client_id, secret shown once or None)."""
    problems = {}
    if not name.strip() or len(name) > 100:
        problems["name"] = "Podaj nazwę (najwyżej 100 znaków)."
    if not redirect_uris or not all(_valid_uri(u) for u in redirect_uris):
        problems["redirect_uris"] = ("Podaj adresy powrotu (https://..., albo http://localhost "
                                     "lub http://127.0.0.1 w testach), po jednym w wierszu.")
    if any(not _valid_uri(u) for u in post_logout_redirect_uris or []):
        problems["post_logout_redirect_uris"] = "Nieprawidłowy adres po wylogowaniu."
    if backchannel_logout_uri and not _valid_uri(backchannel_logout_uri):
        problems["backchannel_logout_uri"] = "Nieprawidłowy adres powiadomień o wylogowaniu."
    if auth_method not in AUTH_METHODS:
        problems["auth_method"] = "Wybierz sposób uwierzytelnienia aplikacji."
    scopes = [s for s in (allowed_scopes or list(SCOPES)) if s in SCOPES]
    if "openid" not in scopes:
        scopes.insert(0, "openid")
    if problems:
        from portal.services.errors import InvalidInput

        raise InvalidInput(problems)
    client_id = "app_" + secrets.token_hex(12)
    secret = None if auth_method in ("none", "private_key_jwt") else new_token(32)
    async with ENGINE.transaction():
        await OAuthClient.insert(OAuthClient(
            client_id=client_id, name=name.strip(),
            secret_hash=_secret_hash(secret) if secret else None, auth_method=auth_method,
            jwks=jwks or {}, redirect_uris=redirect_uris,
            post_logout_redirect_uris=post_logout_redirect_uris or [],
            backchannel_logout_uri=backchannel_logout_uri, allowed_scopes=scopes,
            first_party=first_party, require_mfa=require_mfa,
        ))
        await audit.record("oauth:client:register", client=client,
                           identity_id=actor.identity_id if actor else None,
                           client_id=client_id, name=name)
    return client_id, secret


def _valid_uri(uri: str) -> bool:
    parsed = urlparse(uri)
    if parsed.fragment or not parsed.netloc:
        return False
    if parsed.scheme == "https":
        return True
    return parsed.scheme == "http" and parsed.hostname in ("localhost", "127.0.0.1", "::1")


async def get_client(client_id: str | None) -> dict[str, Any] | None:
    if not client_id or len(client_id) > 64:
        return None
    return await OAuthClient.select().where(
        (OAuthClient.client_id == client_id) & OAuthClient.disabled_at.is_null()).first()


async def authenticate_client(settings: Settings, *, client_id: str | None,
                              client_secret: str | None, assertion_type: str | None,
                              assertion: str | None) -> dict[str, Any]:
    """The calling client, proven by its registered method; else ``invalid_client``."""
    if assertion_type or assertion:
        if assertion_type != ASSERTION_TYPE or not assertion:
            raise OAuthError("invalid_client", "unsupported client assertion", 401)
        return await _client_from_assertion(settings, assertion, client_id)
    row = await get_client(client_id)
    if row is None:
        raise OAuthError("invalid_client", "unknown client", 401)
    if row["auth_method"] == "none":
        if client_secret:
            raise OAuthError("invalid_client", "public clients have no secret", 401)
        return row
    if row["auth_method"] == "private_key_jwt" or not row["secret_hash"] or not client_secret:
        raise OAuthError("invalid_client", "client authentication failed", 401)
    if not hmac.compare_digest(_secret_hash(client_secret), row["secret_hash"]):
        raise OAuthError("invalid_client", "client authentication failed", 401)
    return row


async def _client_from_assertion(settings: Settings, assertion: str,
                                 client_id: str | None) -> dict[str, Any]:
    try:
        unverified = json.loads(base64.urlsafe_b64decode(
            assertion.split(".")[1] + "=" * (-len(assertion.split(".")[1]) % 4)))
    except (ValueError, IndexError):
        raise OAuthError("invalid_client", "malformed client assertion", 401) from None
    issuer_id = unverified.get("iss") if isinstance(unverified, dict) else None
    row = await get_client(issuer_id if isinstance(issuer_id, str) else None)
    if row is None or row["auth_method"] != "private_key_jwt" or (
            client_id and client_id != row["client_id"]):
        raise OAuthError("invalid_client", "client authentication failed", 401)
    from joserfc.jwk import KeySet

    jwks = row["jwks"] if isinstance(row["jwks"], dict) else json.loads(row["jwks"] or "{}")
    try:
        token = jwt.decode(assertion, KeySet.import_key_set(jwks),
                           algorithms=["RS256", "ES256", "PS256"])
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": row["client_id"]},
            sub={"essential": True, "value": row["client_id"]},
            exp={"essential": True}, jti={"essential": True},
        ).validate(token.claims)
    except (JoseError, ValueError) as error:
        raise OAuthError("invalid_client", f"client assertion rejected: {error}", 401) from None
    audience = token.claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if not {f"{issuer(settings)}/oauth/token", issuer(settings)} & set(audiences):
        raise OAuthError("invalid_client", "client assertion audience", 401)
    # A client assertion is single-use: remember its jti until it expires.
    from asyncpg import UniqueViolationError

    try:
        await OneTimeToken.insert(OneTimeToken(
            purpose="client_assertion",
            token_hash=token_hash(f"{row['client_id']}:{token.claims['jti']}"),
            expires_at=datetime.fromtimestamp(int(token.claims["exp"]), UTC),
            used_at=datetime.now(UTC)))
    except UniqueViolationError:
        raise OAuthError("invalid_client", "client assertion replayed", 401) from None
    return row
