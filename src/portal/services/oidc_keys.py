"""Signing keys of the OpenID provider: made on first use, stored encrypted, rotated.

A retired key stays in the JWKS for PUBLISH_AFTER_RETIRE so tokens it signed still verify
until they expire (access and ID tokens live minutes; the margin is generous).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from joserfc.jwk import KeySet, RSAKey

from portal.db import ENGINE
from portal.security import totp
from portal.security.tokens import new_hex_id
from portal.tables import OAuthSigningKey

ALGORITHM = "RS256"
PUBLISH_AFTER_RETIRE = timedelta(hours=24)
#: How long clients may keep the JWKS (seconds): far less than PUBLISH_AFTER_RETIRE, so a key
#: is never dropped from a cache while tokens it signed are still checked against it.
JWKS_MAX_AGE = 600
_LOCK = 7_274_013_002  # advisory lock: one process makes the first key

_cache: dict[str, RSAKey] = {}
#: The current key is looked up at most this often per process; a rotation is picked up
#: within that time (the new key is published at once, so either key verifies).
CURRENT_TTL = 30.0
_current: tuple[float, RSAKey] | None = None


def _encrypt(private: dict, secret_key: str) -> str:
    # The same HKDF-derived Fernet as TOTP secrets, under its own purpose string.
    return totp.encrypt(json.dumps(private), secret_key + ":oidc-signing-key")


def _decrypt(token: str, secret_key: str) -> dict:
    plain = totp.decrypt(token, secret_key + ":oidc-signing-key")
    if plain is None:
        raise RuntimeError("the OIDC signing key cannot be decrypted: PORTAL_SECRET_KEY changed")
    return json.loads(plain)


async def _create(secret_key: str) -> OAuthSigningKey:
    kid = new_hex_id(16)
    key = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": ALGORITHM})
    await OAuthSigningKey.insert(OAuthSigningKey(
        kid=kid,
        private_jwk_encrypted=_encrypt(key.as_dict(private=True), secret_key),
        public_jwk=key.as_dict(private=False),
    ))
    return key


async def current(secret_key: str) -> RSAKey:
    """The key new tokens are signed with (made on first use, once across processes)."""
    global _current
    if _current is not None and time.monotonic() - _current[0] < CURRENT_TTL:
        return _current[1]
    key = await _load_current(secret_key)
    _current = (time.monotonic(), key)
    return key


def forget_cached() -> None:
    """Drop the in-process key cache (after the key table was emptied, e.g. between tests)."""
    global _current
    _current = None
    _cache.clear()


async def _load_current(secret_key: str) -> RSAKey:
    row = await _newest()
    if row is None:
        async with ENGINE.transaction():
            await OAuthSigningKey.raw("SELECT pg_advisory_xact_lock({})", _LOCK)
            row = await _newest()
            if row is None:
                return await _create(secret_key)
    kid = row["kid"]
    if kid not in _cache:
        _cache[kid] = RSAKey.import_key(_decrypt(row["private_jwk_encrypted"], secret_key))
    return _cache[kid]


async def _newest() -> dict | None:
    return await (
        OAuthSigningKey.select()
        .where(OAuthSigningKey.retired_at.is_null())
        .order_by(OAuthSigningKey.created_at, ascending=False)
        .first()
    )


async def rotate(secret_key: str) -> str:
    """Retire the current key (still published for a while) and make a new one."""
    global _current
    async with ENGINE.transaction():
        await OAuthSigningKey.raw("SELECT pg_advisory_xact_lock({})", _LOCK)
        await OAuthSigningKey.update({OAuthSigningKey.retired_at: datetime.now(UTC)}).where(
            OAuthSigningKey.retired_at.is_null())
        key = await _create(secret_key)
    _current = None
    return key.kid


async def published() -> dict:
    """The JWKS: current keys and recently retired ones."""
    since = datetime.now(UTC) - PUBLISH_AFTER_RETIRE
    rows = await OAuthSigningKey.select(OAuthSigningKey.public_jwk).where(
        OAuthSigningKey.retired_at.is_null() | (OAuthSigningKey.retired_at > since)
    ).order_by(OAuthSigningKey.created_at, ascending=False)
    keys = [r["public_jwk"] if isinstance(r["public_jwk"], dict) else json.loads(r["public_jwk"])
            for r in rows]
    return {"keys": keys}


async def key_set() -> KeySet:
    return KeySet.import_key_set(await published())
