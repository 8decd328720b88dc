"""OpenID Connect clients: the vendor's applications and its customers' tools, registered by
staff, and how each proves who it is at the token, revocation and introspection endpoints
(client secret, private_key_jwt, or none for public clients with PKCE)."""

from __future__ import annotations

import base64
import hmac
import json
import logging
import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, KeySet

from portal.db import ENGINE
from portal.security.tokens import new_token, token_hash
from portal.services import audit, oidc_keys
from portal.services.errors import DomainError, InvalidInput
from portal.services.oidc import (
    ASSERTION_ALGORITHMS,
    ASSERTION_TYPE,
    AUTH_METHODS,
    SCOPES,
    OAuthError,
    issuer,
)
from portal.services.scope import Client, Scope
from portal.settings import Settings
from portal.tables import OAuthClient, OneTimeToken

log = logging.getLogger(__name__)


def _secret_hash(secret: str) -> str:
    return token_hash(secret)


async def register_client(*, name: str, redirect_uris: list[str],
                          post_logout_redirect_uris: list[str] | None = None,
                          backchannel_logout_uri: str = "",
                          allowed_scopes: list[str] | None = None, first_party: bool = False,
                          require_mfa: bool = False, auth_method: str = "client_secret_basic",
                          jwks: dict | str | None = None, jwks_uri: str = "",
                          service_scopes: list[str] | None = None,
                          id_token_signed_response_alg: str = oidc_keys.ALGORITHM,
                          actor: Scope | None = None,
                          client: Client | None = None) -> tuple[str, str | None]:
    """Register an application; returns (client_id, secret shown once or None).

    A ``private_key_jwt`` client brings its public keys: pasted (``jwks``, a JSON Web Key Set)
    or published at ``jwks_uri``, which is fetched now so that a wrong address is said at once
    rather than at the application's first sign-in."""
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
    if id_token_signed_response_alg not in oidc_keys.ALGORITHMS:
        problems["id_token_signed_response_alg"] = "Wybierz algorytm podpisu tokenów."  # noqa: S105
    try:
        key_set, jwks_uri = await _registered_keys(auth_method, jwks, jwks_uri.strip())
    except InvalidInput as error:
        problems.update(error.errors)
    scopes = [s for s in (allowed_scopes or list(SCOPES)) if s in SCOPES]
    if "openid" not in scopes:
        scopes.insert(0, "openid")
    services = list(dict.fromkeys(service_scopes or []))
    if services and auth_method == "none":
        problems["service_scopes"] = ("Aplikacja publiczna nie wywołuje usług w swoim imieniu "
                                      "(client_credentials wymaga sekretu albo kluczy).")
    elif len(services) > 20 or not all(SERVICE_SCOPE.fullmatch(s) and s not in SCOPES
                                       for s in services):
        problems["service_scopes"] = ("Zakresy usług: do 20 nazw z małych liter, cyfr i znaków "
                                      "._:- (np. faktury:odczyt), innych niż zakresy OpenID.")
    if problems:
        raise InvalidInput(problems)
    client_id = "app_" + secrets.token_hex(12)
    secret = None if auth_method in ("none", "private_key_jwt") else new_token(32)
    async with ENGINE.transaction():
        await OAuthClient.insert(OAuthClient(
            client_id=client_id, name=name.strip(),
            secret_hash=_secret_hash(secret) if secret else None, auth_method=auth_method,
            jwks=key_set, jwks_uri=jwks_uri, redirect_uris=redirect_uris,
            post_logout_redirect_uris=post_logout_redirect_uris or [],
            backchannel_logout_uri=backchannel_logout_uri, allowed_scopes=scopes,
            service_scopes=services, first_party=first_party, require_mfa=require_mfa,
            id_token_signed_response_alg=id_token_signed_response_alg,
        ))
        await audit.record("oauth:client:register", client=client,
                           identity_id=actor.identity_id if actor else None,
                           client_id=client_id, name=name)
    forget_origins()
    return client_id, secret


#: A scope of service-to-service calls (client_credentials), e.g. ``faktury:odczyt``.
SERVICE_SCOPE = re.compile(r"[a-z][a-z0-9._:-]{0,63}")


# --- the public keys of private_key_jwt clients ----------------------------------------------

