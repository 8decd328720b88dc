"""The portal at vendor scale (issue 20): every list and fragment for a big and a small account.

    .venv/bin/python -m bench.scale [--scale 1.0] [--requests 60] [--keep]
                                    [--save before.json] [--before before.json]

Fills a database of its own through the real tables (bulk ``INSERT ... SELECT
generate_series``): at ``--scale 1`` about 200,000 IDs, 50,000 accounts, 500,000 companies,
1,000,000 memberships and 2,000,000 audit events, among them one accounting-office account
with 20,000 companies and 5,000 people (with company levels and 300,000 audit events) whose
owner belongs to 1,000 accounts and has 10,000 sessions, and a small account (3 companies,
2 people). Every size is multiplied by ``--scale`` (0.05 builds in well under a minute).

The database is ``portal_scale_<scale>`` on PORTAL_TEST_DATABASE_URL's server (or the embedded
one), migrated with ``portal.db.migrate``; ``--keep`` keeps it and reuses it on the next run
(pending migrations are applied first, so new indexes are measured on the same data).

Then, against the real server (one worker, one signed-in client, requests one after another),
each request is timed ``--requests`` times and reported as median and p95, for both accounts;
the CSV export of up to 100,000 events is timed a few times with the server's peak RSS growth
(it must stream). ``--save`` writes the figures as JSON; ``--before`` puts such a file's
figures next to this run's in the "Vendor scale" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import psutil

from bench.common import machine, percentile, server, write_section
from portal import db
from portal.security.passwords import HASHER
from portal.security.tokens import new_hex_id, new_token, token_hash
from portal.testing.database import _admin, _with_database, server_url

PASSWORD = "benchmarkowe hasło w skali dostawcy"
BIG_OWNER = "wlasciciel@biuro-skala.example.com"
SMALL_OWNER = "wlasciciel@mala-firma.example.com"
TARGET_MS = 50.0
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.2 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 "
    "Mobile Safari/537.36",
]
TAGS = ["membership:person:add", "membership:role:change", "company_access:level:change",
        "invitation:invitation:create", "account:company:create", "account:company:update",
        "account:account:update", "membership:person:remove"]
FIRST = ["Anna", "Piotr", "Ewa", "Jan", "Katarzyna", "Marek", "Agnieszka", "Tomasz",
         "Magdalena", "Paweł", "Joanna", "Krzysztof", "Monika", "Andrzej", "Barbara", "Michał"]
LAST = ["Kowalska", "Nowak", "Wiśniewski", "Wójcik", "Kamińska", "Lewandowski", "Zielińska",
        "Szymański", "Woźniak", "Dąbrowska", "Kozłowski", "Jankowska", "Mazur", "Krawczyk"]
TRADES = ["Piekarnia", "Auto-Serwis", "Kwiaciarnia", "Biuro Projektowe", "Apteka", "Hurtownia",
          "Zakład Stolarski", "Przychodnia", "Drukarnia", "Kancelaria", "Pracownia", "Sklep"]
COMPANY_SEARCHES = ["piek", "Kowalski", "serwis", "hurt", "mazur", "Zakład Stol", "526",
                    "nie ma takiej firmy"]
PEOPLE_SEARCHES = ["kowal", "anna", "osoba12", "example.org", "zielińska", "nie ma takiej osoby"]


def sizes(scale: float) -> dict[str, int]:
    def n(full: int, least: int) -> int:
        return max(least, round(full * scale))

    return {
        "identities": n(200_000, 2_000), "accounts": n(50_000, 200),
        "companies": n(500_000, 2_000), "memberships": n(1_000_000, 4_000),
        "events": n(2_000_000, 8_000),
        "big_companies": n(20_000, 200), "big_people": n(5_000, 100),
        "big_events": n(300_000, 2_000), "owner_accounts": n(1_000, 20),
        "owner_sessions": n(10_000, 200), "owner_logins": n(3_000, 50),
    }


# --- filling the database --------------------------------------------------------------------


async def seed(url: str, size: dict[str, int]) -> dict[str, str]:
    """Fill the database; returns the two API key secrets."""
    con = await asyncpg.connect(**db.connect_kwargs(url))
    started = time.perf_counter()

    async def run(label: str, sql: str, *args) -> None:
        moment = time.perf_counter()
        await con.execute(sql, *args)
        print(f"  {label}: {time.perf_counter() - moment:.1f} s", flush=True)

    password_hash = HASHER.hash(PASSWORD)
    people = size["identities"]
    big_people = size["big_people"]
    await con.execute("SET synchronous_commit = off")
    # Identities 1..big_people are the big account's people; the two owners come first.
    await run("identities", """
        INSERT INTO identity (email, password_hash, email_verified_at, last_login_at,
                              mfa_email_enabled, totp_confirmed_at, created_at)
        SELECT CASE n WHEN 1 THEN $2 WHEN 2 THEN $3 ELSE
                 'osoba' || n || '.' || lower(translate(($5::text[])[1 + n % 16], 'łŁ', 'lL'))
                 || '@firma-' || (n % 997) ||
                 CASE WHEN n % 3 = 0 THEN '.example.org' ELSE '.example.com' END END,
               CASE WHEN n <= 2 THEN $4 ELSE '' END, now() - interval '800 days',
               CASE WHEN n % 4 = 0 THEN NULL ELSE now() - (n % 50000) * interval '13 minutes' END,
               n % 2 = 0 AND n > 2, CASE WHEN n % 5 = 0 AND n > 2 THEN now() END,
               now() - interval '800 days' + n * interval '1 second'
        FROM generate_series(1, $1) AS n
    """, people, BIG_OWNER, SMALL_OWNER, password_hash, FIRST)
    await con.execute("""
        CREATE TEMP TABLE ids AS
        SELECT row_number() OVER (ORDER BY created_at, id) AS n, id FROM identity""")
    await con.execute("CREATE UNIQUE INDEX ON ids (n)")
    await run("profiles", """
        INSERT INTO profile (identity, first_name, last_name, phone, language)
        SELECT id, ($1::text[])[1 + n % 16], ($2::text[])[1 + n % 14], '', '' FROM ids
    """, FIRST, LAST)
    # Accounts: 1 the accounting office, 2 the small account, the rest ordinary.
    await run("accounts", """
        INSERT INTO account (public_id, name, nip, is_accounting_office, city, created_at)
        SELECT substr(md5('account' || n), 1, 12),
               CASE n WHEN 1 THEN 'Biuro Rachunkowe Skala' WHEN 2 THEN 'Mała Firma'
                      ELSE 'Klient ' || n END,
               lpad((5260000000 + n)::text, 10, '0'), n = 1, 'Warszawa',
               now() - interval '700 days' + n * interval '1 second'
        FROM generate_series(1, $1) AS n
    """, size["accounts"])
    await con.execute("""
        CREATE TEMP TABLE accs AS
        SELECT row_number() OVER (ORDER BY created_at, id) AS n, id, public_id FROM account""")
    await con.execute("CREATE UNIQUE INDEX ON accs (n)")
    # Companies: the office's, the small account's three, the rest spread over the others
    # (each ordinary account 1..2*avg-1 of them, the first one its main company).
    rest = size["companies"] - size["big_companies"] - 3
    others = size["accounts"] - 2
    spread = max(1, round(rest / others))
    await run("companies", """
        INSERT INTO company (account, key, name, nip, is_main, city, created_at)
        SELECT a.id, substr(md5('company' || a.n || '.' || c), 1, 16),
               CASE WHEN c = 1 THEN CASE a.n WHEN 1 THEN 'Biuro Rachunkowe Skala'
                                            WHEN 2 THEN 'Mała Firma' ELSE 'Klient ' || a.n END
                    ELSE ($4::text[])[1 + c % 12] || ' ' || ($5::text[])[1 + (c * 7) % 14]
                         || ' ' || c END,
               lpad((5260000000 + (a.n * 37 + c) % 1000000000)::text, 10, '0'),
               c = 1, (ARRAY['Warszawa', 'Kraków', 'Płock'])[1 + c % 3],
               now() - interval '600 days' + c * interval '1 minute'
        FROM accs a
        CROSS JOIN LATERAL generate_series(1, CASE a.n WHEN 1 THEN $1 WHEN 2 THEN 3
                                           ELSE 1 + (a.n % (2 * $2 - 1)) END) AS c
        WHERE a.n <= $3
    """, size["big_companies"], spread, size["accounts"], TRADES, LAST)
    # Memberships: the office's people (identities 1..big_people, 1 the owner), the small
    # account's two, the big owner in owner_accounts accounts, and ordinary members spread
    # over the ordinary accounts until the total is reached.
    await run("memberships (office, small)", """
        INSERT INTO membership (account, identity, role, created_at)
        SELECT (SELECT id FROM accs WHERE accs.n = 1), ids.id,
               CASE WHEN ids.n = 1 THEN 'owner' WHEN ids.n % 50 = 0 THEN 'admin'
                    ELSE 'member' END, now() - interval '500 days' + ids.n * interval '1 minute'
        FROM ids WHERE ids.n <= $1 AND ids.n <> 2
        UNION ALL
        SELECT (SELECT id FROM accs WHERE accs.n = 2), ids.id,
               CASE WHEN ids.n = 2 THEN 'owner' ELSE 'member' END, now()
        FROM ids WHERE ids.n IN (2, $1 + 1)
    """, big_people)
    await run("memberships (the owner's accounts)", """
        INSERT INTO membership (account, identity, role)
        SELECT a.id, (SELECT id FROM ids WHERE ids.n = 1),
               CASE WHEN a.n % 7 = 0 THEN 'owner' ELSE 'admin' END
        FROM accs a WHERE a.n BETWEEN 3 AND $1 + 1
    """, size["owner_accounts"])
    per_account = max(1, round((size["memberships"] - big_people - size["owner_accounts"] - 2)
                               / others))
    await run("memberships (ordinary)", """
        INSERT INTO membership (account, identity, role)
        SELECT a.id, ids.id, CASE WHEN k = 0 THEN 'owner' ELSE 'member' END
        FROM accs a CROSS JOIN LATERAL generate_series(0, $1 - 1) AS k
        JOIN ids ON ids.n = 3 + ((a.n * 7 + k * 7919) % ($2 - 2))
        WHERE a.n > 2
        ON CONFLICT (account, identity) DO NOTHING
    """, per_account, people)
    await run("company access (office members)", """
        INSERT INTO company_access (membership, company, level)
        SELECT m.id, c.id, (ARRAY['view', 'edit', 'manage'])[1 + (m.n + k) % 3]
        FROM (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM membership
              WHERE account = (SELECT id FROM accs WHERE accs.n = 1) AND role = 'member') AS m
        CROSS JOIN LATERAL generate_series(0, m.n % 10) AS k
        JOIN (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM company
              WHERE account = (SELECT id FROM accs WHERE accs.n = 1)) AS c
          ON c.n = 1 + ((m.n * 13 + k * 101) % $1)
        ON CONFLICT DO NOTHING
    """, size["big_companies"])
    # Audit events: the office's (about its people and companies), the other accounts', and
    # sign-ins (no account) of everyone, the big owner's many, from a handful of browsers.
    await run("audit events (office)", """
        INSERT INTO audit_event (created_at, tag, identity_id, account_id, ip, user_agent, data)
        SELECT now() - (g.i * interval '3 minutes'), ($3::text[])[1 + g.i % 8],
               actor.id, (SELECT id FROM accs WHERE accs.n = 1), '10.0.' || (g.i % 250) || '.1',
               ($4::text[])[1 + g.i % 5],
               jsonb_build_object('email', 'osoba' || (3 + g.i % ($2 - 2)) || '@example.com',
                                  'company_id', (g.i % 977)::text)
        FROM generate_series(1, $1) AS g(i)
        JOIN ids actor ON actor.n = CASE WHEN g.i % 3 = 0 THEN 1 ELSE 1 + g.i % $2 END
    """, size["big_events"], big_people, TAGS, USER_AGENTS)
    await run("audit events (small)", """
        INSERT INTO audit_event (created_at, tag, identity_id, account_id, ip, user_agent, data)
        SELECT now() - n * interval '1 day', ($1::text[])[1 + n % 8],
               (SELECT id FROM ids WHERE ids.n = 2), (SELECT id FROM accs WHERE accs.n = 2),
               '10.1.0.1',
               ($2::text[])[1], '{}'::jsonb
        FROM generate_series(1, 100) AS n
    """, TAGS, USER_AGENTS)
    ordinary = size["events"] - size["big_events"] - 100 - size["owner_logins"]
    await run("audit events (ordinary accounts and sign-ins)", """
        INSERT INTO audit_event (created_at, tag, identity_id, account_id, ip, user_agent, data)
        SELECT now() - (g.i % 1000000) * interval '1 minute',
               CASE WHEN g.i % 5 < 2 THEN ($4::text[])[1 + g.i % 8]
                    ELSE 'identity:login:success' END,
               actor.id, CASE WHEN g.i % 5 < 2 THEN acc.id END, '10.2.' || (g.i % 250) || '.1',
               ($5::text[])[1 + (g.i / 7) % 5], '{}'::jsonb
        FROM generate_series(1, $1) AS g(i)
        JOIN ids actor ON actor.n = 3 + (g.i * 31) % ($2 - 2)
        JOIN accs acc ON acc.n = 3 + (g.i * 17) % ($3 - 2)
    """, ordinary, people, size["accounts"], TAGS, USER_AGENTS)
    await run("audit events (the big owner's sign-ins)", """
        INSERT INTO audit_event (created_at, tag, identity_id, ip, user_agent)
        SELECT now() - n * interval '2 hours', 'identity:login:success',
               (SELECT id FROM ids WHERE ids.n = 1), '10.3.0.' || (n % 250), ($2::text[])[1 + n % 5]
        FROM generate_series(1, $1) AS n
    """, size["owner_logins"], USER_AGENTS)
    big_owner = await con.fetchval("SELECT id FROM ids WHERE ids.n = 1")
    await run("sessions (the big owner's)", OWNER_SESSIONS, big_owner, size["owner_sessions"],
              USER_AGENTS)
    secrets = {}
    for label, account_n, owner_n in (("big", 1, 1), ("small", 2, 2)):
        key_id = new_hex_id(12)
        secret = f"pak_{key_id}_{new_token(32)}"
        await con.execute("""
            INSERT INTO api_key (account, name, key_id, secret_hash, scopes, created_by,
                                 expires_at)
            SELECT (SELECT id FROM accs WHERE accs.n = $1), 'bench', $2, $3, '{read}',
                   (SELECT id FROM ids WHERE ids.n = $4), now() + interval '30 days'
        """, account_n, key_id, token_hash(secret), owner_n)
        secrets[label] = secret
    # Both owners start in their own account.
    await con.execute("""
        UPDATE identity SET last_account_id = (SELECT public_id FROM accs WHERE accs.n = 1)
        WHERE email = $1""", BIG_OWNER)
    await con.execute("""
        UPDATE identity SET last_account_id = (SELECT public_id FROM accs WHERE accs.n = 2)
        WHERE email = $1""", SMALL_OWNER)
    await con.execute("CREATE TABLE IF NOT EXISTS bench_scale (label text PRIMARY KEY, "
                      "secret text NOT NULL)")
    await con.executemany("INSERT INTO bench_scale VALUES ($1, $2)", list(secrets.items()))
    await run("vacuum analyze", "VACUUM ANALYZE")  # what autovacuum would have done by now
    print(f"  filled in {time.perf_counter() - started:.0f} s", flush=True)
    await con.close()
    return secrets


async def counts(url: str) -> dict[str, int]:
    con = await asyncpg.connect(**db.connect_kwargs(url))
    try:
        result = {}
        for table in ("identity", "account", "company", "membership", "company_access",
                      "audit_event", "session"):
            result[table] = await con.fetchval(f'SELECT count(*) FROM "{table}"')  # noqa: S608 (fixed names)
        return result
    finally:
        await con.close()


async def prepare(scale: float, keep: bool) -> tuple[str, dict[str, str], callable]:
    """The database's URL (made and filled, or kept from an earlier run), the API secrets,
    and what to call at the end (drop it unless kept)."""
    name = "portal_scale_" + f"{scale:g}".replace(".", "_")
    with server_url() as admin_url:
        url = _with_database(admin_url, name)
        connection = await asyncpg.connect(**db.connect_kwargs(admin_url))
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        await connection.close()
        secrets = None
        if exists and keep:
            con = await asyncpg.connect(**db.connect_kwargs(url))
            try:
                rows = await con.fetch("SELECT label, secret FROM bench_scale")
                secrets = {row["label"]: row["secret"] for row in rows} or None
            except asyncpg.UndefinedTableError:
                secrets = None
            finally:
                await con.close()
            if secrets is None:
                print(f"{name} is incomplete: filling it again", flush=True)
        if secrets is None:
            await _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await _admin(admin_url, f'CREATE DATABASE "{name}"')
            await db.migrate(url)
            print(f"filling {name}", flush=True)
            secrets = await seed(url, sizes(scale))
        else:
            print(f"reusing {name}", flush=True)
            await db.migrate(url)  # new indexes land on the same data
            await fresh_owner_sessions(url, sizes(scale)["owner_sessions"])

        async def finish() -> None:
            if not keep:
                await _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        return url, secrets, finish


#: The big owner's sessions ($1 the identity, $2 how many, $3 user agents), all seen in the
#: last 17 minutes: idle for less than the server's cleanup allows.
OWNER_SESSIONS = """
    INSERT INTO session (id_hash, identity, last_seen_at, expires_at, ip, user_agent, amr,
                         reauth_at, created_at)
    SELECT md5('session' || n) || md5('session-b' || n), $1,
           now() - n * interval '0.1 second', now() + interval '1 day',
           '10.4.' || (n % 250) || '.1', ($3::text[])[1 + n % 5], '{pwd}',
           now() - interval '1 hour', now() - n * interval '1 second'
    FROM generate_series(1, $2) AS n
