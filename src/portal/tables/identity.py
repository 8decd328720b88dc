"""The ID: identities, their profiles, sessions, one-time tokens, recovery codes, passkeys,
WebAuthn challenges, throttles."""

from piccolo.columns import (
    JSONB,
    Array,
    BigInt,
    Boolean,
    Bytea,
    ForeignKey,
    Integer,
    OnDelete,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.constraints import Check, Unique
from piccolo.table import Table

from portal.db import ENGINE
from portal.tables._base import Base, one_of


class Identity(Base, tablename="identity"):
    # Unique on lower(email) is an index made by the migration; the email never changes.
    email = Varchar(length=320)
    password_hash = Text(null=True, default=None)
    email_verified_at = Timestamptz(null=True, default=None)
    is_staff = Boolean(default=False)
    last_login_at = Timestamptz(null=True, default=None)
    # MFA: the TOTP secret is encrypted with a key derived from PORTAL_SECRET_KEY.
    totp_secret_encrypted = Text(null=True, default=None)
    totp_confirmed_at = Timestamptz(null=True, default=None)
    totp_last_step = BigInt(null=True, default=None)
    mfa_email_enabled = Boolean(default=False)
    last_account_id = Varchar(length=12, null=True, default=None)


class Profile(Base, tablename="profile"):
    identity = ForeignKey(Identity, on_delete=OnDelete.cascade, unique=True)
    first_name = Varchar(length=100, default="")
    last_name = Varchar(length=100, default="")
    phone = Varchar(length=40, default="")
    language = Varchar(length=2, default="")  # "": follow the browser
    known_language = Check(one_of("language", ["", "pl", "en"]))


class Session(Base, tablename="session"):
    """A server-side session. The cookie holds a random id; only its SHA-256 is stored."""

    id_hash = Varchar(length=64, unique=True)
    identity = ForeignKey(Identity, on_delete=OnDelete.cascade, null=True, index=True)
    account_public_id = Varchar(length=12, null=True, default=None)
    last_seen_at = Timestamptz()
    expires_at = Timestamptz()
    ip = Varchar(length=64, default="")
    user_agent = Varchar(length=512, default="")
    mfa_at = Timestamptz(null=True, default=None)  # set when a second factor was used
    amr = Array(base_column=Varchar(length=16), default=list)  # RFC 8176: pwd, otp, ...
    reauth_at = Timestamptz(null=True, default=None)


class OneTimeToken(Base, tablename="one_time_token"):
    """Verification, password-reset, invitation and emailed-code tokens, hashed at rest."""

    purpose = Varchar(length=32)
    token_hash = Varchar(length=64, unique=True)
    identity = ForeignKey(Identity, on_delete=OnDelete.cascade, null=True, index=True)
    email = Varchar(length=320, default="")
    data = JSONB(default="{}")
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
    attempts = Integer(default=0)


class RecoveryCode(Base, tablename="recovery_code"):
    identity = ForeignKey(Identity, on_delete=OnDelete.cascade, index=True)
    code_hash = Varchar(length=64)
    used_at = Timestamptz(null=True, default=None)
    one_code_once = Unique(["identity", "code_hash"])


class Passkey(Base, tablename="passkey"):
    """A WebAuthn credential (a passkey) of an identity; made by the migration of 2026-12-03."""

    identity = ForeignKey(Identity, on_delete=OnDelete.cascade, index=True)
    credential_id = Bytea(unique=True)
    public_key = Bytea()  # COSE, as the authenticator gave it at registration
    sign_count = BigInt(default=0)
    backup_eligible = Boolean(default=False)
    backup_state = Boolean(default=False)
    transports = Array(base_column=Varchar(length=16), default=list)
    aaguid = Varchar(length=36, default="")
    device_type = Varchar(length=16, default="")  # single_device | multi_device
    name = Varchar(length=100, default="")
    last_used_at = Timestamptz(null=True, default=None)


class WebauthnChallenge(Base, tablename="webauthn_challenge"):
    """A challenge handed to a browser: single-use, bound to a session or a sign-in attempt
    (``binding`` is a SHA-256 of its token), expiring in 5 minutes."""

    purpose = Varchar(length=16)  # register | login | second_factor
    binding = Varchar(length=64)
    identity = ForeignKey(Identity, on_delete=OnDelete.cascade, null=True)
    challenge = Bytea(unique=True)
    expires_at = Timestamptz()


class Throttle(Table, db=ENGINE, tablename="throttle"):
    """Guessing limits shared by every app process: one row per (scope, key)."""

    key = Varchar(length=200, primary_key=True)
    failures = Integer(default=0)  # in the current window
    consecutive = Integer(default=0)  # since the last success, across windows
    window_started_at = Timestamptz()
    blocked_until = Timestamptz(null=True, default=None)
