"""The company list of an account with 10,000 companies, through HTTP against the real server.

    .venv/bin/python -m bench.companies [--companies 10000] [--requests 300]

The fragment htmx asks for while someone types a search (``GET /companies?q=...`` with
``HX-Request``), plus the first page, a deep page and a company's page for comparison. Target:
the search fragment under 50 ms at the median. Writes the "Companies" section of BENCHMARKS.md.
The number of SQL queries per request is asserted by
``tests/views/test_companies.py::test_the_list_costs_the_same_queries_for_10_and_for_200_companies``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import time
import uuid
from datetime import UTC, datetime

import httpx

from bench.common import machine, percentile, server, write_section
from portal import db
from portal.security.passwords import HASHER
from portal.security.tokens import new_hex_id
from portal.tables import Account, Company, Identity, Membership, Profile
from portal.testing.database import test_database

PASSWORD = "benchmarkowe hasło do listy firm"
EMAIL = "biuro@example.com"
TARGET_MS = 50.0

TRADES = ["Piekarnia", "Auto-Serwis", "Kwiaciarnia", "Biuro Projektowe", "Apteka", "Hurtownia",
          "Zakład Stolarski", "Przychodnia", "Drukarnia", "Kancelaria", "Pracownia", "Sklep"]
NAMES = ["Kowalski", "Nowak", "Wiśniewski", "Wójcik", "Kamiński", "Lewandowski", "Zieliński",
         "Szymański", "Woźniak", "Dąbrowski", "Kozłowski", "Jankowski", "Mazur", "Krawczyk"]
FORMS = ["sp. z o.o.", "s.c.", "sp.j.", "S.A.", ""]
#: What people type: parts of names, a NIP prefix, and something that matches nothing.
SEARCHES = ["piek", "Kowalski", "serwis", "hurt", "mazur", "Zakład Stol", "526", "774-00",
            "wiśniewski s.c.", "nie ma takiej firmy"]


def nip(rng: random.Random) -> str:
    """A random Polish NIP with a valid checksum."""
    weights = (6, 5, 7, 2, 3, 4, 5, 6, 7)
    while True:
        digits = [rng.randrange(10) for _ in range(9)]
        check = sum(d * w for d, w in zip(digits, weights, strict=True)) % 11
        if check != 10:
            return "".join(map(str, digits)) + str(check)


async def seed(url: str, count: int) -> None:
    db.configure(url)
    await db.start_pool(max_size=4)
    rng = random.Random(5)
    identity = (await Identity.insert(Identity(
        email=EMAIL, password_hash=HASHER.hash(PASSWORD), email_verified_at=datetime.now(UTC),
    )).returning(Identity.id))[0]["id"]
    await Profile.insert(Profile(identity=identity))
    account = (await Account.insert(Account(
        public_id=new_hex_id(12), name="Biuro Rachunkowe Bilans", nip="5260250274",
        is_accounting_office=True,
    )).returning(Account.id))[0]["id"]
    await Membership.insert(Membership(account=account, identity=identity, role="owner"))
    await Company.insert(Company(account=account, key=new_hex_id(16),
                                 name="Biuro Rachunkowe Bilans", nip="5260250274", is_main=True))
    batch = []
    for i in range(count - 1):
        name = f"{rng.choice(TRADES)} {rng.choice(NAMES)} {i} {rng.choice(FORMS)}".strip()
        batch.append(Company(account=account, key=uuid.uuid4().hex[:16], name=name,
                             nip=nip(rng), city=rng.choice(["Warszawa", "Kraków", "Płock"])))
        if len(batch) == 1000:
            await Company.insert(*batch)
            batch = []
    if batch:
        await Company.insert(*batch)
    await Company.raw("ANALYZE company")
    await db.close_pool()


async def signed_in(base: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base, timeout=30)
    page = await client.get("/login")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
    response = await client.post("/login", data={"email": EMAIL, "password": PASSWORD,
                                                 "_csrf_token": token})
    assert response.status_code == 303, response.status_code
    return client


async def timed(client: httpx.AsyncClient, url: str, count: int) -> list[float]:
    times = []
    for i in range(count):
        target = url.format(q=SEARCHES[i % len(SEARCHES)])
        start = time.perf_counter()
        response = await client.get(target, headers={"HX-Request": "true"})
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, (target, response.status_code)
    return times


async def measure(base: str, requests: int) -> dict[str, list[float]]:
    client = await signed_in(base)
    first = await client.get("/companies", headers={"HX-Request": "true"})
    total = int(re.search(r"z (\d+)</p>", first.text).group(1))
    pages = (total + 24) // 25
    company = re.search(r'href="(/companies/[0-9a-f-]{36})"', first.text).group(1)
    await timed(client, "/companies?q={q}", 30)  # warm up
    results = {
        "search": await timed(client, "/companies?q={q}", requests),
        "first page": await timed(client, "/companies", requests // 3),
        "last page": await timed(client, f"/companies?sort=-name&page={pages}", requests // 3),
        "company page": await timed(client, company, requests // 3),
    }
    await client.aclose()
    results["total"] = [float(total)]
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--companies", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()

    with test_database("portal_bench") as url:
        asyncio.run(seed(url, args.companies))
        with server(url) as base:
            result = asyncio.run(measure(base, args.requests))

    def ms(values: list[float], p: float) -> str:
        return f"{percentile(values, p) * 1000:.1f} ms"

    search_median = statistics.median(result["search"]) * 1000
    verdict = "met" if search_median < TARGET_MS else "**not met**"
    rows = "\n".join(
        f"| {label} | {ms(result[key], 50)} | {ms(result[key], 95)} |"
        for key, label in [
            ("search", "search fragment `GET /companies?q=…` (HX-Request), 10 different searches"),
            ("first page", "first page fragment, no search"),
            ("last page", "last page fragment, names descending"),
            ("company page", "a company's page fragment `GET /companies/{id}`"),
        ]
    )
    body = f"""
`python -m bench.companies --companies {args.companies} --requests {args.requests}` on \
{machine()}, {datetime.now(UTC):%Y-%m-%d}. One account with {int(result["total"][0]):,} \
companies; one signed-in client, requests one after another, one server worker.

| request | median | p95 |
|---|---|---|
{rows}

Target: the search fragment under {TARGET_MS:.0f} ms at the median — {verdict} \
({search_median:.1f} ms). SQL queries per list request: constant (the session, a count, one \
page), asserted by `tests/views/test_companies.py`.
"""
    print(body)
    write_section("Companies", body)


if __name__ == "__main__":
    main()
