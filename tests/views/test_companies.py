"""/companies: the list fragment, search, sort, pages; a company's page; adding and editing;
tenant isolation on every route that takes a company id; a constant number of SQL queries."""

from __future__ import annotations

import re
import uuid

import pytest

from portal.tables import AuditEvent, Company
from portal.testing import factories
from tests.conftest import DASH, HTMX, counting_queries, field_error

NEW = {"name": "Piekarnia Pod Lipą", "nip": "7740001454", "street": "ul. Lipowa 3",
       "postal_code": "09-400", "city": "Płock", "country": "PL"}


async def owner_signed_in(client, email="firmy@example.com", name="Konto Firm"):
    identity_id = await factories.identity(email)
    account = await factories.account(identity_id, name=name)
    await client.sign_in(email, factories.PASSWORD)
    return identity_id, account


async def add_companies(account, count: int, prefix: str = "Firma") -> None:
    await Company.insert(*[
        Company(account=account["id"], key=uuid.uuid4().hex[:16], name=f"{prefix} {i:04d}",
                nip=f"{1000000000 + i}", city="Gdańsk") for i in range(count)
    ])


async def snapshot() -> list[dict]:
    return await Company.select().order_by(Company.id)




# --- the list ----------------------------------------------------------------------------------


async def test_the_list_marks_the_main_company_and_shows_keys(client):
    _, account = await owner_signed_in(client)
    await factories.company(account["id"], name="Druga Spółka", nip="7740001454")
    html = (await client.get("/companies")).text
    main_key = (await Company.select(Company.key).where(Company.is_main.eq(True)).first())["key"]
    assert re.search(r'>Konto Firm</a> <span class="badge">Firma główna</span>', html)
    assert f'<code class="selectable" data-testid="company-key">{main_key}</code>' in html
    assert f'data-copy="{main_key}"' in html
    assert "Druga Spółka" in html and f"Firmy 1{DASH}2 z 2" in html
    assert 'hx-trigger="input changed delay:300ms, search"' in html


async def test_the_htmx_list_is_the_fragment_and_announces_its_result(client):
    _, account = await owner_signed_in(client)
    await add_companies(account, 40)
    response = await client.get("/companies?q=firma%2000&sort=-name", headers=HTMX)
    assert response.status_code == 200 and response.headers["vary"] == "HX-Request"
    assert response.text.lstrip().startswith('<div id="company-list"')
    assert "<html" not in response.text
    assert 'hx-swap-oob="innerHTML:#live"' in response.text
    assert f"Firmy 1{DASH}25 z 40" in response.text
    names = re.findall(r'">(Firma \d{4})</a>', response.text)
    assert names[0] == "Firma 0039" and names == sorted(names, reverse=True)
    assert 'aria-sort="descending"' in response.text


async def test_search_by_name_or_nip_case_insensitive(client):
    _, account = await owner_signed_in(client)
    await factories.company(account["id"], name="Piekarnia Pod Lipą", nip="7740001454")
    await factories.company(account["id"], name="Auto-Serwis", nip="")
    by_name = (await client.get("/companies?q=PIEKAR", headers=HTMX)).text
    by_nip = (await client.get("/companies?q=774-000-14", headers=HTMX)).text
    for html in (by_name, by_nip):
        assert "Piekarnia Pod Lipą" in html and "Auto-Serwis" not in html
    nothing = (await client.get("/companies?q=zzz", headers=HTMX)).text
    assert "Żadna firma nie pasuje do wyszukiwania." in nothing


async def test_pages_link_to_each_other_keeping_search_and_sort(client):
    _, account = await owner_signed_in(client)
    await add_companies(account, 60)
    html = (await client.get("/companies?q=Firma&sort=nip&page=2")).text
    assert "Strona 2 z 3" in html
    assert 'href="/companies?q=Firma&amp;sort=nip&amp;page=3"' in html
    assert 'href="/companies?q=Firma&amp;sort=nip&amp;page=1"' in html


@pytest.mark.parametrize("query", [
    "page=-1", "page=abc", "page=0", "page=99999999999999999999", "page=1.5", "sort=unknown",
    "sort=name;drop", "q=" + "x" * 5000, "q=%00%01", "q=%25%5F", "page=&sort=&q=",
    "page=1&page=2", "q=a&q=b",
])
async def test_odd_query_strings_never_break_the_list(client, query):
    _, account = await owner_signed_in(client)
    await add_companies(account, 30)
    for headers in ({}, HTMX):
        response = await client.get(f"/companies?{query}", headers=headers)
        expected = 400 if "%00" in query else 200  # a NUL is refused (web/input.py)
        assert response.status_code == expected, (query, response.status_code)


# --- a company's page, adding, editing ---------------------------------------------------------


