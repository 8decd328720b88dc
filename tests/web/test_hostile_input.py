"""Hostile input (issue 19, finding 8): a NUL byte, a lone surrogate or JSON nested thousands of
levels deep is refused with a 400 before it reaches a handler, never a 500, and the database is
left exactly as it was. People get a short page in their language; the API and the OAuth
endpoints that applications call get their own JSON error shapes."""

from __future__ import annotations

import base64

import pytest

from portal.tables import ALL_TABLES
from portal.testing import factories
from tests.api.conftest import bearer, make_key
from tests.oidc.conftest import App, register

ENGLISH = {"Accept-Language": "en"}
DEEP = 10_000


async def snapshot() -> dict[str, str]:
    """Every row of every table, hashed per table: equal snapshots mean nothing was written."""
    from portal.tables import Identity

    digest = {}
    for table in ALL_TABLES:
        name = table._meta.tablename  # the table names are our own constants
        rows = "coalesce(string_agg(t::text, '|' ORDER BY t::text), '')"
        query = f'SELECT md5({rows}) AS h FROM "{name}" t'  # noqa: S608
        result = await Identity.raw(query)
        digest[name] = result[0]["h"]
    return digest


def refused_page(response) -> None:
    """A person's 400: the short error page, in English when the browser asks for it."""
    assert response.status_code == 400, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("text/html")
    assert "Bad request" in response.text
    assert "characters that are not allowed" in response.text


def refused_oauth(response) -> None:
    """RFC 6749 section 5.2: a JSON error an OAuth client understands."""
    assert response.status_code == 400, (response.status_code, response.text[:300])
    body = response.json()
    assert body["error"] == "invalid_request"
    assert body["error_description"]


def refused_api(response) -> None:
    assert response.status_code == 400, (response.status_code, response.text[:300])
    error = response.json()["error"]
    assert error["status"] == 400 and error["code"] == "bad_request" and error["message"]


async def test_a_nul_in_the_sign_in_email_is_a_400_page(client):
    await factories.identity("nul@example.com")
    await client.csrf()
    before = await snapshot()
    for email in ("nul@example.com\x00", "\x00"):
        refused_page(await client.post_form("/login", {"email": email, "password": "x" * 12},
                                            headers=ENGLISH))
        refused_page(await client.post_form("/login", {"email": email, "password": "x"},
                                            headers=ENGLISH, htmx=True))
    # The same as multipart/form-data (a file part may hold anything; fields may not).
    refused_page(await client.post(
        "/login", files={"email": (None, "a\x00@example.com"), "password": (None, "x")},
        headers={"x-csrftoken": await client.csrf(), **ENGLISH}))
    assert await snapshot() == before


async def test_polish_is_the_default_language_of_the_refusal(client):
    response = await client.post_form("/login", {"email": "\x00", "password": "x"})
    assert response.status_code == 400
    assert "Nieprawidłowe żądanie" in response.text
    assert "Usuń niedozwolone znaki" in response.text


async def test_a_nul_in_client_id_at_authorize_and_logout_is_a_400_page(client, app_client):
    await client.csrf()
    before = await snapshot()
    refused_page(await client.get("/oauth/authorize?client_id=%00&response_type=code",
                                  headers=ENGLISH))
    refused_page(await client.get(f"/oauth/authorize?client_id={app_client.client_id}%00",
                                  headers=ENGLISH))
    refused_page(await client.get("/oauth/logout?client_id=%00", headers=ENGLISH))
    refused_page(await client.post_form("/oauth/logout", {"client_id": "\x00"},
                                        headers=ENGLISH))
    assert await snapshot() == before


@pytest.fixture
async def app_client() -> App:
    return await register()