#: Private members of a JWK: a client registers public keys only.
_PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
MAX_KEYS = 20
FETCH_TIMEOUT = 5.0
MAX_JWKS_BYTES = 64 * 1024
#: A fetched key set is used this long, then fetched again; a kid it does not hold makes it
#: fetched again at once (the client rotated its key), but at most every REFETCH_AFTER, so
#: assertions with made-up kids cannot make the portal hammer the client's server.
JWKS_TTL = 300.0
REFETCH_AFTER = 30.0
_fetched: dict[str, tuple[float, KeySet]] = {}


class KeysUnavailable(DomainError):
    """The client's keys cannot be had: not registered, not published, not a key set."""

    message = "Nie udało się odczytać kluczy publicznych aplikacji."


async def _registered_keys(auth_method: str, jwks: dict | str | None,
                           jwks_uri: str) -> tuple[dict, str]:
    """The pasted key set (as stored) and the jwks_uri of a new client, or InvalidInput."""
    pasted = (jwks.strip() if isinstance(jwks, str) else jwks) or None
    errors: dict[str, str] = {}
    key_set: dict = {}
    if auth_method != "private_key_jwt":
        if pasted or jwks_uri:
            errors["jwks"] = "Klucze publiczne podaje się tylko dla private_key_jwt."
    elif pasted and jwks_uri:
        errors["jwks"] = "Podaj klucze albo adres jwks_uri, nie jedno i drugie."
    elif not pasted and not jwks_uri:
        errors["jwks"] = ("Aplikacja z private_key_jwt potrzebuje kluczy publicznych: wklej "
                          "JWKS albo podaj adres jwks_uri.")
    elif jwks_uri and not _valid_uri(jwks_uri):
        errors["jwks_uri"] = "Nieprawidłowy adres jwks_uri."
    elif jwks_uri:
        try:
            await _fetch(jwks_uri)
        except KeysUnavailable as error:
            errors["jwks_uri"] = error.message
    else:
        try:
            document = json.loads(pasted) if isinstance(pasted, str) else pasted
            key_set = public_key_set(document).as_dict()
        except KeysUnavailable as error:
            errors["jwks"] = error.message
        except ValueError:
            errors["jwks"] = "To nie jest JSON: wklej zestaw kluczy w postaci {\"keys\": [...]}."
    if errors:
        raise InvalidInput(errors)
    return key_set, jwks_uri if auth_method == "private_key_jwt" else ""


def public_key_set(document: Any) -> KeySet:
    """A JWKS of public signing keys usable for client assertions, or KeysUnavailable."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list) or not (
            1 <= len(document["keys"]) <= MAX_KEYS):
        raise KeysUnavailable("Zestaw kluczy (JWKS) to obiekt {\"keys\": [...]} z 1 do 20 "
                              "kluczami.")
    imported = []
    for data in document["keys"]:
        imported.append(_public_key(data))
    kids = [data.get("kid") for data in document["keys"]]
    if len(imported) > 1 and (None in kids or len(set(kids)) < len(kids)):
        raise KeysUnavailable("Przy kilku kluczach każdy potrzebuje własnego, innego kid.")
    return KeySet(imported)


def _public_key(data: Any):
    if not isinstance(data, dict) or _PRIVATE_MEMBERS & data.keys():
        raise KeysUnavailable("Podaj tylko klucze publiczne (bez części prywatnej).")
    if data.get("kty") not in ("RSA", "EC") or data.get("use", "sig") != "sig":
        raise KeysUnavailable("Obsługujemy klucze RSA i EC (P-256) do podpisu.")
    try:
        key = JWKRegistry.import_key(data)
    except (JoseError, ValueError, TypeError, KeyError):
        raise KeysUnavailable("Jednego z kluczy nie da się odczytać.") from None
    if data["kty"] == "RSA" and key.raw_value.key_size < 2048:
        raise KeysUnavailable("Klucze RSA muszą mieć co najmniej 2048 bitów.")
    if data["kty"] == "EC" and data.get("crv") != "P-256":
        raise KeysUnavailable("Obsługujemy klucze RSA i EC (P-256) do podpisu.")
    return key


async def _fetch(uri: str) -> KeySet:
    """The key set at a client's jwks_uri: a timeout, no redirects, a size limit."""
    try:
        async with httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False) as http:
            async with http.stream("GET", uri, headers={"Accept": "application/json"}) as reply:
                body = b""
                async for chunk in reply.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        break
    except httpx.HTTPError as error:
        log.warning("jwks_uri %s does not answer: %r", uri, error)
        raise KeysUnavailable("Adres jwks_uri nie odpowiada.") from None
    if reply.status_code != 200 or len(body) > MAX_JWKS_BYTES:
        log.warning("jwks_uri %s answered %s with %s bytes", uri, reply.status_code, len(body))
        raise KeysUnavailable("Adres jwks_uri nie zwrócił zestawu kluczy (JWKS).")
    try:
        document = json.loads(body)
    except ValueError:
        raise KeysUnavailable("Adres jwks_uri nie zwrócił zestawu kluczy (JWKS).") from None
    key_set = public_key_set(document)
    _fetched[uri] = (time.monotonic(), key_set)
    return key_set


