"""The ID through HTTP: registration, verification, sign-in, sign-out, password reset."""

from __future__ import annotations

import re

from portal.services import throttle
from portal.tables import AuditEvent, Identity, OneTimeToken, OutboxEmail, Session
from portal.testing import factories
from tests.conftest import Client, field_error, last_mail, link_in

GOOD = "wiosenny deszcz nad mazurami"


def without_tokens(html: str) -> str:
    """The page as a person sees it: CSRF tokens differ per response, nothing else may."""
    return re.sub(r'(value="|"x-csrftoken": ")[0-9a-f]{40,}', r"\1TOKEN", html)


async def register(client, email: str):
    return await client.post_form("/register", {"email": email})


async def test_register_verify_set_password_signs_in_and_leads_to_new_account(client):
    response = await register(client, "nowa@example.com")
    assert response.status_code == 200
    assert "Sprawdź skrzynkę" in response.text
    identity = await Identity.select().where(Identity.email == "nowa@example.com").first()
    assert identity["password_hash"] is None and identity["email_verified_at"] is None

    link = link_in(await last_mail("nowa@example.com"), "/verify/")
    form = await client.get(link)
    assert form.status_code == 200
    assert 'autocomplete="new-password"' in form.text

    weak = await client.post_form(link, {"password": "password1234",
                                         "password_confirm": "password1234"})
    assert weak.status_code == 422
    assert "popularne" in field_error(weak.text, "password")
    assert (await Identity.select(Identity.password_hash)
            .where(Identity.id == identity["id"]).first())["password_hash"] is None

    done = await client.post_form(link, {"password": GOOD, "password_confirm": GOOD})
    assert done.status_code == 303
    assert done.headers["location"] == "/"
    assert "portal_session" in done.headers["set-cookie"]
    home = await client.get("/")
    assert home.status_code == 303 and home.headers["location"] == "/accounts/new"

    again = await client.post_form(link, {"password": GOOD, "password_confirm": GOOD})
    assert again.status_code == 410
    assert "wygasł albo został już użyty" in again.text
    assert await AuditEvent.exists().where(AuditEvent.tag == "identity:email:verify")


async def test_mismatched_confirmation_is_a_field_error(client):
    await register(client, "para@example.com")
    link = link_in(await last_mail("para@example.com"), "/verify/")
    response = await client.post_form(link, {"password": GOOD, "password_confirm": GOOD + "x"})
    assert response.status_code == 422
    assert field_error(response.text, "password_confirm") == "Hasła nie są takie same."


async def test_an_expired_link_offers_a_new_one(client):
    await register(client, "stary@example.com")
    link = link_in(await last_mail("stary@example.com"), "/verify/")
    await OneTimeToken.raw("UPDATE one_time_token SET expires_at = now() - interval '1 minute'")
    response = await client.get(link)
    assert response.status_code == 410
    assert 'action="/register"' in response.text


async def test_registering_a_known_email_looks_identical_and_mails_the_owner(client):
    await factories.identity("znany@example.com")
    known = await register(client, "znany@example.com")
    unknown = await register(client, "nieznany@example.com")
    assert known.status_code == unknown.status_code == 200
    assert without_tokens(known.text).replace("znany@", "X@") == without_tokens(
        unknown.text).replace("nieznany@", "X@")
    mail = await last_mail("znany@example.com")
    assert "już je masz" in mail["text_body"]
    assert "/password/reset/" in mail["text_body"]


async def test_registration_validates_the_email_and_changes_nothing(client):
    response = await register(client, "nie-adres")
    assert response.status_code == 422
    assert field_error(response.text, "email")
    assert await Identity.count() == 0
    assert await OutboxEmail.count() == 0


async def test_registration_mails_are_limited_per_address(client):
    for _ in range(5):
        response = await register(client, "bomba@example.com")
        assert response.status_code == 200
    assert await OutboxEmail.count().where(OutboxEmail.to_address == "bomba@example.com") == 3


async def test_wrong_password_and_unknown_email_get_the_same_answer(client):
    await factories.identity("ola@example.com")
    wrong = await client.post_form("/login", {"email": "ola@example.com", "password": "nie to"})
    unknown = await client.post_form("/login", {"email": "brak@example.com", "password": "x"})
    assert wrong.status_code == unknown.status_code == 422
    assert without_tokens(wrong.text).replace("ola@", "X@") == without_tokens(
        unknown.text).replace("brak@", "X@")
    assert 'role="alert"' in wrong.text


async def test_unknown_email_costs_one_password_hash_check_like_a_known_one(client, monkeypatch):
    from portal.security import passwords

    calls = []

    class CountingHasher(type(passwords.HASHER)):
        def verify(self, hash, password):
            calls.append(1)
            return super().verify(hash, password)

    original = passwords.HASHER
    monkeypatch.setattr(passwords, "HASHER", CountingHasher(
        time_cost=original.time_cost, memory_cost=original.memory_cost,
        parallelism=original.parallelism))
    await factories.identity("ala@example.com")
    await client.post_form("/login", {"email": "ala@example.com", "password": "zle haslo"})
    await client.post_form("/login", {"email": "nikt@example.com", "password": "zle haslo"})
    assert len(calls) == 2


async def test_sign_in_rotates_the_session_and_sign_out_kills_the_old_cookie(client):
    await factories.identity("ewa@example.com")
    await client.sign_in("ewa@example.com", factories.PASSWORD)
    first = client.cookies["portal_session"]
    await client.sign_in("ewa@example.com", factories.PASSWORD)
    second = client.cookies["portal_session"]
    assert first != second
    assert await Session.count() == 1  # the old session was ended, not kept

    await client.post_form("/logout", {})
    assert await Session.count() == 0
    client.cookies.set("portal_session", second)
    response = await client.get("/profile")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


async def test_login_keeps_next_only_for_local_paths(client):
    await factories.identity("next@example.com")
    response = await client.post_form("/login", {"email": "next@example.com",
                                                 "password": factories.PASSWORD,
                                                 "next": "//evil.example.com/"})
    assert response.headers["location"] == "/"
    response = await client.post_form("/login", {"email": "next@example.com",
                                                 "password": factories.PASSWORD,
                                                 "next": "/security"})
    assert response.headers["location"] == "/security"


async def test_too_many_failures_block_even_the_right_password_until_the_wait(client):
    await factories.identity("cel@example.com")
    for _ in range(10):
        await client.post_form("/login", {"email": "cel@example.com", "password": "zgaduję"})
    blocked = await client.post_form("/login", {"email": "cel@example.com",
                                                "password": factories.PASSWORD})
    assert blocked.status_code == 422
    assert await AuditEvent.exists().where(AuditEvent.tag == "identity:login:throttled")
    await throttle.Throttle.raw("UPDATE throttle SET blocked_until = now() - interval '1 s'")
    await client.sign_in("cel@example.com", factories.PASSWORD)


async def test_the_emailed_reset_lifts_the_hard_block_after_100_failures(client):
    await factories.identity("owner@example.com")
    for _ in range(100):
        await throttle.fail(throttle.LOGIN_IDENTITY, "owner@example.com")
    await throttle.Throttle.raw("UPDATE throttle SET blocked_until = NULL")
    assert await throttle.blocked(throttle.LOGIN_IDENTITY, "owner@example.com")

    await client.post_form("/password/forgot", {"email": "owner@example.com"})
    link = link_in(await last_mail("owner@example.com"), "/password/reset/")
    await client.post_form(link, {"password": GOOD, "password_confirm": GOOD})
    assert not await throttle.blocked(throttle.LOGIN_IDENTITY, "owner@example.com")
    await client.sign_in("owner@example.com", GOOD)


async def test_password_reset_flow(client, app):
    await factories.identity("reset@example.com")
    from tests.conftest import Client, http_client

    async with http_client(app) as raw:
        other = Client(raw)
        await other.sign_in("reset@example.com", factories.PASSWORD)
        assert (await other.get("/profile")).status_code == 200

        response = await client.post_form("/password/forgot", {"email": "reset@example.com"})
        assert response.status_code == 200 and "Sprawdź skrzynkę" in response.text
        link = link_in(await last_mail("reset@example.com"), "/password/reset/")
        assert (await client.get(link)).status_code == 200
        done = await client.post_form(link, {"password": GOOD, "password_confirm": GOOD})
        assert done.status_code == 303 and done.headers["location"] == "/login"

        # Every session ended; the old password is refused; the link is spent.
        assert (await other.get("/profile")).status_code == 303
        old = await client.post_form("/login", {"email": "reset@example.com",
                                                "password": factories.PASSWORD})
        assert old.status_code == 422
        again = await client.post_form(link, {"password": GOOD + " 2",
                                              "password_confirm": GOOD + " 2"})
        assert again.status_code == 410
        await client.sign_in("reset@example.com", GOOD)
    assert "zmienione" in (await last_mail("reset@example.com"))["text_body"]


async def test_forgot_password_for_an_unknown_email_looks_the_same(client):
    await factories.identity("jest@example.com")
    known = await client.post_form("/password/forgot", {"email": "jest@example.com"})
    unknown = await client.post_form("/password/forgot", {"email": "niema@example.com"})
    assert without_tokens(known.text).replace("jest@", "X@") == without_tokens(
        unknown.text).replace("niema@", "X@")
    assert "/register" in (await last_mail("niema@example.com"))["text_body"]


async def test_state_changes_need_the_csrf_token(client):
    await client.csrf()
    response = await client.raw.post("/login", data={"email": "a@example.com", "password": "x"})
    assert response.status_code == 403
    htmx = await client.post_form("/login", {"email": "a@example.com", "password": "x"},
                                  htmx=True)
    assert htmx.status_code == 422
    assert htmx.text.lstrip().startswith("<form")  # the fragment, not the page


async def test_htmx_gets_the_fragment_and_a_normal_request_the_page(client):
    page = await client.get("/login")
    fragment = await client.get("/login", headers={"HX-Request": "true"})
    assert page.text.lstrip().startswith("<!doctype html>")
    assert fragment.text.lstrip().startswith("<form")
    assert page.headers["vary"] == fragment.headers["vary"] == "HX-Request"


