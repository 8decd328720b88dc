"""Token endpoint throughput: refresh-token grants per second through HTTP.

    .venv/bin/python -m bench.oidc_refresh [--seconds 15] [--clients 8] [--workers 2]

Each client keeps its own refresh-token chain (every refresh rotates the token). Writes the
"OIDC token endpoint (refresh)" section of BENCHMARKS.md, beside Keycloak's published figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import time
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode, urlparse

import httpx

from bench.common import machine, percentile, server, write_section
from portal import db
from portal.services import oidc, oidc_clients
from portal.testing import factories
from portal.testing.database import test_database

REDIRECT = "https://bench.example.com/cb"
KEYCLOAK_PER_VCPU = 120  # refresh requests/s per vCPU, Keycloak's published sizing guide


async def seed(url: str) -> tuple[str, str]:
    db.configure(url)
    await db.start_pool(max_size=4)
    await factories.identity("bench@example.com")
    client = await oidc_clients.register_client(name="Bench", redirect_uris=[REDIRECT],
                                        first_party=True)
    await db.close_pool()
    return client


async def refresh_chain(base: str, client_id: str, secret: str) -> str:
    """Sign in through the browser flow once and return a refresh token."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as browser:
        page = await browser.get("/login")
        token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
        await browser.post("/login", data={"email": "bench@example.com",
                                           "password": factories.PASSWORD,
                                           "_csrf_token": token})
        verifier = secrets.token_urlsafe(48)
        response = await browser.get("/oauth/authorize?" + urlencode({
            "client_id": client_id, "redirect_uri": REDIRECT, "response_type": "code",
            "scope": "openid email profile", "code_challenge": oidc.s256(verifier),
            "code_challenge_method": "S256", "state": "s", "nonce": "n"}))
        code = parse_qs(urlparse(response.headers["location"]).query)["code"][0]
        tokens = await browser.post("/oauth/token", auth=(client_id, secret), data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": verifier})
        return tokens.json()["refresh_token"]


async def measure(base: str, client_id: str, secret: str, clients: int, seconds: float):
    chains = [await refresh_chain(base, client_id, secret) for _ in range(clients)]
    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    http = httpx.AsyncClient(base_url=base, timeout=30, auth=(client_id, secret),
                             limits=httpx.Limits(max_connections=clients))

    async def run(index: int) -> None:
        while time.perf_counter() < stop:
            start = time.perf_counter()
            response = await http.post("/oauth/token", data={
                "grant_type": "refresh_token", "refresh_token": chains[index]})
            latencies.append(time.perf_counter() - start)
            assert response.status_code == 200, response.text
            chains[index] = response.json()["refresh_token"]

    started = time.perf_counter()
    await asyncio.gather(*(run(i) for i in range(clients)))
    elapsed = time.perf_counter() - started
    await http.aclose()
    return len(latencies) / elapsed, latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    with test_database("portal_bench") as url:
        client_id, secret = asyncio.run(seed(url))
        with server(url, workers=args.workers) as base:
            rate, latencies = asyncio.run(measure(base, client_id, secret, args.clients,
                                                  args.seconds))
    cores = os.cpu_count() or 1
    body = f"""
`python -m bench.oidc_refresh --seconds {args.seconds:g} --clients {args.clients} \
--workers {args.workers}` on {machine()}, {datetime.now(UTC):%Y-%m-%d}. Each request
authenticates the client, rotates the refresh token (one conditional UPDATE marks it used, one
INSERT stores the next), reads the person's claims and signs a new access token and ID token
(RS256). The load generator and PostgreSQL run on the same machine.

| figure | value |
|---|---|
| refresh grants per second (`POST /oauth/token`) | **{rate:.0f} /s** \
({rate / cores:.0f} /s per core) |
| latency p50 / p95 | {percentile(latencies, 50) * 1000:.1f} ms / \
{percentile(latencies, 95) * 1000:.1f} ms |
| Keycloak's published sizing figure | {KEYCLOAK_PER_VCPU} refresh requests/s per vCPU \
({KEYCLOAK_PER_VCPU * cores} /s for {cores} vCPU) |
"""
    print(body)
    write_section("OIDC token endpoint (refresh)", body)


if __name__ == "__main__":
    main()
