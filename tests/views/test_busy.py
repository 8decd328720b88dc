"""Hashing at capacity at every form that hashes (issue 20): the form comes back with "too
many sign-ins right now, try again in a few seconds" at it, as a 503 with Retry-After, as a
page without JavaScript and as the form's fragment for htmx (whose configuration swaps 503);
other 503s answer htmx with a notice for the live region. Nothing is hashed or counted."""

from __future__ import annotations

import re

import pytest

from portal.services import throttle
from portal.settings import Settings
from portal.tables import Identity, Session
from portal.testing import factories
from tests.conftest import Client, http_client, last_mail, link_in
from tests.security.test_hash_queue import full_queue, hashes  # noqa: F401 (fixture)
from tests.views.test_users import owner_signed_in

BUSY = "Zbyt wiele logowań w tej chwili, spróbuj ponownie za kilka sekund."
NEW = "wiosenny deszcz nad mazurami"


def busy_answer(response, starts: str | None = None) -> str:
    assert response.status_code == 503, response.status_code
    assert int(response.headers["retry-after"]) >= 1
    assert BUSY in response.text
    if starts is not None:  # the fragment htmx swaps: the form itself, not a page
        assert response.text.lstrip().startswith(starts), response.text[:200]
        assert "<html" not in response.text
    return response.text


async def test_the_layout_swaps_503_answers(client):
    page = (await client.get("/login")).text
    config = re.search(r'name="htmx-config" content=\'([^\']+)\'', page).group(1)
    rules = re.findall(r'\{"code": "([^"]+)", "swap": (true|false)', config)
    assert ("503", "true") in rules
    assert rules.index(("503", "true")) < rules.index(("[45]..", "false"))


async def test_changing_the_password_past_capacity_says_so_at_its_form(
        client, monkeypatch, hashes):  # noqa: F811
    await factories.identity("zmiana@example.com")
    await client.sign_in("zmiana@example.com", factories.PASSWORD)
    await throttle.Throttle.delete(force=True)
    form = {"current_password": factories.PASSWORD, "password": NEW, "password_confirm": NEW}
    hashes.clear()
    async with full_queue(monkeypatch):
        page = busy_answer(await client.post_form("/security/password", form))
        assert 'id="password-change-form"' in page and "<html" in page
        assert re.search(r'class="error form-error" id="error-form" role="alert">'
                         + re.escape(BUSY), page)
        busy_answer(await client.post_form("/security/password", form, htmx=True),
                    '<form id="password-change-form"')
    assert hashes == []
    assert await throttle.Throttle.count() == 0  # the current password was not counted
    assert await Session.count() == 1  # no session ended: nothing changed
    done = await client.post_form("/security/password", form)
    assert done.status_code == 303


async def test_re_authenticating_past_capacity_says_so_at_the_password_field(
        client, monkeypatch, hashes):  # noqa: F811
    await factories.identity("ponownie@example.com")
    await client.sign_in("ponownie@example.com", factories.PASSWORD)
    await Identity.update({Identity.mfa_email_enabled: True}, force=True)
    await Session.raw("UPDATE session SET reauth_at = now() - interval '11 minutes'")
    await throttle.Throttle.delete(force=True)
    hashes.clear()
    async with full_queue(monkeypatch):
        page = busy_answer(await client.post_form("/security/mfa/email/disable",
                                                  {"password": factories.PASSWORD}))
        assert "<html" in page
        # at the re-authentication's own password field, tied to it
        field = re.search(r'<input id="field-password-email"[^>]*>', page).group(0)
        assert 'aria-invalid="true"' in field and "error-password-email" in field
        assert re.search(r'id="error-password-email">' + re.escape(BUSY), page)
        fragment = busy_answer(await client.post_form(
            "/security/mfa/email/disable", {"password": factories.PASSWORD}, htmx=True))
        assert "<html" not in fragment
    assert hashes == []
    assert await throttle.Throttle.count() == 0
    assert (await Identity.select(Identity.mfa_email_enabled).first())["mfa_email_enabled"]


async def test_the_invitation_link_past_capacity_keeps_the_link_and_says_so(
        client, app, monkeypatch, hashes):  # noqa: F811
    _, account = await owner_signed_in(client)
    await client.post_form("/users/new", {"email": "zaproszona@example.com", "role": "member",
                                          f"level-{account['main_company_id']}": "view"})
    link = link_in(await last_mail("zaproszona@example.com"), "/invitations/")
    form = {"password": NEW, "password_confirm": NEW}
    async with http_client(app) as raw:
        newcomer = Client(raw)
        hashes.clear()
        async with full_queue(monkeypatch):
            page = busy_answer(await newcomer.post_form(link, form))
            assert "Załóż Konto ID i przyjmij zaproszenie" in page and "<html" in page
            busy_answer(await newcomer.post_form(link, form, htmx=True), '<div id="invitation"')
        assert hashes == []
        assert not await Identity.exists().where(Identity.email == "zaproszona@example.com")
        done = await newcomer.post_form(link, form)
        assert done.status_code == 303


def test_the_queue_size_for_tests_needs_dev_mode():
    env = {"PORTAL_SECRET_KEY": "k" * 32, "PORTAL_DEV_HASH_QUEUE_SIZE": "0"}
    with pytest.raises(ValueError, match="PORTAL_DEV"):
        Settings.from_env(env)
    assert Settings.from_env({**env, "PORTAL_DEV": "1"}).dev_hash_queue_size == 0
    assert Settings.from_env({"PORTAL_SECRET_KEY": "k" * 32}).dev_hash_queue_size is None
