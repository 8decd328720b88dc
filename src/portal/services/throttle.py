"""Guessing and mail limits kept in PostgreSQL, so every app process shares them.

``per_window`` failures inside a window block the subject; each such block lasts twice as
long as the one before (from ``window`` up to MAX_WAIT) until a success clears the count.
``max_consecutive`` failures since the last success block it until ``clear`` (the emailed
password reset), which an attacker cannot trigger for the owner: NIST SP 800-63B's "no more
than 100 consecutive failed attempts".

An attempt is counted *before* its secret is checked: ``reserve`` is one upsert that counts
it only if the subject is not blocked and says which, so a burst of parallel requests gets no
more checks than the same requests one after another (a check-then-count leaves the door open
while the slow checks run). The caller then gives the reservation back when the attempt turns
out not to be a failure: ``clear`` after a success where the rule resets the count (the ID's
password limit), ``refund`` where it does not (the address, the second factor), and
``refund`` when the check never ran. A refund undoes exactly one count and the block that
count may have started, so the result is as if the attempt had never been made: the
doubling waits and the hard stop are as before. The one difference: attempts still in flight
count until they end, so no more than ``per_window`` can be in flight for one subject.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from portal.tables import Throttle

MAX_WAIT = timedelta(hours=1)


def network_of(address: str) -> str:
    """The network a client address stands for: an IPv4 address is itself (one home or
    office behind its NAT), an IPv6 address its /64 (one subscriber gets at least a /64 and
    can pick any address in it, so counting exact addresses would count nothing). Anything
    else (an empty or odd value from a test client) stays as it is."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(frozen=True)
class Limit:
    name: str
    per_window: int
    window: timedelta
    max_consecutive: int | None = None
    #: The subject is a client address, counted by its network (``network_of``).
    by_network: bool = False

    def key(self, subject: str) -> str:
        if self.by_network:
            subject = network_of(subject)
        digest = hashlib.sha256(subject.strip().lower().encode()).hexdigest()[:40]
        return f"{self.name}:{digest}"


LOGIN_IDENTITY = Limit("login:identity", 10, timedelta(minutes=5), max_consecutive=100)
LOGIN_ADDRESS = Limit("login:address", 30, timedelta(minutes=5), by_network=True)
MAIL_EMAIL = Limit("mail:email", 3, timedelta(hours=1))
MAIL_ADDRESS = Limit("mail:address", 20, timedelta(hours=1), by_network=True)
TOKEN_ADDRESS = Limit("token:address", 30, timedelta(minutes=5), by_network=True)

# One counted attempt, in one statement. The window restarts when it has passed; once
# ``per_window`` attempts are in it the subject waits, each spent window twice as long as the
# one before (consecutive // per_window - 1 doublings, up to MAX_WAIT). The parameters come
# once, in ``p``: key, per_window, window, MAX_WAIT, max_consecutive.
_COUNT = """
WITH p AS (SELECT {}::text AS key, {}::int AS per_window, {}::interval AS win,
                  {}::interval AS max_wait, {}::int AS cap)
INSERT INTO throttle AS t (key, failures, consecutive, window_started_at, blocked_until)
SELECT p.key, 1, 1, now(), CASE WHEN p.per_window <= 1 THEN now() + p.win END FROM p
ON CONFLICT (key) DO UPDATE SET
    failures = CASE WHEN t.window_started_at < now() - (SELECT win FROM p)
                    THEN 1 ELSE t.failures + 1 END,
    window_started_at = CASE WHEN t.window_started_at < now() - (SELECT win FROM p)
                    THEN now() ELSE t.window_started_at END,
    consecutive = t.consecutive + 1,
    blocked_until = CASE
        WHEN (CASE WHEN t.window_started_at < now() - (SELECT win FROM p)
                   THEN 1 ELSE t.failures + 1 END) >= (SELECT per_window FROM p)
        THEN now() + (SELECT least(
            win * power(2, least(greatest((t.consecutive + 1) / per_window - 1, 0), 16)),
            max_wait) FROM p)
        ELSE t.blocked_until END
{condition}
RETURNING t.failures, t.consecutive
"""

# Counted only while the subject is neither waiting nor at its hard stop. The conflicting row
# stays locked from the check to the update, so parallel attempts pass here one at a time,
# each seeing the counts of those before it.
_ALLOWED = """
WHERE (t.blocked_until IS NULL OR t.blocked_until <= now())
  AND ((SELECT cap FROM p) IS NULL OR t.consecutive < (SELECT cap FROM p))
"""
_RESERVE = _COUNT.replace("{condition}", _ALLOWED)
_FAIL = _COUNT.replace("{condition}", "")

_REFUND = """
UPDATE throttle SET
    failures = greatest(failures - 1, 0),
    consecutive = greatest(consecutive - 1, 0),
    blocked_until = CASE WHEN failures - 1 < {} THEN NULL ELSE blocked_until END
WHERE key = {}
"""
# One key cleared, another refunded (placeholders: cleared key, per_window, refunded key).
_CLEAR_AND_REFUND = "WITH cleared AS (DELETE FROM throttle WHERE key = {})" + _REFUND  # noqa: S608 (constants only)


