"""The ID as an OpenID Connect provider: authorization code flow with PKCE (S256 only),
client authentication (client secret or private_key_jwt), tokens, userinfo, consent.

JOSE (signing, verifying, JWKS) is joserfc's; this module holds the protocol's rules.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlparse
from uuid import UUID

from joserfc import jwt
from joserfc.errors import JoseError

from portal.db import ENGINE
from portal.security.tokens import new_token, token_hash
from portal.services import audit, oidc_keys
from portal.services.scope import Client, Scope
from portal.settings import Settings
from portal.tables import (
    Membership,
    OAuthClient,
    OAuthCode,
    OAuthConsent,
    OAuthGrant,
    OAuthLogin,
    OAuthRefreshToken,
    OneTimeToken,
)

CODE_LIFETIME = timedelta(seconds=60)
ACCESS_LIFETIME = timedelta(minutes=10)
ID_LIFETIME = timedelta(minutes=10)
REFRESH_LIFETIME = timedelta(days=30)
SCOPES = ("openid", "profile", "email", "accounts", "offline_access")
ACR_PASSWORD = "urn:portal:acr:pwd"  # noqa: S105  (an acr value)
ACR_MFA = "urn:portal:acr:mfa"
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

#: What the consent screen says each scope shares (Polish source strings).
SCOPE_DESCRIPTIONS = {
    "openid": "Twój identyfikator Konta ID",
    "profile": "Imię i nazwisko",
    "email": "Adres e-mail",
    "accounts": "Konta firm i firmy, do których masz dostęp, z Twoimi uprawnieniami",
    "offline_access": "Dostęp, gdy nie korzystasz z aplikacji (odświeżanie sesji)",
}


class OAuthError(Exception):
    """An error answered per RFC 6749: ``error`` code, description, HTTP status. ``request``
    is set when the client and redirect URI are valid, so the error goes back to the client."""

    def __init__(self, error: str, description: str = "", status: int = 400) -> None:
        super().__init__(description or error)
        self.error = error
        self.description = description
        self.status = status
        self.request: AuthorizeRequest | None = None


class BadClientRedirect(OAuthError):
    """The client or its redirect URI is wrong: never redirect, show the person an error."""


def issuer(settings: Settings) -> str:
    return settings.base_url


def discovery(settings: Settings) -> dict[str, Any]:
    base = issuer(settings)
    return {
        "issuer": base,
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "userinfo_endpoint": f"{base}/oauth/userinfo",
        "jwks_uri": f"{base}/oauth/jwks",
        "end_session_endpoint": f"{base}/oauth/logout",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [oidc_keys.ALGORITHM],
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr",
                             "amr", "sid", "email", "email_verified", "name", "given_name",
                             "family_name", "locale", "accounts"],
        "acr_values_supported": [ACR_PASSWORD, ACR_MFA],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": False,
        "ui_locales_supported": ["pl", "en"],
    }


# --- clients ---------------------------------------------------------------------------------


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


# --- authorization ---------------------------------------------------------------------------


@dataclass
class AuthorizeRequest:
    client: dict[str, Any]
    redirect_uri: str
    scopes: list[str]
    state: str
    nonce: str
    code_challenge: str
    prompt: set[str] = field(default_factory=set)
    max_age: int | None = None
    acr_values: list[str] = field(default_factory=list)
    account: str | None = None

    @property
    def wants_mfa(self) -> bool:
        return self.client["require_mfa"] or ACR_MFA in self.acr_values

    def error_redirect(self, settings: Settings, error: str, description: str = "") -> str:
        query = {"error": error, "iss": issuer(settings)}
        if description:
            query["error_description"] = description
        if self.state:
            query["state"] = self.state
        return _append_query(self.redirect_uri, query)


def _append_query(uri: str, params: dict[str, str]) -> str:
    return uri + ("&" if urlparse(uri).query else "?") + urlencode(params)


async def parse_authorize(params: dict[str, str]) -> AuthorizeRequest:
    """Validate an authorization request. A bad client or redirect URI raises
    BadClientRedirect (shown to the person); anything else raises OAuthError, which the
    caller sends back to the client's redirect URI."""
    client = await get_client(params.get("client_id"))
    if client is None:
        raise BadClientRedirect("invalid_client", "Nieznana aplikacja.")
    redirect_uri = params.get("redirect_uri", "")
    if redirect_uri not in client["redirect_uris"]:  # exact match, nothing else
        raise BadClientRedirect("invalid_request", "Ta aplikacja nie ma takiego adresu powrotu.")
    scopes = [s for s in params.get("scope", "").split() if s]
    request = AuthorizeRequest(
        client=client, redirect_uri=redirect_uri, scopes=scopes,
        state=params.get("state", "")[:500], nonce=params.get("nonce", "")[:500],
        code_challenge=params.get("code_challenge", ""),
        prompt=set(params.get("prompt", "").split()),
        acr_values=params.get("acr_values", "").split(),
        account=params.get("account") or None,
    )
    try:
        _check_authorize(request, params)
    except OAuthError as error:
        error.request = request
        raise
    return request


