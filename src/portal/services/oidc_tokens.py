"""The token endpoint and what checks its tokens: the code exchange, refresh-token rotation
with reuse detection, userinfo, revocation (RFC 7009), and the person's view of the grants
their applications hold.

A grant (``oauth_grant``) is one authorization a client got; its refresh tokens rotate under
it, and revoking it ends every token of the family, including one stored a moment later.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from joserfc import jwt
from joserfc.errors import JoseError

from portal.db import ENGINE
from portal.security.tokens import new_token, token_hash
from portal.services import audit, oidc_keys
from portal.services.oidc import (
    ACCESS_LIFETIME,
    ACR_PASSWORD,
    ID_LIFETIME,
    REFRESH_LIFETIME,
    OAuthError,
    b64url,
    issuer,
    s256,
    sid,
)
from portal.services.oidc_claims import CLAIM_COLUMNS, claims_of
from portal.services.oidc_clients import get_client
from portal.services.scope import Client, Scope
from portal.settings import Settings
from portal.tables import OAuthClient, OAuthCode, OAuthConsent, OAuthGrant, OAuthRefreshToken


def _at_hash(access_token: str) -> str:
    return b64url(hashlib.sha256(access_token.encode()).digest()[:16])



GRANT_COLUMNS = ("g.id AS grant_id, g.identity, g.session_hash, g.scope, g.account_public_id, "
                 "g.auth_time, g.amr, g.acr")

#: Who calls, as the by-id statements below need it: a client already authenticated
#: (private_key_jwt, public clients). A client with a secret is authenticated by the
#: statement itself (the ``*_FOR_SECRET`` functions): no row, no client; the secret's hash is
#: compared in SQL, the SHA-256 of a random 256-bit secret, so timing tells nothing usable.
CALLER_BY_ID = """
    SELECT id, client_id, auth_method, id_token_signed_response_alg FROM oauth_client
    WHERE id = {}
"""
CALLER_COLUMNS = ("caller.id AS caller_pk, caller.client_id AS caller_client_id, "
                  "caller.auth_method AS caller_auth_method, "
                  "caller.id_token_signed_response_alg AS caller_alg")

EXCHANGE = f"""
WITH caller AS ({CALLER_BY_ID}), used AS (
    UPDATE oauth_code SET used_at = now()
    WHERE code_hash = {{}} AND used_at IS NULL AND EXISTS (SELECT 1 FROM caller)
    RETURNING *
), g AS (
    INSERT INTO oauth_grant (id, created_at, client, identity, session_hash, scope,
                             account_public_id, auth_time, amr, acr)
    SELECT used.id, now(), used.client, used.identity, used.session_hash, used.scope,
           used.account_public_id, used.auth_time, used.amr, used.acr
    FROM used JOIN caller ON caller.id = used.client
    WHERE used.expires_at > now() AND used.redirect_uri = {{}} AND used.code_challenge = {{}}
    RETURNING *
), rotation AS (
    INSERT INTO oauth_refresh_token (id, created_at, token_hash, family, expires_at)
    SELECT gen_random_uuid(), now(), {{}}, id, {{}} FROM g
), audited AS (
    INSERT INTO audit_event (id, created_at, tag, identity_id, ip, user_agent, data)
    SELECT gen_random_uuid(), now(), 'oauth:token:issue', g.identity, {{}}, {{}},
           jsonb_build_object('client_id', caller.client_id)
    FROM g JOIN caller ON true
)
SELECT {CALLER_COLUMNS}, used.id IS NOT NULL AS found,
       used.client AS code_client, used.expires_at > now() AS fresh, used.redirect_uri,
       used.identity AS code_identity, used.nonce, g.id IS NOT NULL AS issued,
       {GRANT_COLUMNS}, {CLAIM_COLUMNS}
