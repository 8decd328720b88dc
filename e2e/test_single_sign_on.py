"""Single sign-on, end to end, with two OpenID-certified client libraries: each relying party
is a small web application in its own process, built on Authlib (Python, e2e/relying_party.py)
or on panva's openid-client (Node, e2e/clients/node/relying_party.mjs), signing a person in
through the portal in Chromium. The protocol work is the library's: the authorization URL with
PKCE, the authorization response (``iss`` and ``state``), the code exchange and the ID token
checks, refresh, introspection, revocation, the end-session request.

Both applications have the same pages (the contract these tests drive):
``/`` (``#who``, ``#account``), ``/login`` (authorization request by GET; ``?scope=`` overrides
the scope), ``/login-post`` (the same request as a form sent by POST), ``/callback`` (an error
shows as ``#error``), ``/tokens`` (refresh, introspect, revoke, what the portal answered),
``/logout`` and ``/logout-post`` (RP-initiated logout by GET and by POST), ``/bye``,
``POST /backchannel-logout``; the Node one also serves ``/spa``, openid-client running in the
browser as a public client. Options: ``--private-key FILE`` (private_key_jwt),
``--ui-locales``, and the Node one's ``--id-token-alg ES256``.

The Node application's packages are pinned by e2e/clients/node/package-lock.json and installed
with ``npm ci`` the first time a test needs them."""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest
from joserfc.jwk import RSAKey
from playwright.async_api import Browser, Page, expect

from e2e import axe
from e2e.pages import LoginPage, tab_to
from e2e.server import Server, free_port, running_process
from portal.services import oidc_clients
from portal.tables import Identity
from tests.oidc.conftest import pkce

ROOT = Path(__file__).resolve().parents[1]
NODE_APP = ROOT / "e2e" / "clients" / "node"
LIBRARIES = ("authlib", "openid-client")


@functools.cache
def node_application() -> list[str]:
    """The command that starts the openid-client application, its packages installed
    (``npm ci``, from the lock file) when they are missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("Node.js (node and npm) is needed for the openid-client relying party")
    if not (NODE_APP / "node_modules" / "openid-client").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=NODE_APP, check=True, timeout=300)
    return [node, str(NODE_APP / "relying_party.mjs")]


@contextmanager
def relying_party(server: Server, client_id: str, secret: str | None, port: int, name: str,
                  *options: str, library: str = "authlib"):
    """A relying-party application on ``library`` in its own process; ``options`` are more of
    its command-line options (``--private-key FILE``, ``--ui-locales en``)."""
    log_path = Path(tempfile.mkdtemp(prefix="portal-rp-")) / "rp.log"
    program = (node_application() if library == "openid-client"
               else [sys.executable, "-m", "e2e.relying_party"])
    # --option=value: a secret may begin with "-".
    command = [*program, f"--port={port}", f"--portal={server.base_url}",
               f"--client-id={client_id}", f"--client-secret={secret or ''}", f"--name={name}",
               *options]
    base = f"http://127.0.0.1:{port}"
    with running_process(command, env=None, log_path=log_path, ready_url=base + "/",
                         name=f"relying party {name} ({library})", cwd=ROOT):
        yield base


async def register_app(name: str, port: int, alg: str = "RS256") -> tuple[str, str]:
    base = f"http://127.0.0.1:{port}"
    client_id, secret = await oidc_clients.register_client(
        name=name, redirect_uris=[base + "/callback"], post_logout_redirect_uris=[base + "/bye"],
        backchannel_logout_uri=base + "/backchannel-logout", first_party=True,
        id_token_signed_response_alg=alg)
    return client_id, secret


@contextmanager
def started(server: Server, library: str, registered: tuple[str, str | None], port: int,
            name: str, *options: str):
    with relying_party(server, *registered, port, name, *options, library=library) as base:
        yield base


@pytest.fixture(params=LIBRARIES)
async def app(request: pytest.FixtureRequest, server: Server, engine):
    """One first-party application on each library in turn."""
    port = free_port()
    registered = await register_app(f"e-Dokumenty {request.param} (test)", port)
    with started(server, request.param, registered, port, "e-Dokumenty") as base:
        yield base


async def sign_in_at_portal(page: Page, email: str, password: str) -> None:
    """The portal's sign-in form, reached from an application."""
    await expect(page).to_have_url(re.compile(r"/login\?next="))
    await page.get_by_label("E-mail", exact=True).fill(email)
    await page.get_by_label("Hasło", exact=True).fill(password)
    await page.get_by_role("button", name="Zaloguj się", exact=True).click()