def _check_authorize(request: AuthorizeRequest, params: dict[str, str]) -> None:
    client, scopes = request.client, request.scopes
    if params.get("response_type") != "code":
        raise OAuthError("unsupported_response_type", "only response_type=code")
    if "openid" not in scopes:
        raise OAuthError("invalid_scope", "the openid scope is required")
    if not set(scopes) <= set(client["allowed_scopes"]):
        raise OAuthError("invalid_scope", "scope not allowed for this client")
    if params.get("code_challenge_method") != "S256" or not 43 <= len(
            request.code_challenge) <= 128:
        raise OAuthError("invalid_request", "PKCE with code_challenge_method=S256 is required")
    if params.get("request") or params.get("request_uri"):
        raise OAuthError("request_not_supported", "request objects are not supported")
    if "max_age" in params:
        try:
            request.max_age = max(0, int(params["max_age"]))
        except ValueError:
            raise OAuthError("invalid_request", "max_age must be a number") from None


async def needs_consent(identity_id: UUID, request: AuthorizeRequest) -> bool:
    if request.client["first_party"]:
        return False
    row = await OAuthConsent.select(OAuthConsent.scopes).where(
        (OAuthConsent.identity == identity_id) & (OAuthConsent.client == request.client["id"])
    ).first()
    return row is None or not set(request.scopes) <= set(row["scopes"])


async def grant_consent(scope: Scope, request: AuthorizeRequest, client: Client) -> None:
    async with ENGINE.transaction():
        await OAuthConsent.raw(
            "INSERT INTO oauth_consent (id, created_at, identity, client, scopes) "
            "VALUES (gen_random_uuid(), now(), {}, {}, {}) ON CONFLICT (identity, client) "
            "DO UPDATE SET scopes = (SELECT array_agg(DISTINCT s) FROM "
            "unnest(oauth_consent.scopes || EXCLUDED.scopes) AS s)",
            scope.identity_id, request.client["id"], request.scopes)
        await audit.record("oauth:consent:grant", client=client, identity_id=scope.identity_id,
                           client_id=request.client["client_id"], scopes=" ".join(request.scopes))


async def issue_code(settings: Settings, scope: Scope, request: AuthorizeRequest,
                     session: dict[str, Any], client: Client) -> str:
    """The redirect back to the client with a fresh single-use code."""
    raw = new_token(32)
    account = await _chosen_account(scope, request.account)
    amr = list(session["amr"] or ["pwd"])
    async with ENGINE.transaction():
        await OAuthCode.insert(OAuthCode(
            code_hash=token_hash(raw), client=request.client["id"], identity=scope.identity_id,
            session_hash=scope.session_hash, redirect_uri=request.redirect_uri,
            scope=" ".join(request.scopes), nonce=request.nonce,
            code_challenge=request.code_challenge, account_public_id=account,
            auth_time=session["created_at"], amr=amr,
            acr=ACR_MFA if session["mfa_at"] else ACR_PASSWORD,
            expires_at=datetime.now(UTC) + CODE_LIFETIME,
        ))
        await OAuthLogin.raw(
            "INSERT INTO oauth_login (id, created_at, client, identity, session_hash, sid) "
            "VALUES (gen_random_uuid(), now(), {}, {}, {}, {}) "
            "ON CONFLICT (client, session_hash) DO NOTHING",
            request.client["id"], scope.identity_id, scope.session_hash,
            _sid(settings, scope.session_hash))
        await audit.record("oauth:authorization:grant", client=client,
                           identity_id=scope.identity_id,
                           client_id=request.client["client_id"])
    query = {"code": raw, "iss": issuer(settings)}
    if request.state:
        query["state"] = request.state
    return _append_query(request.redirect_uri, query)