FROM caller
LEFT JOIN used ON true
LEFT JOIN g ON true
LEFT JOIN identity i ON i.id = g.identity
LEFT JOIN profile p ON p.identity = i.id
"""  # noqa: S608  (built from constants; the values are placeholders)

#: The code exchange of a client proving itself with its secret: the same statement with the
#: client's check as its first part, kept as a function (migrations 2026-12-04T12:10 and
#: 12:20) so its plan is made once per connection, not at every execution, and committing
#: without waiting for the WAL flush (issue 20; what a database crash can then lose is said
#: there). Run on its own, never inside a larger transaction.
EXCHANGE_FOR_SECRET = (
    "SELECT * FROM oauth_exchange_for_secret({}, {}, {}, {}, {}, {}, {}, {}, {})"  # noqa: S105
)

ROTATE = f"""
WITH spent AS (
    UPDATE oauth_refresh_token t SET used_at = now()
    FROM oauth_grant g
    WHERE t.token_hash = {{}} AND t.used_at IS NULL AND t.expires_at > now()
      AND g.id = t.family AND g.client = {{}} AND g.revoked_at IS NULL
    RETURNING g.*
), rotation AS (
    INSERT INTO oauth_refresh_token (id, created_at, token_hash, family, expires_at)
    SELECT gen_random_uuid(), now(), {{}}, id, {{}} FROM spent
)
SELECT {GRANT_COLUMNS}, {CLAIM_COLUMNS}
FROM spent g
JOIN identity i ON i.id = g.identity
LEFT JOIN profile p ON p.identity = i.id
"""  # noqa: S608  (built from constants; the values are placeholders)

#: The refresh grant of a client proving itself with its secret, in one statement (issue 20):
#: authenticate the caller, spend the token while its grant is live, store the next token,
#: read the claims; ROTATE with the client's check first, kept as a function (migrations
#: 2026-12-04T12:10 and 12:20: plan made once per connection, commit without waiting for the
#: WAL flush; run on its own, never inside a larger transaction). No row: the client did not
#: authenticate (the usual path then says why); a row with ``rotated`` false: the client
#: did, the token is not good.
ROTATE_FOR_SECRET = (
    "SELECT * FROM oauth_refresh_for_secret({}, {}, {}, {}, {})"  # noqa: S105  (placeholders)
)

#: A live grant's claims for userinfo and introspection: the token's grant must not be
#: revoked and its client not disabled.
LIVE_GRANT = f"""
SELECT {GRANT_COLUMNS}, c.client_id, {CLAIM_COLUMNS}
FROM oauth_grant g
JOIN oauth_client c ON c.id = g.client AND c.disabled_at IS NULL
JOIN identity i ON i.id = g.identity
LEFT JOIN profile p ON p.identity = i.id
WHERE g.id = {{}} AND g.revoked_at IS NULL
"""  # noqa: S608  (built from constants; the values are placeholders)


async def exchange_code(settings: Settings, client_row: dict[str, Any], code: str,
                        redirect_uri: str, verifier: str, client: Client) -> dict[str, Any]:
    """Exchange a code in one statement: mark it used, store the grant and its first refresh
    token, read the claims. Whatever is wrong, the code is spent (single use)."""
    refresh_raw = new_token(32)
    rows = await OAuthCode.raw(EXCHANGE, client_row["id"], *_exchange_values(
        code, redirect_uri, verifier, refresh_raw, client))
    return await _exchanged(settings, client_row, rows[0], code, redirect_uri, refresh_raw,
                            client)


async def exchange_for_secret(settings: Settings, client_id: str, secret: str, code: str,
                              redirect_uri: str, verifier: str, client: Client
                              ) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The code exchange of a client with a secret, its authentication in the same
    statement: the client (the columns the answer needs) and the tokens; None when the client
    did not authenticate (the code is then left alone), for the caller's usual path."""
    refresh_raw = new_token(32)
    rows = await OAuthCode.raw(EXCHANGE_FOR_SECRET, client_id, token_hash(secret),
                               *_exchange_values(code, redirect_uri, verifier, refresh_raw,
                                                 client))
    if not rows:
        return None
    client_row = _caller(rows[0])
    return client_row, await _exchanged(settings, client_row, rows[0], code, redirect_uri,
                                        refresh_raw, client)


def _caller(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["caller_pk"], "client_id": row["caller_client_id"],
            "auth_method": row["caller_auth_method"],
            "id_token_signed_response_alg": row["caller_alg"]}


