"""Test data for e2e flows, written straight to the run's database with the shared factories.

e2e flows do not truncate (the server holds its own connections), so every person gets a unique
email and every test makes its own people.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from portal.testing import factories


def unique_email(label: str = "osoba") -> str:
    return f"{label}-{uuid4().hex[:12]}@example.com"


@dataclass(frozen=True)
class Person:
    email: str
    password: str
    identity_id: UUID
    #: the account made for them (``id``, ``public_id``, ``main_company_id``), if any
    account: dict[str, Any] | None


async def make_person(*, label: str = "osoba", with_account: bool = True, role: str = "owner",
                      account_name: str = "Firma Testowa sp. z o.o.", first_name: str = "Jan",
                      last_name: str = "Testowy") -> Person:
    """A verified ID with a password and, unless ``with_account=False``, an account they are a
    member of with ``role``. Needs the ``engine`` fixture (``make_person`` fixture has it)."""
    email = unique_email(label)
    identity_id = await factories.identity(email, factories.PASSWORD, first_name=first_name,
                                           last_name=last_name)
    account = None
    if with_account:
        account = await factories.account(identity_id, name=account_name, role=role)
    return Person(email=email, password=factories.PASSWORD, identity_id=identity_id,
                  account=account)
