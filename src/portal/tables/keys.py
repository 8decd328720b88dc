"""API keys of an account. The secret is shown once; only its hash is kept."""

from piccolo.columns import UUID, Array, ForeignKey, OnDelete, Text, Timestamptz, Varchar

from portal.tables._base import Base
from portal.tables.accounts import Account
from portal.tables.identity import Identity


class ApiKey(Base, tablename="api_key"):
    account = ForeignKey(Account, on_delete=OnDelete.cascade, index=True)
    name = Varchar(length=100)
    key_id = Varchar(length=16, unique=True)  # the public part shown in lists
    secret_hash = Varchar(length=64)
    scopes = Array(base_column=Varchar(length=32), default=list)
    company_ids = Array(base_column=UUID(), default=list)  # empty: every company
    created_by = ForeignKey(Identity, on_delete=OnDelete.set_null, null=True)
    expires_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)
    last_used_at = Timestamptz(null=True, default=None)
    note = Text(default="")