def _exchange_values(code: str, redirect_uri: str, verifier: str, refresh_raw: str,
                     client: Client) -> tuple:
    # The challenge is public (it travelled in the authorization request), so comparing it
    # in SQL leaks nothing; a malformed verifier compares as '' and never matches.
    challenge = s256(verifier) if verifier and 43 <= len(verifier) <= 128 else ""
    # The audit event of an issue (``oauth:token:issue``, as audit.record writes it) is part
    # of the statement: the same transaction as the grant, and no second round trip/commit.
    return (token_hash(code or ""), redirect_uri or "", challenge, token_hash(refresh_raw),
            datetime.now(UTC) + REFRESH_LIFETIME, client.ip[:64], client.user_agent[:512])


async def _exchanged(settings: Settings, client_row: dict[str, Any], row: dict[str, Any],
                     code: str, redirect_uri: str, refresh_raw: str,
                     client: Client) -> dict[str, Any]:
    if not row["found"]:
        await _code_reused(code, client)
        raise OAuthError("invalid_grant", "the code is invalid, expired or used")
    if not row["issued"]:
        if row["code_client"] != client_row["id"] or not row["fresh"]:
            raise OAuthError("invalid_grant", "the code is invalid, expired or used")
        if redirect_uri != row["redirect_uri"]:
            raise OAuthError("invalid_grant", "redirect_uri does not match")
        await audit.record("oauth:token:failure", client=client,
                           identity_id=row["code_identity"], reason="pkce")
        raise OAuthError("invalid_grant", "PKCE verification failed")
    return await _issue_tokens(settings, client_row, row, refresh_raw, nonce=row["nonce"])


async def _code_reused(code: str, client: Client) -> None:
    """A code presented twice: revoke what it issued (RFC 6749 §4.1.2). The grant's id is the
    code's, and the winner stored it in the statement that spent the code, so it is there."""
    async with ENGINE.transaction():
        row = await OAuthCode.select(OAuthCode.id, OAuthCode.identity).where(
            OAuthCode.code_hash == token_hash(code or "")).first()
        if row is None:
            return
        await OAuthGrant.update({OAuthGrant.revoked_at: datetime.now(UTC)}).where(
            (OAuthGrant.id == row["id"]) & OAuthGrant.revoked_at.is_null())
        await audit.record("oauth:code:reuse", client=client, identity_id=row["identity"])


async def refresh(settings: Settings, client_row: dict[str, Any], raw: str,
                  client: Client) -> dict[str, Any]:
    """Rotate a refresh token. Presenting a spent one revokes its grant.

    The happy path is one statement: it spends the token only while the grant is live, stores
    the next token and reads the claims. Of two concurrent uses of one token exactly one wins
    (the row lock); the loser sees the token spent and revokes the grant, which also ends the
    token the winner stored, since every use checks the grant."""
    refresh_raw = new_token(32)
    id_hash = token_hash(raw or "")
    rows = await OAuthRefreshToken.raw(ROTATE, id_hash, client_row["id"],
                                       token_hash(refresh_raw),
                                       datetime.now(UTC) + REFRESH_LIFETIME)
    if rows:
        return await _issue_tokens(settings, client_row, rows[0], refresh_raw, nonce="")
    async with ENGINE.transaction():
        revoked = await OAuthGrant.raw(
            "UPDATE oauth_grant g SET revoked_at = now() FROM oauth_refresh_token t "
            "WHERE t.token_hash = {} AND t.used_at IS NOT NULL AND g.id = t.family "
            "AND g.client = {} AND g.revoked_at IS NULL RETURNING g.identity",
            id_hash, client_row["id"])
        if revoked:
            await audit.record("oauth:refresh:reuse", client=client,
                               identity_id=revoked[0]["identity"],
                               client_id=client_row["client_id"])
    if revoked:
        raise OAuthError("invalid_grant", "refresh token reuse detected; the grant is revoked")
    raise OAuthError("invalid_grant", "the refresh token is invalid, expired or revoked")


