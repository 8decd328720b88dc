"""The people of an account with 10,000 people, and a person in 500 accounts, through HTTP
against the real server.

    .venv/bin/python -m bench.people [--people 10000] [--accounts 500] [--requests 300]

The fragment htmx asks for while an admin types a search (``GET /users?q=...`` with
``HX-Request``), plus the first page, a page sorted by last sign-in, the last page and a
person's page; and the account switcher's fragment (``GET /accounts`` with ``HX-Request``) for
someone in 500 accounts, with and without a filter. Targets: both under 50 ms at the median.
Writes the "People" section of BENCHMARKS.md. The number of SQL queries per request is
asserted by ``tests/views/test_users.py`` (10 vs 200 people, 3 vs 60 accounts).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import time
from datetime import UTC, datetime

import httpx
import pyotp

from bench.common import machine, percentile, server, write_section
from portal import db
from portal.security import totp
from portal.security.passwords import HASHER
from portal.security.tokens import new_hex_id
from portal.tables import Account, Company, Identity, Membership, Profile
from portal.testing.database import test_database

PASSWORD = "benchmarkowe hasło do listy osób"
ADMIN = "admin@biuro.example.com"
ACCOUNTANT = "ksiegowa@biuro.example.com"
TARGET_MS = 50.0
#: bench.common.server's PORTAL_SECRET_KEY: the TOTP secrets are encrypted with it.
SECRET_KEY = "bench-secret-key-not-for-production"
#: The two people who sign in use an authenticator app (the account demands a second factor).
TOTP_SECRET = totp.new_secret()

FIRST = ["Anna", "Piotr", "Ewa", "Jan", "Katarzyna", "Marek", "Agnieszka", "Tomasz", "Magdalena",
         "Paweł", "Joanna", "Krzysztof", "Monika", "Andrzej", "Barbara", "Michał"]
LAST = ["Kowalska", "Nowak", "Wiśniewski", "Wójcik", "Kamińska", "Lewandowski", "Zielińska",
        "Szymański", "Woźniak", "Dąbrowska", "Kozłowski", "Jankowska", "Mazur", "Krawczyk"]
#: What admins type: parts of emails and names, a domain, and something that matches nothing.
SEARCHES = ["kowal", "anna", "nowak.1", "osoba12", "example.org", "zielińska", "mazur",
            "piotr woźniak", "@firma-7", "nie ma takiej osoby"]
FILTERS = ["klient 1", "klient 42", "biuro", "5260", "klient 499", "nic"]


async def seed(url: str, people: int, accounts: int) -> None:
    db.configure(url)
    await db.start_pool(max_size=4)
    rng = random.Random(6)
    password_hash = HASHER.hash(PASSWORD)
    with_app = {"totp_secret_encrypted": totp.encrypt(TOTP_SECRET, SECRET_KEY),
                "totp_confirmed_at": datetime.now(UTC)}
    admin = (await Identity.insert(Identity(
        email=ADMIN, password_hash=password_hash, email_verified_at=datetime.now(UTC),
        **with_app,
    )).returning(Identity.id))[0]["id"]
    await Profile.insert(Profile(identity=admin, first_name="Alicja", last_name="Admin"))
    account = (await Account.insert(Account(
        public_id=new_hex_id(12), name="Biuro Rachunkowe Bilans", nip="5260250274",
        is_accounting_office=True, mfa_policy="any",
    )).returning(Account.id))[0]["id"]
    await Membership.insert(Membership(account=account, identity=admin, role="owner"))
    companies = []
    for i in range(20):
        companies.append((await Company.insert(Company(
            account=account, key=new_hex_id(16), name=f"Spółka {i:02d}", is_main=i == 0,
        )).returning(Company.id))[0]["id"])
    # 10,000 people: identities, profiles, memberships (a few admins), company levels.
    names = [(rng.choice(FIRST), rng.choice(LAST)) for _ in range(people)]
    await Identity.raw(
        "WITH t AS (SELECT f, l, n FROM unnest({}::text[], {}::text[]) WITH ORDINALITY "
        "AS t(f, l, n)), made AS (INSERT INTO identity (email, email_verified_at, "
        "last_login_at, mfa_email_enabled, totp_confirmed_at) SELECT 'osoba' || n || '.' || "
        "lower(translate(f, 'łŁ', 'lL')) || '@firma-' || (n % 50) || "
        "CASE WHEN n % 3 = 0 THEN '.example.org' ELSE '.example.com' END, now(), "
        "CASE WHEN n % 4 = 0 THEN NULL ELSE now() - (n || ' minutes')::interval END, "
        "n % 2 = 0, CASE WHEN n % 5 = 0 THEN now() END FROM t RETURNING id, email) "
        "INSERT INTO profile (identity, first_name, last_name, phone, language) "
        "SELECT made.id, t.f, t.l, '', '' FROM made "
        "JOIN t ON t.n = split_part(substr(made.email, 6), '.', 1)::bigint",
        [first for first, _ in names], [last for _, last in names],
    )
    await Identity.raw(
        "INSERT INTO membership (account, identity, role) SELECT {}, id, "
        "CASE WHEN random() < 0.02 THEN 'admin' ELSE 'member' END FROM identity "
        "WHERE email LIKE 'osoba%'", account,
    )
    await Identity.raw(
        "INSERT INTO company_access (membership, company, level) "
        "SELECT m.id, c.id, (ARRAY['view', 'edit', 'manage'])[1 + (abs(hashtext(m.id::text "
        "|| c.id::text)) % 3)] FROM membership m JOIN company c ON c.account = m.account "
        "WHERE m.account = {} AND m.role = 'member' "
        "AND abs(hashtext(m.id::text || c.id::text)) % 5 = 0", account,
    )
    # A person in 500 accounts (an accounting office's accountant).
    accountant = (await Identity.insert(Identity(
        email=ACCOUNTANT, password_hash=password_hash, email_verified_at=datetime.now(UTC),
        **with_app,
    )).returning(Identity.id))[0]["id"]
    await Profile.insert(Profile(identity=accountant, first_name="Ksenia", last_name="Księgowa"))
    await Membership.insert(Membership(account=account, identity=accountant, role="admin"))
    await Identity.raw(
        "WITH made AS (INSERT INTO account (public_id, name, nip) SELECT "
        "substr(md5(random()::text || n), 1, 12), 'Klient ' || n, '' "
        "FROM generate_series(1, {}) AS n RETURNING id, name) "
        "INSERT INTO membership (account, identity, role) SELECT id, {}, "
        "CASE WHEN name LIKE '%7' THEN 'owner' ELSE 'member' END FROM made",
        accounts - 1, accountant,
    )
    for table in ("identity", "profile", "membership", "company_access", "account", "invitation"):
        await Identity.raw(f"ANALYZE {table}")
    await db.close_pool()


async def signed_in(base: str, email: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base, timeout=30)
    page = await client.get("/login")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
    response = await client.post("/login", data={"email": email, "password": PASSWORD,
                                                 "_csrf_token": token})
    assert response.status_code == 303, response.status_code
    if response.headers["location"] == "/login/mfa":
        response = await client.post("/login/mfa", data={
            "method": "app", "code": pyotp.TOTP(TOTP_SECRET).now(), "_csrf_token": token})
        assert response.status_code == 303, response.status_code
    return client


async def timed(client: httpx.AsyncClient, url: str, count: int,
                words: list[str] = SEARCHES) -> list[float]:
    times = []
    for i in range(count):
        target = url.format(q=words[i % len(words)])
        start = time.perf_counter()
        response = await client.get(target, headers={"HX-Request": "true"})
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, (target, response.status_code)
    return times


async def measure(base: str, requests: int) -> dict[str, list[float]]:
    admin = await signed_in(base, ADMIN)
    first = await admin.get("/users", headers={"HX-Request": "true"})
    total = int(re.search(r"z (\d+)</p>", first.text).group(1))
    pages = (total + 24) // 25
    person = re.search(r'href="(/users/[0-9a-f-]{36})"', first.text).group(1)
    await timed(admin, "/users?q={q}", 30)  # warm up
    results = {
        "search": await timed(admin, "/users?q={q}", requests),
        "first page": await timed(admin, "/users", requests // 3),
        "last sign-in": await timed(admin, "/users?sort=last_login", requests // 3),
        "last page": await timed(admin, f"/users?sort=-name&page={pages}", requests // 3),
        "person": await timed(admin, person, requests // 3),
    }
    await admin.aclose()
    accountant = await signed_in(base, ACCOUNTANT)
    panel = await accountant.get("/accounts", headers={"HX-Request": "true"})
    accounts = int(re.search(r"Pokazano \d+ z (\d+)", panel.text).group(1))
    await timed(accountant, "/accounts?next=/users", 30)
    results["switcher"] = await timed(accountant, "/accounts?next=/users", requests)
    results["switcher filter"] = await timed(accountant, "/accounts?q={q}&next=/users",
                                             requests // 3, FILTERS)
    await accountant.aclose()
    results["total"] = [float(total)]
    results["accounts"] = [float(accounts)]
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--accounts", type=int, default=500)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()

    with test_database("portal_bench") as url:
        asyncio.run(seed(url, args.people, args.accounts))
        with server(url) as base:
            result = asyncio.run(measure(base, args.requests))

    def ms(values: list[float], p: float) -> str:
        return f"{percentile(values, p) * 1000:.1f} ms"

    search = statistics.median(result["search"]) * 1000
    switcher = statistics.median(result["switcher"]) * 1000
    verdict = {True: "met", False: "**not met**"}
    rows = "\n".join(
        f"| {label} | {ms(result[key], 50)} | {ms(result[key], 95)} |"
        for key, label in [
            ("search", "people search fragment `GET /users?q=…` (HX-Request), 10 searches"),
            ("first page", "first page fragment, no search"),
            ("last sign-in", "sorted by last sign-in"),
            ("last page", "last page, names descending"),
            ("person", "a person's page `GET /users/{id}` (role, access matrix)"),
            ("switcher", "switcher fragment `GET /accounts` (HX-Request), 500 accounts"),
            ("switcher filter", "switcher filtered as you type `GET /accounts?q=…`"),
        ]
    )
    body = f"""
`python -m bench.people --people {args.people} --accounts {args.accounts} --requests \
{args.requests}` on {machine()}, {datetime.now(UTC):%Y-%m-%d}. One account with \
{int(result["total"][0]):,} people (members with company levels, some admins, the MFA policy \
"any"); one of its admins belongs to {int(result["accounts"][0]):,} accounts. One signed-in \
client, requests one after another, one server worker.

| request | median | p95 |
|---|---|---|
{rows}

Targets: the people search fragment under {TARGET_MS:.0f} ms at the median — \
{verdict[search < TARGET_MS]} ({search:.1f} ms); the switcher fragment for a person in 500 \
accounts under {TARGET_MS:.0f} ms — {verdict[switcher < TARGET_MS]} ({switcher:.1f} ms). SQL \
queries per request: constant (the session; then the plan setting and one page with its count \
in a window function; the switcher: its counts, one page of accounts and the pending \
invitations), asserted by `tests/views/test_users.py`. The search is a LIKE over \
`membership.search_text` (lower-cased email and name, kept by triggers); only the page's 25 \
rows are joined with identities and profiles.
"""
    print(body)
    write_section("People", body)


if __name__ == "__main__":
    main()
