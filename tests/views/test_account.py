"""/accounts/new, /account (the card, edited inline), /accounts (the switcher's list) and
/accounts/switch, as a page and as an htmx fragment."""

from __future__ import annotations

import re

from portal.tables import Account, AuditEvent, Company, Identity, Membership, Session
from portal.testing import factories
from tests.conftest import Client, field_error, http_client

VALID = {
    "name": "Nowe Konto sp. z o.o.",
    "nip": "774-000-14-54",
    "is_accounting_office": "1",
    "street": "ul. Polna 2",
    "postal_code": "09-400",
    "city": "Płock",
    "country": "PL",
}


async def owner_signed_in(client, email="wlasciciel@example.com", name="Konto Testowe"):
    identity_id = await factories.identity(email)
    account = await factories.account(identity_id, name=name)
    await client.sign_in(email, factories.PASSWORD)
    return identity_id, account


async def signed_in_as(client, account, role, email):
    identity_id = await factories.identity(email)
    await factories.membership(identity_id, account["id"], role)
    await client.sign_in(email, factories.PASSWORD)
    return identity_id


async def current_account(client) -> str | None:
    """The account the session works in, as the switcher button names it."""
    html = (await client.get("/profile")).text
    match = re.search(r'<span class="account-current">([^<]*)</span>', html)
    return match.group(1) if match else None


# --- creating an account -----------------------------------------------------------------------


async def test_a_person_without_an_account_is_led_to_create_one(client):
    await factories.identity("nowy@example.com")
    await client.sign_in("nowy@example.com", factories.PASSWORD)
    home = await client.get("/")
    assert home.status_code == 303 and home.headers["location"] == "/accounts/new"
    page = await client.get("/accounts/new")
    assert page.status_code == 200
    for field in ("name", "nip", "is_accounting_office", "street", "postal_code", "city",
                  "country"):
        assert f'name="{field}"' in page.text
    assert "Załóż konto firmy" in page.text


async def test_creating_an_account_makes_it_current_with_its_main_company(client):
    me = await factories.identity("tworca@example.com")
    await client.sign_in("tworca@example.com", factories.PASSWORD)
    response = await client.post_form("/accounts/new", VALID)
    assert response.status_code == 303 and response.headers["location"] == "/account"
    account = await Account.select().first()
    assert account["nip"] == "7740001454" and account["is_accounting_office"] is True
    assert (await Membership.select().first())["role"] == "owner"
    card = await client.get("/account")
    assert card.status_code == 200
    assert account["public_id"] in card.text
    assert "Nowe Konto sp. z o.o." in card.text  # the main company, on the card
    assert await current_account(client) == "Nowe Konto sp. z o.o."
    companies = await client.get("/companies")
    assert "Firma główna" in companies.text and "Nowe Konto sp. z o.o." in companies.text
    assert (await Identity.select().where(Identity.id == me).first())["last_account_id"] == (
        account["public_id"])


async def test_a_bad_nip_is_a_field_error_values_are_kept_and_nothing_is_created(client):
    await factories.identity("blad@example.com")
    await client.sign_in("blad@example.com", factories.PASSWORD)
    for htmx in (False, True):
        response = await client.post_form("/accounts/new", {**VALID, "nip": "123-456-78-90",
                                                             "postal_code": "0940"}, htmx=htmx)
        assert response.status_code == 422
        assert field_error(response.text, "nip").startswith("To nie jest poprawny NIP")
        assert field_error(response.text, "postal_code")
        assert 'value="Nowe Konto sp. z o.o."' in response.text
        assert 'value="123-456-78-90"' in response.text
        assert 'name="is_accounting_office" type="checkbox" value="1" checked' in response.text
        assert ("<html" in response.text) is not htmx
    assert await Account.count() == 0 and await Company.count() == 0
    assert await Membership.count() == 0


async def test_two_accounts_may_have_the_same_nip(client, app):
    await factories.identity("a@example.com")
    await factories.identity("b@example.com")
    await client.sign_in("a@example.com", factories.PASSWORD)
    assert (await client.post_form("/accounts/new", VALID)).status_code == 303
    async with http_client(app) as raw:
        other = Client(raw)
        await other.sign_in("b@example.com", factories.PASSWORD)
        assert (await other.post_form("/accounts/new", VALID)).status_code == 303
    assert await Account.count().where(Account.nip == "7740001454") == 2