"""


async def fresh_owner_sessions(url: str, count: int) -> None:
    """The big owner's sessions again, all recently seen: a kept database's were deleted by
    the server's cleanup once idle, and /security is measured with them."""
    con = await asyncpg.connect(url)
    try:
        owner = await con.fetchval("SELECT id FROM identity WHERE lower(email) = $1",
                                   BIG_OWNER)
        await con.execute("DELETE FROM session WHERE identity = $1", owner)
        await con.execute(OWNER_SESSIONS, owner, count, USER_AGENTS)
    finally:
        await con.close()


# --- measuring -------------------------------------------------------------------------------


def server_process(base: str) -> psutil.Process:
    port = base.rsplit(":", 1)[1]
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "serve" in cmdline and "--port" in cmdline and port in cmdline:
            return process
    raise RuntimeError("server process not found")


async def signed_in(base: str, email: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base, timeout=300)
    page = await client.get("/login")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
    response = await client.post("/login", data={"email": email, "password": PASSWORD,
                                                 "_csrf_token": token})
    assert response.status_code == 303, (response.status_code, response.text[:300])
    assert response.headers["location"] != "/login/mfa"
    return client


async def timed(client: httpx.AsyncClient, url: str, count: int, words: list[str] = ("",),
                headers: dict | None = None) -> list[float]:
    headers = headers if headers is not None else {"HX-Request": "true"}
    times = []
    for i in range(count):
        target = url.format(q=words[i % len(words)])
        start = time.perf_counter()
        response = await client.get(target, headers=headers)
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, (target, response.status_code, response.text[:300])
    return times


