"""Klucze API through HTTP: made once with re-authentication, listed, revoked."""

from __future__ import annotations

import re

from portal.tables import ApiKey, AuditEvent, Session
from portal.testing import factories
from tests.conftest import field_error


async def owner_signed_in(client, email="klucze@example.com", role="owner"):
    identity_id = await factories.identity(email)
    account = await factories.account(identity_id, role=role)
    await client.sign_in(email, factories.PASSWORD)
    return identity_id, account


def secret_in(html: str) -> str:
    return re.search(r'data-testid="api-key-secret">([^<]+)<', html).group(1)


async def test_a_key_is_shown_once_and_only_its_hash_is_stored(client):
    await owner_signed_in(client)
    response = await client.post_form("/api-keys", {"name": "Księgowość",
                                                    "scopes": ["read", "write"]})
    assert response.status_code == 200
    secret = secret_in(response.text)
    assert re.fullmatch(r"pak_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", secret)
    row = await ApiKey.select().first()
    assert row["secret_hash"] != secret and secret not in str(row)
    assert row["scopes"] == ["read", "write"] and row["company_ids"] == []
    page = await client.get("/api-keys")
    assert secret not in page.text and f"pak_{row['key_id']}_" in page.text
    assert await AuditEvent.exists().where(AuditEvent.tag == "api_key:key:create")


async def test_the_form_refuses_bad_input_and_changes_nothing(client):
    await owner_signed_in(client)
    response = await client.post_form("/api-keys", {"name": "", "scopes": ["write"],
                                                    "expires_on": "wczoraj"})
    assert response.status_code == 422
    assert field_error(response.text, "name")
    assert field_error(response.text, "scopes")
    assert field_error(response.text, "expires_on")
    other = await factories.account(None, name="Obca")
    response = await client.post_form("/api-keys", {
        "name": "x", "scopes": ["read"], "company_ids": [str(other["main_company_id"])]})
    assert response.status_code == 422 and field_error(response.text, "company_ids")
    assert await ApiKey.count() == 0


async def test_making_a_key_needs_a_recent_sign_in_or_the_password(client):
    await owner_signed_in(client)
    await Session.raw("UPDATE session SET reauth_at = now() - interval '11 minutes'")
    refused = await client.post_form("/api-keys", {"name": "K", "scopes": ["read"]})
    assert refused.status_code == 422 and field_error(refused.text, "password")
    assert await ApiKey.count() == 0
    ok = await client.post_form("/api-keys", {"name": "K", "scopes": ["read"],
                                              "password": factories.PASSWORD})
    assert ok.status_code == 200 and 'data-testid="api-key-secret"' in ok.text


async def test_revoking_asks_first_then_takes_effect(client):
    await owner_signed_in(client)
    await client.post_form("/api-keys", {"name": "Do usunięcia", "scopes": ["read"]})
    key = await ApiKey.select(ApiKey.id).first()
    confirm = await client.get(f"/api-keys/{key['id']}/revoke")
    assert confirm.status_code == 200 and "Do usunięcia" in confirm.text
    assert (await ApiKey.select(ApiKey.revoked_at).first())["revoked_at"] is None
    done = await client.post_form(f"/api-keys/{key['id']}/revoke", {})
    assert done.status_code == 303
    assert (await ApiKey.select(ApiKey.revoked_at).first())["revoked_at"] is not None


async def test_members_cannot_manage_keys_and_other_accounts_keys_are_404(client, app):
    _, account = await owner_signed_in(client)
    await client.post_form("/api-keys", {"name": "Moje", "scopes": ["read"]})
    mine = (await ApiKey.select(ApiKey.id).first())["id"]

    from tests.conftest import Client, http_client

    stranger_id = await factories.identity("obcy@example.com")
    await factories.account(stranger_id, name="Obce konto")
    member_id = await factories.identity("czlonek@example.com")
    await factories.membership(member_id, account["id"], role="member")
    async with http_client(app) as raw:
        other = Client(raw)
        await other.sign_in("obcy@example.com", factories.PASSWORD)
        assert (await other.get(f"/api-keys/{mine}/revoke")).status_code == 404
        assert (await other.post_form(f"/api-keys/{mine}/revoke", {})).status_code == 404
        assert (await other.get("/api-keys/not-a-uuid/revoke")).status_code == 404
    async with http_client(app) as raw:
        member = Client(raw)
        await member.sign_in("czlonek@example.com", factories.PASSWORD)
        assert (await member.get("/api-keys")).status_code == 403
        refused = await member.post_form("/api-keys", {"name": "M", "scopes": ["read"]})
        assert refused.status_code == 403
    assert (await ApiKey.select(ApiKey.revoked_at).first())["revoked_at"] is None
    assert await ApiKey.count() == 1


async def test_an_end_date_is_the_end_of_that_day_where_the_person_is(client):
    """"Valid until 30.06.2027" is listed as that day, not as 01.07 01:59 (23:59:59 UTC)."""
    from portal.i18n import ZONE

    await owner_signed_in(client)
    created = await client.post_form("/api-keys", {"name": "Do końca czerwca",
                                                   "scopes": ["read"], "expires_on": "2027-06-30"})
    assert created.status_code == 200, created.text
    key = await ApiKey.select().first()
    assert key["expires_at"].astimezone(ZONE).strftime("%Y-%m-%d %H:%M") == "2027-06-30 23:59"
    listing = await client.get("/api-keys")
    assert "30.06.2027 23:59" in listing.text and "01.07.2027" not in listing.text
