"""Sign-in throughput through HTTP against the argon2 ceiling measured in the same run.

    .venv/bin/python -m bench.login [--seconds 20] [--workers 1] [--clients 6]

1. Ceiling: parallel ``verify()`` calls with the production parameters, one thread per core.
2. Idle: p50/p95 of a cheap signed-in page (GET /profile).
3. Load: sign-ins flat out from several clients, while a probe keeps timing the cheap page.
Writes the "Sign-in" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, datetime

import httpx

from bench.common import machine, percentile, server, write_section
from portal import db
from portal.security.passwords import HASHER
from portal.tables import Identity, Profile
from portal.testing.database import test_database

PASSWORD = "benchmarkowe hasło do logowania"
PEOPLE = 200
#: The page probe asks ten times a second: often enough for a p95, light enough not to
#: take a noticeable share of the CPU from the sign-ins it is measuring beside.
PROBE_PAUSE = 0.1


def argon2_ceiling(seconds: float) -> float:
    """verify() calls per second with one thread per core (argon2 releases the GIL)."""
    stored = HASHER.hash(PASSWORD)
    cores = os.cpu_count() or 1
    deadline = time.perf_counter() + seconds

    def worker() -> int:
        count = 0
        while time.perf_counter() < deadline:
            HASHER.verify(stored, PASSWORD)
            count += 1
        return count

    start = time.perf_counter()
    with ThreadPoolExecutor(cores) as pool:
        total = sum(pool.map(lambda _: worker(), range(cores)))
    return total / (time.perf_counter() - start)


async def seed(url: str) -> list[str]:
    db.configure(url)
    await db.start_pool(max_size=4)
    stored = HASHER.hash(PASSWORD)
    emails = [f"bench{i}@example.com" for i in range(PEOPLE)]
    for email in emails:
        row = (await Identity.insert(Identity(email=email, password_hash=stored,
                                              email_verified_at=datetime.now(UTC)))
               .returning(Identity.id))[0]
        await Profile.insert(Profile(identity=row["id"]))
    await db.close_pool()
    return emails


async def csrf_client(base: str) -> tuple[httpx.AsyncClient, str]:
    client = httpx.AsyncClient(base_url=base, timeout=30)
    page = await client.get("/login")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
    return client, token


async def sign_in(client: httpx.AsyncClient, token: str, email: str) -> float:
    """One sign-in as from a browser not signed in yet (the previous session cookie is
    dropped; the CSRF cookie stays)."""
    client.cookies.delete("portal_session")
    start = time.perf_counter()
    response = await client.post("/login", data={"email": email, "password": PASSWORD,
                                                 "_csrf_token": token})
    elapsed = time.perf_counter() - start
    assert response.status_code == 303, response.status_code
    return elapsed


def probe(base: str, cookies: dict[str, str], seconds: float, pause: float) -> list[float]:
    """Time a cheap signed-in page (GET /profile) for ``seconds``; runs in its own process, so
    the load generator's event loop never delays the measurement."""
    times = []
    with httpx.Client(base_url=base, cookies=cookies, timeout=30) as client:
        for _ in range(20):
            client.get("/profile")  # warm up
        stop = time.perf_counter() + seconds
        while time.perf_counter() < stop:
            start = time.perf_counter()
            response = client.get("/profile")
            times.append(time.perf_counter() - start)
            assert response.status_code == 200, response.status_code
            time.sleep(pause)
    return times


async def measure(base: str, emails: list[str], seconds: float, clients: int) -> dict:
    loop = asyncio.get_running_loop()
    prober, token = await csrf_client(base)
    await sign_in(prober, token, emails[0])
    cookies = dict(prober.cookies.items())
    await prober.aclose()
    with ProcessPoolExecutor(1) as pool:
        idle = await loop.run_in_executor(pool, probe, base, cookies, 12.0, PROBE_PAUSE)

        workers = [await csrf_client(base) for _ in range(clients)]
        for client, token in workers:  # warm up
            await sign_in(client, token, emails[1])
        latencies: list[float] = []
        stop = time.perf_counter() + seconds

        async def run(index: int, client: httpx.AsyncClient, token: str) -> None:
            n = index
            while time.perf_counter() < stop:
                latencies.append(await sign_in(client, token, emails[n % len(emails)]))
                n += clients

        start = time.perf_counter()
        loaded_future = loop.run_in_executor(pool, probe, base, cookies, seconds - 1,
                                             PROBE_PAUSE)
        await asyncio.gather(*(run(i, c, t) for i, (c, t) in enumerate(workers)))
        elapsed = time.perf_counter() - start
        loaded = await loaded_future
        for client, _ in workers:
            await client.aclose()
    return {"idle": idle, "loaded": loaded, "logins": latencies, "elapsed": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--clients", type=int, default=(os.cpu_count() or 2) * 3)
    args = parser.parse_args()

    with test_database("portal_bench") as url:
        emails = asyncio.run(seed(url))
        ceiling = argon2_ceiling(min(args.seconds, 10))
        with server(url, workers=args.workers) as base:
            result = asyncio.run(measure(base, emails, args.seconds, args.clients))
        ceiling_after = argon2_ceiling(min(args.seconds, 10))

    ceiling = max(ceiling, ceiling_after)  # the stricter comparison of the two runs
    throughput = len(result["logins"]) / result["elapsed"]
    ratio = throughput / ceiling
    idle_p95 = percentile(result["idle"], 95) * 1000
    loaded_p95 = percentile(result["loaded"], 95) * 1000
    p = HASHER
    body = f"""
`python -m bench.login --seconds {args.seconds:g} --workers {args.workers} \
--clients {args.clients}` on {machine()}, {datetime.now(UTC):%Y-%m-%d}.
argon2id m={p.memory_cost} KiB, t={p.time_cost}, p={p.parallelism}.

| figure | value |
|---|---|
| argon2 ceiling (parallel `verify()`, one thread per core) | {ceiling:.1f} /s |
| sign-in throughput through HTTP (`POST /login`, {args.clients} clients) | {throughput:.1f} /s |
| ratio | **{ratio:.0%}** (target ≥ 85%) |
| sign-in latency p50 / p95 | {percentile(result["logins"], 50) * 1000:.0f} ms / \
{percentile(result["logins"], 95) * 1000:.0f} ms |
| cheap signed-in page (`GET /profile`) p95, idle | {idle_p95:.1f} ms |
| the same page p95 while sign-ins run flat out | {loaded_p95:.1f} ms \
(**{loaded_p95 / idle_p95:.2f}x** idle; target ≤ 2x) |
"""
    print(body)
    write_section("Sign-in", body)


if __name__ == "__main__":
    main()