def next_link(html: str) -> str:
    """The "next page" link of a list fragment (with its keyset cursor), as a URL."""
    match = re.search(r'<a[^>]*href="([^"]+)"[^>]*rel="next"', html)
    assert match, "no next link"
    return match.group(1).replace("&amp;", "&")


async def signins(base: str, email: str, count: int, clients: int) -> dict:
    """``count`` sign-ins (each a new session), ``clients`` at a time; refusals while the
    hashing queue is full (503) are retried and counted."""
    done, refused = 0, 0
    started = time.perf_counter()

    async def one_client() -> None:
        nonlocal done, refused
        while done < count:
            # A new browser each time (cookies and all), as 10,000 people would come.
            async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                page = await client.get("/login")
                token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
                response = await client.post("/login", data={
                    "email": email, "password": PASSWORD, "_csrf_token": token})
            if response.status_code == 303:
                done += 1
            elif response.status_code == 503:
                refused += 1
                await asyncio.sleep(0.2)
            else:
                raise AssertionError((response.status_code, response.text[:300]))

    await asyncio.gather(*(one_client() for _ in range(clients)))
    return {"signins": done, "refused": refused, "seconds": time.perf_counter() - started}


def last_page(html: str) -> int:
    """The number of pages a list fragment says it has ("Strona 1 z 800")."""
    match = re.search(r"Strona \d+ z (\d+)", html)
    return int(match.group(1)) if match else 1


