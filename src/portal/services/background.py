"""The background work of every app process: the mail outbox, back-channel logout notices,
the last sign-in of people in many accounts (membership.copy_due_last_logins) and the cleanup
of what expired. Safe with any number of processes and machines (each piece
claims its rows with SKIP LOCKED or takes an advisory lock) and through a database failover
(a round that fails is logged and the loop goes on; nothing is held in memory but an
outcome waiting to be recorded)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from portal import db
from portal.services import cleanup, mail, membership, oidc_logout, sessions
from portal.settings import Settings

log = logging.getLogger(__name__)

#: Seconds between rounds.
MAIL_EVERY = 2.0
LOGOUT_EVERY = 2.0
LAST_LOGIN_EVERY = 2.0
CLEANUP_EVERY = 300.0


async def forever(name: str, work: Callable[[], Awaitable[object]], every: float) -> None:
    """Run ``work`` every ``every`` seconds until cancelled; a failing round is logged (one
    line while the database is away, the traceback otherwise) and the next one comes."""
    while True:
        try:
            await work()
        except Exception as error:
            if db.unavailable(error):
                log.warning("%s: database unavailable (%s); retrying", name,
                            type(error).__name__)
                db.forget_connections()
            else:
                log.exception("%s failed; retrying", name)
        await asyncio.sleep(every)


async def _drain(deliver: Callable[[], Awaitable[int]]) -> None:
    while await deliver():
        pass


def start(settings: Settings) -> list[asyncio.Task]:
    """Start the loops of this process (cancel the tasks to stop them)."""
    lifetimes = sessions.Lifetimes.of(settings)
    loops = [
        forever("back-channel logout", lambda: _drain(
            lambda: oidc_logout.deliver_due(settings)), LOGOUT_EVERY),
        forever("cleanup", lambda: cleanup.run(lifetimes), CLEANUP_EVERY),
        forever("last sign-ins", lambda: _drain(membership.copy_due_last_logins),
                LAST_LOGIN_EVERY),
    ]
    if settings.smtp_url:
        loops.append(forever("mail sender", lambda: _drain(
            lambda: mail.deliver_due(settings)), MAIL_EVERY))
    return [asyncio.create_task(loop) for loop in loops]
