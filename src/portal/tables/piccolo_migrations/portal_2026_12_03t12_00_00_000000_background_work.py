"""Background work for several instances (issue 16). Hand-written.

- ``outbox_email.claimed_until``: a sender claims a batch (one committed statement, rows
  taken with ``FOR UPDATE SKIP LOCKED``) before it talks to the mail server, so no other
  instance sends them while it does, and a failover in the middle cannot unsend a claim.
- ``logout_notice``: back-channel logout notices, queued in the transaction that ends the
  session and sent (and retried with backoff) by whichever instance claims them.
- indexes for the cleanup of what expires (sessions, tokens, codes, throttle counters), so
  each bounded batch finds its rows without a scan.
"""

from portal.tables.sql_migration import sql_migration

ID = "2026-12-03T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "background work for several instances"

FORWARDS = [
    "ALTER TABLE outbox_email ADD COLUMN claimed_until timestamptz NULL",
    """CREATE TABLE logout_notice (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        created_at timestamptz NOT NULL DEFAULT now(),
        client_id varchar(64) NOT NULL,
        uri text NOT NULL,
        subject varchar(64) NOT NULL,
        sid varchar(64) NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        claimed_until timestamptz NULL,
        sent_at timestamptz NULL,
        gave_up_at timestamptz NULL,
        last_error text NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX logout_notice_due ON logout_notice (next_attempt_at) "
    "WHERE sent_at IS NULL AND gave_up_at IS NULL",
    "CREATE INDEX logout_notice_created ON logout_notice (created_at)",
    "CREATE INDEX session_expires_at ON session (expires_at)",
    "CREATE INDEX session_last_seen_at ON session (last_seen_at)",
    "CREATE INDEX one_time_token_expires_at ON one_time_token (expires_at)",
    "CREATE INDEX oauth_code_expires_at ON oauth_code (expires_at)",
    "CREATE INDEX oauth_refresh_token_expires_at ON oauth_refresh_token (expires_at)",
    "CREATE INDEX throttle_window_started_at ON throttle (window_started_at)",
]

BACKWARDS = [
    "DROP INDEX throttle_window_started_at",
    "DROP INDEX oauth_refresh_token_expires_at",
    "DROP INDEX oauth_code_expires_at",
    "DROP INDEX one_time_token_expires_at",
    "DROP INDEX session_last_seen_at",
    "DROP INDEX session_expires_at",
    "DROP TABLE logout_notice",
    "ALTER TABLE outbox_email DROP COLUMN claimed_until",
]


async def forwards():
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