async def test_a_nul_in_client_id_at_token_and_revoke_is_an_oauth_error(client, app_client):
    before = await snapshot()
    form = {"grant_type": "authorization_code", "code": "x", "redirect_uri": "x",
            "code_verifier": "x"}
    refused_oauth(await client.raw.post("/oauth/token", data={**form, "client_id": "\x00"}))
    refused_oauth(await client.raw.post("/oauth/token", data=form, auth=("\x00", "secret")))
    refused_oauth(await client.raw.post("/oauth/token", data=form,
                                        auth=(app_client.client_id + "\x00", "s")))
    # Basic credentials are form-encoded (RFC 6749 2.3.1): %00 decodes to NUL too.
    encoded = base64.b64encode(b"%00:secret").decode()
    refused_oauth(await client.raw.post("/oauth/token", data=form,
                                        headers={"Authorization": f"Basic {encoded}"}))
    refused_oauth(await client.raw.post("/oauth/revoke",
                                        data={"token": "t", "client_id": "\x00"}))
    refused_oauth(await client.raw.post("/oauth/revoke", data={"token": "t\x00"},
                                        auth=app_client.basic()))
    assert await snapshot() == before


async def test_a_nul_in_a_path_parameter_is_a_400_page(client):
    await factories.identity("apps@example.com")
    await client.sign_in("apps@example.com", factories.PASSWORD)
    before = await snapshot()
    refused_page(await client.post_form("/security/applications/%00/revoke", {},
                                        headers=ENGLISH))
    refused_page(await client.post_form("/security/applications/a%00b/revoke", {},
                                        headers=ENGLISH))
    assert await snapshot() == before


async def test_a_nul_in_a_search_query_is_a_400_page(client):
    identity_id = await factories.identity("szukam@example.com")
    await factories.account(identity_id)
    await client.sign_in("szukam@example.com", factories.PASSWORD)
    before = await snapshot()
    refused_page(await client.get("/companies?q=a%00", headers=ENGLISH))
    assert await snapshot() == before


async def test_lone_surrogates_are_refused_too(client):
    """UTF-8 cannot hold a surrogate: percent-encoded or escaped in JSON, one is a 400 (or
    decodes to the replacement character), never an encoding error in the database driver."""
    await factories.identity("sur@example.com")
    await client.csrf()
    for raw in (b"email=%ED%A0%80%40example.com&password=x", b"email=\xed\xa0\x80&password=x"):
        response = await client.raw.post(
            "/login", content=raw, headers={"x-csrftoken": await client.csrf(),
                                            "content-type": "application/x-www-form-urlencoded"})
        assert response.status_code in (400, 422), response.text[:300]
    response = await client.post(
        "/login", files={"email": (None, b"\xed\xa0\x80@example.com"), "password": (None, "x")},
        headers={"x-csrftoken": await client.csrf()})
    assert response.status_code == 400, response.text[:300]
    response = await client.get("/oauth/authorize?client_id=%ED%A0%80")
    assert response.status_code == 400


async def test_nul_and_deep_json_on_the_api_are_json_400s(client, owner):
    identity_id, account = owner
    writer = await make_key(identity_id, account, scopes=("read", "write"))
    company = account["main_company_id"]
    before = await snapshot()
    deep = "[" * DEEP + "]" * DEEP
    deep_object = '{"name": ' * DEEP + '"x"' + "}" * DEEP
    for body in (deep, deep_object, '{"name": "' + "[" * DEEP + '", "nip": ' + "[" * DEEP,
                 '{"name": "Nowa\\u0000", "nip": "526-025-02-74"}'):
        for method, url in (("POST", "/api/v1/companies"),
                            ("PATCH", f"/api/v1/companies/{company}")):
            response = await client.request(method, url, content=body, headers={
                **bearer(writer), "content-type": "application/json"})
            refused_api(response)
            # A client that does not say it sends JSON gets the same answer.
            response = await client.request(method, url, content=body, headers={
                **bearer(writer), "content-type": "text/plain"})
            assert response.status_code in (400, 415), response.text[:300]
    refused_api(await client.get("/api/v1/companies?q=%00", headers=bearer(writer)))
    assert await snapshot() == before


async def test_brackets_and_an_escaped_backslash_in_strings_are_not_refused(client, owner):
    """Only structure counts towards the depth, and ``\\u0000`` (an escaped backslash, then
    "u0000") is six ordinary characters, not a NUL."""
    identity_id, account = owner
    writer = await make_key(identity_id, account, scopes=("read", "write"))
    name = "Firma [" + "{" * 100 + "] " + "\\\\u0000"
    body = '{"name": "' + name + '", "nip": "526-025-02-74"}'
    response = await client.post("/api/v1/companies", content=body.encode(), headers={
        **bearer(writer), "content-type": "application/json"})
    assert response.status_code == 201, response.text[:300]
    assert response.json()["name"] == "Firma [" + "{" * 100 + "] \\u0000"


