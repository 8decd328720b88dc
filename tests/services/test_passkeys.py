"""Passkeys against the real database: registration, sign-in, the counter rule, challenges
(single use, bound, 5 minutes), the last-way-in rule and the MFA policy level."""

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from portal.services import mfa, passkeys, people
from portal.services.scope import Client, Scope
from portal.tables import AuditEvent, Identity, OutboxEmail, Passkey, WebauthnChallenge
from portal.testing import factories
from portal.testing.authenticator import SoftAuthenticator

CLIENT = Client(ip="203.0.113.9", user_agent="test")


def scope_for(identity_id, email, *, fresh=True, session="session-hash-1") -> Scope:
    return Scope.build(session_hash=session, identity_id=identity_id, email=email, language="",
                       reauth_at=datetime.now(UTC) if fresh else None)


def authenticator(settings, **kwargs) -> SoftAuthenticator:
    return SoftAuthenticator(origin=settings.origin, rp_id=settings.webauthn_rp_id, **kwargs)


async def registered(settings, email="klucz@example.com", password=factories.PASSWORD,
                     **kwargs):
    identity_id = await factories.identity(email, password)
    scope = scope_for(identity_id, email)
    device = authenticator(settings, **kwargs)
    options = await passkeys.registration_options(settings, scope)
    codes = await passkeys.register(settings, scope, device.register(options), "Telefon",
                                    CLIENT)
    return scope, device, codes


async def login_options(settings, binding="attempt-1"):
    return await passkeys.authentication_options(settings, passkeys.LOGIN, binding)


async def test_a_registered_passkey_signs_in_without_a_password(settings):
    scope, device, codes = await registered(settings)
    assert codes and len(codes) == mfa.RECOVERY_CODES  # the first second factor
    row = await Passkey.select().where(Passkey.identity == scope.identity_id).first()
    assert row["name"] == "Telefon" and row["public_key"] and row["transports"] == ["internal"]
    assert row["sign_count"] == 0 and row["last_used_at"] is None
    assert await AuditEvent.exists().where(AuditEvent.tag == "identity:passkey:add")
    assert await OutboxEmail.exists().where(OutboxEmail.template == "mfa_changed")

    found = await passkeys.sign_in(settings, "attempt-1",
                                   device.assertion(await login_options(settings)), CLIENT)
    assert found.identity_id == scope.identity_id
    row = await Passkey.select().where(Passkey.identity == scope.identity_id).first()
    assert row["sign_count"] == 1 and row["last_used_at"] is not None
    assert (await mfa.status(scope.identity_id)).methods[0] == "passkey"


async def test_registration_without_user_verification_is_refused(settings):
    identity_id = await factories.identity("bezuv@example.com")
    scope = scope_for(identity_id, "bezuv@example.com")
    options = await passkeys.registration_options(settings, scope)
    with pytest.raises(passkeys.PasskeyRejected):
        await passkeys.register(settings, scope, authenticator(settings).register(
            options, uv=False), "", CLIENT)
    assert not await Passkey.exists()


async def test_an_empty_credential_says_javascript_is_needed(settings):
    identity_id = await factories.identity("nojs@example.com")
    with pytest.raises(passkeys.NeedsJavaScript):
        await passkeys.register(settings, scope_for(identity_id, "nojs@example.com"), "", "",
                                CLIENT)


async def test_a_replayed_assertion_is_refused(settings):
    _scope, device, _ = await registered(settings)
    assertion = device.assertion(await login_options(settings))
    await passkeys.sign_in(settings, "attempt-1", assertion, CLIENT)
    with pytest.raises(passkeys.ChallengeExpired):
        await passkeys.sign_in(settings, "attempt-1", assertion, CLIENT)


async def test_an_assertion_made_for_another_origin_is_refused(settings):
    _scope, device, _ = await registered(settings)
    options = await login_options(settings)
    with pytest.raises(passkeys.PasskeyRejected):
        await passkeys.sign_in(settings, "attempt-1",
                               device.assertion(options, origin="https://evil.example"), CLIENT)


async def test_an_assertion_without_user_verification_is_refused(settings):
    _scope, device, _ = await registered(settings)
    with pytest.raises(passkeys.PasskeyRejected):
        await passkeys.sign_in(settings, "attempt-1",
                               device.assertion(await login_options(settings), uv=False), CLIENT)


async def test_a_counter_that_goes_back_is_refused_and_recorded(settings):
    scope, device, _ = await registered(settings)
    await passkeys.sign_in(settings, "a", device.assertion(
        await login_options(settings, "a"), sign_count=5), CLIENT)
    for count in (5, 3):  # the same count again, then a lower one
        with pytest.raises(passkeys.CloneSuspected):
            await passkeys.sign_in(settings, "a", device.assertion(
                await login_options(settings, "a"), sign_count=count), CLIENT)
    assert await AuditEvent.count().where(
        (AuditEvent.tag == "identity:passkey:clone_warning")
        & (AuditEvent.identity_id == scope.identity_id)) == 2
    row = await Passkey.select(Passkey.sign_count).first()
    assert row["sign_count"] == 5
    await passkeys.sign_in(settings, "a", device.assertion(
        await login_options(settings, "a"), sign_count=6), CLIENT)