async def test_adding_a_company_without_js_and_with_htmx(client):
    _, account = await owner_signed_in(client)
    form = await client.get("/companies/new", headers=HTMX)
    assert form.text.lstrip().startswith('<form id="company-new-form"')
    assert "data-focus-after-swap" in form.text
    assert "<html" in (await client.get("/companies/new")).text
    plain = await client.post_form("/companies/new", NEW)
    assert plain.status_code == 303
    created = await Company.select().where(Company.name == NEW["name"]).first()
    assert plain.headers["location"] == f"/companies/{created['id']}"
    assert created["account"] == account["id"] and not created["is_main"]
    page = await client.get(plain.headers["location"])
    assert "Dodano firmę." in page.text and created["key"] in page.text
    htmx = await client.post_form("/companies/new", {**NEW, "name": "Druga"}, htmx=True)
    assert htmx.status_code == 200 and htmx.headers["HX-Redirect"].startswith("/companies/")
    assert await AuditEvent.count().where(AuditEvent.tag == "account:company:create") == 2


async def test_a_refused_company_keeps_the_values_and_adds_nothing(client):
    await owner_signed_in(client)
    before = await snapshot()
    for htmx in (False, True):
        response = await client.post_form("/companies/new", {
            **NEW, "name": "", "nip": "1234567891", "postal_code": "1"}, htmx=htmx)
        assert response.status_code == 422
        assert field_error(response.text, "name") == "Podaj nazwę."
        assert field_error(response.text, "nip")
        assert field_error(response.text, "postal_code")
        assert 'value="ul. Lipowa 3"' in response.text
    assert await snapshot() == before


async def test_editing_a_company_inline_and_as_a_page(client):
    _, account = await owner_signed_in(client)
    company_id = account["main_company_id"]
    form = await client.get(f"/companies/{company_id}/edit", headers=HTMX)
    assert form.text.lstrip().startswith('<form id="company-card"')
    saved = await client.post_form(f"/companies/{company_id}", {**NEW, "name": "Nowa Nazwa"},
                                   htmx=True)
    assert saved.status_code == 200
    assert saved.text.lstrip().startswith('<section id="company-card"')
    assert "Zapisano dane firmy." in saved.text
    assert '<h1 id="company-title" hx-swap-oob="true">Nowa Nazwa</h1>' in saved.text
    plain = await client.post_form(f"/companies/{company_id}", {**NEW, "name": "Bez JS"})
    assert plain.status_code == 303 and plain.headers["location"] == f"/companies/{company_id}"
    row = await Company.select().where(Company.id == company_id).first()
    assert (row["name"], row["is_main"], row["account"]) == ("Bez JS", True, account["id"])
    bad = await client.post_form(f"/companies/{company_id}", {**NEW, "nip": "abc"})
    assert bad.status_code == 422 and field_error(bad.text, "nip")
    assert (await Company.select(Company.nip).where(Company.id == company_id).first())[
        "nip"] == "7740001454"


# --- tenant isolation --------------------------------------------------------------------------


def company_routes(app) -> set[tuple[str, str]]:
    from litestar.routes import HTTPRoute

    found = set()
    for route in app.routes:
        if isinstance(route, HTTPRoute) and route.path.startswith("/companies/{"):
            for handler in route.route_handlers:
                for method in handler.http_methods - {"OPTIONS", "HEAD"}:
                    found.add((method, route.path))
    return found


async def test_every_company_route_with_an_id_from_another_account_is_404(client, app):
    _, _mine = await owner_signed_in(client, "ja@example.com", "Moje Konto")
    stranger = await factories.identity("obcy@example.com")
    theirs = await factories.account(stranger, name="Obce Konto")
    their_other = await factories.company(theirs["id"], name="Obca Spółka", nip="7740001454")
    tried = set()
    before = await snapshot()
    audit_before = await AuditEvent.count()
    ids = [theirs["main_company_id"], their_other, uuid.uuid4(), "nie-uuid", "1", "%00",
           "x" * 3000]
    for company_id in ids:
        for headers in ({}, HTMX):
            for method, path, call in (
                ("GET", "/companies/{company_id:str}",
                 lambda cid, h: client.get(f"/companies/{cid}", headers=h)),
                ("GET", "/companies/{company_id:str}/edit",
                 lambda cid, h: client.get(f"/companies/{cid}/edit", headers=h)),
                ("POST", "/companies/{company_id:str}",
                 lambda cid, h: client.post_form(f"/companies/{cid}", {**NEW, "name": "Zmiana"},
                                                 headers=h)),
            ):
                response = await call(company_id, headers)
                expected = 400 if company_id == "%00" else 404  # a NUL is refused
                assert response.status_code == expected, (method, path, company_id, headers)
                assert "Obca Spółka" not in response.text and "Obce Konto" not in response.text
                tried.add((method, path))
    assert tried == company_routes(app)  # a new route with an id must be added here
    assert await snapshot() == before
    assert await AuditEvent.count() == audit_before
    # ...and the list never shows them.
    listing = (await client.get("/companies?q=Obca")).text
    assert "Obca Spółka" not in listing