async def test_two_apps_on_two_libraries_one_sign_in_and_one_sign_out(
        page: Page, make_person, server: Server, engine):
    """Authlib's application signs in with the password; openid-client's needs none; signing
    out of the portal ends both (back-channel logout tokens, checked by each). The second is
    registered for ES256: its ID and logout tokens are signed with the EC key, and
    openid-client, told so, accepts nothing else."""
    ports = free_port(), free_port()
    one = await register_app("e-Faktury (test)", ports[0])
    two = await register_app("e-Płace (test)", ports[1], alg="ES256")
    person = await make_person(label="sso")
    with started(server, "authlib", one, ports[0], "e-Faktury") as first, \
            started(server, "openid-client", two, ports[1], "e-Płace",
                    "--id-token-alg", "ES256") as second:
        await page.goto(first + "/")
        await page.get_by_role("link", name="Zaloguj przez Konto ID").click()
        await axe.assert_no_serious_violations(page)
        await sign_in_at_portal(page, person.email, person.password)
        await expect(page).to_have_url(first + "/")
        await expect(page.locator("#who")).to_have_text(f"Zalogowano: {person.email}")
        await expect(page.locator("#account")).to_have_text(
            f"Konto: {person.account['public_id']}")  # the portal's current account

        await page.goto(second + "/")
        await page.get_by_role("link", name="Zaloguj przez Konto ID").click()
        await expect(page.locator("#who")).to_have_text(f"Zalogowano: {person.email}")
        await expect(page.locator("#account")).to_have_text(
            f"Konto: {person.account['public_id']}")

        await page.goto("/")  # the portal
        await page.get_by_role("button", name="Wyloguj").click()
        await expect(page).to_have_url(re.compile(r"/login$"))
        for base in (first, second):
            for _ in range(50):
                await page.goto(base + "/")
                if await page.locator("#who").inner_text() == "Niezalogowano":
                    break
                await page.wait_for_timeout(100)
            await expect(page.locator("#who")).to_have_text("Niezalogowano")


async def expect_token_report(page: Page, client_id: str) -> None:
    """The application's /tokens: the refresh token rotated (and the new ID token verified
    for the same person), introspection found the new access token active, revocation ended
    the grant, and the portal refused the revoked refresh token as RFC 6749 §5.2 says."""
    await page.get_by_role("link", name="Tokeny").click()
    await expect(page.locator("#rotated")).to_have_text("true")
    await expect(page.locator("#same-person")).to_have_text("true")
    await expect(page.locator("#introspection")).to_have_text(f"true {client_id}")
    await expect(page.locator("#after-revocation")).to_have_text("false")
    await expect(page.locator("#refresh-after-revocation")).to_have_text("invalid_grant")


@pytest.mark.parametrize("library", LIBRARIES)
async def test_code_with_pkce_tokens_and_logout_by_get(
        page: Page, make_person, server: Server, engine, library: str):
    port = free_port()
    client_id, secret = await register_app(f"e-Faktury {library} (test)", port)
    person = await make_person(label="sso-get")
    with started(server, library, (client_id, secret), port, "e-Faktury") as base:
        await page.goto(base + "/")
        await page.get_by_role("link", name="Zaloguj przez Konto ID").click()
        await sign_in_at_portal(page, person.email, person.password)
        await expect(page.locator("#who")).to_have_text(f"Zalogowano: {person.email}")
        await expect_token_report(page, client_id)

        await page.goto(base + "/")
        await page.get_by_role("link", name="Wyloguj z aplikacji").click()
        await expect(page.get_by_role("heading", name="Wylogowanie")).to_be_visible()
        await axe.assert_no_serious_violations(page)
        await page.get_by_role("main").get_by_role("button", name="Wyloguj").click()
        await expect(page).to_have_url(base + "/bye?state=bye")
        await page.goto("/profile")
        await expect(page).to_have_url(re.compile(r"/login\?next="))


async def test_authorization_and_logout_requests_sent_by_post(page: Page, make_person, app):
    """An application may send both requests as forms from its own site (OpenID Connect
    Core 3.1.2.1, RP-Initiated Logout 1.0 §2): no CSRF refusal, the same path as GET."""
    person = await make_person(label="sso-post")
    await page.goto(app + "/")
    await page.get_by_role("link", name="Logowanie formularzem (POST)").click()
    await page.get_by_role("button", name="Zaloguj przez Konto ID (POST)").click()
    await sign_in_at_portal(page, person.email, person.password)
    await expect(page.locator("#who")).to_have_text(f"Zalogowano: {person.email}")

    await page.get_by_role("link", name="Wylogowanie formularzem (POST)").click()
    await page.get_by_role("button", name="Wyloguj w Koncie ID (POST)").click()
    await expect(page.get_by_role("heading", name="Wylogowanie")).to_be_visible()
    await page.get_by_role("main").get_by_role("button", name="Wyloguj").click()
    await expect(page).to_have_url(app + "/bye?state=bye")
    await page.goto("/profile")
    await expect(page).to_have_url(re.compile(r"/login\?next="))


async def test_the_whole_sign_in_works_with_javascript_disabled(
        browser: Browser, server: Server, make_person, app):
    """The login form's redirects lead on to the application's callback: the sign-in page's
    CSP form-action allows the registered redirect URI of the request in progress."""
    person = await make_person(label="sso-bez-js")
    context = await browser.new_context(base_url=server.base_url, locale="pl-PL",
                                        java_script_enabled=False)
    try:
        page = await context.new_page()
        refused: list[str] = []
        page.on("console", lambda message: refused.append(message.text)
                if "Content Security Policy" in message.text else None)
        await page.goto(app + "/")
        await page.get_by_role("link", name="Zaloguj przez Konto ID", exact=True).click()
        await sign_in_at_portal(page, person.email, person.password)
        await expect(page).to_have_url(app + "/")
        await expect(page.locator("#who")).to_have_text(f"Zalogowano: {person.email}")
        assert refused == []
    finally:
        await context.close()


@pytest.mark.parametrize("library", LIBRARIES)
async def test_an_application_asking_for_english_gets_english_pages(
        page: Page, make_person, server: Server, engine, library: str):
    port = free_port()
    registered = await register_app(f"e-Faktury EN {library} (test)", port)
    person = await make_person(label="sso-en")
    with started(server, library, registered, port, "e-Faktury EN", "--ui-locales", "en") as app:
        await page.goto(app + "/login")  # a Polish browser (pl-PL)
        await expect(page.locator("html")).to_have_attribute("lang", "en")
        await page.get_by_label("Email", exact=True).fill(person.email)
        await page.get_by_label("Password", exact=True).fill(person.password)
        await page.get_by_role("button", name="Sign in", exact=True).click()
        await expect(page.locator("#who")).to_have_text(f"Zalogowano: {person.email}")


@pytest.mark.parametrize("library", LIBRARIES)
async def test_a_private_key_jwt_application_set_up_through_the_staff_ui(
        page: Page, make_person, server: Server, engine, tmp_path: Path, library: str):
    """Staff paste the application's public keys; the library then signs its client
    assertions for the token, introspection and revocation endpoints (each with the audience
    the library chooses)."""
    staff = await make_person(label="sso-obsluga")
    await Identity.update({Identity.is_staff: True}).where(Identity.id == staff.identity_id)
    key = RSAKey.generate_key(2048, parameters={"kid": f"e2e-{library}"})
    private = tmp_path / "rp-key.json"
    private.write_text(json.dumps(key.as_dict(private=True)))
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    await LoginPage(page).sign_in(staff.email, staff.password)
    await page.goto("/staff/clients")
    await page.get_by_label("Nazwa aplikacji").fill(f"e-Płace PKJWT {library} (test)")
    await page.get_by_label("Adresy powrotu", exact=True).fill(base + "/callback")
    await page.get_by_label("Adresy po wylogowaniu").fill(base + "/bye")
    await page.get_by_label("Uwierzytelnienie aplikacji").select_option("private_key_jwt")
    await page.get_by_label("Klucze (JWKS)").fill(
        json.dumps({"keys": [key.as_dict(private=False)]}))
    await page.get_by_label("Aplikacja własna (bez ekranu zgody)").check()
    await page.get_by_role("button", name="Zarejestruj aplikację").click()
    client_id = (await page.get_by_test_id("client-id").inner_text()).strip()
    await expect(page.get_by_test_id("client-secret")).to_have_count(0)

    with started(server, library, (client_id, None), port, "e-Płace PKJWT",
                 "--private-key", str(private)) as app:
        await page.goto(app + "/login")
        await expect(page.locator("#who")).to_have_text(f"Zalogowano: {staff.email}")
        await expect_token_report(page, client_id)


