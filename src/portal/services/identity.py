"""The ID: registration with an email only, verification, sign-in, password reset and change.

No account enumeration: every path for an unknown email does the same work as for a known
one (a token, a mail, a hash check) and the caller shows the same page.
"""

from __future__ import annotations

import functools
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from email_validator import EmailNotValidError, validate_email
from piccolo.query import WhereRaw

from portal import i18n
from portal.db import ENGINE
from portal.security import passwords
from portal.security.passwords import HashBusy, hash_password, password_problems, verify_password
from portal.security.tokens import new_token, token_hash
from portal.services import audit, mail, sessions, throttle
from portal.services.errors import DomainError, InvalidInput
from portal.services.scope import Client, Scope
from portal.settings import Settings
from portal.tables import Identity, OneTimeToken, Profile

VERIFY = "verify"
PASSWORD_RESET = "password_reset"  # noqa: S105  (a token purpose)
LIFETIME = {VERIFY: timedelta(hours=24), PASSWORD_RESET: timedelta(minutes=30)}


class LoginFailed(DomainError):
    message = (
        "Nieprawidłowy e-mail lub hasło, albo zbyt wiele prób. Spróbuj ponownie "
        "za chwilę lub ustaw nowe hasło."
    )


class TokenInvalid(DomainError):
    message = "Ten link wygasł albo został już użyty."


@dataclass(frozen=True)
class TokenInfo:
    identity_id: UUID
    email: str


def normalise_email(raw: str) -> str:
    """A valid address with its domain lower-cased; raises InvalidInput for the field."""
    raw = (raw or "").strip()
    if not raw:
        raise InvalidInput({"email": "Podaj adres e-mail."})
    if len(raw) > 320:
        raise InvalidInput({"email": "Adres e-mail jest za długi."})
    try:
        return validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError:
        raise InvalidInput({"email": "Podaj poprawny adres e-mail, np. jan@firma.pl."}) from None


async def find_by_email(email: str) -> dict[str, Any] | None:
    return await Identity.select().where(WhereRaw("lower(email) = lower({})", email)).first()


# The identity signing in, with what the sign-in goes on to ask, in the same round trip:
# whether it has a passkey (then a second step follows) and whether this browser signature
# signed in to it before (else a new-device mail). Reading them on a wrong password as well
# costs two index lookups in PostgreSQL, cheaper than two more statements on a right one.
_SIGNING_IN = """
SELECT i.*,
       EXISTS (SELECT 1 FROM passkey k WHERE k.identity = i.id) AS has_passkey,
       EXISTS (SELECT 1 FROM audit_event e WHERE e.identity_id = i.id
               AND e.tag = 'identity:login:success' AND e.user_agent = {}) AS device_seen
FROM identity i WHERE lower(i.email) = lower({}) LIMIT 1
"""


async def _issue(purpose: str, identity_id: UUID, email: str) -> str:
    raw = new_token()
    await OneTimeToken.insert(
        OneTimeToken(
            purpose=purpose,
            token_hash=token_hash(raw),
            identity=identity_id,
            email=email,
            expires_at=datetime.now(UTC) + LIFETIME[purpose],
        )
    )
    return raw


async def issue_verification(identity_id: UUID, email: str) -> str:
    """A fresh verification token (the back office resends the link to an ID with no password)."""
    return await _issue(VERIFY, identity_id, email)


