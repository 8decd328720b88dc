"""Where a token request's time goes: a refresh grant or a code exchange, run in-process
through the real app (ASGI, no network) under pyinstrument.

    .venv/bin/python -m bench.token_profile refresh [--requests 300] [--alg RS256]
    .venv/bin/python -m bench.token_profile code [--requests 300] [--alg ES256]

Prints pyinstrument's call tree (application CPU only; PostgreSQL's share is bench/token.py's).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
from dataclasses import replace
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
from pyinstrument import Profiler

from portal import db
from portal.app import create_app
from portal.services import oidc, oidc_clients
from portal.settings import Settings
from portal.testing import factories
from portal.testing.database import test_database

REDIRECT = "https://bench.example.com/cb"


async def sign_in(http: httpx.AsyncClient) -> None:
    page = await http.get("/login")
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
    await http.post("/login", data={"email": "bench@example.com",
                                    "password": factories.PASSWORD, "_csrf_token": csrf})


async def code(http: httpx.AsyncClient, client_id: str) -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    response = await http.get("/oauth/authorize?" + urlencode({
        "client_id": client_id, "redirect_uri": REDIRECT, "response_type": "code",
        "scope": "openid email profile accounts offline_access", "state": "s", "nonce": "n",
        "code_challenge": oidc.s256(verifier), "code_challenge_method": "S256"}))
    return parse_qs(urlparse(response.headers["location"]).query)["code"][0], verifier


async def run(url: str, grant: str, requests: int, alg: str) -> None:
    settings = replace(Settings.from_env(), database_url=url, base_url="http://bench.local")
    db.configure(url)
    await db.start_pool(max_size=4)
    identity_id = await factories.identity("bench@example.com", first_name="Anna",
                                           last_name="Nowak")
    await factories.account(identity_id)
    options = {"id_token_signed_response_alg": alg} if alg != "RS256" else {}
    client_id, secret = await oidc_clients.register_client(
        name="Bench", redirect_uris=[REDIRECT], first_party=True, **options)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    # The browser (signed in) gets the codes; the application calls the token endpoint from
    # its server, without the person's cookies.
    async with httpx.AsyncClient(transport=transport, base_url="http://bench.local") as http, \
            httpx.AsyncClient(transport=transport, base_url="http://bench.local") as backend:
        await sign_in(http)
        token_url = "/oauth/token"
        first = await code(http, client_id)
        tokens = (await backend.post(token_url, auth=(client_id, secret), data={
            "grant_type": "authorization_code", "code": first[0], "redirect_uri": REDIRECT,
            "code_verifier": first[1]})).json()
        refresh = tokens["refresh_token"]
        codes = [await code(http, client_id) for _ in range(requests)] if grant == "code" else []
        # Not "enabled": time awaiting PostgreSQL shows as the event loop's select, apart from
        # the CPU the request itself spends.
        profiler = Profiler(async_mode="disabled", interval=0.0005)
        profiler.start()
        for index in range(requests):
            if grant == "refresh":
                response = await backend.post(token_url, auth=(client_id, secret), data={
                    "grant_type": "refresh_token", "refresh_token": refresh})
                refresh = response.json()["refresh_token"]
            else:
                response = await backend.post(token_url, auth=(client_id, secret), data={
                    "grant_type": "authorization_code", "code": codes[index][0],
                    "redirect_uri": REDIRECT, "code_verifier": codes[index][1]})
            assert response.status_code == 200, response.text
        profiler.stop()
    await db.close_pool()
    print(profiler.output_text(unicode=True, color=False, show_all=False))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("grant", choices=("refresh", "code"))
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--alg", default="RS256", choices=("RS256", "ES256"))
    args = parser.parse_args()
    with test_database("portal_bench") as url:
        asyncio.run(run(url, args.grant, args.requests, args.alg))


if __name__ == "__main__":
    main()
