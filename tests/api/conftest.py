"""API fixtures: an account with companies and keys of each kind."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from portal.services import api_keys
from portal.services.scope import AccountRef, Client, Scope
from portal.testing import factories


async def make_key(identity_id, account, *, scopes=("read",), company_ids=()) -> str:
    """A key made through the service, as an owner who just signed in."""
    scope = replace(
        Scope.build(session_hash="test", identity_id=identity_id, email="a@example.com",
                    language="", role="owner",
                    account=AccountRef(account["id"], account["public_id"], "x")),
        reauth_at=datetime.now(UTC),
    )
    _, secret = await api_keys.create(scope, {"name": "test", "scopes": list(scopes),
                                              "company_ids": [str(c) for c in company_ids]},
                                      Client())
    return secret


@pytest.fixture
async def owner():
    identity_id = await factories.identity("api@example.com")
    account = await factories.account(identity_id, name="Konto API")
    return identity_id, account


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