async def test_account_level_routes_only_ever_show_the_current_account(client, app):
    _, _mine = await owner_signed_in(client, "moj@example.com", "Moje Konto")
    stranger = await factories.identity("cudzy@example.com")
    theirs = await factories.account(stranger, name="Cudze Konto")
    await factories.company(theirs["id"], name="Cudza Spółka")
    for path in ("/account", "/account/edit", "/companies", "/companies?q=Cudz", "/accounts"):
        for headers in ({}, HTMX):
            html = (await client.get(path, headers=headers)).text
            assert "Cudze Konto" not in html and "Cudza Spółka" not in html, path
            assert theirs["public_id"] not in html


# --- who may change companies ------------------------------------------------------------------


async def test_members_cannot_add_or_edit_companies_and_nothing_changes(client):
    owner = await factories.identity("szef@example.com")
    account = await factories.account(owner, name="Konto Szefa")
    member = await factories.identity("czlonek@example.com")
    await factories.membership(member, account["id"], "member",
                               {account["main_company_id"]: "view"})
    await client.sign_in("czlonek@example.com", factories.PASSWORD)
    listing = await client.get("/companies")
    assert listing.status_code == 200 and "Konto Szefa" in listing.text
    assert "/companies/new" not in listing.text and "/edit" not in listing.text
    assert (await client.get(f"/companies/{account['main_company_id']}")).status_code == 200
    before = await snapshot()
    for headers in ({}, HTMX):
        assert (await client.get("/companies/new", headers=headers)).status_code == 403
        assert (await client.get(f"/companies/{account['main_company_id']}/edit",
                                 headers=headers)).status_code == 403
        assert (await client.post_form("/companies/new", NEW, headers=headers)).status_code == 403
        assert (await client.post_form(f"/companies/{account['main_company_id']}",
                                       {**NEW, "name": "Przejęta"}, headers=headers)
                ).status_code == 403
    assert await snapshot() == before
    assert await AuditEvent.count().where(AuditEvent.tag.like("account:company:%")) == 0


async def test_a_member_does_not_see_companies_they_were_not_given(client):
    owner = await factories.identity("szefowa@example.com")
    account = await factories.account(owner, name="Konto")
    hidden = await factories.company(account["id"], name="Ukryta Spółka")
    member = await factories.identity("pracownica@example.com")
    await factories.membership(member, account["id"], "member",
                               {account["main_company_id"]: "view"})
    await client.sign_in("pracownica@example.com", factories.PASSWORD)
    assert "Ukryta Spółka" not in (await client.get("/companies")).text
    assert (await client.get(f"/companies/{hidden}")).status_code == 404


# --- the number of SQL queries -----------------------------------------------------------------


async def test_the_list_costs_the_same_queries_for_10_and_for_200_companies(client):
    _, account = await owner_signed_in(client)
    await add_companies(account, 9)
    url = "/companies?q=Firma&sort=name&page=1"
    await client.get(url, headers=HTMX)  # warm up: the session row is touched at most once
    with counting_queries() as ten:
        small = await client.get(url, headers=HTMX)
    await add_companies(account, 190, prefix="Firma B")
    with counting_queries() as two_hundred:
        large = await client.get(url, headers=HTMX)
    with counting_queries() as deep:
        last = await client.get("/companies?q=Firma&sort=-nip&page=8", headers=HTMX)
    assert f"Firmy 1{DASH}9 z 9" in small.text and f"Firmy 1{DASH}25 z 199" in large.text
    assert "Strona 8 z 8" in last.text
    assert ten["count"] == two_hundred["count"] == deep["count"]
    assert 2 < ten["count"] <= 4, ten  # the session, a count and one page


async def test_a_members_edit_level_lets_them_change_that_company_only(client):
    owner = await factories.identity("wlasciciel-poziomy@example.com")
    account = await factories.account(owner, name="Konto Poziomów")
    other = await factories.company(account["id"], name="Druga Spółka")
    member = await factories.identity("edytor@example.com")
    await factories.membership(member, account["id"], "member",
                               {account["main_company_id"]: "edit", other: "view"})
    await client.sign_in("edytor@example.com", factories.PASSWORD)
    mine = f"/companies/{account['main_company_id']}"
    assert (await client.get(mine + "/edit")).status_code == 200
    saved = await client.post_form(mine, {**NEW, "name": "Nowa Nazwa"})
    assert saved.status_code == 303
    assert (await Company.select(Company.name).where(
        Company.id == account["main_company_id"]).first())["name"] == "Nowa Nazwa"
    assert (await client.get(f"/companies/{other}/edit")).status_code == 403
    refused = await client.post_form(f"/companies/{other}", {**NEW, "name": "Przejęta"})
    assert refused.status_code == 403
    assert (await Company.select(Company.name).where(Company.id == other).first()
            )["name"] == "Druga Spółka"
    assert (await client.get("/companies/new")).status_code == 403  # adding stays with admins


