"""Reading the mail the portal sent, from the outbox in the run's database (dev mode keeps it
there), as a person reads their inbox."""

from __future__ import annotations

import re

from e2e.server import SECRET_KEY
from portal.services import mail
from portal.tables import OutboxEmail


async def latest(to: str) -> str:
    row = await (
        OutboxEmail.select(OutboxEmail.text_body)
        .where(OutboxEmail.to_address == to)
        .order_by(OutboxEmail.created_at, ascending=False)
        .first()
    )
    assert row is not None, f"no mail to {to}"
    return mail.unseal(row["text_body"], SECRET_KEY)


async def count(to: str) -> int:
    return await OutboxEmail.count().where(OutboxEmail.to_address == to)


async def link(to: str, prefix: str) -> str:
    """The path of the newest mail's link starting with ``prefix`` (e.g. "/verify/")."""
    body = await latest(to)
    match = re.search(rf"https?://[^/\s]+({re.escape(prefix)}\S+)", body)
    assert match, f"no {prefix} link in the mail to {to}:\n{body}"
    return match.group(1)


async def code(to: str, digits: int = 8) -> str:
    match = re.search(rf"\b(\d{{{digits}}})\b", await latest(to))
    assert match, f"no {digits}-digit code in the mail to {to}"
    return match.group(1)