def _sid(settings: Settings, session_hash: str) -> str:
    """The session id clients see: derived, so the portal's own session id never leaves."""
    return hmac.new(settings.secret_key.encode(), f"sid:{session_hash}".encode(),
                    hashlib.sha256).hexdigest()[:32]


async def _chosen_account(scope: Scope, wanted: str | None) -> str | None:
    if wanted and wanted != (scope.account.public_id if scope.account else None):
        member = await Membership.exists().where(
            (Membership.identity == scope.identity_id) & (Membership.account.public_id == wanted))
        if member:
            return wanted
    return scope.account.public_id if scope.account else None


# --- tokens ----------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def s256(verifier: str) -> str:
    return _b64(hashlib.sha256(verifier.encode()).digest())


def _at_hash(access_token: str) -> str:
    return _b64(hashlib.sha256(access_token.encode()).digest()[:16])


#: The person's claims, read by the same statement that issues or checks a token. ``i`` is
#: the identity, ``p`` its profile, ``g`` the grant (its scope and chosen account). The
#: ``accounts`` claim lists every account with the person's role, and the companies with
#: levels for the chosen account only (a person in hundreds of accounts must not get a
#: megabyte token); it comes only from the person's own memberships.
CLAIM_COLUMNS = """
    i.email, i.email_verified_at IS NOT NULL AS email_verified,
    p.first_name, p.last_name, p.language,
    CASE WHEN 'accounts' = ANY (string_to_array(g.scope, ' ')) THEN (
        SELECT coalesce(jsonb_agg(
            jsonb_build_object('id', a.public_id, 'name', a.name, 'role', m.role)
            || CASE WHEN a.public_id = g.account_public_id THEN jsonb_build_object(
                'companies', (
                    SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'key', c.key, 'name', c.name,
                        'level', CASE WHEN m.role IN ('owner', 'admin') THEN 'manage'
                                      ELSE ca.level END) ORDER BY c.name), '[]'::jsonb)
                    FROM company c
                    LEFT JOIN company_access ca ON ca.company = c.id AND ca.membership = m.id
                    WHERE c.account = a.id
                      AND (m.role IN ('owner', 'admin') OR ca.id IS NOT NULL)))
               ELSE jsonb_build_object() END
            ORDER BY a.name), '[]'::jsonb)
        FROM membership m JOIN account a ON a.id = m.account
        WHERE m.identity = i.id)
    END AS accounts_claim
"""
GRANT_COLUMNS = ("g.id AS grant_id, g.identity, g.session_hash, g.scope, g.account_public_id, "
                 "g.auth_time, g.amr, g.acr")

EXCHANGE = f"""
WITH used AS (
    UPDATE oauth_code SET used_at = now() WHERE code_hash = {{}} AND used_at IS NULL
    RETURNING *
), g AS (
    INSERT INTO oauth_grant (id, created_at, client, identity, session_hash, scope,
                             account_public_id, auth_time, amr, acr)
    SELECT id, now(), client, identity, session_hash, scope, account_public_id, auth_time,
           amr, acr
    FROM used
    WHERE client = {{}} AND expires_at > now() AND redirect_uri = {{}} AND code_challenge = {{}}
    RETURNING *
), rotation AS (
    INSERT INTO oauth_refresh_token (id, created_at, token_hash, family, expires_at)
    SELECT gen_random_uuid(), now(), {{}}, id, {{}} FROM g
)
SELECT used.client AS code_client, used.expires_at > now() AS fresh, used.redirect_uri,
       used.identity AS code_identity, used.nonce, g.id IS NOT NULL AS issued,
       {GRANT_COLUMNS}, {CLAIM_COLUMNS}
FROM used
LEFT JOIN g ON true
LEFT JOIN identity i ON i.id = g.identity
LEFT JOIN profile p ON p.identity = i.id
"""  # noqa: S608  (built from constants; the values are placeholders)

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
    # The challenge is public (it travelled in the authorization request), so comparing it
    # in SQL leaks nothing; a malformed verifier compares as '' and never matches.
    challenge = s256(verifier) if verifier and 43 <= len(verifier) <= 128 else ""
    rows = await OAuthCode.raw(
        EXCHANGE, token_hash(code or ""), client_row["id"], redirect_uri or "", challenge,
        token_hash(refresh_raw), datetime.now(UTC) + REFRESH_LIFETIME)
    if not rows:
        await _code_reused(code, client)
        raise OAuthError("invalid_grant", "the code is invalid, expired or used")
    row = rows[0]
    if not row["issued"]:
        if row["code_client"] != client_row["id"] or not row["fresh"]:
            raise OAuthError("invalid_grant", "the code is invalid, expired or used")
        if redirect_uri != row["redirect_uri"]:
            raise OAuthError("invalid_grant", "redirect_uri does not match")
        await audit.record("oauth:token:failure", client=client,
                           identity_id=row["code_identity"], reason="pkce")
        raise OAuthError("invalid_grant", "PKCE verification failed")
    await audit.record("oauth:token:issue", client=client, identity_id=row["identity"],
                       client_id=client_row["client_id"])
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


