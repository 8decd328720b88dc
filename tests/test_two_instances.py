"""Two portal instances (two ``portal serve`` processes) on one database share everything a
request leaves behind (issue 16): a session made on one works on the other, sign-in failures
and API requests counted on one count on the other, and a one-time code used on one is
refused on the other."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyotp
import pytest

from e2e.server import SECRET_KEY, free_port, running_process, server_environment
from portal.security import totp
from portal.security.tokens import new_hex_id, new_token, token_hash
from portal.tables import ApiKey, Identity
from portal.testing import factories

pytestmark = pytest.mark.slow
EMAIL = "dwa@example.com"
API_RATE = 6


@pytest.fixture(scope="module")
def instances(database_url: str, tmp_path_factory) -> Iterator[tuple[str, str]]:
    import sys

    urls = []
    with _started(database_url, tmp_path_factory.mktemp("one"), sys.executable, urls), \
            _started(database_url, tmp_path_factory.mktemp("two"), sys.executable, urls):
        yield urls[0], urls[1]


def _started(database_url: str, work: Path, python: str, urls: list[str]):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    urls.append(url)
    env = server_environment(database_url, work, "http://127.0.0.1")
    env["PORTAL_API_RATE_PER_MINUTE"] = str(API_RATE)
    return running_process([python, "-m", "portal.cli", "serve", "--host", "127.0.0.1",
                            "--port", str(port)], env=env, log_path=work / "server.log",
                           ready_url=f"{url}/healthz", name=f"portal on {port}")


def _client(url: str) -> httpx.AsyncClient:
    # The servers' PORTAL_BASE_URL is http://127.0.0.1 (no port), so one Origin suits both.
    return httpx.AsyncClient(base_url=url, timeout=20, headers={"Origin": "http://127.0.0.1"})


async def _post_form(http: httpx.AsyncClient, path: str, data: dict) -> httpx.Response:
    if "csrftoken" not in http.cookies:
        await http.get("/login")
    return await http.post(path, data=data, headers={"x-csrftoken": http.cookies["csrftoken"]})


async def test_a_session_made_on_one_instance_works_on_the_other(instances):
    one, two = instances
    owner = await factories.identity(EMAIL)
    await factories.account(owner)
    async with _client(one) as first:
        signed = await _post_form(first, "/login", {"email": EMAIL,
                                                    "password": factories.PASSWORD})
        assert signed.status_code == 303 and signed.headers["location"] == "/"
        async with _client(two) as second:
            second.cookies = first.cookies
            page = await second.get("/account")
            assert page.status_code == 200 and "Firma Testowa" in page.text
            # Signing out on the second ends it on the first.
            assert (await _post_form(second, "/logout", {})).status_code == 303
        assert (await first.get("/account")).headers["location"].startswith("/login")


async def test_sign_in_failures_on_both_instances_count_against_one_limit(instances):
    one, two = instances
    await factories.identity(EMAIL)
    for attempt in range(10):  # the limit: 10 per 5 minutes per ID, 5 here and 5 there
        async with _client((one, two)[attempt % 2]) as http:
            wrong = await _post_form(http, "/login", {"email": EMAIL, "password": "zle haslo"})
            assert wrong.status_code != 303
    for url in (one, two):  # the right password now waits on either
        async with _client(url) as http:
            right = await _post_form(http, "/login", {"email": EMAIL,
                                                      "password": factories.PASSWORD})
            assert right.status_code != 303


async def test_api_requests_on_both_instances_count_against_one_rate(instances):
    one, two = instances
    owner = await factories.identity(EMAIL)
    account = await factories.account(owner)
    key_id = new_hex_id(12)
    secret = f"pak_{key_id}_{new_token(32)}"
    await ApiKey.insert(ApiKey(account=account["id"], key_id=key_id, name="dwa",
                               secret_hash=token_hash(secret), created_by=owner,
                               scopes=["read"]))
    statuses = []
    for n in range(API_RATE + 2):
        async with httpx.AsyncClient(base_url=(one, two)[n % 2], timeout=20) as http:
            response = await http.get("/api/v1/account",
                                      headers={"Authorization": f"Bearer {secret}"})
            statuses.append(response.status_code)
    assert statuses[:API_RATE] == [200] * API_RATE
    assert statuses[API_RATE:] == [429, 429]  # on each instance


async def test_an_app_code_used_on_one_instance_is_refused_on_the_other(instances):
    one, two = instances
    owner = await factories.identity(EMAIL)
    await factories.account(owner)
    secret = totp.new_secret()
    await Identity.update({Identity.totp_secret_encrypted: totp.encrypt(secret, SECRET_KEY),
                           Identity.totp_confirmed_at: Identity.created_at}).where(
        Identity.id == owner)
    code = pyotp.TOTP(secret).now()
    results = []
    for url in (one, two):
        async with _client(url) as http:
            first_step = await _post_form(http, "/login", {"email": EMAIL,
                                                           "password": factories.PASSWORD})
            assert first_step.headers["location"] == "/login/mfa"
            second_step = await _post_form(http, "/login/mfa", {"method": "app", "code": code})
            results.append(second_step.status_code)
            if second_step.status_code != 303:
                assert re.search(r'aria-invalid="true"', second_step.text)
    assert results[0] == 303  # signed in on the first
    assert results[1] != 303  # the same code, on the second: refused
