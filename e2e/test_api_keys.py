"""API keys, end to end: made in the browser (keyboard only), used by an integration, revoked."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
from playwright.async_api import Page, expect

from e2e import axe
from e2e.pages import LoginPage, tab_to
from e2e.server import Server
from portal.tables import ApiKey
from portal.testing import factories


async def make_key_by_keyboard(page: Page, name: str, *, write: bool = False) -> str:
    await page.goto("/api-keys")
    await tab_to(page, page.get_by_label("Nazwa klucza"), max_presses=80)
    await page.keyboard.type(name)
    if write:
        await tab_to(page, page.get_by_role("checkbox", name=re.compile("^Zapis")))
        await page.keyboard.press("Space")
    await tab_to(page, page.get_by_role("button", name="Utwórz klucz"))
    await page.keyboard.press("Enter")
    secret = page.get_by_test_id("api-key-secret")
    await expect(secret).to_be_visible()
    return (await secret.inner_text()).strip()


async def test_a_key_made_in_the_ui_reads_its_own_account_only(
        page: Page, make_person, server: Server):
    person = await make_person(label="api-klucz")
    stranger = await make_person(label="api-obcy")
    await LoginPage(page).sign_in(person.email, person.password)
    await page.goto("/api-keys")
    await axe.assert_no_serious_violations(page)
    secret = await make_key_by_keyboard(page, "Integracja z księgowością")
    assert secret.startswith("pak_")
    await axe.assert_no_serious_violations(page)
    await expect(page.get_by_role("cell", name="Integracja z księgowością", exact=True)
                 ).to_be_visible()

    async with httpx.AsyncClient(base_url=server.base_url + "/api/v1", timeout=10,
                                 headers={"Authorization": f"Bearer {secret}"}) as api:
        companies = (await api.get("/companies")).json()
        assert [c["id"] for c in companies["items"]] == [str(person.account["main_company_id"])]
        theirs = await api.get(f"/companies/{stranger.account['main_company_id']}")
        assert theirs.status_code == 404
        refused = await api.post("/companies", json={"name": "Nowa"})
        assert refused.status_code == 403  # a read-only key

        await page.goto("/api-keys")
        await page.get_by_role("link", name=re.compile("^Unieważnij Integracja")).click()
        await axe.assert_no_serious_violations(page)
        await page.get_by_role("button", name="Unieważnij klucz").click()
        await expect(page.get_by_role("status")).to_contain_text("unieważniony")
        assert (await api.get("/companies")).status_code == 401  # at the next request


async def test_wrong_and_expired_keys_get_401_and_a_write_key_writes(
        page: Page, make_person, server: Server):
    person = await make_person(label="api-zapis")
    await LoginPage(page).sign_in(person.email, person.password)
    secret = await make_key_by_keyboard(page, "Zapis", write=True)
    async with httpx.AsyncClient(base_url=server.base_url + "/api/v1", timeout=10) as api:
        auth = {"Authorization": f"Bearer {secret}"}
        created = await api.post("/companies", json={"name": "Przez API"}, headers=auth)
        assert created.status_code == 201
        wrong = await api.get("/companies", headers={"Authorization": f"Bearer {secret}x"})
        assert wrong.status_code == 401
        await ApiKey.update({ApiKey.expires_at: datetime.now(UTC) - timedelta(minutes=1)}
                            ).where(ApiKey.key_id == secret.split("_")[1])
        assert (await api.get("/companies", headers=auth)).status_code == 401
    await page.goto("/companies")
    await expect(page.get_by_role("link", name="Przez API", exact=True)).to_be_visible()


async def test_a_member_cannot_open_api_keys(page: Page, make_person):
    owner = await make_person(label="api-wlasciciel")
    member = await make_person(label="api-czlonek", with_account=False)
    await factories.membership(member.identity_id, owner.account["id"], role="member")
    await LoginPage(page).sign_in(member.email, member.password)
    response = await page.goto("/api-keys")
    assert response.status == 403
