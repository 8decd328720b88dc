"""Guessing limits hold under parallel bursts (issue 19, finding 3).

Each attempt is counted before its secret is checked, in one statement that also says whether
it may go ahead, so fifty requests sent at once get no more checks than fifty sent one by one.
The checks are counted where they happen: argon2 ``verify`` calls for passwords, the code
check of the second step, the secret comparison of an API key.
"""

from __future__ import annotations

import asyncio
import re

import httpx
import pyotp
import pytest

from portal.security import passwords, totp
from portal.services import api_keys, mfa, throttle
from portal.tables import Identity, RecoveryCode
from portal.testing import factories
from tests.api.conftest import bearer, make_key
from tests.conftest import Client, last_mail

BURST = 50
EMAIL = "cel@example.com"


@pytest.fixture(autouse=True)
def roomy_hash_queue(monkeypatch) -> None:
    """Fifty requests at once would fill the hashing queue (a refusal is given back and
    checks nothing, tests/security/test_hash_queue.py); here every admitted one must run."""
    monkeypatch.setattr(passwords, "QUEUE", passwords.HashQueue(
        workers=passwords.WORKERS, max_wait=60, max_queued_wait=60, max_queue=1000,
        seconds_per_hash=passwords.QUEUE.seconds_per_hash))


@pytest.fixture
def verifies(monkeypatch) -> list[int]:
    """Count argon2 verifications (real and dummy alike), as tests/views/test_auth.py does."""
    calls: list[int] = []

    class CountingHasher(type(passwords.HASHER)):
        def verify(self, hash, password):
            calls.append(1)
            return super().verify(hash, password)

    original = passwords.HASHER
    monkeypatch.setattr(passwords, "HASHER", CountingHasher(
        time_cost=original.time_cost, memory_cost=original.memory_cost,
        parallelism=original.parallelism))
    return calls


async def burst(count: int, send):
    return await asyncio.gather(*(send(i) for i in range(count)))


@pytest.mark.parametrize("email", [EMAIL, "nikt@example.com"], ids=["known", "unknown"])
async def test_fifty_parallel_wrong_passwords_get_at_most_ten_verifications(
        client, verifies, email):
    await factories.identity(EMAIL)
    await client.csrf()
    responses = await burst(BURST, lambda i: client.post_form(
        "/login", {"email": email, "password": f"zgaduję {i}"}))
    assert {r.status_code for r in responses} == {422}
    assert len(verifies) <= throttle.LOGIN_IDENTITY.per_window
    # Exactly as many as one at a time would get: the limit is not merely lower.
    assert len(verifies) == throttle.LOGIN_IDENTITY.per_window
    if email == EMAIL:  # and the right password now waits like after ten sequential failures
        right = await client.post_form("/login", {"email": EMAIL,
                                                  "password": factories.PASSWORD})
        assert right.status_code == 422
        assert len(verifies) == throttle.LOGIN_IDENTITY.per_window


async def test_a_burst_from_one_address_against_many_ids_stops_at_the_address_limit(
        client, verifies):
    await client.csrf()
    await burst(BURST, lambda i: client.post_form(
        "/login", {"email": f"ktos{i}@example.com", "password": "zgaduję"}))
    assert len(verifies) == throttle.LOGIN_ADDRESS.per_window


async def test_parallel_right_passwords_all_sign_in_and_leave_no_count(client, app):
    """Reserving counts every attempt first; a success gives it back (the ID's count is
    cleared, the address's reservation refunded), so people signing in from one office
    address do not add up. (Attempts still in flight do count: more than 30 sign-ins from
    one address at the very same moment would see the limit.)"""
    emails = [f"osoba{i}@example.com" for i in range(20)]
    for email in emails:
        await factories.identity(email)
    clients = []
    for _ in emails:
        raw = httpx.AsyncClient(transport=httpx.ASGITransport(app=app,
                                                              client=("203.0.113.7", 50000)),
                                base_url="http://testserver.local")
        clients.append(Client(raw))
        await clients[-1].csrf()
    try:
        responses = await asyncio.gather(*(
            c.post_form("/login", {"email": e, "password": factories.PASSWORD})
            for c, e in zip(clients, emails, strict=True)))
    finally:
        for c in clients:
            await c.raw.aclose()
    assert {r.status_code for r in responses} == {303}
    assert not await throttle.blocked(throttle.LOGIN_ADDRESS, "203.0.113.7")
    rows = await throttle.Throttle.select().where(
        throttle.Throttle.key == throttle.LOGIN_ADDRESS.key("203.0.113.7"))
    assert [(r["failures"], r["consecutive"]) for r in rows] in ([], [(0, 0)])
    assert await throttle.Throttle.count().where(
        throttle.Throttle.key.like("login:identity:%")) == 0


# --- the second step -------------------------------------------------------------------------


@pytest.fixture
def code_checks(monkeypatch) -> list[str]:
    """Count the code checks of the second step (TOTP, emailed code, recovery code)."""
    calls: list[str] = []
    original = mfa._check_code

    async def counting(settings, current, raw, method, code, client):
        calls.append(method)
        return await original(settings, current, raw, method, code, client)

    monkeypatch.setattr(mfa, "_check_code", counting)
    return calls


