"""What each request costs PostgreSQL, for docs/SCALING.md: SQL statements, rows written and
their on-disk size (heap, indexes, TOAST) per sign-in, per signed-in page, per API write and
per failed sign-in, measured through the real ASGI stack on a fresh database. (WAL is not
measured: the development server is shared, and its WAL position moves with everyone's.)

    .venv/bin/python -m bench.writes [--requests 200]

Writes the "PostgreSQL writes per request" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from dataclasses import replace
from datetime import UTC, datetime

import httpx

from bench.common import machine, write_section
from portal import db
from portal.app import create_app
from portal.settings import Settings
from portal.testing import factories
from portal.testing.database import test_database
from tests.api.conftest import make_key
from tests.conftest import Client

TABLES = ("session", "throttle", "audit_event", "outbox_email", "company", "identity")


async def _sizes() -> dict[str, tuple[int, int]]:
    """rows and total bytes (heap, indexes, TOAST) per table."""
    out = {}
    for table in TABLES:
        rows = await db.ENGINE.run_ddl(
            f"SELECT count(*) AS n, pg_total_relation_size('{table}') AS bytes "  # noqa: S608
            f"FROM {table}")
        out[table] = (int(rows[0]["n"]), int(rows[0]["bytes"]))
    return out


async def measure(url: str, requests: int) -> list[tuple[str, str, str, str]]:
    db.configure(url)
    await db.start_pool(max_size=4)
    settings = replace(Settings.from_env(), database_url=url, base_url="http://bench.local")
    app = create_app(settings)
    identity_id = await factories.identity("writes@example.com")
    account = await factories.account(identity_id, name="Bench")
    secret = await make_key(identity_id, account, scopes=("read", "write"))
    results = []

    async def phase(name: str, work) -> None:
        before_sizes, queries = await _sizes(), db.ENGINE.query_id
        for n in range(requests):
            await work(n)
        after_sizes = await _sizes()
        grown = {t: (after_sizes[t][0] - before_sizes[t][0], after_sizes[t][1] -
                     before_sizes[t][1]) for t in TABLES}
        rows = ", ".join(f"{t} +{n / requests:.2g}" for t, (n, _) in grown.items() if n)
        size = sum(b for _, b in grown.values())
        results.append((name, f"{(db.ENGINE.query_id - queries) / requests:.1f}",
                        rows or "none", f"{size / requests / 1024:.2f} KiB"))

    transport = httpx.ASGITransport(app=app, client=("198.51.100.9", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://bench.local") as raw:
        person = Client(raw)

        async def sign_in(n: int) -> None:
            raw.cookies.clear()
            await person.sign_in("writes@example.com", factories.PASSWORD)

        await phase("sign-in (`POST /login`, password)", sign_in)

        async def page(n: int) -> None:
            assert (await raw.get("/account")).status_code == 200

        await phase("signed-in page (`GET /account`)", page)

        async def api_write(n: int) -> None:
            response = await raw.post("/api/v1/companies", json={"name": f"Firma {n}"},
                                      headers={"Authorization": f"Bearer {secret}"})
            assert response.status_code == 201

        await phase("API write (`POST /api/v1/companies`)", api_write)

        async def failed(n: int) -> None:
            raw.cookies.clear()
            await person.post_form("/login", {"email": f"nobody{n % 50}@example.com",
                                              "password": "zle haslo zle haslo"})

        await phase("failed sign-in (unknown email)", failed)
    await db.close_pool()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    os.environ.setdefault("PORTAL_SECRET_KEY", "bench-secret-key-not-for-production")
    with test_database("portal_bench_writes") as url:
        results = asyncio.run(measure(url, args.requests))
    lines = [
        f"`python -m bench.writes --requests {args.requests}` on {machine()}, "
        f"{datetime.now(UTC):%Y-%m-%d}. Through the ASGI stack in one process (no HTTP), "
        "requests one after another on a fresh database; growth from "
        "`pg_total_relation_size` (heap, indexes, TOAST; pages are allocated in 8 KiB "
        "steps, so the figures are rough). Rows are new rows: a throttle counter or the "
        "key's rate counter that exists is updated in place (every request of these "
        "writes one).",
        "",
        "| request | SQL statements | rows written per request | tables grow per request |",
        "|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in results],
    ]
    write_section("PostgreSQL writes per request", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
