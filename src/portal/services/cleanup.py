"""What expires is deleted: sessions, one-time tokens, OAuth codes and refresh tokens, throttle
counters, WebAuthn challenges, sent mail and delivered logout notices past their keeping time.

Each table is emptied in bounded batches (``BATCH`` rows, one short transaction each, rows
taken with ``SKIP LOCKED`` so a batch never waits for a request holding one), and one instance
at a time does it (a transaction-scoped advisory lock: the others skip the round). Rows are
kept a while after they expire where the portal still tells something from them (an expired
link says it expired and offers a new one; a reused refresh token revokes its family).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from portal.db import ENGINE
from portal.services import sessions
from portal.tables import Session

log = logging.getLogger(__name__)

#: Rows per batch, and batches per table per round: a round never holds locks for long, and a
#: backlog (the first run on an old database) is worked off over a few rounds.
BATCH = 1000
MAX_BATCHES = 50
#: Any constant: one cleaning instance at a time.
_LOCK = 7_274_013_016


@dataclass(frozen=True)
class Expiry:
    table: str
    condition: str  # SQL; ``{}`` is the session idle lifetime in seconds


EXPIRIES = (
    # Idle or past its absolute lifetime: the same test as sessions.load.
    Expiry("session", "expires_at <= now() OR last_seen_at <= now() - make_interval(secs => "
                      "{})"),
    # A week after expiry an old link is simply unknown instead of "expired".
    Expiry("one_time_token", "expires_at < now() - interval '7 days'"),
    Expiry("oauth_code", "expires_at < now() - interval '1 day'"),
    Expiry("oauth_refresh_token", "expires_at < now() - interval '1 day'"),
    # A counter is dropped once its window and any wait are long over. The ID's password
    # counter also holds the failures in a row (the hard stop at 100): it is kept 90 days.
    Expiry("throttle", "(blocked_until IS NULL OR blocked_until < now()) AND ("
                       "(key NOT LIKE 'login:identity:%' "
                       "AND window_started_at < now() - interval '1 day') "
                       "OR window_started_at < now() - interval '90 days')"),
    Expiry("webauthn_challenge", "expires_at < now()"),
    # Sent mail keeps its recipient, subject and times for support for 30 days.
    Expiry("outbox_email", "sent_at < now() - interval '30 days'"),
    Expiry("logout_notice", "(sent_at IS NOT NULL OR gave_up_at IS NOT NULL) "
                            "AND created_at < now() - interval '7 days'"),
)


def _delete_batch(expiry: Expiry) -> str:
    """The statement deleting one batch (built from the constants above only)."""
    returning = "id_hash" if expiry.table == "session" else "1 AS one"
    return (f"DELETE FROM {expiry.table} WHERE ctid IN (SELECT ctid FROM {expiry.table} "  # noqa: S608
            f"WHERE {expiry.condition} LIMIT {BATCH} FOR UPDATE SKIP LOCKED) "
            f"RETURNING {returning}")


async def _exists(table: str) -> bool:
    rows = await Session.raw("SELECT to_regclass({}) IS NOT NULL AS present", table)
    return bool(rows[0]["present"])


async def run(lifetimes: sessions.Lifetimes) -> dict[str, int] | None:
    """One round: delete what has expired, table by table, in bounded batches. Returns the
    rows deleted per table, or None when another instance is cleaning right now."""
    deleted: dict[str, int] = {}
    idle = int(lifetimes.idle.total_seconds())
    for expiry in EXPIRIES:
        if not await _exists(expiry.table):  # a table of a feature not migrated here
            continue
        deleted[expiry.table] = 0
        for _ in range(MAX_BATCHES):
            async with ENGINE.transaction():
                got = await Session.raw("SELECT pg_try_advisory_xact_lock({}) AS mine", _LOCK)
                if not got[0]["mine"]:
                    return None
                params = (idle,) if "{}" in expiry.condition else ()
                rows = await Session.raw(_delete_batch(expiry), *params)
                if expiry.table == "session" and rows:
                    # Applications signed in through them are logged out (queued here).
                    await sessions.ended([row["id_hash"] for row in rows])
            deleted[expiry.table] += len(rows)
            if len(rows) < BATCH:
                break
    if any(deleted.values()):
        log.info("cleanup: %s", ", ".join(f"{table} {count}"
                                          for table, count in deleted.items() if count))
    return deleted