async def refresh_for_secret(settings: Settings, client_id: str, secret: str, raw: str,
                             client: Client) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """A refresh grant by a client with a secret, one round trip on the happy path: the
    client (the columns the answer needs) and the tokens; None when the client did not
    authenticate, for the caller's usual path to refuse with the reason."""
    refresh_raw = new_token(32)
    rows = await OAuthRefreshToken.raw(
        ROTATE_FOR_SECRET, client_id, token_hash(secret), token_hash(raw or ""),
        token_hash(refresh_raw), datetime.now(UTC) + REFRESH_LIFETIME)
    if not rows:
        return None
    row = rows[0]
    client_row = _caller(row)
    if not row["rotated"]:  # spent, unknown or revoked: the usual path detects reuse
        return client_row, await refresh(settings, client_row, raw, client)
    return client_row, await _issue_tokens(settings, client_row, row, refresh_raw, nonce="")


async def _issue_tokens(settings: Settings, client_row: dict[str, Any], grant: dict[str, Any],
                        refresh_raw: str, *, nonce: str) -> dict[str, Any]:
    """Sign the access and ID tokens for a grant row (its refresh token is already stored).
    Code exchanges are audited; refreshes are not (one row per refresh would drown the log)
    — their failures and reuse are."""
    person = claims_of(grant)
    alg = client_row["id_token_signed_response_alg"]
    key = await oidc_keys.current(settings.secret_key, alg)
    now = datetime.now(UTC)
    subject = str(grant["identity"])
    session_id = sid(settings, grant["session_hash"]) if grant["session_hash"] else None
    header = {"alg": alg, "kid": key.kid}
    access_claims = {
        "iss": issuer(settings), "sub": subject, "aud": [client_row["client_id"]],
        "client_id": client_row["client_id"], "scope": grant["scope"],
        "iat": int(now.timestamp()), "exp": int((now + ACCESS_LIFETIME).timestamp()),
        "jti": secrets.token_hex(16), "grant_id": str(grant["grant_id"]),
    }
    if grant["account_public_id"]:
        access_claims["account"] = grant["account_public_id"]
    access_token = jwt.encode({**header, "typ": "at+jwt"}, access_claims, key, algorithms=[alg])
    id_claims: dict[str, Any] = {
        "iss": issuer(settings), "sub": subject, "aud": client_row["client_id"],
        "azp": client_row["client_id"],
        "iat": int(now.timestamp()), "exp": int((now + ID_LIFETIME).timestamp()),
        "auth_time": int(grant["auth_time"].timestamp()), "at_hash": _at_hash(access_token),
        "amr": list(grant["amr"] or ["pwd"]), "acr": grant["acr"] or ACR_PASSWORD,
    }
    if session_id:
        id_claims["sid"] = session_id
    if nonce:
        id_claims["nonce"] = nonce
    id_claims.update(person)
    id_token = jwt.encode(header, id_claims, key, algorithms=[alg])
    return {
        "access_token": access_token, "token_type": "Bearer",
        "expires_in": int(ACCESS_LIFETIME.total_seconds()), "id_token": id_token,
        "refresh_token": refresh_raw, "scope": grant["scope"],
    }


def _kid_of(token: str) -> str | None:
    """The key id a compact JWS names in its header (unverified: it only picks the key)."""
    try:
        header = json.loads(base64.urlsafe_b64decode(token.split(".", 1)[0] + "=="))
    except (ValueError, TypeError):
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


async def verify_access_token(settings: Settings, token: str) -> dict[str, Any]:
    try:
        decoded = jwt.decode(token, await oidc_keys.key_set(_kid_of(token)),
                             algorithms=list(oidc_keys.ALGORITHMS))
        jwt.JWTClaimsRegistry(iss={"essential": True, "value": issuer(settings)},
                              exp={"essential": True}, sub={"essential": True}
                              ).validate(decoded.claims)
    except (JoseError, ValueError):
        raise OAuthError("invalid_token", "the access token is invalid or expired", 401) from None
    if decoded.header.get("typ") != "at+jwt":
        raise OAuthError("invalid_token", "not an access token", 401)
    return decoded.claims


