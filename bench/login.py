"""Sign-in against the hashing ceiling, on a busy machine and past capacity, in one run.

    .venv/bin/python -m bench.login [--seconds 12] [--rounds 3] [--workers 1] [--clients 6]

Against one server, ``--rounds`` times over in turn (so a slow minute on the machine hits
every figure alike), each phase getting ``--seconds / --rounds`` per round:
   - ceiling: parallel ``verify()`` calls with the production parameters, one thread per
     core, in this process while the server idles (the mean over the rounds is the ceiling,
     and each round's sets that round's offered overload);
   - idle: p50/p95 of a cheap signed-in page (GET /profile), probed from its own process;
   - flat out: sign-ins from ``--clients`` clients as fast as they go, with the probe running;
   - neighbours: one sign-in at a time beside 0, 1, 2, 3 and 4 CPU-bound processes
     (``while True: pass``; the order rotates each round);
   - overload: sign-ins arriving at ``--overload`` (5) times the ceiling, open loop (each at
     its time, whatever the earlier ones are doing; hand-made HTTP, so the load generator
     takes little of the machine it measures): accepted ones (303) per second against the
     ceiling and their p95, and how fast the refused ones (503) are answered; and, from
     /proc while they arrive, where the CPU went: the hashing threads (on a CPU, waiting for
     one, idle for want of an admitted hash), the event loop, PostgreSQL's connections of the
     server and this load generator.
Writes the "Sign-in" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import httpx

from bench.common import database_backends, machine, percentile, server, write_section
from portal import db
from portal.security import passwords
from portal.security.passwords import HASHER
from portal.tables import Identity, Profile
from portal.testing.database import test_database

PASSWORD = "benchmarkowe hasło do logowania"
PEOPLE = 200
#: The page probe asks ten times a second: often enough for a p95, light enough not to
#: take a noticeable share of the CPU from the sign-ins it is measuring beside.
PROBE_PAUSE = 0.1
NEIGHBOURS = (0, 1, 2, 3, 4)


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


async def attempt(client: httpx.AsyncClient, token: str, email: str) -> httpx.Response:
    """One sign-in as from a browser not signed in yet: only the signed-out CSRF cookie goes
    with it (sign-in binds a new one to the session; that and the session cookie are
    dropped). The time taken is in ``response.elapsed_seconds``."""
    client.cookies.clear()
    client.cookies.set("csrftoken", token)
    start = time.perf_counter()
    response = await client.post("/login", data={"email": email, "password": PASSWORD,
                                                 "_csrf_token": token})
    response.elapsed_seconds = time.perf_counter() - start
    client.cookies.clear()
    return response


async def sign_in(client: httpx.AsyncClient, token: str, email: str) -> float:
    response = await attempt(client, token, email)
    assert response.status_code == 303, response.status_code
    return response.elapsed_seconds


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


@contextmanager
def neighbours(count: int):
    """``count`` ordinary CPU-bound processes (normal priority) for the duration."""
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(count)]
    try:
        time.sleep(0.5 if count else 0)  # let the scheduler see them
        yield
    finally:
        for process in busy:
            process.kill()
        for process in busy:
            process.wait()


async def raw_attempt(base: str, token: str, email: str, address: str) -> tuple[int, float]:
    """One signed-out sign-in over a fresh connection with hand-made HTTP/1.1: the overload's
    clients stand for browsers elsewhere, so they should cost this machine next to nothing
    (an httpx request costs a few times more CPU than the server needs to refuse one)."""
    host, port = base.removeprefix("http://").split(":")
    body = urlencode({"email": email, "password": PASSWORD, "_csrf_token": token}).encode()
    request = (f"POST /login HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
               f"Cookie: csrftoken={token}\r\nX-Forwarded-For: {address}\r\n"
               "Content-Type: application/x-www-form-urlencoded\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    await writer.drain()
    answer = await reader.read()  # the server closes after the whole answer
    elapsed = time.perf_counter() - start
    writer.close()
    return int(answer.split(b" ", 2)[1]), elapsed


async def flat_out(base: str, emails: list[str], seconds: float, clients: int) -> dict:
    workers = [await csrf_client(base) for _ in range(clients)]
    for client, token in workers:  # warm up
        await sign_in(client, token, emails[1])
    latencies: list[float] = []
    refused = 0
    stop = time.perf_counter() + seconds

    async def run(index: int, client: httpx.AsyncClient, token: str) -> None:
        nonlocal refused
        n = index
        while time.perf_counter() < stop:
            response = await attempt(client, token, emails[n % len(emails)])
            assert response.status_code in (303, 503), response.status_code
            if response.status_code == 303:
                latencies.append(response.elapsed_seconds)
            else:  # the queue's deadline (a crowded machine); the client goes on at once
                refused += 1
            n += clients

    start = time.perf_counter()
    await asyncio.gather(*(run(i, c, t) for i, (c, t) in enumerate(workers)))
    elapsed = time.perf_counter() - start
    for client, _ in workers:
        await client.aclose()
    return {"latencies": latencies, "elapsed": elapsed, "refused": refused}


async def one_at_a_time(base: str, emails: list[str], seconds: float) -> list[float]:
    client, token = await csrf_client(base)
    latencies = []
    stop = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < stop:
        latencies.append(await sign_in(client, token, emails[n % len(emails)]))
        n += 1
    await client.aclose()
    return latencies


async def overload(base: str, token: str, emails: list[str], rate: float,
                   seconds: float, split: tuple = (None, [], {})) -> dict:
    """Open loop: the i-th sign-in is sent at i / rate seconds, whatever came before, each
    from its own address (a crowd, through the trusted proxy: one address sending them all
    would meet its own guessing limit, where attempts in flight count)."""
    results: list[tuple[int, float, float]] = []  # status, latency, completion time
    start = time.perf_counter()

    async def one(i: int) -> None:
        address = f"198.18.{i // 250 % 250}.{i % 250 + 1}"  # the benchmarking range
        status, elapsed = await raw_attempt(base, token, emails[i % len(emails)], address)
        results.append((status, elapsed, time.perf_counter() - start))

    tasks = []
    i = 0
    with cpu_split(*split):  # while the sign-ins arrive (not the drain after)
        while (now := time.perf_counter() - start) < seconds:
            due = i / rate
            if due > now:
                await asyncio.sleep(due - now)
            tasks.append(asyncio.create_task(one(i)))
            i += 1
    sent = time.perf_counter() - start
    await asyncio.gather(*tasks)
    unexpected = {status for status, _, _ in results} - {303, 503}
    assert not unexpected, unexpected
    return {
        "offered": i / sent,
        # completions inside the window: the steady rate, not the tail after the last arrival
        "accepted": [lat for status, lat, done in results if status == 303 and done <= seconds],
        "accepted_all": [lat for status, lat, _ in results if status == 303],
        "refused": [lat for status, lat, _ in results if status == 503],
        "seconds": seconds,
    }


# --- where the CPU goes during the overload (Linux /proc) -----------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def server_pid(base: str) -> int | None:
    """The ``portal serve`` process listening on ``base``'s port."""
    port = base.rsplit(":", 1)[1].encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in command and port in command:
            return int(entry.name)
    return None