def _params(limit: Limit, subject: str) -> tuple:
    return (limit.key(subject), limit.per_window, limit.window, MAX_WAIT,
            limit.max_consecutive)


@dataclass(frozen=True)
class Reservation:
    """The outcome of ``reserve``: whether the attempt may go ahead, and what was counted."""

    allowed: bool
    counted: tuple[tuple[Limit, str], ...] = ()

    def __bool__(self) -> bool:
        return self.allowed


@cache
def _reserve_all(count: int) -> str:
    """``count`` reservations in one statement, in order: the i-th is tried only if the one
    before it was counted (its CTE returned a row), as one statement after another would.
    Answers one row with ``c0``, ``c1``, ...: whether each was counted."""
    steps = []
    for i in range(count):
        step = re.sub(r"\bp\b", f"p{i}", _RESERVE.strip()).removeprefix("WITH ")
        params, insert = step.split("\nINSERT", 1)
        if i:  # only after the one before was counted
            after = f"FROM p{i} WHERE EXISTS (SELECT 1 FROM r{i - 1})\nON CONFLICT"  # noqa: S608
            insert = insert.replace(f"FROM p{i}\nON CONFLICT", after, 1)
        steps += [params, f"r{i} AS (INSERT{insert})"]
    # (numbered names of our own CTEs only: nothing from outside is in this text)
    counted = ", ".join(f"EXISTS (SELECT 1 FROM r{i}) AS c{i}" for i in range(count))  # noqa: S608
    return "WITH " + ",\n".join(steps) + f"\nSELECT {counted}"


async def reserve(*pairs: tuple[Limit, str]) -> Reservation:
    """Count one attempt against each (limit, subject), in order, in one statement: allowed
    only if every one of them was. When one refuses, those already counted are given back,
    so a refused attempt counts nowhere (as a blocked attempt never did)."""
    if len(pairs) == 1:
        allowed = bool(await Throttle.raw(_RESERVE, *_params(*pairs[0])))
        return Reservation(True, pairs) if allowed else Reservation(False)
    params = [value for limit, subject in pairs for value in _params(limit, subject)]
    row = (await Throttle.raw(_reserve_all(len(pairs)), *params))[0]
    counted = tuple(pair for i, pair in enumerate(pairs) if row[f"c{i}"])
    if len(counted) < len(pairs):
        await refund(*counted)
        return Reservation(False)
    return Reservation(True, counted)


async def refund(*pairs: tuple[Limit, str]) -> None:
    """Undo one counted attempt for each pair (and a block that attempt may have started):
    for attempts that turned out right where the count is not reset, and for attempts whose
    check never ran."""
    for limit, subject in pairs:
        await Throttle.raw(_REFUND, limit.per_window, limit.key(subject))


async def blocked(limit: Limit, subject: str) -> bool:
    """Whether the subject is waiting or at its hard stop now (a read: to decide whether to
    check a secret, use ``reserve``)."""
    rows = await Throttle.raw(
        "SELECT blocked_until > now() AS waiting, consecutive FROM throttle WHERE key = {}",
        limit.key(subject))
    if not rows:
        return False
    cap = limit.max_consecutive
    return bool(rows[0]["waiting"]) or (cap is not None and rows[0]["consecutive"] >= cap)


async def retry_after(limit: Limit, subject: str) -> int:
    """Seconds until a blocked subject may try again (at least 1; the window when it is at
    its hard stop, which only ``clear`` lifts)."""
    rows = await Throttle.raw(
        "SELECT extract(epoch FROM blocked_until - now()) AS wait FROM throttle "
        "WHERE key = {}", limit.key(subject))
    wait = rows[0]["wait"] if rows and rows[0]["wait"] is not None else 0
    return max(1, math.ceil(wait) if wait > 0 else int(limit.window.total_seconds()))


async def fail(limit: Limit, subject: str) -> None:
    """Count one failure whatever the state (no check follows: nothing to reserve)."""
    await Throttle.raw(_FAIL, *_params(limit, subject))


async def take(limit: Limit, subject: str) -> bool:
    """For rate limits on actions (mails): True if allowed now, and count it."""
    return (await reserve((limit, subject))).allowed


async def clear(limit: Limit, subject: str) -> None:
    await Throttle.delete().where(Throttle.key == limit.key(subject))


async def clear_and_refund(cleared: tuple[Limit, str], refunded: tuple[Limit, str]) -> None:
    """``clear(*cleared)`` and ``refund(refunded)`` in one statement (a right password: the
    ID's count starts again, the address gets its attempt back), one round trip less for
    every sign-in."""
    limit, subject = refunded
    await Throttle.raw(_CLEAR_AND_REFUND, cleared[0].key(cleared[1]), limit.per_window,
                       limit.key(subject))


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