async def test_the_next_and_previous_links_carry_a_cursor_with_and_without_htmx(client):
    """Issue 20: "Następna strona" reads the next page by key; the same link works as a plain
    link (whole page) and as an htmx fragment, with the same number of queries as page 1."""
    _, account = await owner_signed_in(client)
    await add_companies(account, 60)
    first = await client.get("/companies?sort=name", headers=HTMX)
    link = re.search(r'id="companies-next" href="([^"]+)"', first.text).group(1).replace(
        "&amp;", "&")
    assert "page=2" in link and "after=" in link
    await client.get(link, headers=HTMX)  # warm up
    with counting_queries() as keyed:
        second = await client.get(link, headers=HTMX)
    with counting_queries() as numbered:
        await client.get("/companies?sort=name&page=2", headers=HTMX)
    assert keyed["count"] == numbered["count"]
    assert f"Firmy 26{DASH}50 z 61" in second.text and "Firma 0025" in second.text
    assert "Firma 0024" not in second.text
    whole = await client.get(link)  # without JavaScript: the whole page
    assert whole.status_code == 200 and "<html" in whole.text and "Firma 0025" in whole.text
    back = re.search(r'id="companies-prev" href="([^"]+)"', second.text).group(1)
    assert "before=" not in back  # the first page needs no cursor
    third_link = re.search(r'id="companies-next" href="([^"]+)"', second.text).group(1)
    third = await client.get(third_link.replace("&amp;", "&"), headers=HTMX)
    prev = re.search(r'id="companies-prev" href="([^"]+)"', third.text).group(1)
    assert "before=" in prev
    again = await client.get(prev.replace("&amp;", "&"), headers=HTMX)
    assert f"Firmy 26{DASH}50 z 61" in again.text and "Firma 0025" in again.text
    tampered = await client.get("/companies?sort=name&page=2&after=%C5%9B" + "x" * 3000,
                                headers=HTMX)
    assert tampered.status_code == 200 and "Firma 0025" in tampered.text


async def test_a_second_company_with_the_same_name_and_nip_asks_first(client):
    await owner_signed_in(client)
    assert (await client.post_form("/companies/new", NEW)).status_code == 303
    first = await Company.select().where(Company.name == NEW["name"]).first()
    # Without JavaScript: the form again, the company it resembles named, nothing added.
    again = await client.post_form("/companies/new", {**NEW, "name": " piekarnia pod lipą "})
    assert again.status_code == 422
    assert "W tym koncie jest już firma o tej nazwie i tym NIP-ie: Piekarnia Pod Lipą" in again.text
    assert f'name="confirm_duplicate" value="{first["id"]}"' in again.text
    assert ">Dodaj mimo to</button>" in again.text
    assert 'value=" piekarnia pod lipą "' in again.text
    assert await Company.count().where(Company.nip == NEW["nip"]) == 1
    # With htmx: the fragment, the warning focused; in English too.
    fragment = await client.post_form("/companies/new", NEW, htmx=True,
                                      headers={"Accept-Language": "en"})
    assert fragment.status_code == 422
    assert fragment.text.lstrip().startswith('<form id="company-new-form"')
    assert "This account already has a company with this name and NIP" in fragment.text
    assert 'id="duplicate-warning" role="alert" tabindex="-1" data-focus-after-swap' in (
        fragment.text)
    # Confirmed: added.
    confirmed = await client.post_form("/companies/new",
                                       {**NEW, "confirm_duplicate": str(first["id"])})
    assert confirmed.status_code == 303
    assert await Company.count().where(Company.nip == NEW["nip"]) == 2


async def test_only_the_same_name_and_nip_in_the_same_account_asks(client):
    await owner_signed_in(client)
    other_owner = await factories.identity("inny@example.com")
    other = await factories.account(other_owner, name="Inne konto")
    await Company.insert(Company(account=other["id"], key=uuid.uuid4().hex[:16],
                                 name=NEW["name"], nip=NEW["nip"]))
    assert (await client.post_form("/companies/new", NEW)).status_code == 303
    other_nip = await client.post_form("/companies/new", {**NEW, "nip": "5260250274"})
    assert other_nip.status_code == 303
    other_name = await client.post_form("/companies/new", {**NEW, "name": "Piekarnia Nowa"})
    assert other_name.status_code == 303
    # A confirmation of another company does not confirm this one.
    stale = await client.post_form("/companies/new",
                                   {**NEW, "confirm_duplicate": str(uuid.uuid4())})
    assert stale.status_code == 422