async def test_a_body_over_the_limit_is_a_413_without_being_read_whole(client):
    await client.csrf()
    big = "x" * (1024 * 1024 + 1)
    response = await client.post_form("/login", {"email": big, "password": "x"},
                                      headers=ENGLISH)
    assert response.status_code == 413


async def test_ordinary_sign_in_still_works(client):
    await factories.identity("zwykly@example.com")
    await client.sign_in("zwykly@example.com", factories.PASSWORD)
    assert (await client.get("/security")).status_code == 200


@pytest.fixture
async def owner():
    identity_id = await factories.identity("api-nul@example.com")
    account = await factories.account(identity_id, name="Konto API")
    return identity_id, account


async def test_the_databases_own_refusal_is_a_400_as_a_last_resort(settings):
    """Whatever reaches a query some other way (past the middleware) and is refused by
    PostgreSQL is still a 400 in the caller's shape, and nothing is written."""
    from litestar import Litestar, get
    from litestar.datastructures import State
    from litestar.template.config import TemplateConfig

    from portal.app import template_engine
    from portal.tables import Identity
    from portal.views.errors import EXCEPTION_HANDLERS
    from tests.conftest import http_client

    async def store(value: str) -> None:
        await Identity.insert(Identity(email=value))

    @get(["/api/v1/probe", "/oauth/token", "/probe"])
    async def probe() -> str:
        await store("a\x00@example.com")
        return "stored"

    @get("/api/v1/jsonb")
    async def jsonb() -> str:
        await Identity.raw("SELECT {}::jsonb", '"\\u0000"')
        return "stored"

    tiny = Litestar([probe, jsonb], exception_handlers=EXCEPTION_HANDLERS,
                    template_config=TemplateConfig(instance=template_engine()),
                    state=State({"settings": settings}))
    before = await snapshot()
    async with http_client(tiny) as raw:
        refused_api(await raw.get("/api/v1/probe"))
        refused_api(await raw.get("/api/v1/jsonb"))
        refused_oauth(await raw.get("/oauth/token"))
        refused_page(await raw.get("/probe", headers=ENGLISH))
    assert await snapshot() == before


def test_the_json_check_agrees_with_a_real_parser():
    """Random documents with brackets, quotes, backslashes and NULs in their strings and keys,
    nested up to 80 deep: refused exactly when a NUL is in them or they nest over the limit."""
    import json
    import random

    from portal.web.input import MAX_JSON_DEPTH, _in_body

    rng = random.Random(19)
    pieces = ["[", "]", "{", "}", '"', "\\", "x", "\x00", "é", "\\u0000"]

    def text() -> str:
        return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))

    def value(room: int):
        roll = rng.random()
        if room <= 0 or roll < 0.3:
            return rng.choice([1, None, True, text()])
        if roll < 0.65:
            return [value(room - 1) for _ in range(rng.randint(0, 3))]
        return {text(): value(room - 1) for _ in range(rng.randint(0, 3))}

    def depth(v) -> int:
        inner = v.values() if isinstance(v, dict) else v if isinstance(v, list) else None
        return 0 if inner is None else 1 + max((depth(x) for x in inner), default=0)

    def has_nul(v) -> bool:
        if isinstance(v, str):
            return "\x00" in v
        if isinstance(v, dict):
            return any(has_nul(k) or has_nul(x) for k, x in v.items())
        return isinstance(v, list) and any(has_nul(x) for x in v)

    for _ in range(3000):
        v = value(rng.randint(0, 40))
        for _ in range(rng.randint(0, 40)):
            v = [v] if rng.random() < 0.5 else {"k": v}
        document = json.dumps(v, ensure_ascii=rng.random() < 0.5).encode()
        refused = _in_body(b"application/json", document)
        if has_nul(v):
            assert refused and "NUL" in refused, document
        elif depth(v) > MAX_JSON_DEPTH:
            assert refused and "deep" in refused, document
        else:
            assert refused is None, document
