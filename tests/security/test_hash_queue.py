"""Hashing past capacity (issue 20): a bounded number of hashes at once, a queue with a
deadline in front, and a refusal that is answered at once — a 503 with Retry-After and the
"too many sign-ins right now" message — without hashing and without counting a failure."""

from __future__ import annotations

import asyncio
import threading
from contextlib import asynccontextmanager

import pytest

from portal.security import passwords
from portal.services import identity, mfa, throttle
from portal.services.scope import Client
from portal.tables import AuditEvent, Identity, OneTimeToken, Session
from portal.testing import factories
from tests.conftest import last_mail, link_in

EMAIL = "kolejka@example.com"
NEW = "wiosenny deszcz nad mazurami"
ENGLISH = {"Accept-Language": "en"}


@pytest.fixture
def hashes(monkeypatch) -> list[str]:
    """Every argon2 hash and verify that runs."""
    calls: list[str] = []

    class CountingHasher(type(passwords.HASHER)):
        def hash(self, password, **kwargs):
            calls.append("hash")
            return super().hash(password, **kwargs)

        def verify(self, hash, password):
            calls.append("verify")
            return super().verify(hash, password)

    original = passwords.HASHER
    monkeypatch.setattr(passwords, "HASHER", CountingHasher(
        time_cost=original.time_cost, memory_cost=original.memory_cost,
        parallelism=original.parallelism))
    return calls


@asynccontextmanager
async def full_queue(monkeypatch):
    """A one-thread queue whose thread is taken by a hash that takes a second (as measured):
    the next hash would wait longer than the deadline, so it is refused."""
    queue = passwords.HashQueue(workers=1, max_wait=0.05, max_queued_wait=0.5, max_queue=4,
                                seconds_per_hash=1.0)
    original = passwords.QUEUE
    monkeypatch.setattr(passwords, "QUEUE", queue)
    release = threading.Event()
    occupant = asyncio.ensure_future(queue.run(release.wait))
    await asyncio.sleep(0)
    assert queue.running == 1
    try:
        yield queue
    finally:
        release.set()
        await occupant
        passwords.QUEUE = original


async def counts() -> list[tuple[str, int, int]]:
    rows = await throttle.Throttle.select().order_by(throttle.Throttle.key)
    return [(r["key"], r["failures"], r["consecutive"]) for r in rows]


async def test_sign_in_past_capacity_is_a_503_with_retry_after_and_counts_nothing(
        client, monkeypatch, hashes):
    await factories.identity(EMAIL)
    await client.csrf()
    hashes.clear()
    async with full_queue(monkeypatch):
        for password in (factories.PASSWORD, "zgaduję"):
            response = await client.post_form("/login", {"email": EMAIL, "password": password})
            assert response.status_code == 503
            assert int(response.headers["retry-after"]) >= 1
            assert "Zbyt wiele logowań w tej chwili, spróbuj ponownie za kilka sekund." in (
                response.text)
            assert f'value="{EMAIL}"' in response.text  # the form comes back filled in
        english = await client.post_form("/login", {"email": EMAIL, "password": "x"},
                                         headers=ENGLISH)
        assert english.status_code == 503
        assert "Too many sign-ins right now, try again in a few seconds." in english.text
        fragment = await client.post_form("/login", {"email": EMAIL, "password": "x"},
                                          htmx=True)
        assert fragment.status_code == 503 and fragment.text.lstrip().startswith("<form")
    assert hashes == []  # no hash ran for any of them
    assert await counts() == []  # nothing counted, for the ID or the address
    assert not await AuditEvent.exists().where(AuditEvent.tag == "identity:login:failure")
    assert await Session.count() == 0
    await client.sign_in(EMAIL, factories.PASSWORD)  # and with capacity back, it works