async def test_an_authenticator_without_a_counter_stays_at_zero(settings):
    _scope, device, _ = await registered(settings, synced=True)
    for _ in range(2):
        await passkeys.sign_in(settings, "a", device.assertion(
            await login_options(settings, "a"), sign_count=0), CLIENT)
    row = await Passkey.select(Passkey.sign_count, Passkey.backup_eligible).first()
    assert row == {"sign_count": 0, "backup_eligible": True}


async def test_a_challenge_expires_after_five_minutes(settings):
    _scope, device, _ = await registered(settings)
    options = await login_options(settings)
    await WebauthnChallenge.update({
        WebauthnChallenge.expires_at: datetime.now(UTC) - timedelta(seconds=1)}).where(
        WebauthnChallenge.purpose == passkeys.LOGIN)
    with pytest.raises(passkeys.ChallengeExpired):
        await passkeys.sign_in(settings, "attempt-1", device.assertion(options), CLIENT)
    await login_options(settings)  # a new challenge clears the expired one away
    rows = await WebauthnChallenge.select(WebauthnChallenge.created_at,
                                          WebauthnChallenge.expires_at)
    assert len(rows) == 1
    lifetime = rows[0]["expires_at"] - rows[0]["created_at"]
    assert timedelta(minutes=4, seconds=59) < lifetime <= timedelta(minutes=5, seconds=1)


async def test_a_challenge_is_bound_to_its_attempt_and_purpose(settings):
    scope, device, _ = await registered(settings)
    options = await login_options(settings, "mine")
    with pytest.raises(passkeys.ChallengeExpired):
        await passkeys.sign_in(settings, "someone-else", device.assertion(options), CLIENT)
    second = await passkeys.authentication_options(settings, passkeys.SECOND_FACTOR, "mine",
                                                   scope.identity_id)
    with pytest.raises(passkeys.ChallengeExpired):
        await passkeys.sign_in(settings, "mine", device.assertion(second), CLIENT)


async def test_parallel_uses_of_one_challenge_let_exactly_one_in(settings):
    _scope, device, _ = await registered(settings)
    assertion = device.assertion(await login_options(settings))
    results = await asyncio.gather(
        *[passkeys.sign_in(settings, "attempt-1", assertion, CLIENT) for _ in range(10)],
        return_exceptions=True)
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, passkeys.PasskeyRejected) for r in results
               if isinstance(r, Exception))


async def test_a_second_factor_accepts_only_the_identitys_own_passkey(settings):
    scope, _device, _ = await registered(settings)
    _other_scope, other_device, _ = await registered(settings, "inny@example.com")
    options = await passkeys.authentication_options(settings, passkeys.SECOND_FACTOR, "b",
                                                    scope.identity_id)
    with pytest.raises(passkeys.PasskeyRejected):
        await passkeys.verify_assertion(settings, passkeys.SECOND_FACTOR, "b",
                                        other_device.assertion(options), CLIENT,
                                        identity_id=scope.identity_id)


async def test_the_last_way_in_is_not_removed(settings):
    scope, _device, _ = await registered(settings, "bezhasla@example.com", password=None)
    only = (await passkeys.list_for(scope.identity_id))[0]
    with pytest.raises(passkeys.LastWayIn):
        await passkeys.remove(settings, scope, only.id, CLIENT)
    assert await Passkey.count() == 1
    # A second passkey makes the first removable; the password does too.
    second = authenticator(settings)
    options = await passkeys.registration_options(settings, scope)
    await passkeys.register(settings, scope, second.register(options), "Laptop", CLIENT)
    await passkeys.remove(settings, scope, only.id, CLIENT)
    assert [p.name for p in await passkeys.list_for(scope.identity_id)] == ["Laptop"]


async def test_removal_asks_for_reauthentication_and_takes_recovery_codes_along(settings):
    scope, _device, _ = await registered(settings)
    only = (await passkeys.list_for(scope.identity_id))[0]
    with pytest.raises(mfa.ReauthRequired):
        await passkeys.remove(settings, replace(scope, reauth_at=None), only.id, CLIENT)
    await passkeys.remove(settings, scope, only.id, CLIENT)
    status = await mfa.status(scope.identity_id)
    assert not status.enabled and status.recovery_left == 0
    assert await AuditEvent.exists().where(AuditEvent.tag == "identity:passkey:remove")


