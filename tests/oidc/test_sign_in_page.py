"""The sign-in page when it returns to an application (issue 12, items 4 and 6): its form
may go on to the application's registered redirect URI (CSP ``form-action``, for signing in
without JavaScript), and it speaks the language the application asked for (``ui_locales``)."""

from __future__ import annotations

from urllib.parse import urlencode

from portal.testing import factories
from tests.oidc.conftest import authorize_url, pkce
from tests.oidc.test_no_js_sign_in import form_action, login_url

POLISH_BROWSER = {"Accept-Language": "pl-PL,pl;q=0.9"}


async def test_the_sign_in_page_may_continue_to_the_apps_registered_callback_only(
        client, app_client):
    _, challenge = pkce()
    page = await client.get(login_url(authorize_url(app_client, challenge)))
    assert form_action(page) == "form-action 'self' https://app.example.com"
    app_client.redirect_uri = "https://evil.example.com/callback"  # not registered
    page = await client.get(login_url(authorize_url(app_client, challenge)))
    assert form_action(page) == "form-action 'self'"
    plain = await client.get("/login?next=/companies")
    assert form_action(plain) == "form-action 'self'"


async def test_a_wrong_password_keeps_the_way_to_the_app_open(client, app_client):
    await factories.identity("sso@example.com")
    _, challenge = pkce()
    response = await client.post_form("/login", {
        "email": "sso@example.com", "password": "not the password",
        "next": authorize_url(app_client, challenge)})
    assert response.status_code == 422
    assert form_action(response) == "form-action 'self' https://app.example.com"


async def test_the_sign_in_page_speaks_the_language_the_application_asked_for(
        client, app_client):
    _, challenge = pkce()
    response = await client.get(authorize_url(app_client, challenge, ui_locales="en-GB pl"),
                                headers=POLISH_BROWSER)
    page = await client.get(response.headers["location"], headers=POLISH_BROWSER)
    assert page.status_code == 200
    assert '<html lang="en">' in page.text and "Sign in" in page.text
    unknown = await client.get("/login?" + urlencode({"next": authorize_url(
        app_client, challenge, ui_locales="de")}), headers=POLISH_BROWSER)
    assert '<html lang="pl">' in unknown.text
