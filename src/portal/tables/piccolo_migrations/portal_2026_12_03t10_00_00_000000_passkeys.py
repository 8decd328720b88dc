"""Passkeys (issue 14). Hand-written.

- ``passkey``: one row per WebAuthn credential of an identity. The credential id is unique
  across the whole relying party (a sign-in without an email finds its ID by it); the public
  key is the COSE key the authenticator gave at registration; ``sign_count`` only rises (a
  counter that goes back means a cloned authenticator: refused and recorded).
- ``webauthn_challenge``: every challenge handed to a browser, single-use (taken with a
  ``DELETE ... RETURNING``, so of two parallel uses exactly one finds it), bound to the session
  or sign-in attempt that asked for it (``binding``, a SHA-256), and expiring in 5 minutes.
- the account MFA policy gets the level ``passkey`` (phishing-resistant sign-in only).
"""

from portal.tables.sql_migration import sql_migration

ID = "2026-12-03T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "passkeys and WebAuthn challenges"

FORWARDS = [
    """CREATE TABLE passkey (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        created_at timestamptz NOT NULL DEFAULT now(),
        identity uuid NOT NULL REFERENCES identity (id) ON DELETE CASCADE,
        credential_id bytea NOT NULL,
        public_key bytea NOT NULL,
        sign_count bigint NOT NULL DEFAULT 0 CHECK (sign_count >= 0),
        backup_eligible boolean NOT NULL DEFAULT false,
        backup_state boolean NOT NULL DEFAULT false,
        transports varchar(16)[] NOT NULL DEFAULT '{}',
        aaguid varchar(36) NOT NULL DEFAULT '',
        device_type varchar(16) NOT NULL DEFAULT '',
        name varchar(100) NOT NULL DEFAULT '',
        last_used_at timestamptz NULL,
        CONSTRAINT passkey_credential_unique UNIQUE (credential_id),
        CONSTRAINT passkey_name_length CHECK (char_length(name) BETWEEN 1 AND 100)
    )""",
    "CREATE INDEX passkey_identity ON passkey (identity, created_at)",
    """CREATE TABLE webauthn_challenge (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        created_at timestamptz NOT NULL DEFAULT now(),
        purpose varchar(16) NOT NULL
            CHECK (purpose IN ('register', 'login', 'second_factor')),
        binding varchar(64) NOT NULL,
        identity uuid NULL REFERENCES identity (id) ON DELETE CASCADE,
        challenge bytea NOT NULL,
        expires_at timestamptz NOT NULL,
        CONSTRAINT webauthn_challenge_unique UNIQUE (challenge)
    )""",
    "CREATE INDEX webauthn_challenge_expiry ON webauthn_challenge (expires_at)",
    "ALTER TABLE account DROP CONSTRAINT account_mfa_policy",
    "ALTER TABLE account ADD CONSTRAINT account_mfa_policy "
    "CHECK (mfa_policy IN ('none', 'any', 'app', 'passkey'))",
]

BACKWARDS = [
    "UPDATE account SET mfa_policy = 'app' WHERE mfa_policy = 'passkey'",
    "ALTER TABLE account DROP CONSTRAINT account_mfa_policy",
    "ALTER TABLE account ADD CONSTRAINT account_mfa_policy "
    "CHECK (mfa_policy IN ('none', 'any', 'app'))",
    "DROP TABLE webauthn_challenge",
    "DROP TABLE passkey",
]


async def forwards():
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
