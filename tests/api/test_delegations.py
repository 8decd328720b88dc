"""GET /api/v1/delegations: an office's key lists its client delegations, a client's key the
offices with access; nobody's people but the office's own, nothing before approval."""

from __future__ import annotations

from portal.services import offices
from tests.api.conftest import bearer, make_key
from tests.services.test_offices import CLIENT, assigned, pending_id, scope_in, world


async def test_the_office_and_the_client_each_see_their_side(client, settings):
    w = await world()
    await assigned(settings, w)
    office_key = await make_key(w.office_admin, w.office)
    client_key = await make_key(w.client_owner, w.client)

    as_office = (await client.get("/api/v1/delegations", headers=bearer(office_key))).json()
    assert as_office["offices"] == []
    [delegation] = as_office["clients"]
    assert delegation["status"] == "active" and delegation["level"] == "edit"
    assert delegation["account_id"] == w.client["public_id"]
    assert {c["name"] for c in delegation["companies"]} == {"Piekarnia Klient", "Sklep"}
    assert delegation["people"] == ["anna@biuro.example"]

    as_client = (await client.get("/api/v1/delegations", headers=bearer(client_key))).json()
    assert as_client["clients"] == []
    [office] = as_client["offices"]
    assert office["account_name"] == "Biuro Rachunkowe X" and office["people"] == [
        "anna@biuro.example"]
    assert "wlasciciel@klient.example" not in str(as_office)


async def test_a_pending_request_names_nothing_of_the_client_and_limited_keys_see_none(
        client, settings):
    w = await world()
    admin = await scope_in(w.office_admin, w.office["public_id"])
    await offices.request_access(settings, admin, {"account_id": w.client["public_id"],
                                                   "level": "view"}, CLIENT)
    assert await pending_id(w)
    office_key = await make_key(w.office_admin, w.office)
    [pending] = (await client.get("/api/v1/delegations",
                                  headers=bearer(office_key))).json()["clients"]
    assert pending["status"] == "pending" and pending["account_id"] == ""
    assert pending["account_name"] == "" and pending["companies"] == []
    limited = await make_key(w.client_owner, w.client, company_ids=[w.companies[1]])
    answer = (await client.get("/api/v1/delegations", headers=bearer(limited))).json()
    assert answer == {"clients": [], "offices": []}
    assert (await client.get("/api/v1/delegations")).status_code == 401
