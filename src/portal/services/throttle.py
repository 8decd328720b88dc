"""Guessing and mail limits kept in PostgreSQL, so every app process shares them.

``per_window`` failures inside a window block the subject; each such block lasts twice as
long as the one before (from ``window`` up to MAX_WAIT) until a success clears the count.
``max_consecutive`` failures since the last success block it until ``clear`` (the emailed
password reset), which an attacker cannot trigger for the owner: NIST SP 800-63B's "no more
than 100 consecutive failed attempts".
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from portal.tables import Throttle

MAX_WAIT = timedelta(hours=1)


@dataclass(frozen=True)
class Limit:
    name: str
    per_window: int
    window: timedelta
    max_consecutive: int | None = None

    def key(self, subject: str) -> str:
        digest = hashlib.sha256(subject.strip().lower().encode()).hexdigest()[:40]
        return f"{self.name}:{digest}"


LOGIN_IDENTITY = Limit("login:identity", 10, timedelta(minutes=5), max_consecutive=100)
LOGIN_ADDRESS = Limit("login:address", 30, timedelta(minutes=5))
MAIL_EMAIL = Limit("mail:email", 3, timedelta(hours=1))
MAIL_ADDRESS = Limit("mail:address", 20, timedelta(hours=1))
TOKEN_ADDRESS = Limit("token:address", 30, timedelta(minutes=5))

_HIT = """
INSERT INTO throttle (key, failures, consecutive, window_started_at, blocked_until)
VALUES ({}, 1, 1, now(), NULL)
ON CONFLICT (key) DO UPDATE SET
    failures = CASE WHEN throttle.window_started_at < now() - {}::interval
                    THEN 1 ELSE throttle.failures + 1 END,
    window_started_at = CASE WHEN throttle.window_started_at < now() - {}::interval
                    THEN now() ELSE throttle.window_started_at END,
    consecutive = throttle.consecutive + 1
RETURNING failures, consecutive
"""


async def blocked(limit: Limit, subject: str) -> bool:
    return (await check((limit, subject))).blocked


@dataclass(frozen=True)
class Check:
    blocked: bool
    #: The keys that have a row at all (a success only needs to clear those).
    counted: frozenset[str]


async def check(*pairs: tuple[Limit, str]) -> Check:
    """Whether any of several (limit, subject) pairs is blocked, in one query."""
    limits = {limit.key(subject): limit for limit, subject in pairs}
    rows = await Throttle.raw(
        "SELECT key, blocked_until > now() AS waiting, consecutive FROM throttle "
        "WHERE key = ANY({})",
        list(limits),
    )
    blocked = False
    for row in rows:
        cap = limits[row["key"]].max_consecutive
        if row["waiting"] or (cap is not None and row["consecutive"] >= cap):
            blocked = True
    return Check(blocked=blocked, counted=frozenset(row["key"] for row in rows))


async def fail(limit: Limit, subject: str) -> None:
    """Count one failure (or one use, for mail limits) and block when over the limit."""
    key = limit.key(subject)
    row = (await Throttle.raw(_HIT, key, limit.window, limit.window))[0]
    if row["failures"] >= limit.per_window:
        # Each spent window blocks for twice as long as the one before, up to MAX_WAIT.
        rounds = max(0, row["consecutive"] // limit.per_window - 1)
        wait = min(limit.window * 2 ** min(rounds, 16), MAX_WAIT)
        await Throttle.raw(
            "UPDATE throttle SET blocked_until = now() + {}::interval WHERE key = {}",
            wait,
            key,
        )


async def take(limit: Limit, subject: str) -> bool:
    """For rate limits on actions (mails): True if allowed now, and count it."""
    if await blocked(limit, subject):
        return False
    await fail(limit, subject)
    return True


async def clear(limit: Limit, subject: str) -> None:
    await Throttle.delete().where(Throttle.key == limit.key(subject))


_WINDOW = """
INSERT INTO throttle (key, failures, consecutive, window_started_at) VALUES ({}, 1, 0, now())
ON CONFLICT (key) DO UPDATE SET
    failures = CASE WHEN throttle.window_started_at <= now() - {}::interval
                    THEN 1 ELSE throttle.failures + 1 END,
    window_started_at = CASE WHEN throttle.window_started_at <= now() - {}::interval
                    THEN now() ELSE throttle.window_started_at END
RETURNING failures,
    ceil(extract(epoch FROM (window_started_at + {}::interval - now())))::int AS retry_after
"""


async def rate(key: str, per_window: int, window: timedelta) -> int | None:
    """A fixed-window rate limit in one statement: None when allowed, else the seconds until
    the window ends (for Retry-After)."""
    row = (await Throttle.raw(_WINDOW, key, window, window, window))[0]
    if row["failures"] > per_window:
        return max(1, row["retry_after"])
    return None
