"""The company search by index (issue 20): ``company.search_grams`` under a GIN index narrows
the rows and the LIKE decides, so every search finds exactly what the LIKE alone found."""

from __future__ import annotations

import uuid

from piccolo.query import WhereRaw

from portal.db import ENGINE
from portal.services import companies, company_data, tenancy
from portal.tables import Company
from portal.testing import factories
from tests.conftest import counting_queries
from tests.services.test_accounts import CLIENT, scope_for

NAMES = [
    "Piekarnia Pod Lipą", "PIEKARNIA ŁÓDŹ", "piekarnia żółta", "Ślusarstwo Kowalski",
    "Zakład Fryzjerski Żaneta", "Łódź Serwis sp. z o.o.", "Auto-Serwis 100%", "Sklep_Nr_5",
    "Źródło Wód", "Ćma i Syn", "Gęś Zielona", "Café Müller", "ĄĘÓ Ltd", "ab", "x",
    "Kwiaciarnia \"Róża\"", "Biuro Rachunkowe Dąbrowska & Wspólnicy", "Hurtownia  Dwie Spacje",
    "Przychodnia Zdrowie S.A.", "Drukarnia 526", "Śnieżka",
]
NIPS = ["7740001454", "5260250274", "", "1111111111", "PL5260250274"]
SEARCHES = [
    "piek", "PIEK", "Piekarnia", "łódź", "ŁÓDŹ", "lodz", "Łó", "ódź", "żół", "ŻÓŁTA", "ślus",
    "Ślusarstwo Kowalski", "kowal", "serwis", "-serwis 1", "100%", "%", "_", "r_n", "sklep_nr",
    "źró", "ćma", "gęś", "café", "müller", "ąęó", "ab", "x", "\"róża\"", "& ws", "  dwie",
    "dwie  spacje", "s.a.", "526", "774-000", "774-000-14-54", "PL 526", "5260", "11", "1",
    "nie ma takiej firmy", "sp. z o.o.", "a", "ż", "ka", "iek", "rnia ", " pod ", "lipą",
    "zakład fryzjerski żaneta",
]


def old_condition(text: str):
    """The search as it was before the trigram index: the LIKEs alone."""
    condition = WhereRaw("search_name LIKE {}", companies.like_pattern(text.lower()))
    digits = company_data.nip_digits(text)
    if digits.isascii() and digits.isalnum():
        condition = condition | Company.nip.like(companies.like_pattern(digits))
    return condition


async def account_with_names():
    owner = await factories.identity("szukam@example.com")
    account = await factories.account(owner, name="Konto Szukające")
    await Company.insert(*[
        Company(account=account["id"], key=uuid.uuid4().hex[:16], name=name,
                nip=NIPS[n % len(NIPS)]) for n, name in enumerate(NAMES)])
    # Another account with the same names (and, by chance or not, the same bucket).
    stranger = await factories.identity("obcy@example.com")
    theirs = await factories.account(stranger, name="Obce Konto")
    await Company.insert(*[
        Company(account=theirs["id"], key=uuid.uuid4().hex[:16], name=name + " obca")
        for name in NAMES])
    return await scope_for(owner, account, "owner"), account


async def everything(scope, query, sort="name") -> list:
    """Every row of every page of the list for ``query``, following the cursors."""
    page = await companies.list_page(scope, query, sort, "1")
    seen = [row["id"] for row in page.rows]
    while page.next_cursor:
        page = await companies.list_page(scope, query, sort, str(page.page + 1),
                                         page.next_cursor)
        seen += [row["id"] for row in page.rows]
    return seen, page.total


async def test_every_search_finds_what_the_like_alone_found_on_polish_names():
    scope, _account = await account_with_names()
    for text in SEARCHES:
        expected = [row["id"] for row in await companies._ordered(
            tenancy.select(Company, scope, Company.id).where(old_condition(text)), "name")]
        seen, total = await everything(scope, text)
        assert seen == expected and total == len(expected), text
    # Not vacuous: Polish letters and case are found, and the old semantics kept
    # (diacritics count: "lodz" is not "łódź").
    assert len((await everything(scope, "łódź"))[0]) == 2
    assert len((await everything(scope, "PIEKARNIA"))[0]) == 3
    assert (await everything(scope, "lodz"))[1] == 0
    assert (await everything(scope, "obca"))[1] == 0  # the other account's


