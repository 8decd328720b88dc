"""What a sign-in costs besides its hash: CPU time and SQL statements per ``POST /login``,
refused (hashing at capacity), failed and accepted, through the real app in one process
(ASGI, no network, so uvicorn's HTTP parsing is not in it, nor the test client's work).

    .venv/bin/python -m bench.login_cpu [--requests 300] [--profile refused|accepted]

CPU time is the event loop thread's own (``time.thread_time``): the argon2 threads' time is
not in it, nor the load of other processes, so the figure holds on a busy machine where a
wall-clock ratio would not. PostgreSQL's share is counted as statements. The kinds run
interleaved, one request of each in turn, so a slow moment hits them alike. With
``--profile`` one kind runs under cProfile and the top of its profile is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import re
import time
from dataclasses import replace

import httpx

from bench.common import percentile
from portal import db
from portal.app import create_app
from portal.security import passwords
from portal.settings import Settings
from portal.testing import factories
from portal.testing.database import test_database

EMAIL = "cpu@example.com"


class Refusing:
    """Stands in for the hashing queue as a full one: every hash is refused at once."""

    def admit(self) -> None:
        raise passwords.HashBusy(2)

    async def run(self, fn, *args):
        self.admit()


async def measure(url: str, requests: int, profile: str | None) -> dict:
    settings = replace(Settings.from_env(), database_url=url, base_url="http://bench.local")
    db.configure(url)
    await db.start_pool(max_size=4)
    await factories.identity(EMAIL)
    app = create_app(settings)
    spent: list[float] = []

    async def timed(scope, receive, send):
        """The app alone (not the test client): its CPU, each request from its own address."""
        if scope["type"] == "http":
            scope["client"] = (dict(scope["headers"]).get(b"x-address", b"").decode(), 50000)
        start = time.thread_time()
        try:
            await app(scope, receive, send)
        finally:
            spent.append(time.thread_time() - start)

    queue = passwords.QUEUE
    kinds = {
        "refused": (factories.PASSWORD, 503),
        "failed": ("zle haslo zle haslo", 422),
        "accepted": (factories.PASSWORD, 303),
    }
    cpu: dict[str, list[float]] = {kind: [] for kind in kinds}
    statements: dict[str, list[int]] = {kind: [] for kind in kinds}
    profiler = cProfile.Profile()
    n = 0
    async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=timed),
            base_url="http://bench.local") as http:
        page = await http.get("/login", headers={"X-Address": "198.18.255.1"})
        token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
        for round_ in range(requests + 10):
            for kind, (password, expected) in kinds.items():
                # one address per request: the per-address guessing limit would stop the
                # failed ones after 30 (that is a throttled answer, not a failed one)
                address = f"198.18.{n // 250 % 250}.{n % 250 + 1}"
                n += 1
                passwords.QUEUE = Refusing() if kind == "refused" else queue
                http.cookies.clear()
                http.cookies.set("csrftoken", token)
                headers = {"X-Address": address}
                before_queries = db.ENGINE.query_id
                if profile == kind:
                    profiler.enable()
                response = await http.post("/login", headers=headers, data={
                    # a failed one is an unknown address each time: counted, never
                    # throttled (a throttled attempt is answered without its hash)
                    "email": EMAIL if kind != "failed" else f"x{n}" + EMAIL,
                    "password": password, "_csrf_token": token})
                if profile == kind:
                    profiler.disable()
                assert response.status_code == expected, (kind, response.status_code)
                if round_ >= 10:  # the first ones warm caches (templates, statements)
                    cpu[kind].append(spent[-1])
                    statements[kind].append(db.ENGINE.query_id - before_queries)
    passwords.QUEUE = queue
    await db.close_pool()
    return {"cpu": cpu, "statements": statements, "profiler": profiler if profile else None}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--profile", choices=("refused", "failed", "accepted"))
    args = parser.parse_args()
    os.environ.setdefault("PORTAL_SECRET_KEY", "bench-secret-key-not-for-production")
    with test_database("portal_bench_cpu") as url:
        result = asyncio.run(measure(url, args.requests, args.profile))
    print(f"POST /login, {args.requests} of each kind interleaved, event loop thread CPU "
          f"(load average {os.getloadavg()[0]:.1f})")
    print("| kind | CPU p50 | CPU mean | CPU p95 | SQL statements |")
    print("|---|---|---|---|---|")
    for kind, values in result["cpu"].items():
        queries = result["statements"][kind]
        print(f"| {kind} | {percentile(values, 50) * 1000:.2f} ms | "
              f"{sum(values) / len(values) * 1000:.2f} ms | "
              f"{percentile(values, 95) * 1000:.2f} ms | {sum(queries) / len(queries):.1f} |")
    if result["profiler"] is not None:
        stats = pstats.Stats(result["profiler"])
        stats.sort_stats("cumulative").print_stats(45)


if __name__ == "__main__":
    main()