async def _issue_tokens(settings: Settings, client_row: dict[str, Any], grant: dict[str, Any],
                        refresh_raw: str, *, nonce: str) -> dict[str, Any]:
    """Sign the access and ID tokens for a grant row (its refresh token is already stored).
    Code exchanges are audited; refreshes are not (one row per refresh would drown the log)
    — their failures and reuse are."""
    person = claims_of(grant)
    key = await oidc_keys.current(settings.secret_key)
    now = datetime.now(UTC)
    subject = str(grant["identity"])
    sid = _sid(settings, grant["session_hash"]) if grant["session_hash"] else None
    header = {"alg": oidc_keys.ALGORITHM, "kid": key.kid}
    access_claims = {
        "iss": issuer(settings), "sub": subject, "aud": [client_row["client_id"]],
        "client_id": client_row["client_id"], "scope": grant["scope"],
        "iat": int(now.timestamp()), "exp": int((now + ACCESS_LIFETIME).timestamp()),
        "jti": secrets.token_hex(16), "grant_id": str(grant["grant_id"]),
    }
    if grant["account_public_id"]:
        access_claims["account"] = grant["account_public_id"]
    access_token = jwt.encode({**header, "typ": "at+jwt"}, access_claims, key)
    id_claims: dict[str, Any] = {
        "iss": issuer(settings), "sub": subject, "aud": client_row["client_id"],
        "azp": client_row["client_id"],
        "iat": int(now.timestamp()), "exp": int((now + ID_LIFETIME).timestamp()),
        "auth_time": int(grant["auth_time"].timestamp()), "at_hash": _at_hash(access_token),
        "amr": list(grant["amr"] or ["pwd"]), "acr": grant["acr"] or ACR_PASSWORD,
    }
    if sid:
        id_claims["sid"] = sid
    if nonce:
        id_claims["nonce"] = nonce
    id_claims.update(person)
    id_token = jwt.encode(header, id_claims, key)
    return {
        "access_token": access_token, "token_type": "Bearer",
        "expires_in": int(ACCESS_LIFETIME.total_seconds()), "id_token": id_token,
        "refresh_token": refresh_raw, "scope": grant["scope"],
    }


def claims_of(row: dict[str, Any]) -> dict[str, Any]:
    """The person's claims for the grant's scopes, from a row with CLAIM_COLUMNS."""
    scopes = row["scope"].split()
    claims: dict[str, Any] = {"sub": str(row["identity"])}
    if "email" in scopes:
        claims["email"] = row["email"]
        claims["email_verified"] = row["email_verified"]
    if "profile" in scopes:
        first, last = row["first_name"] or "", row["last_name"] or ""
        claims.update({"name": f"{first} {last}".strip(), "given_name": first,
                       "family_name": last})
        if row["language"]:
            claims["locale"] = row["language"]
    if "accounts" in scopes:
        accounts = row["accounts_claim"]
        claims["accounts"] = json.loads(accounts) if isinstance(accounts, str) else accounts
        if row["account_public_id"]:
            claims["account"] = row["account_public_id"]
    return claims


async def verify_access_token(settings: Settings, token: str) -> dict[str, Any]:
    try:
        decoded = jwt.decode(token, await oidc_keys.key_set(), algorithms=[oidc_keys.ALGORITHM])
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


async def revoke_token(client_row: dict[str, Any], token: str, client: Client) -> None:
    """RFC 7009: revoking a refresh token revokes its grant; unknown tokens are ignored."""
    async with ENGINE.transaction():
        rows = await OAuthGrant.raw(
            "UPDATE oauth_grant g SET revoked_at = now() FROM oauth_refresh_token t "
            "WHERE t.token_hash = {} AND g.id = t.family AND g.client = {} "
            "AND g.revoked_at IS NULL RETURNING g.identity",
            token_hash(token or ""), client_row["id"])
        if rows:
            await audit.record("oauth:token:revoke", client=client,
                               identity_id=rows[0]["identity"])


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
