"""Signing keys of the OpenID provider: made on first use, stored encrypted, rotated.

One current key per algorithm: RS256 (RSA 2048), which every client accepts, and ES256
(P-256), for clients registered as accepting it (``id_token_signed_response_alg``): an ECDSA
signature costs a fraction of an RSA one. Both are in the JWKS, told apart by ``alg``.

A retired key stays in the JWKS for PUBLISH_AFTER_RETIRE so tokens it signed still verify
until they expire (access and ID tokens live minutes; the margin is generous).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from joserfc.jwk import ECKey, JWKRegistry, KeySet, RSAKey

from portal.db import ENGINE
from portal.security import totp
from portal.security.tokens import new_hex_id
from portal.tables import OAuthSigningKey

ALGORITHM = "RS256"  # the default, and what a client not saying otherwise gets
ALGORITHMS = ("RS256", "ES256")
PUBLISH_AFTER_RETIRE = timedelta(hours=24)
#: How long clients may keep the JWKS (seconds): far less than PUBLISH_AFTER_RETIRE, so a key
#: is never dropped from a cache while tokens it signed are still checked against it.
JWKS_MAX_AGE = 600
_LOCK = 7_274_013_002  # advisory lock: one process makes the first key

SigningKey = RSAKey | ECKey
_cache: dict[str, SigningKey] = {}
#: The current key is looked up at most this often per process; a rotation is picked up
#: within that time (the new key is published at once, so either key verifies).
CURRENT_TTL = 30.0
_current: dict[str, tuple[float, SigningKey]] = {}
#: The published keys as a verifying key set, kept for CURRENT_TTL too (userinfo, revocation
#: and introspection check a token per call); a token naming a key the set does not have
#: (made by another process a moment ago) reloads it at once.
_verifying: list[tuple[float, frozenset[str], KeySet]] = []


def _encrypt(private: dict, secret_key: str) -> str:
    # The same HKDF-derived Fernet as TOTP secrets, under its own purpose string.
    return totp.encrypt(json.dumps(private), secret_key + ":oidc-signing-key")


def _decrypt(token: str, secret_key: str) -> dict:
    plain = totp.decrypt(token, secret_key + ":oidc-signing-key")
    if plain is None:
        raise RuntimeError("the OIDC signing key cannot be decrypted: PORTAL_SECRET_KEY changed")
    return json.loads(plain)


async def _create(secret_key: str, alg: str) -> SigningKey:
    kid = new_hex_id(16)
    parameters = {"kid": kid, "use": "sig", "alg": alg}
    key = (ECKey.generate_key("P-256", parameters=parameters) if alg == "ES256"
           else RSAKey.generate_key(2048, parameters=parameters))
    await OAuthSigningKey.insert(OAuthSigningKey(
        kid=kid,
        private_jwk_encrypted=_encrypt(key.as_dict(private=True), secret_key),
        public_jwk=key.as_dict(private=False),
    ))
    return key


async def current(secret_key: str, alg: str = ALGORITHM) -> SigningKey:
    """The key new tokens are signed with by ``alg`` (made on first use, once across
    processes)."""
    held = _current.get(alg)
    if held is not None and time.monotonic() - held[0] < CURRENT_TTL:
        return held[1]
    key = await _load_current(secret_key, alg)
    _current[alg] = (time.monotonic(), key)
    return key


def forget_cached() -> None:
    """Drop the in-process key cache (after the key table was emptied, e.g. between tests)."""
    _current.clear()
    _cache.clear()
    _verifying.clear()


async def _load_current(secret_key: str, alg: str) -> SigningKey:
    if alg not in ALGORITHMS:
        raise ValueError(f"no signing key for {alg}")
    row = await _newest(alg)
    if row is None:
        async with ENGINE.transaction():
            await OAuthSigningKey.raw("SELECT pg_advisory_xact_lock({})", _LOCK)
            row = await _newest(alg)
            if row is None:
                return await _create(secret_key, alg)
    kid = row["kid"]
    if kid not in _cache:
        _cache[kid] = JWKRegistry.import_key(_decrypt(row["private_jwk_encrypted"], secret_key))
    return _cache[kid]


async def _newest(alg: str) -> dict | None:
    rows = await OAuthSigningKey.raw(
        "SELECT kid, private_jwk_encrypted FROM oauth_signing_key "
        "WHERE retired_at IS NULL AND coalesce(public_jwk->>'alg', 'RS256') = {} "
        "ORDER BY created_at DESC LIMIT 1", alg)
    return rows[0] if rows else None


async def rotate(secret_key: str) -> str:
    """Retire the current keys (still published for a while) and make new ones; returns
    the new RS256 key's kid."""
    async with ENGINE.transaction():
        await OAuthSigningKey.raw("SELECT pg_advisory_xact_lock({})", _LOCK)
        await OAuthSigningKey.update({OAuthSigningKey.retired_at: datetime.now(UTC)}).where(
            OAuthSigningKey.retired_at.is_null())
        keys = [await _create(secret_key, alg) for alg in ALGORITHMS]
    _current.clear()
    _verifying.clear()
    return keys[0].kid


async def published() -> dict:
    """The JWKS: current keys and recently retired ones."""
    since = datetime.now(UTC) - PUBLISH_AFTER_RETIRE
    rows = await OAuthSigningKey.select(OAuthSigningKey.public_jwk).where(
        OAuthSigningKey.retired_at.is_null() | (OAuthSigningKey.retired_at > since)
    ).order_by(OAuthSigningKey.created_at, ascending=False)
    keys = [r["public_jwk"] if isinstance(r["public_jwk"], dict) else json.loads(r["public_jwk"])
            for r in rows]
    return {"keys": keys}


async def key_set(kid: str | None = None) -> KeySet:
    """The published keys, to verify tokens with; ``kid``: the key the token names."""
    if _verifying:
        loaded, kids, keys = _verifying[0]
        if time.monotonic() - loaded < CURRENT_TTL and (kid is None or kid in kids):
            return keys
    document = await published()
    keys = KeySet.import_key_set(document)
    _verifying[:] = [(time.monotonic(), frozenset(k.get("kid", "") for k in document["keys"]),
                      keys)]
    return keys