class TooManyFromNetwork(DomainError):
    """Past the hourly mails from one client network: said on the page (429), since a limit
    on the sender's network tells nothing about which emails have an ID. ``{minutes}`` is
    filled in where it is shown."""

    message = "Zbyt wiele próśb z Twojej sieci. Spróbuj ponownie za {minutes} min."

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after

    @property
    def minutes(self) -> int:
        return max(1, -(-self.retry_after // 60))


async def _mail_allowed(email: str, client: Client) -> bool:
    """No mail bombing: a few mails per email address (silently: the page looks the same
    whether or not a mail went, as it does for an unknown email) and per client network
    (TooManyFromNetwork) each hour."""
    network = (throttle.MAIL_ADDRESS, client.ip)
    if not await throttle.reserve(network):
        raise TooManyFromNetwork(await throttle.retry_after(*network))
    if not await throttle.reserve((throttle.MAIL_EMAIL, email)):
        await throttle.refund(network)
        return False
    return True


async def register(settings: Settings, raw_email: str, client: Client, language: str) -> None:
    """Start an ID for ``raw_email``, or tell its owner they already have one."""
    email = normalise_email(raw_email)
    allowed = await _mail_allowed(email, client)
    async with ENGINE.transaction():
        identity = await find_by_email(email)
        if identity is None:
            try:
                async with ENGINE.transaction():
                    rows = await Identity.insert(Identity(email=email)).returning(Identity.id)
            except asyncpg.UniqueViolationError:  # registered at this very moment
                identity = await find_by_email(email)
            else:
                identity = {"id": rows[0]["id"], "email": email, "password_hash": None}
                await Profile.insert(Profile(identity=identity["id"], language=""))
        assert identity is not None
        await audit.record(
            "identity:registration:request", client=client, identity_id=identity["id"], sent=allowed
        )
        if not allowed:
            return
        if identity["password_hash"] is None:
            token = await _issue(VERIFY, identity["id"], identity["email"])
            await mail.queue(settings, identity["email"], "verify", language=language, token=token)
        else:
            token = await _issue(PASSWORD_RESET, identity["id"], identity["email"])
            await mail.queue(
                settings, identity["email"], "already_registered", language=language, token=token
            )


async def check_token(purpose: str, raw: str) -> TokenInfo:
    """The identity a valid, unused, unexpired token belongs to."""
    rows = await OneTimeToken.raw(
        "SELECT t.identity, i.email FROM one_time_token t JOIN identity i ON i.id = t.identity "
        "WHERE t.token_hash = {} AND t.purpose = {} AND t.used_at IS NULL "
        "AND t.expires_at > now()",
        token_hash(raw or ""),
        purpose,
    )
    if not rows:
        raise TokenInvalid()
    return TokenInfo(rows[0]["identity"], rows[0]["email"])


async def _use_token(purpose: str, raw: str) -> UUID:
    """Mark the token used; exactly one concurrent caller wins."""
    rows = await OneTimeToken.raw(
        "UPDATE one_time_token SET used_at = now() WHERE token_hash = {} AND purpose = {} "
        "AND used_at IS NULL AND expires_at > now() RETURNING identity",
        token_hash(raw or ""),
        purpose,
    )
    if not rows:
        raise TokenInvalid()
    return rows[0]["identity"]


async def _new_password_hash(info: TokenInfo | Scope, password: str, confirm: str) -> str:
    """The hash of an acceptable new password; HashBusy (before any checking) when hashing is
    at capacity, and then nothing is spent: the link or form works again in a moment."""
    passwords.admit()
    problems = password_problems(password, confirm, info.email)
    if problems:
        raise InvalidInput(problems)
    return await hash_password(password)


async def complete_verification(raw: str, password: str, confirm: str, client: Client) -> UUID:
    """Set the first password from a verification link; the email is then verified."""
    info = await check_token(VERIFY, raw)
    password_hash = await _new_password_hash(info, password, confirm)
    async with ENGINE.transaction():
        identity_id = await _use_token(VERIFY, raw)
        rows = (
            await Identity.update(
                {
                    Identity.password_hash: password_hash,
                    Identity.email_verified_at: datetime.now(UTC),
                }
            )
            .where((Identity.id == identity_id) & Identity.password_hash.is_null())
            .returning(Identity.id)
        )
        if not rows:  # a password was set another way meanwhile: the link is spent
            raise TokenInvalid()
        await OneTimeToken.update({OneTimeToken.used_at: datetime.now(UTC)}).where(
            (OneTimeToken.identity == identity_id)
            & (OneTimeToken.purpose == VERIFY)
            & OneTimeToken.used_at.is_null()
        )
        await audit.record("identity:email:verify", client=client, identity_id=identity_id)
        await audit.record("identity:password:set", client=client, identity_id=identity_id)
    return identity_id


async def authenticate(
    settings: Settings, raw_email: str, password: str, client: Client, language: str
) -> dict[str, Any]:
    """The identity for an email and password, or LoginFailed: the same message for unknown
    emails, wrong passwords and throttled attempts, and the same work (one argon2 verify) for
    an unknown email as for a known one.

    The attempt is counted before the hash (``throttle.reserve``), so parallel guesses get no
    more verifications than sequential ones; a throttled attempt is answered without a hash
    (known and unknown emails alike, so nothing tells them apart). A success clears the ID's
    count, as before, and gives the address its attempt back.

    When hashing is at capacity: HashBusy, before anything is counted or looked up (or, if
    the queue filled meanwhile, with the reservation given back), and no hash is run."""
    subject = (raw_email or "").strip().lower()[:320]
    # An empty field is named (that says nothing about any ID); filled forms get one answer.
    errors = {}
    if not subject:
        errors["email"] = "Podaj adres e-mail."
    if not password:
        errors["password"] = "Podaj hasło."  # noqa: S105 (a message, not a password)
    if errors:
        raise InvalidInput(errors)
    passwords.admit()
    reservation = await throttle.reserve(
        (throttle.LOGIN_IDENTITY, subject), (throttle.LOGIN_ADDRESS, client.ip)
    )
    if not reservation:
        await audit.record("identity:login:throttled", client=client)
        raise LoginFailed()
    rows = await Identity.raw(_SIGNING_IN, client.user_agent[:512], subject)
    identity = rows[0] if rows else None
    try:
        ok, rehash = await verify_password(
            identity["password_hash"] if identity else None, password)
    except HashBusy:
        await throttle.refund(*reservation.counted)  # never checked: not a failure
        raise
    if not ok:
        await audit.record(
            "identity:login:failure",
            client=client,
            identity_id=identity["id"] if identity else None,
        )
        raise LoginFailed()
    await throttle.clear_and_refund((throttle.LOGIN_IDENTITY, subject),
                                    (throttle.LOGIN_ADDRESS, client.ip))
    new_hash = None
    if rehash:
        try:
            new_hash = await hash_password(password)
        except HashBusy:  # the upgrade waits for the next sign-in; this one goes ahead
            pass
    # A device is its browser signature; the first sign-in ever is not "new".
    new_device = identity["last_login_at"] is not None and not identity["device_seen"]
    # One write needs no transaction (a round trip each for BEGIN and COMMIT).
    async with ENGINE.transaction() if new_hash or new_device else nullcontext():
        # "Ostatnie logowanie" is written where the session starts (sessions.start), for
        # every way in; here only an upgraded hash is.
        if new_hash:
            await Identity.update({Identity.password_hash: new_hash}).where(
                Identity.id == identity["id"])
        if new_device:
            await mail.queue(
                settings,
                identity["email"],
                "new_device",
                language=await _language(identity["id"], language),
                device=describe_device(client.user_agent),
                ip=client.ip,
                when=i18n.when(datetime.now(UTC)),  # in the person's zone, as the UI says
            )
        await audit.record("identity:login:success", client=client, identity_id=identity["id"])
    return identity


async def _language(identity_id: UUID, fallback: str) -> str:
    row = await Profile.select(Profile.language).where(Profile.identity == identity_id).first()
    return (row or {}).get("language") or fallback


@functools.lru_cache(maxsize=1024)
def describe_device(user_agent: str) -> str:
    """"Chrome · Windows" for a User-Agent. Cached: parsing one takes about a millisecond
    (the first, 100 ms: the parser's patterns are compiled then), and a person's sessions and
    history show the same few devices again and again."""
    from user_agents import parse

    if not user_agent:
        return "?"
    agent = parse(user_agent[:512])
    return f"{agent.browser.family} · {agent.os.family}"


async def request_password_reset(
    settings: Settings, raw_email: str, client: Client, language: str
) -> None:
    """Mail a reset link to a known email. An unknown one gets the same page and a mail
    telling its owner how to register; both paths write a token-sized row and a mail."""
    email = normalise_email(raw_email)
    try:
        allowed = await _mail_allowed(email, client)
    except TooManyFromNetwork:
        await audit.record("identity:password:reset_request", client=client, sent=False)
        raise
    if not allowed:
        await audit.record("identity:password:reset_request", client=client, sent=False)
        return
    async with ENGINE.transaction():
        identity = await find_by_email(email)
        if identity is None:
            await mail.queue(settings, email, "verify_unknown", language=language)
            await audit.record("identity:password:reset_request", client=client, sent=True)
            return
        token = await _issue(PASSWORD_RESET, identity["id"], identity["email"])
        await mail.queue(
            settings,
            identity["email"],
            "password_reset",
            language=await _language(identity["id"], language),
            token=token,
        )
        await audit.record(
            "identity:password:reset_request", client=client, identity_id=identity["id"], sent=True
        )


async def reset_password(
    settings: Settings, raw: str, password: str, confirm: str, client: Client, language: str
) -> UUID:
    """Set a new password from a reset link; every session of the identity ends."""
    info = await check_token(PASSWORD_RESET, raw)
    password_hash = await _new_password_hash(info, password, confirm)
    async with ENGINE.transaction():
        identity_id = await _use_token(PASSWORD_RESET, raw)
        values: dict[Any, Any] = {Identity.password_hash: password_hash}
        # Following an emailed link proves the address.
        values[Identity.email_verified_at] = datetime.now(UTC)
        await Identity.update(values).where(Identity.id == identity_id)
        ended = await sessions.end_all(identity_id)
        await throttle.clear(throttle.LOGIN_IDENTITY, info.email)
        await audit.record(
            "identity:password:reset", client=client, identity_id=identity_id, sessions_ended=ended
        )
        await mail.queue(
            settings,
            info.email,
            "password_changed",
            language=await _language(identity_id, language),
        )
    return identity_id


class WrongPassword(DomainError):
    field = "current_password"
    message = "Obecne hasło jest nieprawidłowe."


async def change_password(
    settings: Settings, scope: Scope, current: str, password: str, confirm: str, client: Client
) -> None:
    """Change the password knowing the current one; other sessions end, this one stays.
    The current password counts against the ID's sign-in limit, reserved before the hash.
    A wrong current password and the new password's own problems are reported together."""
    passwords.admit()
    problems = password_problems(password, confirm, scope.email)
    if not current:
        raise InvalidInput({"current_password": "Podaj obecne hasło.", **problems})
    reservation = await throttle.reserve((throttle.LOGIN_IDENTITY, scope.email))
    if not reservation:
        raise InvalidInput({"current_password": WrongPassword.message, **problems})
    row = (
        await Identity.select(Identity.password_hash)
        .where(Identity.id == scope.identity_id)
        .first()
    )
    try:
        ok, _ = await verify_password(row["password_hash"] if row else None, current)
    except HashBusy:
        await throttle.refund(*reservation.counted)
        raise
    if not ok:
        await audit.record(
            "identity:password:change_failure", client=client, identity_id=scope.identity_id
        )
        raise InvalidInput({"current_password": WrongPassword.message, **problems})
    await throttle.refund(*reservation.counted)  # right: no failure (and, as before, no reset)
    if problems:
        raise InvalidInput(problems)
    password_hash = await hash_password(password)
    async with ENGINE.transaction():
        await Identity.update({Identity.password_hash: password_hash}).where(
            Identity.id == scope.identity_id
        )
        ended = await sessions.end_all(scope.identity_id, keep_hash=scope.session_hash)
        await audit.record(
            "identity:password:change",
            client=client,
            identity_id=scope.identity_id,
            sessions_ended=ended,
        )
        await mail.queue(settings, scope.email, "password_changed", language=scope.language)
