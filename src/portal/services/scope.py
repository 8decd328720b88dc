"""Who is asking, and in which account: resolved once per request from the session."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from portal.security.permissions import Permission, permissions_for


@dataclass(frozen=True)
class Client:
    """Where a request came from, for audit events and session lists."""

    ip: str = ""
    user_agent: str = ""


@dataclass(frozen=True)
class AccountRef:
    id: UUID
    public_id: str
    name: str
    is_accounting_office: bool = False


@dataclass(frozen=True)
class DelegationRef:
    """Where a delegated person's access to the current account comes from: an accounting
    office's delegation, and the person's effective level per company (the lower of the
    client's ceiling and the office's assignment)."""

    id: UUID
    office: AccountRef
    company_levels: Mapping[UUID, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Scope:
    session_hash: str
    identity_id: UUID
    email: str
    language: str
    is_staff: bool = False
    display_name: str = ""
    account: AccountRef | None = None
    role: str | None = None
    permissions: frozenset[Permission] = field(default_factory=frozenset)
    #: When this session last proved the password or a code (sign-in counts).
    reauth_at: datetime | None = None
    #: An API key limited to some companies sees only those (None: no such limit).
    company_ids: frozenset[UUID] | None = None
    #: Set when the request is made with an API key (its public id), for audit events.
    api_key_id: str | None = None
    #: The person's second factors ("app", "email", "passkey") and what the current account
    #: demands ("none", "any", "app", "passkey": each level accepts the stronger ones too).
    mfa_factors: frozenset[str] = field(default_factory=frozenset)
    account_mfa_policy: str = "none"
    #: Set when the access to the current account comes through an accounting office's
    #: delegation rather than a membership (role "delegate").
    delegation: DelegationRef | None = None

    @property
    def access_source(self) -> str:
        """"membership" or "delegation": where the access to the current account comes from."""
        return "delegation" if self.delegation is not None else "membership"

    @property
    def actor_label(self) -> str:
        """The person as audit events name them: "Anna Nowak (Biuro Rachunkowe X)" when they
        act through an office."""
        person = self.display_name or self.email
        return f"{person} ({self.delegation.office.name})" if self.delegation else person

    @property
    def meets_account_mfa_policy(self) -> bool:
        if self.account_mfa_policy == "passkey":
            return "passkey" in self.mfa_factors
        if self.account_mfa_policy == "app":
            return bool({"app", "passkey"} & self.mfa_factors)
        if self.account_mfa_policy == "any":
            return bool(self.mfa_factors)
        return True

    @classmethod
    def build(cls, *, role: str | None = None, **values) -> Scope:
        perms = set(permissions_for(role))
        if values.get("is_staff"):
            perms.add(Permission.STAFF)
        return cls(role=role, permissions=frozenset(perms), **values)

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions
