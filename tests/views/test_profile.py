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