async def client_keys(row: dict[str, Any], *, kid: str | None = None) -> KeySet:
    """The client's public keys: the pasted set, or the one at its jwks_uri (cached; fetched
    again when stale, or when it lacks ``kid`` and was not fetched a moment ago)."""
    if not row["jwks_uri"]:
        stored = row["jwks"] if isinstance(row["jwks"], dict) else json.loads(row["jwks"] or "{}")
        if not stored.get("keys"):
            raise KeysUnavailable("Aplikacja nie ma zarejestrowanych kluczy publicznych.")
        return KeySet.import_key_set(stored)
    cached = _fetched.get(row["jwks_uri"])
    age = time.monotonic() - cached[0] if cached else None
    if cached and age < JWKS_TTL and (kid is None or _has_kid(cached[1], kid)
                                      or age < REFETCH_AFTER):
        return cached[1]
    try:
        return await _fetch(row["jwks_uri"])
    except KeysUnavailable:
        if cached:  # the client's server is down: the keys we had still prove who it is
            return cached[1]
        raise


def _has_kid(key_set: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in key_set)


def forget_fetched_keys() -> None:
    _fetched.clear()


def _valid_uri(uri: str) -> bool:
    parsed = urlparse(uri)
    if parsed.fragment or not parsed.netloc:
        return False
    if parsed.scheme == "https":
        return True
    return parsed.scheme == "http" and parsed.hostname in ("localhost", "127.0.0.1", "::1")


# --- where public clients run (CORS) ---------------------------------------------------------

#: The registered origins of public clients are looked up at most this often per process
#: (a new client is seen at once by the process that registered it).
ORIGINS_TTL = 30.0
_origins: tuple[float, frozenset[str]] | None = None
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(uri: str) -> str | None:
    parsed = urlparse(uri)
    if not parsed.scheme or not parsed.hostname:
        return None
    port = parsed.port
    host = parsed.hostname if ":" not in parsed.hostname else f"[{parsed.hostname}]"
    if port and port != _DEFAULT_PORTS.get(parsed.scheme):
        host = f"{host}:{port}"
    return f"{parsed.scheme}://{host}"


def origins_of(row: dict[str, Any]) -> frozenset[str]:
    """Where a public client (a single-page app) runs: the origins of its registered redirect
    URIs. A browser there may call the endpoints a browser calls (CORS); a confidential
    client never runs in a browser, so it has none."""
    if row["auth_method"] != "none":
        return frozenset()
    uris = [*row["redirect_uris"], *(row["post_logout_redirect_uris"] or [])]
    return frozenset(origin for origin in map(_origin, uris) if origin)


async def public_origins() -> frozenset[str]:
    """The origins of every enabled public client."""
    global _origins
    if _origins is not None and time.monotonic() - _origins[0] < ORIGINS_TTL:
        return _origins[1]
    rows = await OAuthClient.select(OAuthClient.auth_method, OAuthClient.redirect_uris,
                                    OAuthClient.post_logout_redirect_uris).where(
        (OAuthClient.auth_method == "none") & OAuthClient.disabled_at.is_null())
    found = frozenset().union(*(origins_of(row) for row in rows))
    _origins = (time.monotonic(), found)
    return found


def forget_origins() -> None:
    global _origins
    _origins = None


async def get_client(client_id: str | None) -> dict[str, Any] | None:
    if not client_id or len(client_id) > 64:
        return None
    return await OAuthClient.select().where(
        (OAuthClient.client_id == client_id) & OAuthClient.disabled_at.is_null()).first()


