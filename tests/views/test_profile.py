from portal.tables import AuditEvent, Profile
from portal.testing import factories
from tests.conftest import field_error


async def signed_in(client, email="profil@example.com", **kwargs):
    identity_id = await factories.identity(email, **kwargs)
    await client.sign_in(email, factories.PASSWORD)
    return identity_id


async def test_profile_shows_the_email_read_only_with_the_reason(client):
    await signed_in(client)
    html = (await client.get("/profile")).text
    assert 'value="profil@example.com" readonly' in html
    assert "nie można zmienić" in html


async def test_profile_saves_names_phone_and_language(client):
    identity_id = await signed_in(client)
    response = await client.post_form("/profile", {"first_name": "Zofia", "last_name": "Łęcka",
                                                   "phone": "+48 600 100 200", "language": "en"})
    assert response.status_code == 303
    row = await Profile.select().where(Profile.identity == identity_id).first()
    assert (row["first_name"], row["last_name"], row["phone"], row["language"]) == (
        "Zofia", "Łęcka", "+48 600 100 200", "en")
    page = await client.get("/profile")
    assert '<html lang="en">' in page.text
    assert "Profile" in page.text  # the interface follows the profile's language
    assert await AuditEvent.exists().where(AuditEvent.tag == "identity:profile:update")


async def test_bad_profile_input_is_a_field_error_and_changes_nothing(client):
    identity_id = await signed_in(client)
    response = await client.post_form("/profile", {"first_name": "Jan", "phone": "abc",
                                                   "language": "de"})
    assert response.status_code == 422
    assert field_error(response.text, "phone")
    assert field_error(response.text, "language")
    assert 'value="Jan"' in response.text  # values kept
    row = await Profile.select().where(Profile.identity == identity_id).first()
    assert row["first_name"] == "" and row["language"] == ""


async def test_the_browser_language_is_used_until_the_profile_says_otherwise(client):
    await signed_in(client)
    english = await client.get("/profile", headers={"Accept-Language": "en-GB,en;q=0.9"})
    polish = await client.get("/profile", headers={"Accept-Language": "pl,en;q=0.5"})
    assert '<html lang="en">' in english.text
    assert '<html lang="pl">' in polish.text


# --- the footer's language switch (issue 13) ------------------------------------------------------


async def test_the_footer_switches_the_language_signed_out_with_a_cookie(client):
    login = await client.get("/login")
    assert 'action="/language"' in login.text and 'value="en"' in login.text
    assert '<html lang="pl">' in login.text
    response = await client.post_form("/language", {"language": "en", "next": "/register"})
    assert response.status_code == 303 and response.headers["location"] == "/register"
    assert "portal_lang=en" in response.headers["set-cookie"]
    page = await client.get("/register")
    assert '<html lang="en">' in page.text
    # The cookie wins over the browser's language, and Polish is one click back.
    english_browser = await client.post_form("/language", {"language": "pl", "next": "/login"},
                                             headers={"Accept-Language": "en"})
    assert english_browser.status_code == 303
    again = await client.get("/login", headers={"Accept-Language": "en"})
    assert '<html lang="pl">' in again.text


async def test_the_footer_switch_signed_in_writes_the_profile(client):
    identity_id = await signed_in(client)
    response = await client.post_form("/language", {"language": "en", "next": "/profile"})
    assert response.status_code == 303 and response.headers["location"] == "/profile"
    row = await Profile.select().where(Profile.identity == identity_id).first()
    assert row["language"] == "en"
    assert '<html lang="en">' in (await client.get("/profile")).text
    assert await AuditEvent.exists().where(AuditEvent.tag == "identity:profile:update")


async def test_the_footer_switch_refuses_odd_input_and_foreign_targets(client):
    identity_id = await signed_in(client)
    for language in ("de", "", "x" * 300):
        response = await client.post_form("/language", {"language": language, "next": "/"})
        assert response.status_code == 303 and "set-cookie" not in response.headers
    row = await Profile.select().where(Profile.identity == identity_id).first()
    assert row is None or row["language"] == ""
    away = await client.post_form("/language", {"language": "en", "next": "//evil.example/x"})
    assert away.status_code == 303 and away.headers["location"] == "/"
    # Without the CSRF token nothing changes.
    forged = await client.raw.post("/language", data={"language": "pl", "next": "/"})
    assert forged.status_code == 403
    row = await Profile.select().where(Profile.identity == identity_id).first()
    assert row["language"] == "en"
