"""Security and audit events: who did what, where, from which address."""

from piccolo.columns import JSONB, UUID, Varchar

from portal.tables._base import Base


class AuditEvent(Base, tablename="audit_event"):
    # Plain ids, not foreign keys: the record outlives what it describes.
    tag = Varchar(length=80, index=True)  # source:subject:action
    identity_id = UUID(null=True, default=None, index=True)
    account_id = UUID(null=True, default=None, index=True)
    ip = Varchar(length=64, default="")
    user_agent = Varchar(length=512, default="")
    data = JSONB(default="{}")
