"""Single sign-on, end to end: two applications (separate processes) sign a person in through
the portal; the second needs no password; signing out of the portal ends both (back-channel);
protocol misuse is refused."""

from __future__ import annotations

import json
import re
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
from e2e.pages import LoginPage
from e2e.server import Server, free_port, running_process
from portal.services import oidc_clients
from portal.tables import Identity
from tests.oidc.conftest import pkce

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def relying_party(server: Server, client_id: str, secret: str | None, port: int, name: str,
                  *options: str):
    """The small relying-party app (e2e/relying_party.py) in its own process; ``options``
    are more of its command-line options (``--private-key FILE``, ``--ui-locales en``)."""
    log_path = Path(tempfile.mkdtemp(prefix="portal-rp-")) / "rp.log"
    command = [sys.executable, "-m", "e2e.relying_party", "--port", str(port), "--portal",
               server.base_url, "--client-id", client_id, "--client-secret", secret or "",
               "--name", name, *options]
    base = f"http://127.0.0.1:{port}"
    with running_process(command, env=None, log_path=log_path, ready_url=base + "/",
                         name=f"relying party {name}", cwd=ROOT):
        yield base


async def register_app(name: str, port: int) -> tuple[str, str]:
    base = f"http://127.0.0.1:{port}"
    client_id, secret = await oidc_clients.register_client(
        name=name, redirect_uris=[base + "/callback"], post_logout_redirect_uris=[base + "/bye"],
        backchannel_logout_uri=base + "/backchannel-logout", first_party=True)
    return client_id, secret


@pytest.fixture
async def two_apps(server: Server, engine):
    ports = free_port(), free_port()
    one = await register_app("e-Faktury (test)", ports[0])
    two = await register_app("e-Płace (test)", ports[1])
    with relying_party(server, *one, ports[0], "e-Faktury") as a, \
            relying_party(server, *two, ports[1], "e-Płace") as b:
        yield a, b


async def test_two_apps_one_sign_in_and_one_sign_out(page: Page, make_person, two_apps):
    first, second = two_apps
    person = await make_person(label="sso")
    await page.goto(first + "/")
    await page.get_by_role("link", name="Zaloguj przez Konto ID").click()
    await expect(page).to_have_url(re.compile(r"/login\?next="))
    await axe.assert_no_serious_violations(page)
    await page.get_by_label("E-mail", exact=True).fill(person.email)
    await page.get_by_label("Hasło", exact=True).fill(person.password)
    await page.get_by_role("button", name="Zaloguj się").click()
    await expect(page).to_have_url(first + "/")
    await expect(page.locator("#who")).to_have_text(f"Zalogowano: {person.email}")
    await expect(page.locator("#account")).to_have_text(
        f"Konto: {person.account['public_id']}")  # the portal's current account, preselected

    await page.goto(second + "/")
    await page.get_by_role("link", name="Zaloguj przez Konto ID").click()
    await expect(page.locator("#who")).to_have_text(f"Zalogowano: {person.email}")  # no password

    await page.goto("/")  # the portal
    await page.get_by_role("button", name="Wyloguj").click()
    await expect(page).to_have_url(re.compile(r"/login$"))
    for app in (first, second):
        for _ in range(50):
            await page.goto(app + "/")
            if await page.locator("#who").inner_text() == "Niezalogowano":
                break
            await page.wait_for_timeout(100)
        await expect(page.locator("#who")).to_have_text("Niezalogowano")


async def test_rp_initiated_logout_confirms_and_returns(page: Page, make_person, two_apps):
    first, _ = two_apps
    person = await make_person(label="sso-wyloguj")
    await LoginPage(page).sign_in(person.email, person.password)
    await page.goto(first + "/login")
    await expect(page.locator("#who")).to_have_text(f"Zalogowano: {person.email}")
    await page.get_by_role("link", name="Wyloguj z aplikacji").click()
    await expect(page.get_by_role("heading", name="Wylogowanie")).to_be_visible()
    await axe.assert_no_serious_violations(page)
    await page.get_by_role("main").get_by_role("button", name="Wyloguj").click()
    await expect(page).to_have_url(first + "/bye?state=bye")
    await page.goto("/profile")
    await expect(page).to_have_url(re.compile(r"/login\?next="))


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
        from e2e.pages import tab_to

        await tab_to(page, page.get_by_role("button", name="Zezwól"))
        await page.keyboard.press("Enter")
        await expect(page.locator("#who")).to_have_text(f"Zalogowano: {person.email}")
        await page.goto("/security")
        await expect(page.get_by_role("heading", name="Aplikacja partnera")).to_be_visible()


# --- issue 12: what standard clients do -------------------------------------------------------


@pytest.fixture
async def one_app(server: Server, engine):
    port = free_port()
    client_id, secret = await register_app("e-Dokumenty (test)", port)
    with relying_party(server, client_id, secret, port, "e-Dokumenty") as base:
        yield base


