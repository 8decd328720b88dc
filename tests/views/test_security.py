import uuid

from portal.tables import Session
from portal.testing import factories
from tests.conftest import Client, field_error, http_client

NEW = "jesienne liście na chodniku"


async def test_password_change_needs_the_current_password(client):
    await factories.identity("zmiana@example.com")
    await client.sign_in("zmiana@example.com", factories.PASSWORD)
    wrong = await client.post_form("/security/password", {
        "current_password": "nie to", "password": NEW, "password_confirm": NEW})
    assert wrong.status_code == 422
    assert field_error(wrong.text, "current_password") == "Obecne hasło jest nieprawidłowe."
    ok = await client.post_form("/security/password", {
        "current_password": factories.PASSWORD, "password": NEW, "password_confirm": NEW})
    assert ok.status_code == 303
    await client.post_form("/logout", {})
    await client.sign_in("zmiana@example.com", NEW)


async def test_log_out_elsewhere_ends_the_other_sessions_and_not_this_one(client, app):
    await factories.identity("wiele@example.com")
    async with http_client(app) as raw:
        other = Client(raw)
        await other.sign_in("wiele@example.com", factories.PASSWORD)
        await client.sign_in("wiele@example.com", factories.PASSWORD)
        page = await client.get("/security")
        assert page.text.count("/end\"") == 1  # one other session to end
        response = await client.post_form("/security/sessions/end-others", {})
        assert response.status_code == 303
        assert (await client.get("/security")).status_code == 200
        assert (await other.get("/security")).status_code == 303
    assert await Session.count() == 1


async def test_one_session_can_be_ended_but_not_another_persons(client, app):
    await factories.identity("ja@example.com")
    await factories.identity("ktos@example.com")
    async with http_client(app) as raw:
        stranger = Client(raw)
        await stranger.sign_in("ktos@example.com", factories.PASSWORD)
        await client.sign_in("ja@example.com", factories.PASSWORD)
        theirs = (await Session.select(Session.id).where(
            Session.identity.email == "ktos@example.com").first())["id"]
        response = await client.post_form(f"/security/sessions/{theirs}/end", {})
        assert response.status_code == 404
        assert (await stranger.get("/security")).status_code == 200
        unknown = await client.post_form(f"/security/sessions/{uuid.uuid4()}/end", {})
        assert unknown.status_code == 404


async def test_security_history_lists_sign_ins_and_failures(client):
    await factories.identity("hist@example.com")
    await client.post_form("/login", {"email": "hist@example.com", "password": "błędne"})
    await client.sign_in("hist@example.com", factories.PASSWORD)
    html = (await client.get("/security")).text
    assert "Nieudana próba logowania" in html
    assert "Zalogowano" in html
    assert "203.0.113.7" in html


async def test_idle_and_absolute_lifetimes_end_sessions(client):
    await factories.identity("czas@example.com")
    await client.sign_in("czas@example.com", factories.PASSWORD)
    await Session.raw("UPDATE session SET last_seen_at = now() - interval '2 hours'")
    assert (await client.get("/security")).status_code == 303
    assert await Session.count() == 0

    await client.sign_in("czas@example.com", factories.PASSWORD)
    await Session.raw("UPDATE session SET expires_at = now() - interval '1 second'")
    assert (await client.get("/security")).status_code == 303


async def test_extending_the_session_resets_idle_time(client):
    await factories.identity("dluzej@example.com")
    await client.sign_in("dluzej@example.com", factories.PASSWORD)
    await Session.raw("UPDATE session SET last_seen_at = now() - interval '50 minutes'")
    response = await client.post_form("/session/extend", {}, htmx=True)
    assert response.status_code == 204
    row = await Session.select(Session.last_seen_at).first()
    await Session.raw("UPDATE session SET last_seen_at = last_seen_at - interval '30 minutes'")
    assert (await client.get("/security")).status_code == 200
    assert row is not None