class PeakRss:
    """Samples a process's RSS every 10 ms in a thread until stopped."""

    def __init__(self, process: psutil.Process) -> None:
        self.process, self.peak, self.running = process, process.memory_info().rss, True
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.01)

    def __enter__(self):
        self.start = self.process.memory_info().rss
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join()


async def export(client: httpx.AsyncClient, process: psutil.Process, query: str = ""):
    with PeakRss(process) as rss:
        start = time.perf_counter()
        first_byte = None
        size = 0
        lines = 0
        async with client.stream("GET", "/users/audit.csv" + query) as response:
            assert response.status_code == 200, response.status_code
            async for chunk in response.aiter_bytes():
                if first_byte is None:
                    first_byte = time.perf_counter() - start
                size += len(chunk)
                lines += chunk.count(b"\n")
        took = time.perf_counter() - start
    return {"seconds": took, "first_byte": first_byte, "bytes": size, "rows": lines - 1,
            "rss_growth": (rss.peak - rss.start) / 2**20}


async def measure(base: str, secrets: dict[str, str], requests: int,
                  signin_count: int = 0) -> dict:
    process = server_process(base)
    results: dict = {"rss_start_mb": process.memory_info().rss / 2**20}
    for label, email in (("big", BIG_OWNER), ("small", SMALL_OWNER)):
        client = await signed_in(base, email)
        first = await client.get("/companies", headers={"HX-Request": "true"})
        company_pages = last_page(first.text)
        people = await client.get("/users", headers={"HX-Request": "true"})
        people_pages = last_page(people.text)
        middle = max(1, company_pages // 2)
        middle_html = (await client.get(f"/companies?page={middle}",
                                        headers={"HX-Request": "true"})).text
        after_middle = next_link(middle_html) if company_pages > 1 else "/companies"
        audit_100 = (await client.get("/users/audit?page=100", headers={"HX-Request": "true"}))
        after_100 = (next_link(audit_100.text) if 'rel="next"' in audit_100.text
                     else "/users/audit?page=100")
        # A member's company levels (the access matrix): the last person by name.
        people_last = (await client.get(f"/users?sort=-name&page={people_pages}",
                                        headers={"HX-Request": "true"})).text
        person = re.findall(r'href="/users/([0-9a-f-]{36})"', people_last)[-1]
        n = requests
        await timed(client, "/companies?q={q}", 10, COMPANY_SEARCHES)  # warm up
        figures = {
            "companies search": await timed(client, "/companies?q={q}", n, COMPANY_SEARCHES),
            "companies first page": await timed(client, "/companies", n),
            "companies last page by name": await timed(
                client, f"/companies?sort=-name&page={company_pages}", n),
            "people first page": await timed(client, "/users", n),
            "people by last sign-in": await timed(client, "/users?sort=last_login", n),
            "people search": await timed(client, "/users?q={q}", n, PEOPLE_SEARCHES),
            "people last page": await timed(client, f"/users?sort=-name&page={people_pages}", n),
            "audit page": await timed(client, "/users/audit", n),
            "audit page filtered by who": await timed(client, "/users/audit?who={q}", n,
                                                      ["osoba1", "wlasciciel", "firma-7"]),
            "audit page 100": await timed(client, "/users/audit?page=100", n),
            "companies middle page": await timed(client, f"/companies?page={middle}", n),
            "companies next page by key": await timed(client, after_middle, n),
            "audit next page by key": await timed(client, after_100, n),
            "account card": await timed(client, "/account", n),
            "switcher": await timed(client, "/accounts?next=/users", n),
            "switcher filter": await timed(client, "/accounts?q={q}&next=/users", n,
                                           ["klient 1", "klient 42", "5260", "nic"]),
            "home": await timed(client, "/", n, headers={}),
            "security": await timed(client, "/security", n, headers={}),
            "access matrix": await timed(client, f"/users/{person}/access", n),
            "access matrix search": await timed(client, f"/users/{person}/access?q={{q}}", n,
                                                COMPANY_SEARCHES),
            "ticket form": await timed(client, "/support", n, headers={}),
            "API key form": await timed(client, "/api-keys", n, headers={}),
        }
        api = httpx.AsyncClient(base_url=base, timeout=60,
                                headers={"Authorization": f"Bearer {secrets[label]}"})
        figures["API companies"] = await timed(api, "/api/v1/companies", n, headers={})
        figures["API companies last page"] = await timed(
            api, f"/api/v1/companies?page={company_pages}", n, headers={})
        figures["API people"] = await timed(api, "/api/v1/people", n, headers={})
        figures["API companies search"] = await timed(api, "/api/v1/companies?q={q}", n,
                                                      COMPANY_SEARCHES, headers={})
        figures["API audit"] = await timed(api, "/api/v1/audit", n, headers={})
        await api.aclose()
        runs = [await export(client, process) for _ in range(3 if label == "big" else 2)]
        figures["CSV export"] = [run["seconds"] for run in runs]
        results[label] = {"times": figures, "export": runs,
                          "security_bytes": len((await client.get("/security")).content)}
        await client.aclose()
    results["rss_end_mb"] = process.memory_info().rss / 2**20
    if signin_count:
        # Each sign-in makes a session of the small account's owner; a warm worker, so the
        # growth is what the sessions (and whatever they leave behind) cost.
        results["signins"] = await signins(base, SMALL_OWNER, signin_count, 2)
        results["rss_signins_mb"] = process.memory_info().rss / 2**20
    return results


# --- reporting -------------------------------------------------------------------------------

ROWS = [
    ("companies search", "companies search fragment `GET /companies?q=…`, 8 searches"),
    ("companies first page", "companies, first page"),
    ("companies last page by name", "companies, last page, names descending"),
    ("people first page", "people `GET /users`, first page"),
    ("people by last sign-in", "people sorted by last sign-in"),
    ("people search", "people search `GET /users?q=…`, 6 searches"),
    ("people last page", "people, last page, names descending"),
    ("audit page", "audit log `GET /users/audit`, first page"),
    ("audit page filtered by who", "audit log filtered by who `?who=…`"),
    ("audit page 100", "audit log, page 100"),
    ("companies middle page", "companies, the middle page by number (`?page=<pages/2>`)"),
    ("companies next page by key", "companies, \"next\" from the middle page (keyset cursor)"),
    ("audit next page by key", "audit log, \"next\" from page 100 (keyset cursor)"),
    ("account card", "account card `GET /account`"),
    ("switcher", "switcher fragment `GET /accounts`"),
    ("switcher filter", "switcher filtered `GET /accounts?q=…`"),
    ("home", "home `GET /` (whole page)"),
    ("security", "`GET /security` (whole page; the owner has many sessions)"),
    ("access matrix", "a member's company levels `GET /users/<id>/access` (fragment)"),
    ("access matrix search", "the same, filtered `?q=…`, 8 searches"),
    ("ticket form", "support `GET /support` (whole page: tickets and the form's companies)"),
    ("API key form", "API keys `GET /api-keys` (whole page: keys and the form's companies)"),
    ("API companies", "`GET /api/v1/companies`"),
    ("API companies last page", "`GET /api/v1/companies?page=<last>`"),
    ("API people", "`GET /api/v1/people`"),
    ("API companies search", "`GET /api/v1/companies?q=…`, 8 searches"),
    ("API audit", "`GET /api/v1/audit`"),
]


def ms(values: list[float] | None, p: float) -> str:
    if not values:
        return "n/a"
    value = percentile(values, p) * 1000
    return f"{value:.0f} ms" if value >= 100 else f"{value:.1f} ms"


def report(args, size: dict[str, int], rows: dict[str, int], now: dict,
           before: dict | None) -> str:
    def cells(which: dict | None, label: str, key: str) -> str:
        times = (which or {}).get(label, {}).get("times", {}).get(key)
        return f"{ms(times, 50)} / {ms(times, 95)}"

    header = "| request | big: median / p95 | small: median / p95 |"
    if before:
        header = ("| request | big before | big after | small before | small after |")
    lines = [header, "|---" * (header.count("|") - 1) + "|"]
    worst, worst_of = 0.0, ""
    for key, label in ROWS:
        for which in ("big", "small"):
            p95 = percentile(now[which]["times"][key], 95) * 1000
            if p95 > worst:
                worst, worst_of = p95, f"{key}, {which} account"
        if before:
            lines.append(f"| {label} | {cells(before, 'big', key)} | {cells(now, 'big', key)} | "
                         f"{cells(before, 'small', key)} | {cells(now, 'small', key)} |")
        else:
            lines.append(f"| {label} | {cells(now, 'big', key)} | {cells(now, 'small', key)} |")

    def export_line(which: dict, label: str) -> str:
        runs = which[label]["export"]
        return (f"{len(runs)} runs, {runs[0]['rows']:,} rows ({runs[0]['bytes'] / 2**20:.1f} MB): "
                + ", ".join(f"{r['seconds']:.2f} s (first byte {r['first_byte'] * 1000:.0f} ms, "
                            f"peak RSS +{r['rss_growth']:.1f} MB)" for r in runs))

    exports = [f"- big account, after: {export_line(now, 'big')}",
               f"- small account, after: {export_line(now, 'small')}"]
    if before:
        exports.insert(0, f"- big account, before: {export_line(before, 'big')}")
    made = ", ".join(f"{rows[t]:,} {t}" for t in rows)
    security = now["big"]["security_bytes"] / 1024
    verdict = "met" if worst <= TARGET_MS else "**not met**"
    return f"""
`python -m bench.scale --scale {args.scale:g} --requests {args.requests}` on {machine()}, \
{datetime.now(UTC):%Y-%m-%d}. The database (made by `bench/scale.py` through the real tables): \
{made}. The big account is an accounting office with {size["big_companies"]:,} companies, \
{size["big_people"]:,} people (with company levels) and {size["big_events"]:,} audit events; \
its owner belongs to {size["owner_accounts"]:,} accounts and has {size["owner_sessions"]:,} \
sessions. The small account has 3 companies, 2 people and 100 events. One signed-in client per \
account (and one API key), requests one after another, one server worker; htmx fragments \
unless marked otherwise.

{chr(10).join(lines)}

CSV export of the audit log (up to 100,000 events), timed to the last byte, with the growth of \
the server's peak RSS while it ran:

{chr(10).join(exports)}

`/security` for the big owner: {security:.0f} KB of HTML. RSS of the one worker: \
{now["rss_start_mb"]:.0f} MB at start, {now["rss_end_mb"]:.0f} MB after these runs \
(before: {before["rss_start_mb"]:.0f} → {before["rss_end_mb"]:.0f} MB){signin_line(now)}.

Target: every list and fragment p95 ≤ {TARGET_MS:.0f} ms for both accounts — {verdict} \
(worst p95 {worst:.1f} ms: {worst_of}; the CSV export aside).
""" if before else f"""
`python -m bench.scale --scale {args.scale:g} --requests {args.requests}` on {machine()}, \
{datetime.now(UTC):%Y-%m-%d}. {made}.

{chr(10).join(lines)}

{chr(10).join(exports)}

`/security`: {security:.0f} KB. RSS {now["rss_start_mb"]:.0f} → {now["rss_end_mb"]:.0f} MB\
{signin_line(now)}. Worst p95 {worst:.1f} ms ({worst_of}) — {verdict}.
"""


def signin_line(now: dict) -> str:
    if "signins" not in now:
        return ""
    run = now["signins"]
    growth = now["rss_signins_mb"] - now["rss_end_mb"]
    per_10k = growth * 10_000 / max(1, run["signins"])
    verdict = "met" if per_10k <= 50 else "**not met**"
    return (f", then {now['rss_signins_mb']:.0f} MB after {run['signins']:,} more sign-ins "
            f"(each a new session; {run['signins'] / run['seconds']:.1f} /s, "
            f"{run['refused']} busy refusals retried): +{growth:.1f} MB, "
            f"{per_10k:.1f} MB per 10,000 sessions (target ≤ 50 MB: {verdict})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--keep", action="store_true",
                        help="keep the database and reuse it on the next run")
    parser.add_argument("--save", type=Path, help="write this run's figures as JSON")
    parser.add_argument("--before", type=Path,
                        help="an earlier --save file, shown next to this run's figures")
    parser.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    parser.add_argument("--signins", type=int, default=10_000,
                        help="sign-ins after the lists, for the worker's RSS growth (0: none)")
    args = parser.parse_args()

    os.environ.setdefault("PORTAL_API_RATE_PER_MINUTE", "1000000")
    url, secrets, finish = asyncio.run(prepare(args.scale, args.keep))
    try:
        rows = asyncio.run(counts(url))
        with server(url) as base:
            result = asyncio.run(measure(base, secrets, args.requests, args.signins))
    finally:
        asyncio.run(finish())
    if args.save:
        args.save.write_text(json.dumps(result))
    before = json.loads(args.before.read_text()) if args.before else None
    body = report(args, sizes(args.scale), rows, result, before)
    print(body)
    if not args.no_write:
        write_section("Vendor scale", body)


if __name__ == "__main__":
    main()
