import asyncio
from dataclasses import replace

import pyotp

from portal.security import totp
from portal.services import mfa
from portal.tables import Identity
from portal.testing import factories


async def test_twenty_parallel_submissions_of_one_code_let_exactly_one_in(settings):
    identity_id = await factories.identity("rownolegle@example.com")
    secret = totp.new_secret()
    await Identity.update({
        Identity.totp_secret_encrypted: totp.encrypt(secret, settings.secret_key),
        Identity.totp_confirmed_at: Identity.created_at,
    }).where(Identity.id == identity_id)
    code = pyotp.TOTP(secret).now()
    results = await asyncio.gather(*[mfa.use_totp(settings, identity_id, code)
                                     for _ in range(20)])
    assert results.count(True) == 1


async def test_a_secret_encrypted_with_another_key_mints_nothing(settings):
    identity_id = await factories.identity("klucz@example.com")
    secret = totp.new_secret()
    await Identity.update({
        Identity.totp_secret_encrypted: totp.encrypt(secret, "another key entirely"),
        Identity.totp_confirmed_at: Identity.created_at,
    }).where(Identity.id == identity_id)
    assert not await mfa.use_totp(settings, identity_id, pyotp.TOTP(secret).now())


def test_codes_outside_the_window_do_not_match():
    secret = totp.new_secret()
    now = 1_700_000_000
    step = now // 30
    assert totp.matching_step(secret, pyotp.TOTP(secret).at(now), now) == step
    assert totp.matching_step(secret, pyotp.TOTP(secret).at(now - 30), now) == step - 1
    assert totp.matching_step(secret, pyotp.TOTP(secret).at(now - 90), now) is None
    assert totp.matching_step(secret, "12345", now) is None
    assert totp.matching_step(secret, "abcdef", now) is None


def test_reauthentication_is_fresh_for_ten_minutes():
    from datetime import UTC, datetime, timedelta
    from uuid import uuid4

    from portal.services.scope import Scope

    scope = Scope.build(session_hash="x", identity_id=uuid4(), email="a@b.pl", language="")
    assert not mfa.is_fresh(scope)
    assert mfa.is_fresh(replace(scope, reauth_at=datetime.now(UTC) - timedelta(minutes=9)))
    assert not mfa.is_fresh(replace(scope, reauth_at=datetime.now(UTC) - timedelta(minutes=11)))
