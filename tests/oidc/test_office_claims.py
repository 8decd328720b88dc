"""The ``accounts`` claim lists the client accounts an office's person works in, with the
office they come through, while the delegation lives."""

from __future__ import annotations

from portal.services import offices
from portal.tables import Identity
from tests.oidc.conftest import code_for, decode, exchange
from tests.services.test_offices import CLIENT, assigned, scope_in, world


async def claims_of(client, app_client) -> dict:
    code, verifier = await code_for(client, app_client, scope="openid accounts")
    token = (await exchange(client, app_client, code, verifier)).json()["id_token"]
    return (await decode(client, token)).claims


async def test_delegated_accounts_are_in_the_claim_with_their_office(client, app_client,
                                                                      settings):
    w = await world()
    delegation = await assigned(settings, w)
    email = (await Identity.select(Identity.email).where(Identity.id == w.employee).first()
             )["email"]
    await client.sign_in(email, "zielony balkon pełen pomidorów")
    by_id = {a["id"]: a for a in (await claims_of(client, app_client))["accounts"]}
    assert by_id[w.office["public_id"]]["role"] == "member"
    delegated = by_id[w.client["public_id"]]
    assert delegated["role"] == "delegate"
    assert delegated["office"] == {"id": w.office["public_id"], "name": "Biuro Rachunkowe X"}

    owner = await scope_in(w.client_owner, w.client["public_id"])
    await offices.end(owner, delegation, CLIENT, side="client")
    ids = {a["id"] for a in (await claims_of(client, app_client))["accounts"]}
    assert w.client["public_id"] not in ids
