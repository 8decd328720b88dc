"""The ID as an OpenID Connect provider: clients (the vendor's applications), authorization
codes, grants with their refresh-token families, consents, signing keys and the sign-ins each
client got."""

from piccolo.columns import (
    JSONB,
    Array,
    Boolean,
    ForeignKey,
    Integer,
    OnDelete,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.constraints import Unique

from portal.tables._base import Base
from portal.tables.catalogue import Application
from portal.tables.identity import Identity


class OAuthClient(Base, tablename="oauth_client"):
    client_id = Varchar(length=64, unique=True)
    name = Varchar(length=100)
    secret_hash = Varchar(length=64, null=True, default=None)  # None: a public client
    auth_method = Varchar(length=32, default="client_secret_basic")
    jwks = JSONB(default="{}")  # public keys for private_key_jwt, pasted by staff
    jwks_uri = Text(default="")  # or where the client publishes them (fetched, cached)
    redirect_uris = Array(base_column=Text(), default=list)
    post_logout_redirect_uris = Array(base_column=Text(), default=list)
    backchannel_logout_uri = Text(default="")
    allowed_scopes = Array(base_column=Varchar(length=32), default=list)
    # Scopes of service-to-service calls (client_credentials), chosen by staff; none: no
    # client_credentials for this client.
    service_scopes = Array(base_column=Varchar(length=64), default=list)
    first_party = Boolean(default=False)
    require_mfa = Boolean(default=False)
    application = ForeignKey(Application, on_delete=OnDelete.set_null, null=True)
    #: What its ID and access tokens are signed with: RS256, or ES256 if it accepts it.
    id_token_signed_response_alg = Varchar(length=8, default="RS256")
    disabled_at = Timestamptz(null=True, default=None)


class OAuthCode(Base, tablename="oauth_code"):
    code_hash = Varchar(length=64, unique=True)
    client = ForeignKey(OAuthClient, on_delete=OnDelete.cascade)
    identity = ForeignKey(Identity, on_delete=OnDelete.cascade)
    session_hash = Varchar(length=64)
    redirect_uri = Text()
    scope = Text()
    nonce = Text(default="")
    code_challenge = Varchar(length=128)
    account_public_id = Varchar(length=12, null=True, default=None)
    auth_time = Timestamptz()
    amr = Array(base_column=Varchar(length=16), default=list)
    acr = Varchar(length=64, default="")
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)


class OAuthGrant(Base, tablename="oauth_grant"):
    """One authorization a client got (a code exchange): what the person allowed, and the
    family of refresh tokens that rotate under it. ``revoked_at`` ends every token of the
    family at once, those stored after the revocation included: each use checks it (refresh,
    userinfo, introspection), so a reuse racing the legitimate use cannot be outrun."""

    client = ForeignKey(OAuthClient, on_delete=OnDelete.cascade)
    identity = ForeignKey(Identity, on_delete=OnDelete.cascade)
    session_hash = Varchar(length=64, default="", index=True)
    scope = Text()
    account_public_id = Varchar(length=12, null=True, default=None)
    auth_time = Timestamptz(null=True, default=None)
    amr = Array(base_column=Varchar(length=16), default=list)
    acr = Varchar(length=64, default="")
    revoked_at = Timestamptz(null=True, default=None)


class OAuthRefreshToken(Base, tablename="oauth_refresh_token"):
    """One rotation of a grant's refresh token: used once, then replaced by the next."""

    token_hash = Varchar(length=64, unique=True)
    family = ForeignKey(OAuthGrant, on_delete=OnDelete.cascade, index=True)
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)


class OAuthConsent(Base, tablename="oauth_consent"):
    identity = ForeignKey(Identity, on_delete=OnDelete.cascade)
    client = ForeignKey(OAuthClient, on_delete=OnDelete.cascade)
    scopes = Array(base_column=Varchar(length=32), default=list)
    one_consent = Unique(["identity", "client"])


class OAuthSigningKey(Base, tablename="oauth_signing_key"):
    kid = Varchar(length=64, unique=True)
    private_jwk_encrypted = Text()
    public_jwk = JSONB()
    retired_at = Timestamptz(null=True, default=None)  # still published for a while after


class OAuthLogin(Base, tablename="oauth_login"):
    """A client's sign-in riding on a portal session: whom to tell when that session ends."""

    client = ForeignKey(OAuthClient, on_delete=OnDelete.cascade)
    identity = ForeignKey(Identity, on_delete=OnDelete.cascade)
    session_hash = Varchar(length=64, index=True)
    sid = Varchar(length=64)
    one_per_session = Unique(["client", "session_hash"])


class LogoutNotice(Base, tablename="logout_notice"):
    """A back-channel logout notice to send (migration of 2026-12-03): queued in the
    transaction that ends the session, sent by whichever instance claims it, retried with
    backoff. The logout token is signed when it is sent (it is valid for two minutes)."""

    client_id = Varchar(length=64)
    uri = Text()
    subject = Varchar(length=64)  # the ID's sub; the identity may be gone by then
    sid = Varchar(length=64)
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz()
    claimed_until = Timestamptz(null=True, default=None)
    sent_at = Timestamptz(null=True, default=None)
    gave_up_at = Timestamptz(null=True, default=None)
    last_error = Text(default="")
