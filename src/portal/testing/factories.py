"""Small factories for tests: rows made directly, with sensible defaults."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from portal.security.passwords import hash_password
from portal.security.tokens import new_hex_id
from portal.tables import Account, Company, Identity, Membership, Profile

PASSWORD = "zielony balkon pełen pomidorów"  # noqa: S105

_HASHES: dict[str, str] = {}


async def _hashed(password: str) -> str:
    """One argon2 hash per password for the whole run: hashing costs ~0.1 s, and a salt per
    row is not what these tests are about."""
    if password not in _HASHES:
        _HASHES[password] = await hash_password(password)
    return _HASHES[password]


async def identity(
    email: str = "jan@example.com",
    password: str | None = PASSWORD,
    *,
    language: str = "",
    is_staff: bool = False,
    **profile: Any,
) -> UUID:
    row = (
        await Identity.insert(
            Identity(
                email=email,
                password_hash=await _hashed(password) if password else None,
                email_verified_at=datetime.now(UTC) if password else None,
                is_staff=is_staff,
            )
        ).returning(Identity.id)
    )[0]
    await Profile.insert(Profile(identity=row["id"], language=language, **profile))
    return row["id"]


async def account(
    owner: UUID | None = None,
    name: str = "Firma Testowa sp. z o.o.",
    nip: str = "5260250274",
    role: str = "owner",
) -> dict[str, Any]:
    row = (
        await Account.insert(Account(public_id=new_hex_id(12), name=name, nip=nip)).returning(
            Account.id, Account.public_id
        )
    )[0]
    company = (
        await Company.insert(
            Company(account=row["id"], key=new_hex_id(16), name=name, nip=nip, is_main=True)
        ).returning(Company.id)
    )[0]
    if owner is not None:
        await Membership.insert(Membership(account=row["id"], identity=owner, role=role))
    return {**row, "main_company_id": company["id"]}


async def company(
    account_id: UUID, name: str = "Spółka Zależna sp. z o.o.", nip: str = "", **fields: Any
) -> UUID:
    """A further (not main) company of an account."""
    row = (
        await Company.insert(
            Company(account=account_id, key=new_hex_id(16), name=name, nip=nip, **fields)
        ).returning(Company.id)
    )[0]
    return row["id"]


async def membership(
    identity_id: UUID, account_id: UUID, role: str = "member",
    companies: dict[UUID, str] | None = None,
) -> UUID:
    """Add an identity to an account with a role and, for members, per-company levels."""
    from portal.tables import CompanyAccess

    row = (
        await Membership.insert(
            Membership(account=account_id, identity=identity_id, role=role)
        ).returning(Membership.id)
    )[0]
    for company_id, level in (companies or {}).items():
        await CompanyAccess.insert(
            CompanyAccess(membership=row["id"], company=company_id, level=level)
        )
    return row["id"]
