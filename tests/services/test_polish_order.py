"""Names sort as a Polish reader expects (issue 17), in every list that shows them: companies,
people, the JSON API, the ticket form's companies, the access matrix and the account switcher.

The database of the run is C.UTF-8 (as the embedded one is), where "Ślusarstwo Kowalski" used
to sort after "Zakład Fryzjerski"."""

from __future__ import annotations

from portal.db import ENGINE
from portal.services import accounts, api_keys, companies, company_access, people, support
from portal.tables import Profile
from portal.testing import factories
from tests.api.conftest import bearer, make_key
from tests.services.test_accounts import scope_for

#: In the order a Polish reader expects; C.UTF-8 puts Ślusarstwo and Łódź after every Z.
NAMES = ["Ąbecadło", "Biuro Ćma", "Łąka", "Lucyna", "Łódź", "Marek", "Szkoła",
         "Ślusarstwo Kowalski", "Zakład Fryzjerski", "Źródło", "Żabka"]
EXPECTED = ["Ąbecadło", "Biuro Ćma", "Lucyna", "Łąka", "Łódź", "Marek", "Szkoła",
            "Ślusarstwo Kowalski", "Zakład Fryzjerski", "Źródło", "Żabka"]


async def sort_key(text: str) -> str | None:
    return (await ENGINE._run_in_new_connection(
        "SELECT portal_sort_key($1) AS key", [text]))[0]["key"]


async def test_the_sort_key_orders_the_polish_alphabet_in_a_c_collated_database():
    collation = await ENGINE._run_in_new_connection(
        "SELECT datcollate FROM pg_database WHERE datname = current_database()")
    assert collation[0]["datcollate"] in ("C.UTF-8", "C", "C.utf8")  # the trap of issue 17
    keys = {name: await sort_key(name) for name in NAMES}
    assert sorted(NAMES, key=keys.__getitem__) == EXPECTED
    assert keys["Szkoła"] < keys["Ślusarstwo Kowalski"] < keys["Zakład Fryzjerski"]
    # a before ą before b; l before ł before m; s before ś before t; z before ź before ż
    for before, after in [("az", "ąb"), ("ąz", "b"), ("lz", "ła"), ("łz", "m"), ("sz", "śa"),
                          ("śz", "t"), ("zz", "źa"), ("źz", "ża"), ("oz", "óa"), ("ez", "ęa"),
                          ("cz", "ća"), ("nz", "ńa")]:
        assert await sort_key(before) < await sort_key(after), (before, after)
    # Case is ignored; other diacritics sort with their base letter; no name is no key.
    assert await sort_key("ŚLUSARSTWO") == await sort_key("ślusarstwo")
    assert await sort_key("Émile") < await sort_key("Eva") < await sort_key("Ęfa")
    assert await sort_key("Müller") < await sort_key("Mz")
    assert await sort_key("   ") is None and await sort_key("") is None


async def company_account():
    owner = await factories.identity("wlasciciel@example.com")
    account = await factories.account(owner, name="Biuro Ćma")
    for name in NAMES:
        if name != "Biuro Ćma":
            await factories.company(account["id"], name=name)
    return owner, account, await scope_for(owner, account, "owner")


async def test_companies_list_the_ticket_form_and_api_key_form_in_polish_order():
    _owner, _account, scope = await company_account()
    listing = await companies.list_page(scope, None, "name")
    assert [row["name"] for row in listing.rows] == EXPECTED
    backwards = await companies.list_page(scope, None, "-name")
    assert [row["name"] for row in backwards.rows] == EXPECTED[::-1]
    assert [row["name"] for row in (await support.companies_for_form(scope)).rows] == EXPECTED
    assert [row["name"] for row in (await api_keys.company_choices(scope)).rows] == EXPECTED


async def test_the_access_matrix_lists_companies_in_polish_order():
    _owner, account, scope = await company_account()
    member = await factories.identity("czlonek@example.com")
    membership_id = await factories.membership(member, account["id"])
    page = await company_access.access_page(scope, membership_id)
    assert [row["name"] for row in page.rows] == EXPECTED


async def test_people_sorted_by_name_in_polish_order_and_renamed_people_move():
    owner = await factories.identity("wlasciciel@example.com", first_name="Anna",
                                     last_name="Adamska")
    account = await factories.account(owner, name="Biuro")
    names = {"Zenon": "Zakład", "Łucja": "Nowak", "Lucyna": "Nowak", "Ślusarz": "Kowalski",
             "Szymon": "Szkoła"}
    for number, (first, last) in enumerate(names.items()):
        person = await factories.identity(f"osoba{number}@example.com", first_name=first,
                                          last_name=last)
        await factories.membership(person, account["id"])
    nameless = await factories.identity("bez-imienia@example.com")
    await factories.membership(nameless, account["id"])
    scope = await scope_for(owner, account, "owner")
    listing = await people.list_page(scope, None, "name")
    assert [row["name"] for row in listing.rows] == [
        "Anna Adamska", "Lucyna Nowak", "Łucja Nowak", "Szymon Szkoła", "Ślusarz Kowalski",
        "Zenon Zakład", ""]  # no name last
    backwards = await people.list_page(scope, None, "-name")
    assert [row["name"] for row in backwards.rows][:2] == ["Zenon Zakład", "Ślusarz Kowalski"]
    # The stored key follows a renamed profile (the triggers that keep the search text).
    await Profile.update({Profile.first_name: "Żaneta"}).where(Profile.identity == owner)
    listing = await people.list_page(scope, None, "name")
    assert [row["name"] for row in listing.rows][-2:] == ["Żaneta Adamska", ""]


async def test_the_account_switcher_lists_accounts_in_polish_order():
    me = await factories.identity("ja@example.com")
    for name in NAMES:
        await factories.account(me, name=name)
    choices = await accounts.choices(await scope_for(me))
    assert [choice.name for choice in choices.accounts] == EXPECTED
    filtered = await accounts.choices(await scope_for(me), "s")
    assert [choice.name for choice in filtered.accounts] == [
        "Szkoła", "Ślusarstwo Kowalski", "Zakład Fryzjerski"]


async def test_the_api_lists_companies_in_polish_order(client):
    owner, account, _scope = await company_account()
    secret = await make_key(owner, account)
    response = await client.get("/api/v1/companies", headers=bearer(secret))
    assert response.status_code == 200
    assert [item["name"] for item in response.json()["items"]] == EXPECTED