async def test_the_whole_sign_in_works_with_javascript_disabled(
        browser: Browser, server: Server, make_person, one_app):
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
        await page.goto(one_app + "/")
        await page.get_by_role("link", name="Zaloguj przez Konto ID", exact=True).click()
        await expect(page).to_have_url(re.compile(r"/login\?next="))
        await page.get_by_label("E-mail", exact=True).fill(person.email)
        await page.get_by_label("Hasło", exact=True).fill(person.password)
        await page.get_by_role("button", name="Zaloguj się").click()
        await expect(page).to_have_url(one_app + "/")
        await expect(page.locator("#who")).to_have_text(f"Zalogowano: {person.email}")
        assert refused == []
    finally:
        await context.close()


async def test_authorization_and_logout_requests_sent_by_post(page: Page, make_person,
                                                             one_app):
    """An application may send both requests as forms from its own site (OpenID Connect
    Core 3.1.2.1, RP-Initiated Logout 1.0 §2): no CSRF refusal, the same path as GET."""
    person = await make_person(label="sso-post")
    await page.goto(one_app + "/")
    await page.get_by_role("link", name="Logowanie formularzem (POST)").click()
    await page.get_by_role("button", name="Zaloguj przez Konto ID (POST)").click()
    await expect(page).to_have_url(re.compile(r"/login\?next="))
    await page.get_by_label("E-mail", exact=True).fill(person.email)
    await page.get_by_label("Hasło", exact=True).fill(person.password)
    await page.get_by_role("button", name="Zaloguj się").click()
    await expect(page.locator("#who")).to_have_text(f"Zalogowano: {person.email}")

    await page.get_by_role("link", name="Wylogowanie formularzem (POST)").click()
    await page.get_by_role("button", name="Wyloguj w Koncie ID (POST)").click()
    await expect(page.get_by_role("heading", name="Wylogowanie")).to_be_visible()
    await page.get_by_role("main").get_by_role("button", name="Wyloguj").click()
    await expect(page).to_have_url(one_app + "/bye?state=bye")
    await page.goto("/profile")
    await expect(page).to_have_url(re.compile(r"/login\?next="))


async def test_an_application_asking_for_english_gets_english_pages(
        page: Page, make_person, server: Server, engine):
    port = free_port()
    client_id, secret = await register_app("e-Faktury EN (test)", port)
    person = await make_person(label="sso-en")
    with relying_party(server, client_id, secret, port, "e-Faktury EN",
                       "--ui-locales", "en") as app:
        await page.goto(app + "/login")  # a Polish browser (pl-PL)
        await expect(page.locator("html")).to_have_attribute("lang", "en")
        await page.get_by_label("Email", exact=True).fill(person.email)
        await page.get_by_label("Password", exact=True).fill(person.password)
        await page.get_by_role("button", name="Sign in", exact=True).click()
        await expect(page.locator("#who")).to_have_text(f"Zalogowano: {person.email}")


async def test_a_private_key_jwt_application_set_up_through_the_staff_ui(
        page: Page, make_person, server: Server, engine, tmp_path: Path):
    staff = await make_person(label="sso-obsluga")
    await Identity.update({Identity.is_staff: True}).where(Identity.id == staff.identity_id)
    key = RSAKey.generate_key(2048, parameters={"kid": "e2e-1"})
    private = tmp_path / "rp-key.json"
    private.write_text(json.dumps(key.as_dict(private=True)))
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    await LoginPage(page).sign_in(staff.email, staff.password)
    await page.goto("/staff/clients")
    await page.get_by_label("Nazwa aplikacji").fill("e-Płace PKJWT (test)")
    await page.get_by_label("Adresy powrotu", exact=True).fill(base + "/callback")
    await page.get_by_label("Adresy po wylogowaniu").fill(base + "/bye")
    await page.get_by_label("Uwierzytelnienie aplikacji").select_option("private_key_jwt")
    await page.get_by_label("Klucze (JWKS)").fill(
        json.dumps({"keys": [key.as_dict(private=False)]}))
    await page.get_by_label("Aplikacja własna (bez ekranu zgody)").check()
    await page.get_by_role("button", name="Zarejestruj aplikację").click()
    client_id = (await page.get_by_test_id("client-id").inner_text()).strip()
    await expect(page.get_by_test_id("client-secret")).to_have_count(0)

    with relying_party(server, client_id, None, port, "e-Płace PKJWT",
                       "--private-key", str(private)) as app:
        await page.goto(app + "/login")
        await expect(page.locator("#who")).to_have_text(f"Zalogowano: {staff.email}")


async def test_a_single_page_app_from_another_origin_signs_in_with_cors(
        page: Page, make_person, server: Server, engine):
    """A public client (no secret, PKCE) running in the browser calls discovery, the token
    endpoint and userinfo of the portal itself, from its own origin."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    client_id, secret = await oidc_clients.register_client(
        name="Panel SPA (test)", redirect_uris=[base + "/spa"], auth_method="none",
        first_party=True)
    assert secret is None
    person = await make_person(label="sso-spa")
    await LoginPage(page).sign_in(person.email, person.password)
    with relying_party(server, client_id, None, port, "Panel SPA") as app:
        await page.goto(app + "/spa")
        await page.get_by_role("button", name="Zaloguj (SPA)").click()
        await expect(page.locator("#who")).to_have_text(f"Zalogowano: {person.email}")
