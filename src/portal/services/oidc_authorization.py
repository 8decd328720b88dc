"""The authorization request (OpenID Connect Core 3.1.2): its validation, the person's
consent, and the single-use code that goes back to the client's redirect URI."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse, urlsplit
from uuid import UUID

from portal.db import ENGINE
from portal.i18n import LANGUAGES
from portal.security.tokens import new_token, token_hash
from portal.services import audit
from portal.services.oidc import (
    ACR_MFA,
    ACR_PASSWORD,
    ACR_PHR,
    CODE_LIFETIME,
    BadClientRedirect,
    OAuthError,
    issuer,
    sid,
)
from portal.services.oidc_clients import get_client
from portal.services.scope import Client, Scope
from portal.settings import Settings
from portal.tables import Membership, OAuthCode, OAuthConsent, OAuthLogin

#: The longest state and nonce accepted (they travel in URLs and are kept with the code).
MAX_STATE = 500


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
    language: str | None = None  # from ui_locales: the pages of this request speak it

    @property
    def wants_mfa(self) -> bool:
        return self.client["require_mfa"] or ACR_MFA in self.acr_values or self.wants_phr

    @property
    def wants_phr(self) -> bool:
        """A phishing-resistant sign-in (a passkey) is asked for."""
        return ACR_PHR in self.acr_values

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
        state=params.get("state", ""), nonce=params.get("nonce", ""),
        code_challenge=params.get("code_challenge", ""),
        prompt=set(params.get("prompt", "").split()),
        acr_values=params.get("acr_values", "").split(),
        account=params.get("account") or None,
        language=ui_language(params.get("ui_locales")),
    )
    try:
        _check_authorize(request, params)
    except OAuthError as error:
        error.request = request
        raise
    return request


def _check_authorize(request: AuthorizeRequest, params: dict[str, str]) -> None:
    client, scopes = request.client, request.scopes
    if len(request.state) > MAX_STATE or len(request.nonce) > MAX_STATE:
        # Refused, not cut: a cut state or nonce would fail the client's own check silently.
        # The error does not echo a state this long back either.
        request.state = ""
        raise OAuthError("invalid_request", f"state and nonce may have at most {MAX_STATE} "
                                            "characters")
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
            acr=session_acr(session),
            expires_at=datetime.now(UTC) + CODE_LIFETIME,
        ))
        await OAuthLogin.raw(
            "INSERT INTO oauth_login (id, created_at, client, identity, session_hash, sid) "
            "VALUES (gen_random_uuid(), now(), {}, {}, {}, {}) "
            "ON CONFLICT (client, session_hash) DO NOTHING",
            request.client["id"], scope.identity_id, scope.session_hash,
            sid(settings, scope.session_hash))
        await audit.record("oauth:authorization:grant", client=client,
                           identity_id=scope.identity_id,
                           client_id=request.client["client_id"])
    query = {"code": raw, "iss": issuer(settings)}
    if request.state:
        query["state"] = request.state
    return _append_query(request.redirect_uri, query)



def session_acr(session: dict[str, Any]) -> str:
    """The strongest class a session's sign-in meets: phishing-resistant (a passkey), two
    factors, or the password."""
    if "hwk" in (session["amr"] or []):
        return ACR_PHR
    return ACR_MFA if session["mfa_at"] else ACR_PASSWORD


def satisfies(request: AuthorizeRequest, session: dict[str, Any]) -> bool:
    """Whether a session's sign-in is as strong as the authorization request asks."""
    if request.wants_phr:
        return "hwk" in (session["amr"] or [])
    return not request.wants_mfa or bool(session["mfa_at"])


async def _chosen_account(scope: Scope, wanted: str | None) -> str | None:
    if wanted and wanted != (scope.account.public_id if scope.account else None):
        member = await Membership.exists().where(
            (Membership.identity == scope.identity_id) & (Membership.account.public_id == wanted))
        if member:
            return wanted
    return scope.account.public_id if scope.account else None


def ui_language(ui_locales: str | None) -> str | None:
    """The first of the request's ``ui_locales`` (space-separated BCP 47 tags, preferred
    first) that the portal speaks, or None."""
    for tag in (ui_locales or "").split():
        primary = tag.lower().split("-")[0]
        if primary in LANGUAGES:
            return primary
    return None


@dataclass(frozen=True)
class Continuation:
    """What a sign-in page needs to know about the authorization request it returns to."""

    redirect_uris: list[str] = field(default_factory=list)
    language: str | None = None


async def continuation(next_url: str | None) -> Continuation:
    """The authorization request a sign-in in progress returns to (``next``): its redirect URI
    when the client registered it, and the language it asked for (``ui_locales``). Sign-in
    pages let their forms go on to that URI (CSP ``form-action`` applies to the redirects
    after a form), so that signing in works without JavaScript, and nowhere else."""
    parts = urlsplit(next_url or "")
    if parts.path != "/oauth/authorize" or parts.netloc:
        return Continuation()
    query = parse_qs(parts.query)
    client_id = (query.get("client_id") or [""])[0]
    redirect_uri = (query.get("redirect_uri") or [""])[0]
    language = ui_language((query.get("ui_locales") or [""])[0])
    client = await get_client(client_id)
    if client is None or redirect_uri not in client["redirect_uris"]:
        return Continuation(language=language)
    return Continuation([redirect_uri], language)