async def test_the_trigram_index_narrows_and_the_like_decides():
    _scope, account = await account_with_names()
    condition = companies.search_condition("piekarnia", account["id"])
    assert "search_grams @> portal_grams" in condition.querystring.template
    for short in ("ab", "x", "5"):  # no trigram: the LIKE alone
        assert "search_grams" not in companies.search_condition(
            short, account["id"]).querystring.template
    # Without the account (the access matrix of services/people.py) it is the LIKE alone.
    assert "search_grams" not in companies.search_condition("piekarnia").querystring.template
    rows = await Company.raw(
        "SELECT search_grams, portal_grams({}, 'pie') || portal_grams({}, 'ipą') "
        "|| portal_grams({}, '774') || portal_grams({}, '454') AS wanted FROM company "
        "WHERE account = {} AND name = 'Piekarnia Pod Lipą'", *[companies.grams_bucket(
            account["id"])] * 4, account["id"])
    assert len(rows[0]["wanted"]) == 4 and set(rows[0]["wanted"]) <= set(
        rows[0]["search_grams"])
    # Another bucket folds the same trigram differently.
    other = await Company.raw("SELECT portal_grams({}, 'pie') AS g",
                              (companies.grams_bucket(account["id"]) + 1) % 256)
    assert not set(other[0]["g"]) & set(rows[0]["search_grams"])


async def test_a_renamed_company_is_found_by_its_new_name_only():
    scope, _account = await account_with_names()
    found = (await companies.list_page(scope, "Śnieżka")).rows
    assert len(found) == 1
    await companies.update(scope, found[0]["id"], {
        "name": "Kwiaty Bożeny", "nip": "", "street": "", "postal_code": "", "city": "",
        "country": "PL"}, CLIENT)
    assert (await companies.list_page(scope, "Śnieżka")).total == 0
    assert [r["id"] for r in (await companies.list_page(scope, "bożen")).rows] == [
        found[0]["id"]]


async def test_the_index_serves_the_search_of_a_big_account():
    """The search's condition is one the GIN index serves (EXPLAIN of the condition alone with
    sequential scans priced out: 3,000 rows are too few for the planner to prefer it to the
    account's b-tree; the plans at 20,000 companies are in BENCHMARKS.md), and the answer
    is the LIKE's."""
    scope, account = await account_with_names()
    trades = ["Piekarnia", "Apteka", "Sklep", "Hurtownia", "Drukarnia", "Kancelaria"]
    await Company.raw(
        "INSERT INTO company (account, key, name, nip) SELECT {}, md5(random()::text), "
        "({}::text[])[1 + n % 6] || ' Numer ' || n, lpad(n::text, 10, '0') "
        "FROM generate_series(1, 3000) AS n", account["id"], trades)
    await ENGINE.run_ddl("ANALYZE company")
    condition = companies.search_condition("numer 1234", account["id"])
    counting = tenancy.count(Company, scope).where(condition)
    # The condition alone (the account's b-tree aside), sequential scans priced out.
    sql = Company.count().where(condition).__str__()
    async with ENGINE.transaction():
        await ENGINE.run_ddl("SET LOCAL enable_seqscan = off")
        plan = "\n".join(row["QUERY PLAN"] for row in await Company.raw("EXPLAIN " + sql))
    assert "company_search_grams" in plan, plan
    assert await counting == 1
    with counting_queries() as queries:
        page = await companies.list_page(scope, "numer 1234")
    assert queries["count"] == 2 and [r["name"] for r in page.rows] == ["Drukarnia Numer 1234"]


async def test_a_search_counts_up_to_the_cap_and_pages_within_it(monkeypatch):
    """Past SEARCH_COUNT_CAP matches the count says "N+" and the pages are the first N of the
    order (by number and by key alike, never read "from the end", which is not the end)."""
    scope, account = await account_with_names()
    await Company.insert(*[
        Company(account=account["id"], key=uuid.uuid4().hex[:16], name=f"Firma {n:03d}",
                nip=f"{5260000000 + n}") for n in range(80)])
    monkeypatch.setattr(companies, "SEARCH_COUNT_CAP", 50)
    whole = [row["id"] for row in await companies._ordered(
        tenancy.select(Company, scope, Company.id).where(old_condition("firma")), "name")]
    assert len(whole) == 80
    first = await companies.list_page(scope, "firma")
    assert (first.total, first.more, first.pages, first.total_label) == (50, True, 2, "50+")
    seen, total = await everything(scope, "firma")
    assert seen == whole[:50] and total == 50
    for number in ("2", "3", "999"):
        last = await companies.list_page(scope, "firma", "name", number)
        assert [row["id"] for row in last.rows] == whole[25:50] and last.next_cursor == ""
    # Below the cap nothing changes, and the whole list (no search) is counted in full.
    exact = await companies.list_page(scope, "firma 07")
    assert (exact.total, exact.more, exact.total_label) == (10, False, "10")
    assert (await companies.list_page(scope)).total == 80 + len(NAMES) + 1
    monkeypatch.setattr(companies, "PICKER_LIMIT", 20)
    picker = await companies.picker(scope, "firma")
    assert (len(picker.rows), picker.total_label, picker.searchable) == (20, "50+", True)
