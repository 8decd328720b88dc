"""The home page shows the person's access: role here, companies and levels, how many accounts."""

from portal.testing import factories


async def test_home_shows_a_members_companies_with_levels_and_their_accounts(client):
    owner = await factories.identity("szef-domu@example.com")
    account = await factories.account(owner, name="Biuro Rachunkowe")
    second = await factories.company(account["id"], name="Klient Drugi")
    await factories.company(account["id"], name="Klient Ukryty")
    member = await factories.identity("ksiegowa@example.com")
    await factories.membership(member, account["id"], "member",
                               {account["main_company_id"]: "manage", second: "view"})
    await factories.account(member, name="Własna Firma")
    await client.sign_in("ksiegowa@example.com", factories.PASSWORD)
    from portal.tables import Identity

    await Identity.update({Identity.last_account_id: account["public_id"]}).where(
        Identity.id == member)
    await client.post_form("/logout", {})
    await client.sign_in("ksiegowa@example.com", factories.PASSWORD)
    html = (await client.get("/")).text
    assert "Biuro Rachunkowe: Zarządzanie" in html
    assert "Klient Drugi: Podgląd" in html
    assert "Klient Ukryty" not in html
    assert "Twoje konta firm: 2" in html
