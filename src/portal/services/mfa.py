"""Second factors: an authenticator app (TOTP), codes by email, recovery codes (and passkeys,
whose ceremonies live in services/passkeys.py); the second step of sign-in;
re-authentication for sensitive actions.

Email is the weaker factor (NIST SP 800-63B does not allow it for out-of-band authentication
at higher levels), so the app is offered first and an account may demand the app.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from portal.db import ENGINE
from portal.security import passwords, totp
from portal.security.passwords import HashBusy, verify_password
from portal.security.tokens import new_token, token_hash
from portal.services import audit, mail, sessions, throttle
from portal.services.errors import DomainError
from portal.services.scope import Client, Scope
from portal.settings import Settings
from portal.tables import Identity, OneTimeToken, Passkey, RecoveryCode

LOGIN = "mfa_login"
EMAIL_SETUP = "mfa_email_setup"
ATTEMPT_LIFETIME = timedelta(minutes=10)
EMAIL_CODE_LIFETIME = timedelta(minutes=10)
EMAIL_CODE_DIGITS = 8
MAX_EMAIL_SENDS = 3  # per sign-in attempt
RECOVERY_CODES = 10
REAUTH_FRESH = timedelta(minutes=10)

MFA_SHORT = throttle.Limit("mfa:identity:short", 5, timedelta(minutes=5))
MFA_LONG = throttle.Limit("mfa:identity:long", 20, timedelta(hours=1))

METHODS = ("passkey", "app", "email", "recovery")


class CodeRejected(DomainError):
    field = "code"
    message = "Kod jest nieprawidłowy albo wygasł."


class TooManyCodes(DomainError):
    field = "code"
    message = "Zbyt wiele nieudanych prób. Spróbuj ponownie za kilka minut."


class AttemptExpired(DomainError):
    message = "Logowanie trwało zbyt długo. Zaloguj się ponownie."


class ReauthRequired(DomainError):
    field = "reauth"
    message = "Potwierdź, że to Ty: podaj hasło lub kod z aplikacji."


class FactorMissing(DomainError):
    message = "Ta metoda nie jest włączona."


@dataclass(frozen=True)
class Status:
    app: bool
    email: bool
    recovery_left: int
    app_pending: bool = False
    passkeys: int = 0

    @property
    def enabled(self) -> bool:
        return self.app or self.email or bool(self.passkeys)

    @property
    def methods(self) -> list[str]:
        """The second factors on, strongest first (a passkey cannot be phished)."""
        out = [m for m, on in (("passkey", self.passkeys), ("app", self.app),
                               ("email", self.email)) if on]
        return out + (["recovery"] if self.recovery_left else [])


def _code_mac(secret_key: str, purpose: str, code: str) -> str:
    """Short codes are hashed with a key, so a copy of the database cannot brute-force them."""
    message = f"{purpose}:{code}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def enabled_for(identity_row: dict[str, Any]) -> bool:
    """Whether an identity row (as loaded at sign-in) has a second factor on."""
    return identity_row["totp_confirmed_at"] is not None or bool(identity_row["mfa_email_enabled"])


async def status(identity_id: UUID) -> Status:
    row = await Identity.select(
        Identity.totp_confirmed_at, Identity.totp_secret_encrypted, Identity.mfa_email_enabled
    ).where(Identity.id == identity_id).first()
    left = await RecoveryCode.count().where(
        (RecoveryCode.identity == identity_id) & RecoveryCode.used_at.is_null()
    )
    return Status(
        app=row["totp_confirmed_at"] is not None,
        email=row["mfa_email_enabled"],
        recovery_left=left,
        app_pending=row["totp_confirmed_at"] is None and row["totp_secret_encrypted"] is not None,
        passkeys=await Passkey.count().where(Passkey.identity == identity_id),
    )


# --- enrolment -------------------------------------------------------------------------------


async def start_app(settings: Settings, scope: Scope) -> str:
    """A new (pending) TOTP secret; it is on only after a code confirms it."""
    current = await status(scope.identity_id)
    if current.app:
        raise DomainError("Aplikacja uwierzytelniająca jest już włączona.")
    secret = totp.new_secret()
    await Identity.update({
        Identity.totp_secret_encrypted: totp.encrypt(secret, settings.secret_key),
        Identity.totp_last_step: None,
    }).where(Identity.id == scope.identity_id)
    return secret


async def pending_secret(settings: Settings, scope: Scope) -> str | None:
    row = await Identity.select(Identity.totp_secret_encrypted, Identity.totp_confirmed_at).where(
        Identity.id == scope.identity_id).first()
    if not row or row["totp_confirmed_at"] or not row["totp_secret_encrypted"]:
        return None
    return totp.decrypt(row["totp_secret_encrypted"], settings.secret_key)


async def confirm_app(settings: Settings, scope: Scope, code: str,
                      client: Client) -> list[str] | None:
    """Turn the app on with a current code; returns new recovery codes if it is the first
    factor (shown once), else None."""
    secret = await pending_secret(settings, scope)
    if secret is None:
        raise FactorMissing("Zacznij od nowa: wygeneruj nowy klucz.")
    reservation = await _reserve(scope.identity_id)
    step = totp.matching_step(secret, code)
    if step is None:
        await _failed(scope.identity_id, client, "app_enable")
        raise CodeRejected()
    await throttle.refund(*reservation.counted)
    async with ENGINE.transaction():
        await Identity.update({
            Identity.totp_confirmed_at: datetime.now(UTC), Identity.totp_last_step: step,
        }).where(Identity.id == scope.identity_id)
        codes = await recovery_if_none(settings, scope.identity_id)
        await _changed(settings, scope, client, "identity:mfa:app_enable")
    return codes


async def start_email(settings: Settings, scope: Scope, client: Client) -> None:
    """Mail a code that turns email codes on when typed back."""
    if not await throttle.take(throttle.MAIL_EMAIL, scope.email):
        raise TooManyCodes("Wysłaliśmy już kilka wiadomości. Spróbuj ponownie później.")
    code = _email_code()
    async with ENGINE.transaction():
        await OneTimeToken.update({OneTimeToken.used_at: datetime.now(UTC)}).where(
            (OneTimeToken.identity == scope.identity_id) & (OneTimeToken.purpose == EMAIL_SETUP)
            & OneTimeToken.used_at.is_null())
        await OneTimeToken.insert(OneTimeToken(
            purpose=EMAIL_SETUP, token_hash=_code_mac(settings.secret_key,
                                                      f"{EMAIL_SETUP}:{scope.identity_id}", code),
            identity=scope.identity_id, expires_at=datetime.now(UTC) + EMAIL_CODE_LIFETIME))
        await mail.queue(settings, scope.email, "mfa_code", language=scope.language, code=code,
                         purpose="setup")


async def confirm_email(settings: Settings, scope: Scope, code: str,
                        client: Client) -> list[str] | None:
    reservation = await _reserve(scope.identity_id)
    mac = _code_mac(settings.secret_key, f"{EMAIL_SETUP}:{scope.identity_id}",
                    totp.normalise(code))
    async with ENGINE.transaction():
        used = await OneTimeToken.raw(
            "UPDATE one_time_token SET used_at = now() WHERE token_hash = {} AND purpose = {} "
            "AND identity = {} AND used_at IS NULL AND expires_at > now() RETURNING id",
            mac, EMAIL_SETUP, scope.identity_id)
        if used:
            await Identity.update({Identity.mfa_email_enabled: True}).where(
                Identity.id == scope.identity_id)
            codes = await recovery_if_none(settings, scope.identity_id)
            await _changed(settings, scope, client, "identity:mfa:email_enable")
    if not used:
        await _failed(scope.identity_id, client, "email_enable")
        raise CodeRejected()
    await throttle.refund(*reservation.counted)
    return codes


async def disable(settings: Settings, scope: Scope, method: str, client: Client) -> None:
    """Turn a factor off (re-authentication required). Recovery codes go with the last one."""
    require_fresh(scope)
    values: dict[Any, Any]
    if method == "app":
        values = {Identity.totp_secret_encrypted: None, Identity.totp_confirmed_at: None,
                  Identity.totp_last_step: None}
    elif method == "email":
        values = {Identity.mfa_email_enabled: False}
    else:
        raise FactorMissing()
    async with ENGINE.transaction():
        await Identity.update(values).where(Identity.id == scope.identity_id)
        await drop_recovery_if_no_factor(scope.identity_id)
        await _changed(settings, scope, client, f"identity:mfa:{method}_disable")


async def drop_recovery_if_no_factor(identity_id: UUID) -> None:
    """Recovery codes go with the last second factor."""
    if not (await status(identity_id)).enabled:
        await RecoveryCode.delete().where(RecoveryCode.identity == identity_id)


async def regenerate_recovery(settings: Settings, scope: Scope, client: Client) -> list[str]:
    require_fresh(scope)
    if not (await status(scope.identity_id)).enabled:
        raise FactorMissing("Najpierw włącz drugi składnik logowania.")
    async with ENGINE.transaction():
        codes = await _new_recovery(settings, scope.identity_id)
        await _changed(settings, scope, client, "identity:mfa:recovery_regenerate")
    return codes


async def recovery_if_none(settings: Settings, identity_id: UUID) -> list[str] | None:
    if await RecoveryCode.exists().where(RecoveryCode.identity == identity_id):
        return None
    return await _new_recovery(settings, identity_id)


def _recovery_code() -> str:
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"  # no look-alikes: 0/o, 1/l/i
    raw = "".join(secrets.choice(alphabet) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def _normalise_recovery(code: str) -> str:
    return "".join(ch for ch in (code or "").lower() if ch.isalnum())


async def _new_recovery(settings: Settings, identity_id: UUID) -> list[str]:
    codes = [_recovery_code() for _ in range(RECOVERY_CODES)]
    await RecoveryCode.delete().where(RecoveryCode.identity == identity_id)
    await RecoveryCode.insert(*[
        RecoveryCode(identity=identity_id,
                     code_hash=_code_mac(settings.secret_key, "recovery", _normalise_recovery(c)))
        for c in codes
    ])
    return codes


#: How each MFA change is named in the mail to the person.
CHANGES = {
    "identity:mfa:app_enable": "włączono aplikację uwierzytelniającą",
    "identity:mfa:app_disable": "wyłączono aplikację uwierzytelniającą",
    "identity:mfa:email_enable": "włączono kody e-mail",
    "identity:mfa:email_disable": "wyłączono kody e-mail",
    "identity:mfa:recovery_regenerate": "wygenerowano nowe kody odzyskiwania",
    "identity:passkey:add": "dodano klucz dostępu",
    "identity:passkey:rename": "zmieniono nazwę klucza dostępu",
    "identity:passkey:remove": "usunięto klucz dostępu",
}


async def _changed(settings: Settings, scope: Scope, client: Client, tag: str) -> None:
    await audit.record(tag, client=client, identity_id=scope.identity_id)
    await mail.queue(settings, scope.email, "mfa_changed", language=scope.language,
                     change=CHANGES[tag])


# --- guessing limits -------------------------------------------------------------------------


# Every code (and the re-authentication password) is counted before it is checked, so a
# burst of parallel guesses gets no more checks than the limit (throttle.reserve); a right
# one is given back (the count is not reset by a success, as before).


async def _reserve(identity_id: UUID) -> throttle.Reservation:
    subject = str(identity_id)
    reservation = await throttle.reserve((MFA_SHORT, subject), (MFA_LONG, subject))
    if not reservation:
        raise TooManyCodes()
    return reservation


async def _failed(identity_id: UUID, client: Client, what: str) -> None:
    """The reserved attempt stays counted; the failure goes to the security history."""
    await audit.record("identity:mfa:failure", client=client, identity_id=identity_id, step=what)


# --- the second step of sign-in --------------------------------------------------------------


def _email_code() -> str:
    return f"{secrets.randbelow(10 ** EMAIL_CODE_DIGITS):0{EMAIL_CODE_DIGITS}d}"


async def begin_login(identity_id: UUID, next_path: str, only: str | None = None) -> str:
    """A sign-in attempt that passed the password; the raw token goes in a short cookie.
    ``only`` limits it to one method (a step-up to a phishing-resistant sign-in: "passkey")."""
    raw = new_token()
    await OneTimeToken.insert(OneTimeToken(
        purpose=LOGIN, token_hash=token_hash(raw), identity=identity_id,
        data={"next": next_path, "sends": 0, **({"only": only} if only else {})},
        expires_at=datetime.now(UTC) + ATTEMPT_LIFETIME))
    return raw


@dataclass(frozen=True)
class Attempt:
    identity_id: UUID
    email: str
    next: str
    status: Status
    email_code_sent: bool
    only: str | None = None

    @property
    def methods(self) -> list[str]:
        """The methods this attempt accepts."""
        if self.only:
            return [self.only] if self.only in self.status.methods else []
        return self.status.methods


async def attempt(raw: str | None) -> Attempt:
    rows = await OneTimeToken.raw(
        "SELECT t.identity, t.data, i.email FROM one_time_token t "
        "JOIN identity i ON i.id = t.identity WHERE t.token_hash = {} AND t.purpose = {} "
        "AND t.used_at IS NULL AND t.expires_at > now()",
        token_hash(raw or ""), LOGIN)
    if not rows:
        raise AttemptExpired()
    row = rows[0]
    data = row["data"] if isinstance(row["data"], dict) else __import__("json").loads(row["data"])
    return Attempt(row["identity"], row["email"], data.get("next", "/"),
                   await status(row["identity"]), bool(data.get("code_mac")),
                   data.get("only") or None)


async def send_login_code(settings: Settings, raw: str, language: str, client: Client) -> None:
    """Mail a sign-in code for this attempt. Resending makes a new code, keeps the failure
    count (it lives on the identity), and is limited per attempt and per address."""
    current = await attempt(raw)
    if not current.status.email:
        raise FactorMissing()
    code = _email_code()
    async with ENGINE.transaction():
        rows = await OneTimeToken.raw(
            "UPDATE one_time_token SET data = data || jsonb_build_object("
            "'code_mac', {}::text, 'code_expires', {}::text, "
            "'sends', coalesce((data->>'sends')::int, 0) + 1) "
            "WHERE token_hash = {} AND purpose = {} AND used_at IS NULL "
            "AND coalesce((data->>'sends')::int, 0) < {} RETURNING id",
            _code_mac(settings.secret_key, f"{LOGIN}:{token_hash(raw)}", code),
            (datetime.now(UTC) + EMAIL_CODE_LIFETIME).isoformat(),
            token_hash(raw), LOGIN, MAX_EMAIL_SENDS)
        if not rows or not await throttle.take(throttle.MAIL_EMAIL, current.email):
            raise TooManyCodes("Wysłaliśmy już kilka kodów. Użyj ostatniego albo innej metody.")
        await mail.queue(settings, current.email, "mfa_code", language=language, code=code)
        await audit.record("identity:mfa:email_code_sent", client=client,
                           identity_id=current.identity_id)


async def complete_login(settings: Settings, raw: str, method: str, code: str,
                         client: Client) -> Attempt:
    """Check the second factor of a sign-in attempt; the attempt is spent on success."""
    current = await attempt(raw)
    identity_id = current.identity_id
    if method not in current.methods or method == "passkey":  # passkeys: services/passkeys
        raise FactorMissing()
    reservation = await _reserve(identity_id)
    ok = await _check_code(settings, current, raw, method, code, client)
    if not ok:
        await _failed(identity_id, client, f"login_{method}")
        raise CodeRejected()
    await throttle.refund(*reservation.counted)
    return await spend_attempt(raw, current, method, client)


async def spend_attempt(raw: str, current: Attempt, method: str, client: Client) -> Attempt:
    """The second factor was right: the attempt is spent (once, whoever is first)."""
    spent = await OneTimeToken.raw(
        "UPDATE one_time_token SET used_at = now() WHERE token_hash = {} AND purpose = {} "
        "AND used_at IS NULL RETURNING id", token_hash(raw), LOGIN)
    if not spent:
        raise AttemptExpired()
    await audit.record("identity:mfa:success", client=client, identity_id=current.identity_id,
                       method=method)
    return current


async def _check_code(settings: Settings, current: Attempt, raw: str, method: str, code: str,
                      client: Client) -> bool:
    identity_id = current.identity_id
    if method == "app":
        return await use_totp(settings, identity_id, code)
    if method == "email":
        rows = await OneTimeToken.raw(
            "UPDATE one_time_token SET data = data - 'code_mac' WHERE token_hash = {} "
            "AND purpose = {} AND used_at IS NULL AND data->>'code_mac' = {} "
            "AND (data->>'code_expires')::timestamptz > now() RETURNING id",
            token_hash(raw), LOGIN,
            _code_mac(settings.secret_key, f"{LOGIN}:{token_hash(raw)}", totp.normalise(code)))
        return bool(rows)
    return await use_recovery(settings, identity_id, current.email, code, client)


async def use_totp(settings: Settings, identity_id: UUID, code: str) -> bool:
    """Accept a TOTP code once: the step must be later than the last accepted one, and the
    conditional UPDATE lets exactly one of many parallel submissions win."""
    row = await Identity.select(Identity.totp_secret_encrypted, Identity.totp_confirmed_at).where(
        Identity.id == identity_id).first()
    if not row or not row["totp_confirmed_at"]:
        return False
    secret = totp.decrypt(row["totp_secret_encrypted"] or "", settings.secret_key)
    step = totp.matching_step(secret, code) if secret else None
    if step is None:
        return False
    won = await Identity.raw(
        "UPDATE identity SET totp_last_step = {} WHERE id = {} "
        "AND (totp_last_step IS NULL OR totp_last_step < {}) RETURNING id",
        step, identity_id, step)
    return bool(won)


async def use_recovery(settings: Settings, identity_id: UUID, email: str, code: str,
                       client: Client) -> bool:
    mac = _code_mac(settings.secret_key, "recovery", _normalise_recovery(code))
    async with ENGINE.transaction():
        used = await RecoveryCode.raw(
            "UPDATE recovery_code SET used_at = now() WHERE identity = {} AND code_hash = {} "
            "AND used_at IS NULL RETURNING id", identity_id, mac)
        if not used:
            return False
        left = await RecoveryCode.count().where(
            (RecoveryCode.identity == identity_id) & RecoveryCode.used_at.is_null())
        await audit.record("identity:mfa:recovery_used", client=client, identity_id=identity_id,
                           left=left)
        await mail.queue(settings, email, "recovery_code_used", left=left, ip=client.ip)
    return True


# --- re-authentication -----------------------------------------------------------------------


def is_fresh(scope: Scope) -> bool:
    return scope.reauth_at is not None and datetime.now(UTC) - scope.reauth_at < REAUTH_FRESH


def require_fresh(scope: Scope) -> None:
    if not is_fresh(scope):
        raise ReauthRequired()


async def reauthenticate(settings: Settings, scope: Scope, password: str, code: str,
                         client: Client) -> Scope:
    """Prove it is still the person: the password, or a code from the app (or a recovery
    code). Marks the session fresh for REAUTH_FRESH."""
    from dataclasses import replace

    if password:
        passwords.admit()  # at capacity: refused before anything is counted
    reservation = await _reserve(scope.identity_id)
    ok = False
    if password:
        row = await Identity.select(Identity.password_hash).where(
            Identity.id == scope.identity_id).first()
        try:
            ok, _ = await verify_password(row["password_hash"] if row else None, password)
        except HashBusy:
            await throttle.refund(*reservation.counted)
            raise
    elif code:
        ok = await use_totp(settings, scope.identity_id, code) or await use_recovery(
            settings, scope.identity_id, scope.email, code, client)
    if not ok:
        await _failed(scope.identity_id, client, "reauth")
        raise ReauthRequired("Hasło lub kod jest nieprawidłowy.")
    await throttle.refund(*reservation.counted)
    await sessions.mark_reauthenticated(scope)
    await audit.record("identity:reauth:success", client=client, identity_id=scope.identity_id)
    return replace(scope, reauth_at=datetime.now(UTC))