async def test_a_queue_that_fills_after_the_reservation_gives_the_attempt_back(monkeypatch,
                                                                               hashes):
    """The early refusal is a shortcut; when the queue fills between it and the hash, the
    hash is still refused and the reserved attempt given back."""
    await factories.identity(EMAIL)
    hashes.clear()
    async with full_queue(monkeypatch):
        monkeypatch.setattr(passwords, "admit", lambda: None)  # let it reach the queue
        with pytest.raises(passwords.HashBusy):
            await identity.authenticate(None, EMAIL, "zgaduję", Client(ip="192.0.2.5"), "pl")
    assert hashes == []
    assert [(failures, consecutive) for _key, failures, consecutive in await counts()] == [
        (0, 0), (0, 0)]  # the ID's and the address's reservations, both given back
    assert not await throttle.blocked(throttle.LOGIN_IDENTITY, EMAIL)


async def test_setting_a_password_past_capacity_keeps_the_link(client, monkeypatch, hashes):
    await factories.identity(EMAIL)
    await client.post_form("/password/forgot", {"email": EMAIL})
    link = link_in(await last_mail(EMAIL), "/password/reset/")
    hashes.clear()
    async with full_queue(monkeypatch):
        response = await client.post_form(link, {"password": NEW, "password_confirm": NEW})
        assert response.status_code == 503 and "retry-after" in response.headers
        assert "spróbuj ponownie za kilka sekund" in response.text
    assert hashes == []
    assert await OneTimeToken.count().where(OneTimeToken.used_at.is_null()) == 1
    done = await client.post_form(link, {"password": NEW, "password_confirm": NEW})
    assert done.status_code == 303


async def test_changing_the_password_and_re_authenticating_past_capacity(
        client, monkeypatch, hashes):
    """The security screens answer with the error page's 503 and Retry-After; the current
    password's attempt is not counted against the ID, nor the re-authentication's."""
    await factories.identity(EMAIL)
    await client.sign_in(EMAIL, factories.PASSWORD)
    await Identity.update({Identity.mfa_email_enabled: True}, force=True)
    await Session.raw("UPDATE session SET reauth_at = now() - interval '11 minutes'")
    await throttle.Throttle.delete(force=True)
    hashes.clear()
    async with full_queue(monkeypatch):
        changed = await client.post_form("/security/password", {
            "current_password": factories.PASSWORD, "password": NEW, "password_confirm": NEW})
        assert changed.status_code == 503 and "retry-after" in changed.headers
        off = await client.post_form("/security/mfa/email/disable",
                                     {"password": factories.PASSWORD})
        assert off.status_code == 503 and "retry-after" in off.headers
        scope_row = await Identity.select(Identity.id).first()
        with pytest.raises(passwords.HashBusy):
            await mfa.reauthenticate(None, _scope(scope_row["id"]), "zgaduję", "", Client())
    assert hashes == []
    assert await counts() == []
    assert (await Identity.select(Identity.mfa_email_enabled).first())["mfa_email_enabled"]


def _scope(identity_id):
    from portal.services.scope import Scope

    return Scope.build(session_hash="x", identity_id=identity_id, email=EMAIL, language="")


# --- the queue itself ------------------------------------------------------------------------


