"""Random tokens: shown once, stored as a hash, compared in constant time."""

import hashlib
import hmac
import secrets


def new_token(nbytes: int = 32) -> str:
    """A URL-safe token with ``nbytes`` random bytes (256 bits by default)."""
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    """SHA-256 of a high-entropy token. No salt is needed: the token itself is unguessable,
    and an unsalted hash lets us look the row up by it."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(token_hash(token), stored_hash)


def new_hex_id(length: int = 12) -> str:
    return secrets.token_hex(length // 2 + 1)[:length]