async def authenticate_client(settings: Settings, *, client_id: str | None,
                              client_secret: str | None, assertion_type: str | None,
                              assertion: str | None, endpoint: str = "/oauth/token"
                              ) -> dict[str, Any]:
    """The calling client, proven by its registered method; else ``invalid_client``.
    ``endpoint`` is the path being called: a client assertion may name its URL as audience."""
    if assertion_type or assertion:
        if assertion_type != ASSERTION_TYPE or not assertion:
            raise OAuthError("invalid_client", "unsupported client assertion", 401)
        return await _client_from_assertion(settings, assertion, client_id, endpoint)
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


def assertion_audiences(settings: Settings, endpoint: str) -> set[str]:
    """What a client assertion may name as ``aud``: the issuer, the token endpoint (RFC 7523)
    and the URL of the endpoint being called (what common libraries send to revocation and
    introspection)."""
    base = issuer(settings)
    return {base, f"{base}/oauth/token", f"{base}{endpoint}"}


#: A client assertion lives at most this long (its jti is remembered until it expires).
MAX_ASSERTION_LIFETIME = 3600


async def _client_from_assertion(settings: Settings, assertion: str, client_id: str | None,
                                 endpoint: str) -> dict[str, Any]:
    try:
        header_part, payload_part = assertion.split(".")[:2]
        header, unverified = (json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
                              for part in (header_part, payload_part))
    except (ValueError, IndexError):
        raise OAuthError("invalid_client", "malformed client assertion", 401) from None
    issuer_id = unverified.get("iss") if isinstance(unverified, dict) else None
    row = await get_client(issuer_id if isinstance(issuer_id, str) else None)
    if row is None or row["auth_method"] != "private_key_jwt" or (
            client_id and client_id != row["client_id"]):
        raise OAuthError("invalid_client", "client authentication failed", 401)
    kid = header.get("kid") if isinstance(header, dict) else None
    kid = kid if isinstance(kid, str) else None
    try:
        key_set = await client_keys(row, kid=kid)
    except KeysUnavailable as error:
        raise OAuthError("invalid_client", "the client's public keys are unavailable",
                         401) from error
    token = _verified(assertion, key_set, kid)
    try:
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": row["client_id"]},
            sub={"essential": True, "value": row["client_id"]},
            exp={"essential": True}, jti={"essential": True},
        ).validate(token.claims)
        expires = int(token.claims["exp"])
    except (JoseError, ValueError, TypeError) as error:
        raise OAuthError("invalid_client", f"client assertion rejected: {error}", 401) from None
    if expires > time.time() + MAX_ASSERTION_LIFETIME:
        raise OAuthError("invalid_client", "client assertion lives too long", 401)
    audience = token.claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if not assertion_audiences(settings, endpoint) & {a for a in audiences if isinstance(a, str)}:
        raise OAuthError("invalid_client", "client assertion audience", 401)
    # A client assertion is single-use: remember its jti until it expires.
    from asyncpg import UniqueViolationError

    try:
        await OneTimeToken.insert(OneTimeToken(
            purpose="client_assertion",
            token_hash=token_hash(f"{row['client_id']}:{token.claims['jti']}"),
            expires_at=datetime.fromtimestamp(expires, UTC),
            used_at=datetime.now(UTC)))
    except UniqueViolationError:
        raise OAuthError("invalid_client", "client assertion replayed", 401) from None
    return row


def _verified(assertion: str, key_set: KeySet, kid: str | None) -> jwt.Token:
    """The assertion checked against the key its kid names (or, without a kid, any key). A
    kid is a hint (RFC 7515): a client with a single key is checked against it whatever the
    hint says, as common libraries do."""
    candidates = [key for key in key_set if kid is None or key.kid == kid] or (
        list(key_set) if len(key_set.keys) == 1 else [])
    error: Exception = OAuthError("invalid_client", "no key for the assertion's kid", 401)
    for key in candidates:
        try:
            return jwt.decode(assertion, key, algorithms=list(ASSERTION_ALGORITHMS))
        except (JoseError, ValueError) as failure:
            error = failure
    raise OAuthError("invalid_client", f"client assertion rejected: {error}", 401)