async def test_the_queue_runs_at_most_its_workers_at_once_first_come_first_served():
    queue = passwords.HashQueue(workers=2, max_wait=10, max_queued_wait=10, max_queue=10,
                                seconds_per_hash=0.01)
    lock = threading.Lock()
    running, peak, order = [0], [0], []

    def job(n: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            order.append(n)
        threading.Event().wait(0.02)
        with lock:
            running[0] -= 1
        return n

    results = await asyncio.gather(*(queue.run(job, n) for n in range(8)))
    assert results == list(range(8))
    assert peak[0] == 2
    assert order[2:] == list(range(2, 8))  # the waiting ones started in arrival order
    assert queue.running == 0 and queue.waiting == 0


async def test_a_wait_past_the_deadline_is_refused_and_frees_its_place():
    queue = passwords.HashQueue(workers=1, max_wait=10, max_queued_wait=0.05, max_queue=10,
                                seconds_per_hash=0.01)
    release = threading.Event()
    occupant = asyncio.ensure_future(queue.run(release.wait))
    await asyncio.sleep(0)
    started = asyncio.get_running_loop().time()
    with pytest.raises(passwords.HashBusy) as refused:
        await queue.run(lambda: "never")
    assert asyncio.get_running_loop().time() - started < 0.5
    assert refused.value.status_code == 503 and refused.value.headers["Retry-After"]
    assert queue.waiting == 0
    cancelled = asyncio.ensure_future(queue.run(lambda: "never"))
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert queue.waiting == 0
    release.set()
    await occupant
    assert queue.running == 0
    assert await queue.run(lambda: "next") == "next"


async def test_the_estimate_refuses_at_once_when_the_line_is_too_long():
    queue = passwords.HashQueue(workers=2, max_wait=0.3, max_queued_wait=5, max_queue=100,
                                seconds_per_hash=0.1)
    release = threading.Event()
    admitted = [asyncio.ensure_future(queue.run(release.wait)) for _ in range(7)]
    await asyncio.sleep(0)
    # two running, five waiting: the next would wait about (5 + 0.5) * 0.1 / 2 = 0.275 s
    assert queue.running == 2 and queue.waiting == 5
    queue.admit()
    extra = asyncio.ensure_future(queue.run(release.wait))
    await asyncio.sleep(0)
    with pytest.raises(passwords.HashBusy) as refused:  # (6 + 0.5) * 0.1 / 2 > 0.3
        queue.admit()
    assert int(refused.value.headers["Retry-After"]) >= 2
    release.set()
    await asyncio.gather(*admitted, extra)
    assert queue.running == 0 and queue.waiting == 0


# --- what a sign-in costs besides its hash -----------------------------------------------------


async def test_a_refused_sign_in_runs_no_statement_and_an_accepted_one_five(client, monkeypatch):
    """Past capacity a refusal is answered before any statement (nothing read, nothing
    counted); a right password costs five (eleven before): the two guessing limits (one
    statement), the identity with its passkey and device checks, the limits settled, the
    audit event, and the session with the last sign-in (bench/login_cpu.py measures CPU)."""
    from tests.conftest import counting_queries

    await factories.identity(EMAIL)
    await client.csrf()
    async with full_queue(monkeypatch):
        with counting_queries() as refused:
            response = await client.post_form("/login", {"email": EMAIL,
                                                         "password": factories.PASSWORD})
        assert response.status_code == 503
    assert refused["count"] == 0
    client.cookies.clear()
    await client.csrf()
    with counting_queries() as accepted:
        await client.sign_in(EMAIL, factories.PASSWORD)
    assert accepted["count"] == 5
    row = await Identity.select(Identity.last_login_at).first()
    assert row["last_login_at"] is not None  # written with the session


async def test_two_limits_reserved_in_one_statement_count_nowhere_when_the_second_refuses():
    subject, address = "a@example.com", "192.0.2.77"
    for _ in range(throttle.LOGIN_ADDRESS.per_window):
        await throttle.fail(throttle.LOGIN_ADDRESS, address)
    assert await throttle.blocked(throttle.LOGIN_ADDRESS, address)
    refused = await throttle.reserve((throttle.LOGIN_IDENTITY, subject),
                                     (throttle.LOGIN_ADDRESS, address))
    assert not refused
    assert not await throttle.Throttle.exists().where(
        (throttle.Throttle.key == throttle.LOGIN_IDENTITY.key(subject))
        & (throttle.Throttle.failures > 0))  # the first one's count was given back
    # the first refusing: the second is not even tried
    for _ in range(throttle.LOGIN_IDENTITY.per_window):
        await throttle.fail(throttle.LOGIN_IDENTITY, subject)
    other = "192.0.2.78"
    assert not await throttle.reserve((throttle.LOGIN_IDENTITY, subject),
                                      (throttle.LOGIN_ADDRESS, other))
    assert not await throttle.Throttle.exists().where(
        throttle.Throttle.key == throttle.LOGIN_ADDRESS.key(other))
    both = await throttle.reserve((throttle.LOGIN_IDENTITY, "b@example.com"),
                                  (throttle.LOGIN_ADDRESS, other))
    assert both and len(both.counted) == 2
    assert sorted(r["failures"] for r in await throttle.Throttle.select().where(
        throttle.Throttle.key.is_in([throttle.LOGIN_IDENTITY.key("b@example.com"),
                                     throttle.LOGIN_ADDRESS.key(other)]))) == [1, 1]