@pytest.mark.parametrize("library", LIBRARIES)
async def test_errors_reach_the_application_as_the_specs_say(
        page: Page, make_person, server: Server, engine, library: str):
    """An authorization error comes back to the redirect URI with ``state`` and ``iss``, which
    the library checks before it reports the error; a token-endpoint error is JSON
    (RFC 6749 §5.2) that the library reads. Never a portal error page, never a 500."""
    port = free_port()
    client_id, _ = await register_app(f"Błędy {library} (test)", port)
    person = await make_person(label="sso-bledy-lib")
    await LoginPage(page).sign_in(person.email, person.password)
    with started(server, library, (client_id, "not-the-secret"), port, "Błędy") as app:
        await page.goto(app + "/login?" + urlencode({"scope": "openid email payroll"}))
        await expect(page.locator("#error")).to_have_text("Błąd: invalid_scope")
        await page.goto(app + "/login?" + urlencode({"scope": "email"}))
        await expect(page.locator("#error")).to_have_text("Błąd: invalid_scope")
        await page.goto(app + "/login")  # the code comes, the wrong secret is refused
        await expect(page.locator("#error")).to_have_text("Błąd: invalid_client")


async def test_a_single_page_app_from_another_origin_signs_in_with_cors(
        page: Page, make_person, server: Server, engine):
    """A public client (no secret, PKCE): openid-client itself runs in the browser, on the
    application's origin, and calls discovery, the token endpoint and userinfo of the
    portal across origins."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    client_id, secret = await oidc_clients.register_client(
        name="Panel SPA (test)", redirect_uris=[base + "/spa"], auth_method="none",
        first_party=True)
    assert secret is None
    person = await make_person(label="sso-spa")
    await LoginPage(page).sign_in(person.email, person.password)
    with relying_party(server, client_id, None, port, "Panel SPA",
                       library="openid-client") as app:
        await page.goto(app + "/spa")
        await page.get_by_role("button", name="Zaloguj (SPA)").click()
        await expect(page.locator("#who")).to_have_text(f"Zalogowano: {person.email}")


async def test_protocol_misuse_is_refused(page: Page, make_person, server: Server, engine):
    port = free_port()
    client_id, secret = await register_app("Test nadużyć", port)
    redirect = f"http://127.0.0.1:{port}/callback"
    person = await make_person(label="sso-bledy")
    await LoginPage(page).sign_in(person.email, person.password)

    verifier, challenge = pkce()
    params = {"client_id": client_id, "response_type": "code", "scope": "openid email",
              "state": "s", "nonce": "n", "code_challenge": challenge,
              "code_challenge_method": "S256"}
    # A wrong redirect URI: an error page at the portal, no redirect anywhere.
    await page.goto("/oauth/authorize?" + urlencode({**params,
                                                     "redirect_uri": "https://evil.example/"}))
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Nie można zalogować do aplikacji")
    assert urlparse(page.url).netloc == urlparse(server.base_url).netloc
    await axe.assert_no_serious_violations(page)

    async def get_code() -> str:
        response = await page.request.get(
            "/oauth/authorize?" + urlencode({**params, "redirect_uri": redirect}),
            max_redirects=0)
        assert response.status == 302
        return parse_qs(urlparse(response.headers["location"]).query)["code"][0]

    token_url = server.base_url + "/oauth/token"
    http = httpx.AsyncClient(auth=(client_id, secret), timeout=10)
    code = await get_code()
    missing = await http.post(token_url, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect})
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_grant"

    code = await get_code()
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
            "code_verifier": verifier}
    assert (await http.post(token_url, data=form)).status_code == 200
    reused = await http.post(token_url, data=form)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"

    code = await get_code()
    tokens = (await http.post(token_url, data={**form, "code": code})).json()
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    assert (await http.post(token_url, data=refresh)).status_code == 200
    replayed = await http.post(token_url, data=refresh)
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"
    await http.aclose()


async def test_a_third_party_app_asks_for_consent_by_keyboard(
        page: Page, make_person, server: Server, engine):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    client_id, secret = await oidc_clients.register_client(
        name="Aplikacja partnera", redirect_uris=[base + "/callback"], first_party=False)
    person = await make_person(label="sso-zgoda")
    await LoginPage(page).sign_in(person.email, person.password)
    with relying_party(server, client_id, secret, port, "Partner") as app:
        await page.goto(app + "/login")
        await expect(page.get_by_role("heading", name="Zgoda na udostępnienie danych")
                     ).to_be_visible()
        await expect(page.get_by_role("main")).to_contain_text("Aplikacja partnera")
        await axe.assert_no_serious_violations(page)
        await tab_to(page, page.get_by_role("button", name="Zezwól"))
        await page.keyboard.press("Enter")
        await expect(page.locator("#who")).to_have_text(f"Zalogowano: {person.email}")
        await page.goto("/security")
        await expect(page.get_by_role("heading", name="Aplikacja partnera")).to_be_visible()