async def test_another_identitys_passkey_is_not_found(settings):
    scope, _device, _ = await registered(settings)
    other = await factories.identity("obcy@example.com")
    theirs = (await passkeys.list_for(scope.identity_id))[0]
    from portal.services.errors import NotFound

    with pytest.raises(NotFound):
        await passkeys.rename(settings, scope_for(other, "obcy@example.com"), theirs.id, "X",
                              CLIENT)
    with pytest.raises(NotFound):
        await passkeys.remove(settings, scope_for(other, "obcy@example.com"), theirs.id,
                              CLIENT)


async def test_rename_checks_the_name(settings):
    scope, _device, _ = await registered(settings)
    passkey = (await passkeys.list_for(scope.identity_id))[0]
    with pytest.raises(passkeys.InvalidInput):
        await passkeys.rename(settings, scope, passkey.id, "   ", CLIENT)
    with pytest.raises(passkeys.InvalidInput):
        await passkeys.rename(settings, scope, passkey.id, "x" * 101, CLIENT)
    assert await passkeys.rename(settings, scope, passkey.id, "  Klucz  USB ", CLIENT) == (
        "Klucz USB")


def test_the_passkey_policy_accepts_only_a_passkey():
    from uuid import uuid4

    base = Scope.build(session_hash="x", identity_id=uuid4(), email="a@b.pl", language="",
                       account_mfa_policy="passkey")
    assert not replace(base, mfa_factors=frozenset({"app", "email"})).meets_account_mfa_policy
    assert replace(base, mfa_factors=frozenset({"passkey"})).meets_account_mfa_policy
    app = replace(base, account_mfa_policy="app", mfa_factors=frozenset({"passkey"}))
    assert app.meets_account_mfa_policy
    assert not people.meets_policy("passkey", True, True, False)
    assert people.meets_policy("passkey", False, False, True)
    assert people.meets_policy("any", False, False, True)


async def test_an_identity_row_is_locked_while_a_passkey_goes(settings):
    """Two removals of an ID's last two passkeys (no password) leave one."""
    scope, _device, _ = await registered(settings, "dwa@example.com", password=None)
    options = await passkeys.registration_options(settings, scope)
    await passkeys.register(settings, scope, authenticator(settings).register(options), "B",
                            CLIENT)
    ids = [p.id for p in await passkeys.list_for(scope.identity_id)]
    results = await asyncio.gather(*[passkeys.remove(settings, scope, i, CLIENT) for i in ids],
                                   return_exceptions=True)
    assert sum(isinstance(r, passkeys.LastWayIn) for r in results) == 1
    assert await Passkey.count() == 1
    assert await Identity.exists().where(Identity.id == scope.identity_id)


async def test_an_owner_with_a_passkey_may_demand_passkeys(settings):
    from portal.services import accounts
    from portal.tables import Account

    scope, _device, _ = await registered(settings, "wlasciciel@example.com")
    account = await factories.account(scope.identity_id)
    owner = Scope.build(session_hash="s", identity_id=scope.identity_id, email=scope.email,
                        language="", role="owner",
                        account=__import__("portal.services.scope", fromlist=["AccountRef"])
                        .AccountRef(account["id"], account["public_id"], "Firma"),
                        mfa_factors=frozenset({"passkey"}))
    assert await accounts.set_mfa_policy(owner, "passkey", CLIENT) == "passkey"
    row = await Account.select(Account.mfa_policy).where(Account.id == account["id"]).first()
    assert row["mfa_policy"] == "passkey"
    member = await factories.identity("czlonek@example.com")
    await factories.membership(member, account["id"])
    assert await people.mfa_missing(replace(owner, account_mfa_policy="passkey")) == 1


async def test_sign_ins_and_challenges_are_limited_per_network(settings):
    _scope, device, _ = await registered(settings)
    nearby = Client(ip="198.51.100.1", user_agent="t")
    for _ in range(passkeys.SIGN_IN_ADDRESS.per_window):
        with pytest.raises(passkeys.PasskeyRejected):
            await passkeys.sign_in(settings, "x", '{"response": {}}', nearby)
    options = await login_options(settings, "x")
    with pytest.raises(passkeys.TooManyAttempts):
        await passkeys.sign_in(settings, "x", device.assertion(options), nearby)
    # Another network is not held back, and a right sign-in is not counted.
    found = await passkeys.sign_in(settings, "x", device.assertion(
        await login_options(settings, "x")), CLIENT)
    assert found.identity_id == _scope.identity_id
    for _ in range(passkeys.OPTIONS_ADDRESS.per_window):
        await passkeys.authentication_options(settings, passkeys.LOGIN, "y", client=nearby)
    with pytest.raises(passkeys.TooManyAttempts):
        await passkeys.authentication_options(settings, passkeys.LOGIN, "y", client=nearby)