async def second_step(client, settings, method: str) -> None:
    """An ID with the factor on and a sign-in attempt that passed the password."""
    identity_id = await factories.identity(EMAIL)
    secret = totp.new_secret()
    await Identity.update({
        Identity.totp_secret_encrypted: totp.encrypt(secret, settings.secret_key),
        Identity.totp_confirmed_at: Identity.created_at,
        Identity.mfa_email_enabled: True,
    }).where(Identity.id == identity_id)
    await RecoveryCode.insert(RecoveryCode(identity=identity_id, code_hash=mfa._code_mac(
        settings.secret_key, "recovery", "abcdefghjk")))
    response = await client.post_form("/login", {"email": EMAIL,
                                                 "password": factories.PASSWORD})
    assert response.headers["location"] == "/login/mfa"
    if method == "email":
        sent = await client.post_form("/login/mfa/email-code", {})
        assert sent.status_code == 200
        assert re.search(r"\b\d{8}\b", (await last_mail(EMAIL))["text_body"])


WRONG = {"app": "{:06d}", "email": "{:08d}", "recovery": "zzzzz-{:05d}"}


@pytest.mark.parametrize("method", ["app", "email", "recovery"])
async def test_fifty_parallel_wrong_codes_get_at_most_five_checks(
        client, settings, code_checks, method):
    await second_step(client, settings, method)
    responses = await burst(BURST, lambda i: client.post_form(
        "/login/mfa", {"method": method, "code": WRONG[method].format(i)}))
    assert {r.status_code for r in responses} == {422}
    assert len(code_checks) == mfa.MFA_SHORT.per_window


async def test_a_right_code_gives_its_reservation_back(client, settings, code_checks):
    await second_step(client, settings, "app")
    for i in range(mfa.MFA_SHORT.per_window - 1):
        await client.post_form("/login/mfa", {"method": "app", "code": f"{i:06d}"})
    row = await Identity.select(Identity.totp_secret_encrypted).first()
    secret = totp.decrypt(row["totp_secret_encrypted"], settings.secret_key)
    done = await client.post_form("/login/mfa", {"method": "app",
                                                 "code": pyotp.TOTP(secret).now()})
    assert done.status_code == 303
    key = mfa.MFA_SHORT.key(str((await Identity.select(Identity.id).first())["id"]))
    counted = await throttle.Throttle.select(throttle.Throttle.failures).where(
        throttle.Throttle.key == key).first()
    assert counted["failures"] == mfa.MFA_SHORT.per_window - 1  # the success is not a failure


# --- API keys --------------------------------------------------------------------------------


@pytest.fixture
def secret_checks(monkeypatch) -> list[int]:
    """Count the API key secret comparisons (the SHA-256 of the presented secret)."""
    calls: list[int] = []
    original = api_keys.token_hash

    def counting(raw: str) -> str:
        calls.append(1)
        return original(raw)

    monkeypatch.setattr(api_keys, "token_hash", counting)
    return calls


def api_client(app, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 50000)),
                             base_url="http://testserver.local")


@pytest.fixture
async def owner():
    identity_id = await factories.identity("api@example.com")
    return identity_id, await factories.account(identity_id, name="Konto API")


async def test_fifty_parallel_wrong_api_secrets_get_at_most_thirty_wrong_answers(
        app, owner, secret_checks):
    """A secret's check is one SHA-256, so it is not reserved beforehand (that would count an
    integration's own parallel requests against its address): each wrong one is counted
    before it is answered, and past the limit the answer no longer says whether it was
    wrong. Once the address waits, nothing from it is compared at all."""
    secret = await make_key(*owner)
    key_id = secret.split("_")[1]
    async with api_client(app, "198.51.100.9") as attacker:
        responses = await burst(BURST, lambda i: attacker.get(
            "/api/v1/companies", headers=bearer(f"pak_{key_id}_{'x' * 38}{i:05d}")))
        statuses = [r.status_code for r in responses]
        assert statuses.count(401) == api_keys.GUESSES_PER_ADDRESS.per_window
        assert statuses.count(429) == BURST - api_keys.GUESSES_PER_ADDRESS.per_window
        secret_checks.clear()
        refused = await attacker.get("/api/v1/companies", headers=bearer(secret))
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert secret_checks == []  # refused unseen, right or wrong
    # The key's owner, elsewhere, is not locked out by guesses at their key.
    async with api_client(app, "192.0.2.1") as integration:
        assert (await integration.get("/api/v1/companies",
                                      headers=bearer(secret))).status_code == 200


async def test_an_integrations_parallel_requests_never_count_as_guesses(app, owner):
    secret = await make_key(*owner)
    async with api_client(app, "198.51.100.10") as integration:
        responses = await burst(BURST, lambda i: integration.get(
            "/api/v1/companies", headers=bearer(secret)))
        assert {r.status_code for r in responses} == {200}
        # and unknown key ids are guesses like wrong secrets of a known one
        unknown = await burst(BURST, lambda i: integration.get(
            "/api/v1/companies", headers=bearer(f"pak_{i:012x}_{'y' * 43}")))
        statuses = [r.status_code for r in unknown]
        assert statuses.count(401) == api_keys.GUESSES_PER_ADDRESS.per_window
