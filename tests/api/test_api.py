"""The JSON API: the key's account only, scopes, errors with a stable shape, limits."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from portal.tables import ApiKey, AuditEvent, Company, Invitation
from portal.testing import factories
from tests.api.conftest import bearer, make_key


async def test_a_key_reads_its_own_accounts_companies_and_none_of_another(client, owner):
    identity_id, account = owner
    await factories.company(account["id"], name="Druga firma")
    stranger = await factories.account(None, name="Cudze")
    secret = await make_key(identity_id, account)
    listing = await client.get("/api/v1/companies", headers=bearer(secret))
    assert listing.status_code == 200
    body = listing.json()
    assert body["total"] == 2 and {c["name"] for c in body["items"]} == {"Konto API",
                                                                        "Druga firma"}
    theirs = await client.get(f"/api/v1/companies/{stranger['main_company_id']}",
                              headers=bearer(secret))
    assert theirs.status_code == 404
    assert theirs.json()["error"]["code"] == "not_found"
    card = await client.get("/api/v1/account", headers=bearer(secret))
    assert card.json()["id"] == account["public_id"] and card.json()["company_count"] == 2


async def test_wrong_expired_or_revoked_keys_get_401(client, owner):
    identity_id, account = owner
    secret = await make_key(identity_id, account)
    tampered = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    for headers in ({}, bearer("pak_000000000000_" + "x" * 43), bearer(tampered),
                    {"Authorization": f"Basic {secret}"}):
        response = await client.get("/api/v1/companies", headers=headers)
        assert response.status_code == 401
        assert set(response.json()["error"]) >= {"status", "code", "message"}
    # A key in the URL is not a key.
    assert (await client.get(f"/api/v1/companies?api_key={secret}")).status_code == 401
    await ApiKey.update({ApiKey.expires_at: datetime.now(UTC) - timedelta(seconds=1)},
                        force=True)
    assert (await client.get("/api/v1/companies", headers=bearer(secret))).status_code == 401
    other = await make_key(identity_id, account)
    await ApiKey.update({ApiKey.revoked_at: datetime.now(UTC)}).where(
        ApiKey.key_id == other.split("_")[1])
    assert (await client.get("/api/v1/companies", headers=bearer(other))).status_code == 401


async def test_a_read_only_key_gets_403_on_writes_and_a_write_key_writes(client, owner):
    identity_id, account = owner
    reader = await make_key(identity_id, account)
    writer = await make_key(identity_id, account, scopes=("read", "write"))
    data = {"name": "Nowa przez API", "nip": "526-025-02-74"}
    refused = await client.post("/api/v1/companies", json=data, headers=bearer(reader))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert await Company.count().where(Company.name == "Nowa przez API") == 0
    created = await client.post("/api/v1/companies", json=data, headers=bearer(writer))
    assert created.status_code == 201, created.text
    company = created.json()
    assert company["nip"] == "5260250274" and company["is_main"] is False
    changed = await client.patch(f"/api/v1/companies/{company['id']}", json={"city": "Gdańsk"},
                                 headers=bearer(writer))
    assert changed.status_code == 200 and changed.json()["city"] == "Gdańsk"
    assert changed.json()["name"] == "Nowa przez API"
    assert await AuditEvent.exists().where(AuditEvent.tag == "api:company:create")
    assert await AuditEvent.exists().where(AuditEvent.tag == "api:company:update")


async def test_invalid_data_is_a_422_with_field_messages_and_changes_nothing(client, owner):
    identity_id, account = owner
    writer = await make_key(identity_id, account, scopes=("read", "write"))
    bad = await client.post("/api/v1/companies", json={"name": "X", "nip": "123"},
                            headers=bearer(writer))
    assert bad.status_code == 422
    assert "nip" in bad.json()["error"]["fields"]
    unknown = await client.post("/api/v1/companies", json={"name": "X", "account": "y"},
                                headers=bearer(writer))
    assert unknown.status_code == 400
    assert await Company.count() == 1


async def test_a_key_limited_to_companies_sees_only_those_and_cannot_add(client, owner):
    identity_id, account = owner
    other = await factories.company(account["id"], name="Ukryta")
    limited = await make_key(identity_id, account, scopes=("read", "write"),
                             company_ids=[account["main_company_id"]])
    listing = (await client.get("/api/v1/companies", headers=bearer(limited))).json()
    assert [c["name"] for c in listing["items"]] == ["Konto API"]
    hidden = await client.get(f"/api/v1/companies/{other}", headers=bearer(limited))
    assert hidden.status_code == 404
    refused = await client.post("/api/v1/companies", json={"name": "Nowa"},
                                headers=bearer(limited))
    assert refused.status_code == 403


async def test_rate_limit_answers_429_with_retry_after(client, owner, app):
    identity_id, account = owner
    secret = await make_key(identity_id, account)
    settings = app.state.settings
    app.state.settings = replace(settings, api_rate_per_minute=3)
    statuses = [(await client.get("/api/v1/account", headers=bearer(secret))).status_code
                for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = await client.get("/api/v1/account", headers=bearer(secret))
    app.state.settings = settings
    assert 0 < int(limited.headers["retry-after"]) <= 60
    assert limited.json()["error"]["code"] == "rate_limited"


async def test_last_used_is_written_at_most_once_a_minute(client, owner):
    identity_id, account = owner
    secret = await make_key(identity_id, account)
    await client.get("/api/v1/account", headers=bearer(secret))
    first = (await ApiKey.select(ApiKey.last_used_at).first())["last_used_at"]
    assert first is not None
    await client.get("/api/v1/account", headers=bearer(secret))
    assert (await ApiKey.select(ApiKey.last_used_at).first())["last_used_at"] == first


async def test_the_openapi_schema_documents_only_the_api(client):
    schema = (await client.get("/api/v1/schema/openapi.json")).json()
    assert all(path.startswith("/api/v1/") for path in schema["paths"])
    assert "/api/v1/companies" in schema["paths"]
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


async def test_people_and_their_access_can_be_read(client, owner):
    identity_id, account = owner
    member = await factories.identity("pracownik@example.com", first_name="Ola",
                                      last_name="Nowak")
    membership = await factories.membership(member, account["id"], "member",
                                            {account["main_company_id"]: "edit"})
    stranger = await factories.identity("obcy-api@example.com")
    other = await factories.account(stranger, name="Inne")
    secret = await make_key(identity_id, account)
    listing = (await client.get("/api/v1/people", headers=bearer(secret))).json()
    assert {p["email"] for p in listing["items"]} == {"api@example.com",
                                                      "pracownik@example.com"}
    person = (await client.get(f"/api/v1/people/{membership}", headers=bearer(secret))).json()
    assert person["role"] == "member" and person["name"] == "Ola Nowak"
    assert person["companies"] == [{"company_id": str(account["main_company_id"]),
                                    "level": "edit"}]
    from portal.tables import Membership

    theirs = (await Membership.select(Membership.id).where(
        Membership.account == other["id"]).first())["id"]
    assert (await client.get(f"/api/v1/people/{theirs}", headers=bearer(secret))
            ).status_code == 404


async def test_the_audit_log_shows_the_keys_account_only(client, owner):
    identity_id, account = owner
    writer = await make_key(identity_id, account, scopes=("read", "write"))
    await client.post("/api/v1/companies", json={"name": "Audytowana"}, headers=bearer(writer))
    stranger = await factories.identity("inny-audyt@example.com")
    other = await factories.account(stranger, name="Inne")
    await make_key(stranger, other)
    events = (await client.get("/api/v1/audit", headers=bearer(writer))).json()
    tags = [e["tag"] for e in events["items"]]
    assert "api:company:create" in tags and "api_key:key:create" in tags
    assert events["total"] == len(tags)
    assert tags.count("api_key:key:create") == 1  # the other account's key is not ours to see
    assert {e["actor_id"] for e in events["items"]} == {str(identity_id)}


async def test_a_key_limited_to_one_company_reads_only_events_about_it(client, owner):
    """An accounting office's key for one client company must not read its other clients
    (their ids and names are in the account's events)."""
    identity_id, account = owner
    writer = await make_key(identity_id, account, scopes=("read", "write"))
    ours = (await client.post("/api/v1/companies", json={"name": "Nasza Firma"},
                              headers=bearer(writer))).json()["id"]
    theirs = (await client.post("/api/v1/companies", json={"name": "Tajny Klient"},
                                headers=bearer(writer))).json()["id"]
    await client.patch(f"/api/v1/companies/{ours}", json={"city": "Kraków"},
                       headers=bearer(writer))
    limited = await make_key(identity_id, account, company_ids=[ours])
    events = (await client.get("/api/v1/audit", headers=bearer(limited))).json()
    assert events["items"], "it sees the events about its own company"
    assert {e["data"]["company_id"] for e in events["items"]} == {ours}
    assert events["total"] == len(events["items"])
    text = json.dumps(events)
    assert theirs not in text and "Tajny Klient" not in text
    # The whole account's key still reads everything.
    everything = (await client.get("/api/v1/audit", headers=bearer(writer))).json()
    assert theirs in json.dumps(everything)


# --- pages by key (issue 20) -------------------------------------------------------------------


async def _walk(client, path: str, secret: str) -> tuple[list[str], list[dict]]:
    """Every item of a list, following ``next_cursor`` from page 1 (and each answer)."""
    body = (await client.get(path, headers=bearer(secret))).json()
    seen, answers = [item["id"] for item in body["items"]], [body]
    while body["next_cursor"]:
        body = (await client.get(path, params={"page": body["page"] + 1,
                                              "after": body["next_cursor"]},
                                 headers=bearer(secret))).json()
        seen += [item["id"] for item in body["items"]]
        answers.append(body)
    return seen, answers


async def test_the_company_list_is_walked_by_key_without_skipping_or_repeating(client, owner):
    identity_id, account = owner
    for n in range(60):
        await factories.company(account["id"], name=f"Firma {n % 7} {n:02d}")
    secret = await make_key(identity_id, account)
    seen, answers = await _walk(client, "/api/v1/companies", secret)
    by_number = []
    for number in range(1, answers[0]["pages"] + 1):
        body = (await client.get(f"/api/v1/companies?page={number}",
                                 headers=bearer(secret))).json()
        by_number += [item["id"] for item in body["items"]]
    assert len(seen) == 61 == len(set(seen)) and seen == by_number
    assert [a["page"] for a in answers] == [1, 2, 3] and answers[-1]["next_cursor"] == ""


async def test_the_people_are_walked_by_key_without_invitations_or_repeats(client, owner):
    identity_id, account = owner
    for n in range(57):  # ties on the name too: the email, then the id, break them
        person = await factories.identity(f"osoba{n:02d}@example.com", first_name="Anna",
                                          last_name=("Nowak", "Łoś")[n % 2])
        await factories.membership(person, account["id"], "member")
    await Invitation.insert(*[
        Invitation(account=account["id"], email=f"zaproszona{n}@example.com", role="member",
                   token_hash=f"{n:064d}", expires_at=datetime.now(UTC) + timedelta(days=7))
        for n in range(5)])
    secret = await make_key(identity_id, account)
    seen, answers = await _walk(client, "/api/v1/people", secret)
    by_number = []
    for number in range(1, answers[0]["pages"] + 1):
        body = (await client.get(f"/api/v1/people?page={number}",
                                 headers=bearer(secret))).json()
        by_number += [item["id"] for item in body["items"]]
    # The key's own identity and the 57: invitations are not people of the account yet.
    assert len(seen) == 58 == len(set(seen)) == answers[0]["total"] and seen == by_number
    assert [a["page"] for a in answers] == [1, 2, 3] and answers[-1]["next_cursor"] == ""
    assert not any("zaproszona" in item["email"] for a in answers for item in a["items"])
    for cursor in ("x", "W10", answers[1]["next_cursor"] + "A", answers[0]["next_cursor"]):
        fallback = await client.get("/api/v1/people", params={"page": 3, "after": cursor},
                                    headers=bearer(secret))
        assert fallback.status_code == 200, cursor
        assert fallback.json()["items"] == answers[2]["items"], cursor


async def test_the_audit_log_is_walked_by_key_and_a_bad_cursor_falls_back(client, owner):
    identity_id, account = owner
    at = datetime.now(UTC)
    # Ties on the time too: the id breaks them, so nothing is skipped or repeated.
    await AuditEvent.insert(*[
        AuditEvent(tag="account:company:update", identity_id=identity_id,
                   account_id=account["id"], ip="10.0.0.1", user_agent="t",
                   data={"n": str(n)}, created_at=at - timedelta(seconds=n // 3))
        for n in range(130)])
    secret = await make_key(identity_id, account)
    seen, answers = await _walk(client, "/api/v1/audit", secret)
    assert len(seen) == len(set(seen)) == answers[0]["total"] >= 130
    assert [a["page"] for a in answers] == [1, 2, 3] and answers[0]["more"] is False
    expected = [str(row["id"]) for row in await AuditEvent.select(AuditEvent.id).where(
        AuditEvent.account_id == account["id"]).order_by(
        AuditEvent.created_at, ascending=False).order_by(AuditEvent.id, ascending=False)]
    assert seen == expected
    second = (await client.get("/api/v1/audit?page=2", headers=bearer(secret))).json()
    for cursor in ("x", "%00", "W10", answers[1]["next_cursor"] + "A", "A" * 2000):
        fallback = await client.get("/api/v1/audit", params={"page": 2, "after": cursor},
                                    headers=bearer(secret))
        assert fallback.status_code == 200, cursor
        assert fallback.json()["items"] == second["items"], cursor
    too_long = await client.get("/api/v1/audit", params={"after": "A" * 2001},
                                headers=bearer(secret))
    assert too_long.status_code == 400 and "after" in too_long.json()["error"]["fields"]


async def test_the_openapi_document_describes_the_cursors(client):
    schema = (await client.get("/api/v1/schema/openapi.json")).json()
    for path, page in (("/api/v1/companies", "CompanyPage"), ("/api/v1/audit", "AuditPage"),
                       ("/api/v1/people", "PeoplePage")):
        parameters = {p["name"]: p for p in schema["paths"][path]["get"]["parameters"]}
        assert "next_cursor" in parameters["after"]["description"], path
        body = schema["components"]["schemas"][page]["properties"]
        assert "after" in body["next_cursor"]["description"], page
