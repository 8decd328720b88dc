import re
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


async def test_security_history_shows_security_events_only_readably_and_in_pages(client):
    """Issue 13: no account events (account:company:create), never a raw tag, 20 a page."""
    from portal.services import audit

    identity_id = await factories.identity("strony@example.com")
    await client.sign_in("strony@example.com", factories.PASSWORD)
    await audit.record("account:company:create", identity_id=identity_id)
    await audit.record("identity:profile:update", identity_id=identity_id)
    for _ in range(24):
        await audit.record("identity:mfa:failure", identity_id=identity_id)
    html = (await client.get("/security")).text
    assert 'href="#history-heading"' in html and 'id="history-heading"' in html
    history = html[html.index('id="security-history"'):]
    assert "account:" not in history and "identity:" not in history
    assert "Zmieniono profil" not in history
    assert history.count("Nieprawidłowy kod logowania") == 20
    assert "Zdarzenia 1\u201320 z 25" in history and "/security?history=2" in history
    second = await client.get("/security?history=2", headers={"HX-Request": "true"})
    assert second.text.lstrip().startswith('<div id="security-history">')
    assert second.text.count("Nieprawidłowy kod logowania") == 4 and "Zalogowano" in second.text
    odd = await client.get("/security?history=%27x")
    assert odd.status_code == 200 and "Zdarzenia 1\u201320 z 25" in odd.text


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


async def test_the_session_list_is_paged_with_this_session_first(client):
    """A person with many sessions gets them 20 at a time (the page stays small, the queries
    few), this device's first, and "log out elsewhere" still ends them all."""
    from portal.services import sessions
    from tests.conftest import HTMX, counting_queries

    identity_id = await factories.identity("sesje@example.com")
    await Session.raw(
        "INSERT INTO session (id_hash, identity, last_seen_at, expires_at, ip, user_agent) "
        "SELECT md5('s' || n), {}, now() - n * interval '1 second', now() + interval '1 day', "
        "'198.51.100.' || n, 'curl/8' FROM generate_series(1, 45) AS n", identity_id)
    await client.sign_in("sesje@example.com", factories.PASSWORD)
    first = await client.get("/security")
    assert first.status_code == 200
    assert first.text.count('/end"') == sessions.SESSIONS_PER_PAGE - 1  # this one has no button
    assert "Strona 1 z 3" in first.text and "198.51.100.1<" in first.text
    assert first.text.index("(to urządzenie)") < first.text.index("198.51.100.1<")
    with counting_queries() as few:
        second = await client.get("/security?sessions=2", headers=HTMX)
    assert second.text.lstrip().startswith('<div id="session-list"')
    assert "Strona 2 z 3" in second.text and "(to urządzenie)" not in second.text
    assert "198.51.100.20<" in second.text and "198.51.100.19<" not in second.text
    with counting_queries() as last:
        third = await client.get("/security?sessions=99", headers=HTMX)
    assert "Strona 3 z 3" in third.text and third.text.count('/end"') == 6
    assert few["count"] == last["count"] <= 4, (few, last)  # the session, a count, a page
    # "Następna strona" carries a cursor (issue 20): the page after the last session shown,
    # read by key, the same rows as by number, as a fragment and as a whole page.
    link = re.search(r'href="([^"]+)"[^>]*rel="next"', second.text).group(1).replace(
        "&amp;", "&")
    assert "sessions=3" in link and "sessions_after=" in link
    with counting_queries() as keyed:
        by_key = await client.get(link, headers=HTMX)
    assert keyed["count"] == few["count"]
    assert "Strona 3 z 3" in by_key.text and by_key.text.count('/end"') == 6
    assert "198.51.100.40<" in by_key.text and "198.51.100.39<" not in by_key.text
    assert "198.51.100.40<" in (await client.get(link)).text
    tampered = await client.get("/security?sessions=3&sessions_after=xyz", headers=HTMX)
    assert "198.51.100.40<" in tampered.text
    assert (await client.post_form("/security/sessions/end-others", {})).status_code == 303
    assert await Session.count() == 1


async def test_a_wrong_current_password_does_not_hide_the_new_passwords_errors(client):
    await factories.identity("wszystko@example.com")
    await client.sign_in("wszystko@example.com", factories.PASSWORD)
    response = await client.post_form("/security/password", {
        "current_password": "nie to", "password": "krótkie", "password_confirm": "krótkie"})
    assert response.status_code == 422
    assert field_error(response.text, "current_password") == "Obecne hasło jest nieprawidłowe."
    assert field_error(response.text, "password").startswith("Hasło musi mieć co najmniej 12")
    mismatch = await client.post_form("/security/password", {
        "current_password": "", "password": NEW, "password_confirm": NEW + "x"}, htmx=True)
    assert field_error(mismatch.text, "current_password") == "Podaj obecne hasło."
    assert field_error(mismatch.text, "password_confirm") == "Hasła nie są takie same."
