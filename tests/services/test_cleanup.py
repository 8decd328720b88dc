"""The cleanup job (issue 16): what expired is deleted in bounded batches, what is live stays,
and an expired session's applications are still told over the back channel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from portal import db
from portal.services import cleanup, oidc_clients, sessions
from portal.tables import (
    Identity,
    LogoutNotice,
    OAuthClient,
    OAuthCode,
    OAuthGrant,
    OAuthLogin,
    OAuthRefreshToken,
    OneTimeToken,
    OutboxEmail,
    Session,
    Throttle,
    WebauthnChallenge,
)
from portal.testing import factories

LIFETIMES = sessions.Lifetimes(idle=timedelta(hours=1), absolute=timedelta(days=1))


def ago(**delta) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


def ahead(**delta) -> datetime:
    return datetime.now(UTC) + timedelta(**delta)


async def _session(identity, name: str, *, last_seen: datetime, expires: datetime) -> None:
    await Session.insert(Session(id_hash=name.ljust(64, "0"), identity=identity,
                                 last_seen_at=last_seen, expires_at=expires))


async def _seed() -> dict:
    person = await factories.identity("stale@example.com")
    await _session(person, "live", last_seen=ago(minutes=5), expires=ahead(hours=5))
    await _session(person, "idle", last_seen=ago(hours=2), expires=ahead(hours=5))
    await _session(person, "old", last_seen=ago(minutes=1), expires=ago(seconds=1))
    for name, expires in (("live", ahead(hours=1)), ("recent", ago(days=1)),
                          ("stale", ago(days=8))):
        await OneTimeToken.insert(OneTimeToken(purpose="verify", token_hash=name.ljust(64, "t"),
                                               identity=person, expires_at=expires))
    client_id, _ = await oidc_clients.register_client(
        name="e-Faktury", redirect_uris=["https://app.example.com/cb"],
        backchannel_logout_uri="https://app.example.com/backchannel")
    client = await OAuthClient.select(OAuthClient.id).where(
        OAuthClient.client_id == client_id).first()
    for name, expires in (("live", ahead(minutes=5)), ("stale", ago(days=2))):
        await OAuthCode.insert(OAuthCode(
            code_hash=name.ljust(64, "c"), client=client["id"], identity=person,
            session_hash="x", redirect_uri="https://app.example.com/cb", scope="openid",
            code_challenge="c", auth_time=ago(minutes=1), expires_at=expires))
    grant = OAuthGrant(client=client["id"], identity=person, session_hash="idle".ljust(64, "0"),
                       scope="openid")
    await OAuthGrant.insert(grant)
    for name, expires in (("live", ahead(days=20)), ("stale", ago(days=2))):
        await OAuthRefreshToken.insert(OAuthRefreshToken(
            token_hash=name.ljust(64, "r"), family=grant.id, expires_at=expires))
    # The idle session had signed an application in: ending it queues a notice.
    await OAuthLogin.insert(OAuthLogin(client=client["id"], identity=person,
                                       session_hash="idle".ljust(64, "0"), sid="sid-1"))
    throttles = {
        "login:address:live": (ago(minutes=1), None),
        "login:address:blocked": (ago(days=2), ahead(minutes=30)),
        "login:address:stale": (ago(days=2), None),
        "login:identity:recent": (ago(days=2), None),  # the 100-in-a-row count: kept
        "login:identity:stale": (ago(days=91), ago(days=90)),
    }
    for key, (started, blocked) in throttles.items():
        await Throttle.insert(Throttle(key=key, failures=3, consecutive=3,
                                       window_started_at=started, blocked_until=blocked))
    for name, sent in (("unsent", None), ("recent", ago(days=1)), ("stale", ago(days=31))):
        await OutboxEmail.insert(OutboxEmail(to_address=f"{name}@example.com", subject=name,
                                             text_body="", next_attempt_at=ago(days=40),
                                             sent_at=sent))
    for name, expires in (("live", ahead(minutes=4)), ("stale", ago(minutes=1))):
        await WebauthnChallenge.insert(WebauthnChallenge(
            purpose="login", binding=name.ljust(64, "b"), challenge=name.encode() * 8,
            expires_at=expires))
    return {"person": person}


async def test_cleanup_deletes_what_expired_and_leaves_what_is_live(app):
    """(The app registers the single-logout listener.)"""
    seeded = await _seed()
    deleted = await cleanup.run(LIFETIMES)
    assert deleted is not None
    hashes = {row["id_hash"][:4] for row in await Session.select(Session.id_hash)}
    assert hashes == {"live"}
    assert {row["token_hash"][:6] for row in await OneTimeToken.select()} == {
        "livett", "recent"}
    assert [row["code_hash"][:4] for row in await OAuthCode.select()] == ["live"]
    assert [row["token_hash"][:4] for row in await OAuthRefreshToken.select()] == ["live"]
    assert {row["key"] for row in await Throttle.select(Throttle.key)} == {
        "login:address:live", "login:address:blocked", "login:identity:recent"}
    assert {row["subject"] for row in await OutboxEmail.select(OutboxEmail.subject)} == {
        "unsent", "recent"}
    assert [row["binding"][:4] for row in await WebauthnChallenge.select()] == ["live"]
    assert deleted["session"] == 2 and deleted["throttle"] == 2
    # The idle session's application is told (queued in the deleting transaction), and the
    # grant riding on it is revoked, as when the person signs out.
    notices = await LogoutNotice.select()
    assert [(n["sid"], n["subject"]) for n in notices] == [("sid-1", str(seeded["person"]))]
    assert await OAuthGrant.count().where(OAuthGrant.revoked_at.is_null()) == 0
    assert await Identity.count() == 1
    # A second round finds nothing more.
    again = await cleanup.run(LIFETIMES)
    assert again is not None and not any(again.values())


async def test_cleanup_works_in_bounded_batches(monkeypatch):
    person = await factories.identity("many@example.com")
    for n in range(7):
        await _session(person, f"gone{n}", last_seen=ago(hours=3), expires=ahead(hours=1))
    await _session(person, "live", last_seen=ago(minutes=1), expires=ahead(hours=1))
    statements = []
    real = cleanup._delete_batch
    monkeypatch.setattr(cleanup, "BATCH", 3)
    monkeypatch.setattr(cleanup, "_delete_batch",
                        lambda expiry: statements.append(expiry.table) or real(expiry))
    deleted = await cleanup.run(LIFETIMES)
    assert deleted["session"] == 7
    assert statements.count("session") == 3  # 3 + 3 + 1
    assert await Session.count() == 1


async def test_one_instance_cleans_at_a_time(database_url):
    person = await factories.identity("busy@example.com")
    await _session(person, "gone", last_seen=ago(hours=3), expires=ahead(hours=1))
    other = await asyncpg.connect(**db.connect_kwargs(database_url))
    try:
        await other.execute("SELECT pg_advisory_lock($1)", cleanup._LOCK)
        assert await cleanup.run(LIFETIMES) is None  # another instance is at it
        assert await Session.count() == 1
    finally:
        await other.close()
    assert (await cleanup.run(LIFETIMES))["session"] == 1