async def test_a_sign_in_from_a_new_device_mails_the_person(client):
    await factories.identity("urzadzenie@example.com")
    firefox = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 "
                             "Firefox/128.0"}
    chrome = {"user-agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                            "(KHTML, like Gecko) Chrome/126.0 Safari/537.36"}
    form = {"email": "urzadzenie@example.com", "password": factories.PASSWORD}
    await client.post_form("/login", form, headers=firefox)  # the first sign-in ever
    await client.post_form("/login", form, headers=firefox)  # a known device
    assert await OutboxEmail.count() == 0
    await client.post_form("/login", form, headers=chrome)
    mail = await last_mail("urzadzenie@example.com")
    assert "Chrome" in mail["text_body"] and "Windows" in mail["text_body"]
    assert "203.0.113.7" in mail["text_body"]
    # The time as the UI shows it, in the person's zone ("02.12.2026 20:00"), not in UTC.
    assert "UTC" not in mail["text_body"]
    assert re.search(r"\d\d\.\d\d\.\d{4} \d\d:\d\d", mail["text_body"])


async def test_an_empty_sign_in_form_names_what_is_missing(client):
    await factories.identity("pusty@example.com")
    empty = await client.post_form("/login", {"email": "", "password": ""})
    assert empty.status_code == 422
    assert field_error(empty.text, "email") == "Podaj adres e-mail."
    assert field_error(empty.text, "password") == "Podaj hasło."
    assert "zbyt wiele prób" not in empty.text
    no_password = await client.post_form("/login", {"email": "pusty@example.com", "password": ""},
                                         htmx=True)
    assert field_error(no_password.text, "password") == "Podaj hasło."
    assert field_error(no_password.text, "email") is None
    assert 'value="pusty@example.com"' in no_password.text
    # Nothing was counted against the address or the ID, nothing audited as a failure.
    assert await AuditEvent.count().where(AuditEvent.tag.like("identity:login:%")) == 0


async def test_a_filled_sign_in_form_still_gets_one_answer_for_unknown_and_wrong(client):
    await factories.identity("pelny@example.com")
    wrong = await client.post_form("/login", {"email": "pelny@example.com", "password": "zle"})
    unknown = await client.post_form("/login", {"email": "nikt@example.com", "password": "zle"})
    for response in (wrong, unknown):
        assert field_error(response.text, "email") is None
        assert field_error(response.text, "password") is None
        assert "Nieprawidłowy e-mail lub hasło" in response.text


def from_address(app, address: str):
    import httpx

    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver.local")


async def test_past_the_networks_mail_limit_register_says_so_and_for_how_long(client):
    for number in range(throttle.MAIL_ADDRESS.per_window):
        assert (await register(client, f"biuro{number}@example.com")).status_code == 200
    refused = await register(client, "biuro-nowy@example.com")
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= 3600
    minutes = -(-int(refused.headers["retry-after"]) // 60)
    assert (f"Zbyt wiele próśb z Twojej sieci. Spróbuj ponownie za {minutes} min."
            in refused.text)
    assert "Sprawdź skrzynkę" not in refused.text
    assert await Identity.count().where(Identity.email == "biuro-nowy@example.com") == 0
    fragment = await client.post_form("/register", {"email": "x@example.com"}, htmx=True,
                                      headers={"Accept-Language": "en"})
    assert fragment.status_code == 429
    assert fragment.text.lstrip().startswith('<form id="register-form"')
    assert "Too many requests from your network. Try again in" in fragment.text
    assert 'value="x@example.com"' in fragment.text


async def test_past_the_networks_mail_limit_the_reset_form_says_so(client):
    for number in range(throttle.MAIL_ADDRESS.per_window):
        response = await client.post_form("/password/forgot", {"email": f"r{number}@example.com"})
        assert response.status_code == 200
    refused = await client.post_form("/password/forgot", {"email": "r-nowy@example.com"})
    assert refused.status_code == 429
    assert "Zbyt wiele próśb z Twojej sieci." in refused.text
    assert await OutboxEmail.count().where(OutboxEmail.to_address == "r-nowy@example.com") == 0


async def test_the_mail_limit_counts_an_ipv6_network_not_each_address(app):
    for number in range(throttle.MAIL_ADDRESS.per_window):
        async with from_address(app, f"2001:db8:0:7::{number + 1:x}") as raw:
            assert (await register(Client(raw), f"v6-{number}@example.com")).status_code == 200
    async with from_address(app, "2001:db8:0:7:ffff:1:2:3") as raw:
        assert (await register(Client(raw), "v6-nowy@example.com")).status_code == 429
    async with from_address(app, "2001:db8:0:8::1") as raw:
        assert (await register(Client(raw), "v6-obok@example.com")).status_code == 200


async def test_the_per_email_limit_stays_silent(client):
    for _ in range(throttle.MAIL_EMAIL.per_window + 2):
        response = await register(client, "cisza@example.com")
        assert response.status_code == 200
        assert "Sprawdź skrzynkę" in response.text


def test_networks_of_client_addresses():
    assert throttle.network_of("203.0.113.7") == "203.0.113.7"
    assert throttle.network_of("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert throttle.network_of("::ffff:203.0.113.7") == "203.0.113.7"
    assert throttle.network_of("testclient") == "testclient"
    assert throttle.LOGIN_ADDRESS.key("2001:db8:1:2::1") == throttle.LOGIN_ADDRESS.key(
        "2001:db8:1:2:ffff::9")
