"""JSON API throughput: authenticated ``GET /api/v1/companies``, and what the key check costs.

    .venv/bin/python -m bench.api [--seconds 10] [--clients 8] [--workers 2]

1. Through HTTP against ``portal serve``: requests per second with a valid API key.
2. In one process, through the same ASGI stack: the request with the real key check, and the
   same request with the check replaced by a guard that hands over the already-known key
   (so the difference is the key lookup, hash comparison, rate-limit counter and last-used).
Writes the "JSON API" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from dataclasses import replace
from datetime import UTC, datetime

import httpx

from bench.common import machine, percentile, server, write_section
from portal import db
from portal.settings import Settings
from portal.testing import factories
from portal.testing.database import test_database
from tests.api.conftest import make_key

COMPANIES = 100


async def seed(url: str) -> str:
    db.configure(url)
    await db.start_pool(max_size=4)
    identity_id = await factories.identity("api-bench@example.com")
    account = await factories.account(identity_id, name="Bench")
    for i in range(COMPANIES - 1):
        await factories.company(account["id"], name=f"Firma {i:03d}")
    secret = await make_key(identity_id, account)
    await db.close_pool()
    return secret


async def over_http(base: str, secret: str, clients: int, seconds: float):
    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    async with httpx.AsyncClient(base_url=base, timeout=30,
                                 headers={"Authorization": f"Bearer {secret}"},
                                 limits=httpx.Limits(max_connections=clients)) as http:
        async def run() -> None:
            while time.perf_counter() < stop:
                start = time.perf_counter()
                response = await http.get("/api/v1/companies")
                latencies.append(time.perf_counter() - start)
                assert response.status_code == 200, response.text

        started = time.perf_counter()
        await asyncio.gather(*(run() for _ in range(clients)))
    return len(latencies) / (time.perf_counter() - started), latencies


async def in_process(url: str, secret: str, count: int) -> tuple[list[float], list[float]]:
    """The same request through two apps: the real key check, and a guard that skips it."""
    from portal.api import app as api_app
    from portal.app import create_app
    from portal.services import api_keys

    settings = replace(Settings.from_env(), database_url=url)
    db.configure(url)
    await db.start_pool(max_size=4)
    checked = create_app(settings)
    principal = await api_keys.authenticate(secret, settings.api_rate_per_minute)

    async def known_key(connection, _handler) -> None:
        connection.scope.setdefault("state", {})["api_principal"] = principal

    original = api_app.requires_api_key
    api_app.requires_api_key = known_key
    try:
        unchecked = create_app(settings)
    finally:
        api_app.requires_api_key = original

    async def timings(app) -> list[float]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench",
                                     headers={"Authorization": f"Bearer {secret}"}) as http:
            for _ in range(50):
                await http.get("/api/v1/companies")  # warm up
            out = []
            for _ in range(count):
                start = time.perf_counter()
                response = await http.get("/api/v1/companies")
                out.append(time.perf_counter() - start)
                assert response.status_code == 200
            return out

    with_check = await timings(checked)
    without = await timings(unchecked)
    await db.close_pool()
    return with_check, without


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    # Measure the work, not the limiter's refusals (the server reads this on start).
    os.environ["PORTAL_API_RATE_PER_MINUTE"] = str(10**9)
    with test_database("portal_bench") as url:
        secret = asyncio.run(seed(url))
        with server(url, workers=args.workers) as base:
            rate, latencies = asyncio.run(over_http(base, secret, args.clients, args.seconds))
        with_check, without = asyncio.run(in_process(url, secret, args.requests))
    cost = percentile(with_check, 50) - percentile(without, 50)
    body = f"""
`python -m bench.api --seconds {args.seconds:g} --clients {args.clients} --workers \
{args.workers}` on {machine()}, {datetime.now(UTC):%Y-%m-%d}; an account with {COMPANIES}
companies, the first page (25) of `GET /api/v1/companies`.

| figure | value |
|---|---|
| through HTTP, with the API key | **{rate:.0f} requests/s** \
(p50 {percentile(latencies, 50) * 1000:.1f} ms, p95 {percentile(latencies, 95) * 1000:.1f} ms) |
| one process, same request, with the key check (median) | \
{percentile(with_check, 50) * 1000:.2f} ms |
| the same request without the key check (median) | {percentile(without, 50) * 1000:.2f} ms |
| what the key check costs | {cost * 1000:.2f} ms per request \
({cost / percentile(with_check, 50):.0%}): one lookup, a constant-time hash comparison, the \
shared rate-limit counter (one upsert); "last used" is written at most once a minute |
"""
    print(body)
    write_section("JSON API", body)


if __name__ == "__main__":
    main()
