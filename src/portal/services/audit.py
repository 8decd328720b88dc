"""Security and audit events, tagged ``source:subject:action``.

Call ``record`` inside the transaction of the change it describes, so both land or neither.

An accounting office's person acting in a client account (``ACTING_THROUGH``, set once per
request from the Scope by the session middleware) is named with the office in the client's
event, and the same event lands in the office's own log, naming the client.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from portal.services.paging import Window, page_count, parse_page
from portal.services.scope import Client, Scope
from portal.tables import AuditEvent

#: The Scope of a request made through an office's delegation (None otherwise).
ACTING_THROUGH: ContextVar[Scope | None] = ContextVar("acting_through", default=None)


async def record(
    tag: str,
    *,
    client: Client | None = None,
    identity_id: UUID | None = None,
    account_id: UUID | None = None,
    **data: Any,
) -> None:
    assert tag.count(":") == 2, "audit tags are source:subject:action"
    client = client or Client()
    values = {key: str(value) for key, value in data.items()}
    rows = [AuditEvent(tag=tag, identity_id=identity_id, account_id=account_id,
                       ip=client.ip[:64], user_agent=client.user_agent[:512], data=values)]
    acting = ACTING_THROUGH.get()
    if (acting is not None and acting.delegation is not None and acting.account is not None
            and account_id == acting.account.id and identity_id == acting.identity_id):
        office = acting.delegation.office
        values.update(actor_name=acting.actor_label, office_id=str(office.id),
                      office_name=office.name, delegation_id=str(acting.delegation.id))
        rows.append(AuditEvent(
            tag=tag, identity_id=identity_id, account_id=office.id, ip=client.ip[:64],
            user_agent=client.user_agent[:512],
            data={**values, "client_account_id": str(account_id),
                  "client_name": acting.account.name},
        ))
    await AuditEvent.insert(*rows)


HISTORY_PER_PAGE = 20


@dataclass(frozen=True)
class HistoryPage(Window):
    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int
    per_page: int = HISTORY_PER_PAGE


async def security_history(identity_id: UUID, tags: Iterable[str],
                           page: object = None) -> HistoryPage:
    """One page of the person's own security events (sign-ins, failures, password, MFA,
    sessions, applications: ``tags``), newest first; the account's events are not here."""
    wanted = sorted(set(tags))
    where = (AuditEvent.identity_id == identity_id) & AuditEvent.tag.is_in(wanted)
    total = await AuditEvent.count().where(where)
    pages = page_count(total, HISTORY_PER_PAGE)
    current = min(parse_page(page), pages)
    rows = await (
        AuditEvent.select(AuditEvent.tag, AuditEvent.created_at, AuditEvent.ip,
                          AuditEvent.user_agent)
        .where(where)
        .order_by(AuditEvent.created_at, ascending=False)
        .order_by(AuditEvent.id, ascending=False)
        .limit(HISTORY_PER_PAGE)
        .offset((current - 1) * HISTORY_PER_PAGE)
    )
    return HistoryPage(rows=rows, total=total, page=current, pages=pages)


async def for_identity(identity_id: UUID, limit: int = 50) -> list[dict[str, Any]]:
    return (
        await AuditEvent.select()
        .where(AuditEvent.identity_id == identity_id)
        .order_by(AuditEvent.created_at, ascending=False)
        .limit(limit)
    )