async def live_grant(claims: dict[str, Any]) -> dict[str, Any] | None:
    """The grant behind a verified access token, with the person's claims; None when it was
    revoked (reuse, logout, revocation), its client disabled or its person deleted."""
    try:
        grant_id = UUID(str(claims.get("grant_id")))
    except ValueError:
        return None
    rows = await OAuthGrant.raw(LIVE_GRANT, grant_id)
    if not rows or str(rows[0]["identity"]) != claims.get("sub") or (
            rows[0]["client_id"] != claims.get("client_id")):
        return None
    return rows[0]


async def userinfo(settings: Settings, token: str) -> dict[str, Any]:
    claims = await verify_access_token(settings, token)
    grant = await live_grant(claims)
    if grant is None:
        raise OAuthError("invalid_token", "the access token is revoked", 401)
    return claims_of(grant)


async def revoke_token(settings: Settings, client_row: dict[str, Any], token: str,
                       client: Client) -> None:
    """RFC 7009: revoking a refresh token, or an access token of a grant, revokes the grant
    (every token of its family). Tokens of other clients and unknown ones are ignored; an
    access token from client_credentials has no grant and simply expires."""
    grant_id = await _grant_of_access_token(settings, client_row, token)
    async with ENGINE.transaction():
        if grant_id is not None:
            rows = await OAuthGrant.raw(
                "UPDATE oauth_grant SET revoked_at = now() WHERE id = {} AND client = {} "
                "AND revoked_at IS NULL RETURNING identity", grant_id, client_row["id"])
        else:
            rows = await OAuthGrant.raw(
                "UPDATE oauth_grant g SET revoked_at = now() FROM oauth_refresh_token t "
                "WHERE t.token_hash = {} AND g.id = t.family AND g.client = {} "
                "AND g.revoked_at IS NULL RETURNING g.identity",
                token_hash(token or ""), client_row["id"])
        if rows:
            await audit.record("oauth:token:revoke", client=client,
                               identity_id=rows[0]["identity"])


async def _grant_of_access_token(settings: Settings, client_row: dict[str, Any],
                                 token: str) -> UUID | None:
    if (token or "").count(".") != 2:
        return None
    try:
        claims = await verify_access_token(settings, token)
        grant_id = UUID(str(claims.get("grant_id")))
    except (OAuthError, ValueError):
        return None
    return grant_id if claims.get("client_id") == client_row["client_id"] else None


# --- client credentials and introspection ----------------------------------------------------


async def client_credentials(settings: Settings, client_row: dict[str, Any],
                             scope: str) -> dict[str, Any]:
    """An access token for a service calling another (RFC 6749 §4.4): for confidential
    clients that staff allowed service scopes, with those scopes (or the requested part of
    them). The subject is the client itself; no refresh token, no ID token."""
    allowed = list(client_row["service_scopes"] or [])
    if client_row["auth_method"] == "none" or not allowed:
        raise OAuthError("unauthorized_client", "this client may not use client_credentials")
    requested = scope.split() if scope and scope.strip() else allowed
    if not set(requested) <= set(allowed):
        raise OAuthError("invalid_scope", "scope not allowed for this client")
    granted = " ".join(dict.fromkeys(requested))
    alg = client_row["id_token_signed_response_alg"]
    key = await oidc_keys.current(settings.secret_key, alg)
    now = datetime.now(UTC)
    claims = {
        "iss": issuer(settings), "sub": client_row["client_id"],
        "aud": [client_row["client_id"]], "client_id": client_row["client_id"],
        "scope": granted, "iat": int(now.timestamp()),
        "exp": int((now + ACCESS_LIFETIME).timestamp()), "jti": secrets.token_hex(16),
    }
    access_token = jwt.encode({"alg": alg, "kid": key.kid, "typ": "at+jwt"}, claims, key,
                              algorithms=[alg])
    return {"access_token": access_token, "token_type": "Bearer",
            "expires_in": int(ACCESS_LIFETIME.total_seconds()), "scope": granted}


#: A grant still alive for introspection (no claims read: introspection does not give them).
GRANT_ALIVE = """
SELECT g.identity, g.scope, c.client_id
FROM oauth_grant g JOIN oauth_client c ON c.id = g.client AND c.disabled_at IS NULL
WHERE g.id = {} AND g.revoked_at IS NULL
"""

INACTIVE = {"active": False}


