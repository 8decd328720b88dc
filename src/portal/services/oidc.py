"""The ID as an OpenID Connect provider: what every part of it shares — the protocol's
constants, its errors, the issuer and the discovery document that says what is implemented.

The parts, one module each: ``oidc_clients`` (registration and client authentication),
``oidc_authorization`` (the authorization request, consent, codes), ``oidc_tokens`` (the
token endpoint, userinfo, revocation, the person's grants), ``oidc_claims`` (what a token
says about the person), ``oidc_keys`` (signing keys) and ``oidc_logout`` (single logout).
JOSE (signing, verifying, JWKS) is joserfc's; these modules hold the protocol's rules.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from portal.services import oidc_keys
from portal.settings import Settings

if TYPE_CHECKING:
    from portal.services.oidc_authorization import AuthorizeRequest

CODE_LIFETIME = timedelta(seconds=60)
ACCESS_LIFETIME = timedelta(minutes=10)
ID_LIFETIME = timedelta(minutes=10)
REFRESH_LIFETIME = timedelta(days=30)
SCOPES = ("openid", "profile", "email", "accounts", "offline_access")
ACR_PASSWORD = "urn:portal:acr:pwd"  # noqa: S105  (an acr value)
ACR_MFA = "urn:portal:acr:mfa"
#: A phishing-resistant sign-in: a passkey (amr "hwk"), alone or after the password.
ACR_PHR = "urn:portal:acr:phr"
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
#: What a client may prove itself with at the introspection endpoint (not public clients).
CONFIDENTIAL_AUTH_METHODS = AUTH_METHODS[:3]
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: The signing algorithms a private_key_jwt client assertion may use.
ASSERTION_ALGORITHMS = ("RS256", "PS256", "ES256")
#: The claims each scope releases (``oidc_claims.claims_of`` gives exactly these).
SCOPE_CLAIMS = {
    "openid": ("sub",),
    "email": ("email", "email_verified"),
    "profile": ("name", "given_name", "family_name", "locale"),
    "accounts": ("accounts", "account"),
    "offline_access": (),
}
#: The claims of the ID token itself, beside the person's.
ID_TOKEN_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid",
                   "azp", "at_hash")

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
        "introspection_endpoint": f"{base}/oauth/introspect",
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": list(GRANT_TYPES),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(oidc_keys.ALGORITHMS),
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "revocation_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "introspection_endpoint_auth_methods_supported": list(CONFIDENTIAL_AUTH_METHODS),
        "introspection_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "claims_supported": list(dict.fromkeys(
            [*ID_TOKEN_CLAIMS, *(c for claims in SCOPE_CLAIMS.values() for c in claims)])),
        "acr_values_supported": [ACR_PASSWORD, ACR_MFA, ACR_PHR],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": False,
        "ui_locales_supported": ["pl", "en"],
    }


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode()).digest())



def sid(settings: Settings, session_hash: str) -> str:
    """The session id clients see: derived, so the portal's own session id never leaves."""
    return hmac.new(settings.secret_key.encode(), f"sid:{session_hash}".encode(),
                    hashlib.sha256).hexdigest()[:32]