async def test_odd_input_never_breaks_the_form(client):
    await factories.identity("dziwne@example.com")
    await client.sign_in("dziwne@example.com", factories.PASSWORD)
    odd = {"name": "x" * 50_000, "nip": "\x01" * 30, "street": "ulica\x01", "postal_code": "😀",
           "city": "<script>alert(1)</script>", "country": "ZZ", "is_accounting_office": "x"}
    # A NUL anywhere is refused before the form is read (web/input.py).
    nul = await client.post_form("/accounts/new", {**odd, "street": "ulica\x00"})
    assert nul.status_code == 400
    response = await client.post_form("/accounts/new", odd)
    assert response.status_code == 422
    assert "<script>alert(1)</script>" not in response.text
    for field in ("name", "nip", "street", "country"):
        assert field_error(response.text, field), field
    assert await Account.count() == 0


# --- the card ----------------------------------------------------------------------------------


async def test_the_card_shows_everything_design_lists(client):
    _owner, account = await owner_signed_in(client)
    await factories.company(account["id"], name="Druga")
    await factories.membership(await factories.identity("inny@example.com"), account["id"])
    html = (await client.get("/account")).text
    for label in ("Nazwa", "NIP", "Firma główna", "Prowadzę biuro rachunkowe", "Adres", "Kraj",
                  "Liczba firm", "Liczba użytkowników", "ID konta"):
        assert f"<dt>{label}</dt>" in html, label
    assert re.search(r"<dt>Liczba firm</dt><dd><a href=\"/companies\">2</a></dd>", html)
    assert "<dt>Liczba użytkowników</dt><dd>2</dd>" in html
    assert account["public_id"] in html
    assert 'href="/account/edit"' in html
    assert 'href="/accounts/new"' in html