async def introspect(settings: Settings, caller: dict[str, Any], token: str) -> dict[str, Any]:
    """RFC 7662 for resource servers (the vendor's APIs), authenticated as confidential
    clients. An access token is active while it verifies, has not expired and its grant is
    not revoked (or, from client_credentials, while its client is enabled and still has the
    scopes); a refresh token only for the client it was issued to. Anything else, and
    anything the caller may not see, is ``{"active": false}``."""
    if caller["auth_method"] == "none":
        raise OAuthError("invalid_client", "public clients cannot introspect tokens", 401)
    if (token or "").count(".") == 2:
        return await _introspect_access_token(settings, token)
    rows = await OAuthGrant.raw(
        "SELECT g.identity, g.scope, t.expires_at FROM oauth_refresh_token t "
        "JOIN oauth_grant g ON g.id = t.family "
        "WHERE t.token_hash = {} AND t.used_at IS NULL AND t.expires_at > now() "
        "AND g.client = {} AND g.revoked_at IS NULL", token_hash(token or ""), caller["id"])
    if not rows:
        return INACTIVE
    row = rows[0]
    return {"active": True, "token_type": "refresh_token", "scope": row["scope"],
            "client_id": caller["client_id"], "sub": str(row["identity"]),
            "exp": int(row["expires_at"].timestamp()), "iss": issuer(settings)}


async def _introspect_access_token(settings: Settings, token: str) -> dict[str, Any]:
    try:
        claims = await verify_access_token(settings, token)
    except OAuthError:
        return INACTIVE
    if "grant_id" in claims:
        try:
            rows = await OAuthGrant.raw(GRANT_ALIVE, UUID(str(claims["grant_id"])))
        except ValueError:
            return INACTIVE
        if not rows or str(rows[0]["identity"]) != claims["sub"] or (
                rows[0]["client_id"] != claims.get("client_id")):
            return INACTIVE
    else:
        service = await get_client(claims.get("client_id"))
        if service is None or claims["sub"] != service["client_id"] or not set(
                str(claims.get("scope", "")).split()) <= set(service["service_scopes"] or []):
            return INACTIVE
    answer = {"active": True, "token_type": "Bearer"}
    for name in ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti", "account"):
        if name in claims:
            answer[name] = claims[name]
    return answer


# --- the person's view of their applications -------------------------------------------------


async def granted_applications(identity_id: UUID) -> list[dict[str, Any]]:
    """Applications that hold the person's consent or a live grant."""
    return await OAuthClient.raw(
        "SELECT c.client_id, c.name, c.first_party, cs.scopes, "
        "(SELECT max(t.created_at) FROM oauth_grant g JOIN oauth_refresh_token t "
        " ON t.family = g.id WHERE g.client = c.id AND g.identity = {}) AS last_used "
        "FROM oauth_client c LEFT JOIN oauth_consent cs ON cs.client = c.id AND cs.identity = {} "
        "WHERE cs.id IS NOT NULL OR EXISTS (SELECT 1 FROM oauth_grant g "
        " JOIN oauth_refresh_token t ON t.family = g.id "
        " WHERE g.client = c.id AND g.identity = {} AND g.revoked_at IS NULL "
        " AND t.used_at IS NULL AND t.expires_at > now()) "
        "ORDER BY c.name", identity_id, identity_id, identity_id)


async def revoke_application(scope: Scope, client_id: str, client: Client) -> bool:
    row = await get_client(client_id)
    if row is None:
        return False
    async with ENGINE.transaction():
        deleted = await OAuthConsent.delete().where(
            (OAuthConsent.identity == scope.identity_id) & (OAuthConsent.client == row["id"])
        ).returning(OAuthConsent.id)
        revoked = await OAuthGrant.update(
            {OAuthGrant.revoked_at: datetime.now(UTC)}, use_auto_update=False
        ).where((OAuthGrant.identity == scope.identity_id)
                & (OAuthGrant.client == row["id"])
                & OAuthGrant.revoked_at.is_null()).returning(OAuthGrant.id)
        if deleted or revoked:
            await audit.record("oauth:consent:revoke", client=client,
                               identity_id=scope.identity_id, client_id=client_id)
    return bool(deleted or revoked)