def thread_times(pid: int) -> dict[str, list[float]]:
    """Per kind of thread of the server, [seconds on a CPU, seconds runnable but waiting for
    one] (/proc/<pid>/task/<tid>/schedstat); the hashing threads are the SCHED_BATCH ones
    (security/passwords.py), the event loop is the main thread."""
    out = {"hashing": [0.0, 0.0, 0], "loop": [0.0, 0.0, 0], "other": [0.0, 0.0, 0]}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
            on_cpu, waiting, _ = (task / "schedstat").read_text().split()
        except OSError:
            continue
        policy = int(stat[stat.rindex(")") + 2:].split()[38])
        kind = ("loop" if int(task.name) == pid else
                "hashing" if policy == os.SCHED_BATCH else "other")
        out[kind][0] += int(on_cpu) / 1e9
        out[kind][1] += int(waiting) / 1e9
        out[kind][2] += 1
    return out


def process_cpu(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


@contextmanager
def cpu_split(pid: int | None, pg: list[int], into: dict):
    """Add to ``into`` the seconds each part used while the block ran: the hashing threads
    (on a CPU, waiting for one), the event loop, PostgreSQL, this load generator."""
    if pid is None:
        yield
        return
    threads, pg_before, own = thread_times(pid), process_cpu(pg), time.process_time()
    start = time.perf_counter()
    yield
    after = thread_times(pid)
    into["wall"] = into.get("wall", 0.0) + time.perf_counter() - start
    into["hash_threads"] = after["hashing"][2]
    for kind in ("hashing", "loop", "other"):
        into[f"{kind}_cpu"] = into.get(f"{kind}_cpu", 0.0) + after[kind][0] - threads[kind][0]
        into[f"{kind}_wait"] = into.get(f"{kind}_wait", 0.0) + after[kind][1] - threads[kind][1]
    into["pg_cpu"] = into.get("pg_cpu", 0.0) + process_cpu(pg) - pg_before
    into["generator_cpu"] = into.get("generator_cpu", 0.0) + time.process_time() - own


async def measure(base: str, emails: list[str], args, url: str) -> dict:
    loop = asyncio.get_running_loop()
    prober, token = await csrf_client(base)
    signed_in = await attempt(prober, token, emails[0])
    cookies = dict(signed_in.cookies.items())  # the session and its CSRF cookie
    await prober.aclose()
    segment = args.seconds / args.rounds
    out: dict = {"idle": [], "loaded": [], "logins": [], "elapsed": 0.0, "flat_refused": 0,
                 "near": {n: [] for n in NEIGHBOURS}, "offered": [], "accepted": [],
                 "accepted_all": [], "refused": [], "overload_seconds": 0.0}
    signed_out, overload_token = await csrf_client(base)
    await signed_out.aclose()
    out["ceilings"] = []
    out["split"] = {}
    pid = server_pid(base)
    with ProcessPoolExecutor(1) as prober_process:
        for round_ in range(args.rounds):
            out["ceilings"].append(argon2_ceiling(segment))
            out["idle"] += await loop.run_in_executor(
                prober_process, probe, base, cookies, segment, PROBE_PAUSE)

            loaded = loop.run_in_executor(prober_process, probe, base, cookies, segment - 1,
                                          PROBE_PAUSE)
            flat = await flat_out(base, emails, segment, args.clients)
            out["loaded"] += await loaded
            out["logins"] += flat["latencies"]
            out["elapsed"] += flat["elapsed"]
            out["flat_refused"] += flat["refused"]

            shift = round_ % len(NEIGHBOURS)
            for count in NEIGHBOURS[shift:] + NEIGHBOURS[:shift]:
                with neighbours(count):
                    out["near"][count] += await one_at_a_time(base, emails, segment)

            over = await overload(base, overload_token, emails,
                                  out["ceilings"][-1] * args.overload, segment,
                                  (pid, await database_backends(url), out["split"]))
            out["offered"].append(over["offered"])
            for key in ("accepted", "accepted_all", "refused"):
                out[key] += over[key]
            out["overload_seconds"] += over["seconds"]
            await asyncio.sleep(2)  # let the queue drain and the throttle rows settle
    return out


def split_rows(split: dict, cores: int) -> str:
    """Where the machine's CPU went while the overload's sign-ins arrived."""
    if not split.get("wall"):
        return "| (CPU split not measured: no /proc) | | |"
    wall, threads = split["wall"], max(split["hash_threads"], 1)
    on_cpu, waiting = split["hashing_cpu"] / wall, split["hashing_wait"] / wall
    idle = max(0.0, 1 - (on_cpu + waiting) / threads)
    return "\n".join([
        f"| overload, hashing threads on a CPU | {on_cpu:.2f} of {cores} cores | "
        f"each thread: {on_cpu / threads:.0%} hashing, {waiting / threads:.0%} waiting for "
        f"a CPU, **{idle:.0%} idle** (no admitted hash to run) |",
        f"| overload, the event loop (HTTP, refusals, the accepted ones' work besides the "
        f"hash) | {split['loop_cpu'] / wall:.2f} cores | waiting for a CPU "
        f"{split['loop_wait'] / wall:.0%} of the time |",
        f"| overload, PostgreSQL (the server's connections) | "
        f"{split['pg_cpu'] / wall:.2f} cores | |",
        f"| overload, the load generator (this process) | "
        f"{split['generator_cpu'] / wall:.2f} cores | |",
    ])


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds >= 0.1 else f"{seconds * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=12,
                        help="per phase, split over the rounds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--clients", type=int, default=(os.cpu_count() or 2) * 3)
    parser.add_argument("--overload", type=float, default=5.0)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    # The overload's crowd says who it is in X-Forwarded-For; everything else comes from here.
    os.environ["PORTAL_TRUSTED_PROXIES"] = "127.0.0.1"
    with test_database("portal_bench") as url:
        emails = asyncio.run(seed(url))
        with server(url, workers=args.workers) as base:
            result = asyncio.run(measure(base, emails, args, url))

    load_after = os.getloadavg()[0]
    ceilings = result["ceilings"]
    ceiling = sum(ceilings) / len(ceilings)
    cores = os.cpu_count() or 1
    throughput = len(result["logins"]) / result["elapsed"]
    idle_p95 = percentile(result["idle"], 95)
    loaded_p95 = percentile(result["loaded"], 95)
    near = result["near"]
    base50, base95 = percentile(near[0], 50), percentile(near[0], 95)
    rows = []
    for count in NEIGHBOURS:
        p50, p95 = percentile(near[count], 50), percentile(near[count], 95)
        target = " (target ≤ 3x)" if count == 3 else ""
        rows.append(f"| sign-in beside {count} CPU-bound process{'es' if count != 1 else ''}"
                    f" (one at a time, n={len(near[count])}) | {ms(p50)} / {ms(p95)} | "
                    f"**{p50 / base50:.2f}x** / {p95 / base95:.2f}x{target} |")
    accepted_rate = len(result["accepted"]) / result["overload_seconds"]
    offered = sum(result["offered"]) / len(result["offered"])
    refused = result["refused"]
    attempts = len(result["accepted_all"]) + len(refused)
    # Refused after waiting in line (the machine slowed down after they were admitted), not
    # at once by the estimate.
    late = [lat for lat in refused if lat >= passwords.MAX_QUEUED_WAIT]
    at_once = [lat for lat in refused if lat < passwords.MAX_QUEUED_WAIT]
    p = HASHER
    body = f"""
`python -m bench.login --seconds {args.seconds:g} --rounds {args.rounds} --workers \
{args.workers} --clients {args.clients}` on {machine()}, {datetime.now(UTC):%Y-%m-%d}.
argon2id m={p.memory_cost} KiB, t={p.time_cost}, p={p.parallelism}; \
{passwords.WORKERS} hashing threads per process at normal priority (SCHED_BATCH) behind a \
queue with a \
{passwords.MAX_WAIT:g} s deadline ({passwords.MAX_QUEUED_WAIT:g} s at most once admitted). \
Every phase ran {args.rounds} times, in turn with the others, {args.seconds / args.rounds:g} s \
each time; the ratios compare figures from the same run.

| figure | value | ratio |
|---|---|---|
| argon2 ceiling (parallel `verify()`, one thread per core; rounds: \
{", ".join(f"{c:.1f}" for c in ceilings)}) | {ceiling:.1f} /s | |
| sign-in throughput through HTTP (`POST /login`, {args.clients} clients flat out; \
{result["flat_refused"]} refused) | {throughput:.1f} /s | **{throughput / ceiling:.0%}** of \
the ceiling (target ≥ 85%) |
| sign-in latency p50 / p95, flat out | {ms(percentile(result["logins"], 50))} / \
{ms(percentile(result["logins"], 95))} | |
| cheap signed-in page (`GET /profile`) p95, idle | {ms(idle_p95)} | |
| the same page p95 while sign-ins run flat out | {ms(loaded_p95)} | \
**{loaded_p95 / idle_p95:.2f}x** idle (target ≤ 2x) |
{chr(10).join(rows)}
| overload: sign-ins offered (open loop, {args.overload:g}x each round's ceiling) | \
{offered:.1f} /s | {offered / ceiling:.1f}x the ceiling |
| accepted (303) per second | {accepted_rate:.1f} /s | **{accepted_rate / ceiling:.0%}** \
of the ceiling (target ≥ 80%) |
| accepted sign-in latency p50 / p95 | {ms(percentile(result["accepted_all"], 50))} / \
{ms(percentile(result["accepted_all"], 95))} | (target p95 ≤ 2 s) |
| refused (503 + Retry-After) | {len(refused)} of {attempts} ({len(refused) / attempts:.0%}) | |
| time to answer a refused one p50 / p95 / max | {ms(percentile(at_once, 50))} / \
{ms(percentile(at_once, 95))} / {ms(max(at_once, default=float("nan")))} | \
(target < 50 ms) |
| refused only after waiting {passwords.MAX_QUEUED_WAIT:g} s in line | {len(late)} | |
{split_rows(result["split"], cores)}

Sign-in latency ratios are against the same figure with no neighbour ({cores} cores here, so
{cores} neighbours already take every core). Load average (1 min) {load_before:.1f} before the \
run and {load_after:.1f} after it, from other work on the machine too. All sign-ins come from
one address, so the per-address guessing limit sees them all (none was refused by it),
except the overload's, which come from a crowd of addresses: from one address, 5x the
capacity keeps more than its limit of 30 attempts in flight, and those past it are answered
as a failed sign-in (422), not as busy.
"""
    print(body)
    if not args.no_write:
        write_section("Sign-in", body)


if __name__ == "__main__":
    main()