async def test_the_htmx_card_is_the_fragment_only(client):
    await owner_signed_in(client)
    response = await client.get("/account", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<section id="account-card"')
    assert response.headers["vary"] == "HX-Request"


async def test_owner_edits_inline_with_htmx_and_without(client):
    _, _account = await owner_signed_in(client)
    form = await client.get("/account/edit", headers={"HX-Request": "true"})
    assert form.text.lstrip().startswith('<form id="account-card"')
    assert 'value="Konto Testowe"' in form.text
    saved = await client.post_form("/account", {**VALID, "name": "Po Zmianie"}, htmx=True)
    assert saved.status_code == 200
    assert saved.text.lstrip().startswith('<section id="account-card"')
    assert 'hx-swap-oob="innerHTML:#live"' in saved.text and "Zapisano dane konta." in saved.text
    assert (await Account.select(Account.name).first())["name"] == "Po Zmianie"
    plain = await client.post_form("/account", {**VALID, "name": "Bez JS"})
    assert plain.status_code == 303 and plain.headers["location"] == "/account"
    page = await client.get("/account")
    assert "Zapisano dane konta." in page.text and "Bez JS" in page.text
    assert await AuditEvent.count().where(AuditEvent.tag == "account:account:update") == 2
    # The edit form as a whole page, for browsers without JS.
    full = await client.get("/account/edit")
    assert "<html" in full.text and 'action="/account"' in full.text


async def test_a_refused_edit_keeps_the_values_and_changes_nothing(client):
    await owner_signed_in(client)
    response = await client.post_form("/account", {**VALID, "name": "", "nip": "1"}, htmx=True)
    assert response.status_code == 422
    assert field_error(response.text, "name") == "Podaj nazwę."
    assert field_error(response.text, "nip")
    assert 'value="ul. Polna 2"' in response.text
    assert (await Account.select(Account.name).first())["name"] == "Konto Testowe"
    assert await AuditEvent.count().where(AuditEvent.tag == "account:account:update") == 0


async def test_members_read_the_card_but_cannot_edit_it(client, app):
    owner = await factories.identity("szef@example.com")
    account = await factories.account(owner, name="Konto Szefa")
    await signed_in_as(client, account, "member", "czlonek@example.com")
    card = await client.get("/account")
    assert card.status_code == 200 and "Konto Szefa" in card.text
    assert "/account/edit" not in card.text
    for htmx in (False, True):
        headers = {"HX-Request": "true"} if htmx else {}
        assert (await client.get("/account/edit", headers=headers)).status_code == 403
        response = await client.post_form("/account", {**VALID, "name": "Przejęte"}, htmx=htmx)
        assert response.status_code == 403
    assert (await Account.select(Account.name).first())["name"] == "Konto Szefa"
    assert await AuditEvent.count().where(AuditEvent.tag == "account:account:update") == 0


async def test_admins_may_edit_the_card(client):
    owner = await factories.identity("szefowa@example.com")
    account = await factories.account(owner)
    await signed_in_as(client, account, "admin", "admin@example.com")
    assert "/account/edit" in (await client.get("/account")).text
    assert (await client.post_form("/account", VALID)).status_code == 303
    assert (await Account.select(Account.name).first())["name"] == VALID["name"]


# --- the switcher ------------------------------------------------------------------------------


async def test_the_switcher_button_names_the_account_and_role_on_every_page(client):
    await owner_signed_in(client, name="Moje Konto")
    for path in ("/", "/profile", "/companies", "/account"):
        html = (await client.get(path)).text
        assert 'id="account-switcher-toggle"' in html, path
        assert '<span class="account-current">Moje Konto</span>' in html
        assert "Właściciel" in html
        assert 'data-src="/accounts?next=' in html


async def test_the_switcher_lists_accounts_with_roles_and_filters(client):
    me, _first = await owner_signed_in(client, name="Alfa")
    other = await factories.identity("ktos@example.com")
    beta = await factories.account(other, name="Beta")
    await factories.membership(me, beta["id"], "member")
    await factories.account(other, name="Gamma")  # not mine
    fragment = await client.get("/accounts?next=/companies", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert "Alfa" in fragment.text and "Beta" in fragment.text and "Gamma" not in fragment.text
    assert "Właściciel" in fragment.text and "Użytkownik" in fragment.text
    assert 'aria-current="true"' in fragment.text
    assert fragment.text.count('action="/accounts/switch"') == 2
    assert 'name="next" value="/companies"' in fragment.text
    assert 'type="search"' not in fragment.text  # two accounts need no filter
    page = await client.get("/accounts")
    assert "<html" in page.text and "Twoje konta firm" in page.text


async def test_many_accounts_get_a_filter(client):
    me, _ = await owner_signed_in(client, name="Biuro")
    for i in range(12):
        await factories.account(me, name=f"Klient {i:02d}")
    fragment = await client.get("/accounts", headers={"HX-Request": "true"})
    assert 'type="search"' in fragment.text
    narrowed = await client.get("/accounts?q=klient%2007", headers={"HX-Request": "true"})
    assert "Klient 07" in narrowed.text and "Klient 08" not in narrowed.text
    odd = await client.get("/accounts?q=" + "%00" * 300 + "&next=//evil.example")
    assert odd.status_code == 400 and "//evil.example" not in odd.text  # a NUL: refused


async def test_switching_reloads_the_same_screen_in_the_new_account(client):
    me, first = await owner_signed_in(client, name="Pierwsze")
    second = await factories.account(me, name="Drugie")
    for htmx in (False, True):
        response = await client.post_form(
            "/accounts/switch", {"account": second["public_id"], "next": "/companies"}, htmx=htmx)
        if htmx:
            assert response.headers["HX-Redirect"] == "/companies"
        else:
            assert response.status_code == 303 and response.headers["location"] == "/companies"
    assert await current_account(client) == "Drugie"
    page = await client.get("/companies")
    assert "Drugie" in page.text and "Pierwsze</a>" not in page.text
    # A screen of the old account (a company's page) does not exist in the new one: home.
    response = await client.post_form("/accounts/switch", {
        "account": first["public_id"], "next": f"/companies/{second['main_company_id']}"})
    assert response.headers["location"] == "/"
    assert await current_account(client) == "Pierwsze"


async def test_switching_goes_home_when_the_new_role_may_not_open_the_screen(client):
    me, first = await owner_signed_in(client, name="Własne")
    other = await factories.identity("inna@example.com")
    foreign = await factories.account(other, name="Gdzie Jestem Członkiem")
    await factories.membership(me, foreign["id"], "member")
    response = await client.post_form("/accounts/switch",
                                      {"account": foreign["public_id"], "next": "/api-keys"})
    assert response.headers["location"] == "/"
    for unsafe in ("//evil.example/", "https://evil.example/", "/\\evil", "", "/nie-ma-takiej"):
        response = await client.post_form("/accounts/switch",
                                          {"account": first["public_id"], "next": unsafe})
        assert response.headers["location"] == "/", unsafe


async def test_an_account_one_is_not_in_cannot_be_chosen(client):
    await owner_signed_in(client, name="Moje")
    stranger = await factories.identity("obca@example.com")
    theirs = await factories.account(stranger, name="Nie Moje")
    session_before = await Session.select(Session.account_public_id)
    for htmx in (False, True):
        for account in (theirs["public_id"], "zzz", "", "a" * 100_000, str(theirs["id"])):
            response = await client.post_form("/accounts/switch",
                                              {"account": account, "next": "/"}, htmx=htmx)
            assert response.status_code == 404
    assert await Session.select(Session.account_public_id) == session_before
    assert await current_account(client) == "Moje"


async def test_the_last_chosen_account_opens_at_the_next_sign_in(client):
    me, _first = await owner_signed_in(client, name="Stare")
    second = await factories.account(me, name="Ostatnio Wybrane")
    await client.post_form("/accounts/switch", {"account": second["public_id"], "next": "/"})
    await client.post_form("/logout", {})
    await client.sign_in("wlasciciel@example.com", factories.PASSWORD)
    assert await current_account(client) == "Ostatnio Wybrane"
