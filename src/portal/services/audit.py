"""Security and audit events, tagged ``source:subject:action``.

Call ``record`` inside the transaction of the change it describes, so both land or neither.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from portal.services.scope import Client
from portal.tables import AuditEvent


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
    await AuditEvent.insert(
        AuditEvent(
            tag=tag,
            identity_id=identity_id,
            account_id=account_id,
            ip=client.ip[:64],
            user_agent=client.user_agent[:512],
            data={key: str(value) for key, value in data.items()},
        )
    )


async def for_identity(identity_id: UUID, limit: int = 50) -> list[dict[str, Any]]:
    return (
        await AuditEvent.select()
        .where(AuditEvent.identity_id == identity_id)
        .order_by(AuditEvent.created_at, ascending=False)
        .limit(limit)
    )
