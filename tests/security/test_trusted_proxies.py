"""Trusted proxies (issue 19, finding 10): ``X-Forwarded-For`` is believed only from the peers
in ``PORTAL_TRUSTED_PROXIES``; by default from nobody, not even a loopback peer (uvicorn's own
default). Served by real uvicorn with exactly the options ``portal serve`` passes, so the
forged address would show in the audit log and in the per-address limits."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from portal.cli import proxy_options
from portal.services import api_keys
from portal.settings import Settings, trusted_proxies
from portal.tables import AuditEvent, Throttle
from portal.testing import factories
from tests.security.served import served

FORGED = "198.51.100.23"


async def failed_sign_in_from(url: str, headers: dict[str, str]) -> str:
    """Sign in with a wrong password over a real socket; the address its audit event has."""
    await factories.identity("proxy@example.com")
    async with httpx.AsyncClient(base_url=url) as client:
        await client.get("/login")
        response = await client.post(
            "/login", data={"email": "proxy@example.com", "password": "zle haslo 123"},
            headers={"x-csrftoken": client.cookies["csrftoken"], **headers})
        assert response.status_code == 422, response.text[:300]
    event = await AuditEvent.select(AuditEvent.ip).where(
        AuditEvent.tag == "identity:login:failure").first()
    assert event is not None
    return event["ip"]


def options(settings: Settings, proxies: str = "") -> dict[str, object]:
    return proxy_options(replace(settings, trusted_proxies=trusted_proxies(proxies)))


async def test_by_default_a_loopback_peer_cannot_forge_its_address(app, settings):
    assert settings.trusted_proxies == ()
    async with served(app, **options(settings)) as url:
        assert await failed_sign_in_from(url, {"X-Forwarded-For": FORGED}) == "127.0.0.1"


async def test_a_forged_address_gets_no_fresh_per_address_limit(app, settings):
    async with served(app, **options(settings)) as url, httpx.AsyncClient() as client:
        for n in range(3):
            response = await client.get(url + "/api/v1/companies", headers={
                "Authorization": "Bearer pak_000000000000_" + "x" * 43,
                "X-Forwarded-For": f"198.51.100.{n}"})
            assert response.status_code == 401
    counted = {row["key"]: row["failures"] for row in await Throttle.select()}
    assert counted.get(api_keys.GUESSES_PER_ADDRESS.key("127.0.0.1")) == 3
    for n in range(3):
        assert api_keys.GUESSES_PER_ADDRESS.key(f"198.51.100.{n}") not in counted


async def test_a_configured_proxy_is_believed(app, settings):
    async with served(app, **options(settings, "10.9.8.7, 127.0.0.1")) as url:
        assert await failed_sign_in_from(url, {"X-Forwarded-For": FORGED}) == FORGED


async def test_only_the_hop_the_proxy_saw_is_believed(app, settings):
    """A client's own X-Forwarded-For passed on by the proxy stays the client's claim: the
    address is the rightmost one no trusted proxy added."""
    async with served(app, **options(settings, "127.0.0.0/8")) as url:
        assert await failed_sign_in_from(
            url, {"X-Forwarded-For": f"203.0.113.99, {FORGED}"}) == FORGED


async def test_a_peer_outside_the_configured_networks_is_not_believed(app, settings):
    async with served(app, **options(settings, "10.0.0.0/8,2001:db8::/32")) as url:
        assert await failed_sign_in_from(url, {"X-Forwarded-For": FORGED}) == "127.0.0.1"


def test_the_setting_is_read_checked_and_handed_to_workers():
    assert Settings.from_env({"PORTAL_SECRET_KEY": "k"}).trusted_proxies == ()
    settings = Settings.from_env({"PORTAL_SECRET_KEY": "k",
                                  "PORTAL_TRUSTED_PROXIES": " 10.0.0.5 , 10.1.2.3/16,,::1"})
    assert settings.trusted_proxies == ("10.0.0.5", "10.1.0.0/16", "::1")
    assert Settings.from_env(settings.exported()).trusted_proxies == settings.trusted_proxies
    assert proxy_options(settings) == {"proxy_headers": True,
                                       "forwarded_allow_ips": ["10.0.0.5", "10.1.0.0/16",
                                                               "::1"]}
    assert proxy_options(replace(settings, trusted_proxies=())) == {"proxy_headers": False}
    for wrong in ("*", "proxy.local", "10.0.0.300", "10.0.0.0/33"):
        with pytest.raises(ValueError, match="PORTAL_TRUSTED_PROXIES"):
            Settings.from_env({"PORTAL_SECRET_KEY": "k", "PORTAL_TRUSTED_PROXIES": wrong})
