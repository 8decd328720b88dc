"""Passkeys (WebAuthn): registering them in /security, signing in with one and no password,
and using one as the second factor after the password.

The ceremonies are py_webauthn's (Duo Labs): it builds the options and verifies attestations
and assertions (CBOR, COSE, signatures, the relying party id hash, the origin, user
verification). What is ours:

- challenges: random, single-use, bound to the session or sign-in attempt that asked for them
  and expiring in 5 minutes (``webauthn_challenge``; taken with ``DELETE ... RETURNING``, so
  of two parallel uses of one challenge exactly one finds it);
- the signature counter: it must rise (or stay 0 for authenticators that keep none, as synced
  passkeys do). One that goes back means two copies of the private key: the sign-in is
  refused and ``identity:passkey:clone_warning`` recorded. The check is a conditional UPDATE,
  so two parallel assertions with one counter value let one in;
- the last way in: a passkey is not removed when the ID would be left with no way to sign in
  (no password and no other passkey).

The relying party id is the host of PORTAL_BASE_URL and the only origin accepted is its origin.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from portal.db import ENGINE
from portal.security.tokens import token_hash
from portal.services import audit, mail, mfa, throttle
from portal.services.errors import DomainError, InvalidInput, NotFound
from portal.services.scope import Client, Scope
from portal.settings import Settings
from portal.tables import Identity, Passkey, WebauthnChallenge

CHALLENGE_LIFETIME = timedelta(minutes=5)
#: Sign-ins with a passkey (and the challenges asked for them) per client network: nobody can
#: forge a signature, but an unauthenticated endpoint that writes rows must not be a flood.
SIGN_IN_ADDRESS = throttle.Limit("passkey:address", 30, timedelta(minutes=5), by_network=True)
OPTIONS_ADDRESS = throttle.Limit("passkey_options:address", 120, timedelta(minutes=5),
                                 by_network=True)
#: The browser's own timeout (a hint): as long as the challenge lives.
TIMEOUT_MS = int(CHALLENGE_LIFETIME.total_seconds() * 1000)
REGISTER, LOGIN, SECOND_FACTOR = "register", "login", "second_factor"
NAME_MAX = 100
DEFAULT_NAME = "Klucz dostępu"
#: RFC 8176: proof of possession of a (hardware-bound or synced) key, and a user test (the
#: authenticator verified the person: PIN or biometrics).
AMR = ("hwk", "user")

#: The few authenticators worth naming by their AAGUID (the rest show their kind only).
KNOWN_AUTHENTICATORS = {
    "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4": "Google Password Manager",
    "fbfc3007-154e-4ecc-8c0b-6e020557d7bd": "iCloud Keychain",
    "adce0002-35bc-c60a-648b-0b25f1f05503": "Chrome (macOS)",
    "08987058-cadc-4b81-b6e1-30de50dcbe96": "Windows Hello",
    "9ddd1817-af5a-4672-a2b9-3e3dd95000a9": "Windows Hello",
    "6028b017-b1d4-4c02-b4b3-afcdafc96bb2": "Windows Hello",
    "bada5566-a7aa-401f-bd96-45619a55120d": "1Password",
    "d548826e-79b4-db40-a3d8-11116f7e8349": "Bitwarden",
    "cb69481e-8ff7-4039-93ec-0a2729a154a8": "YubiKey 5",
    "ee882879-721c-4913-9775-3dfcce97072a": "YubiKey 5",
}


class PasskeyRejected(DomainError):
    field = "credential"
    message = "Nie udało się potwierdzić klucza dostępu. Spróbuj ponownie."


class ChallengeExpired(PasskeyRejected):
    message = "Minęło zbyt dużo czasu albo ta próba została już użyta. Spróbuj ponownie."


class CloneSuspected(PasskeyRejected):
    message = ("Ten klucz dostępu wygląda na skopiowany (jego licznik się cofnął). Nie "
               "zalogowaliśmy Cię; zaloguj się inaczej i usuń ten klucz w Bezpieczeństwie "
               "logowania.")


class NeedsJavaScript(DomainError):
    field = "credential"
    message = ("Klucze dostępu działają tylko z włączonym JavaScriptem. Włącz go albo użyj "
               "hasła.")


class AlreadyRegistered(DomainError):
    field = "credential"
    message = "Ten klucz dostępu jest już dodany."


class TooManyAttempts(PasskeyRejected):
    message = "Zbyt wiele prób logowania kluczem dostępu. Spróbuj ponownie za kilka minut."


class LastWayIn(DomainError):
    message = ("To jedyny sposób logowania do Twojego Konta ID. Najpierw ustaw hasło albo "
               "dodaj inny klucz dostępu.")


# --- challenges ------------------------------------------------------------------------------


def binding_of(token: str) -> str:
    """What a challenge is bound to: the SHA-256 of a session id or a sign-in attempt token
    (both high-entropy; only the hash is kept, as for the session itself)."""
    return token_hash(token)


async def _new_challenge(purpose: str, binding: str, identity_id: UUID | None = None) -> bytes:
    challenge = secrets.token_bytes(32)
    # Expired challenges go on the way (an index on expires_at keeps this cheap).
    await WebauthnChallenge.delete().where(WebauthnChallenge.expires_at < datetime.now(UTC))
    await WebauthnChallenge.insert(WebauthnChallenge(
        purpose=purpose, binding=binding, identity=identity_id, challenge=challenge,
        expires_at=datetime.now(UTC) + CHALLENGE_LIFETIME))
    return challenge


async def take_challenge(purpose: str, binding: str, challenge: bytes) -> dict[str, Any]:
    """Spend a challenge: it must exist, be this purpose's, be bound to this session or
    attempt and be younger than 5 minutes. Of any number of parallel calls one gets it."""
    rows = await WebauthnChallenge.raw(
        "DELETE FROM webauthn_challenge WHERE challenge = {} AND purpose = {} AND binding = {} "
        "AND expires_at > now() RETURNING identity", challenge, purpose, binding)
    if not rows:
        raise ChallengeExpired()
    return rows[0]


def _client_challenge(credential: dict[str, Any]) -> bytes:
    """The challenge the browser signed (from clientDataJSON), to find our row by."""
    try:
        data = parse_client_data_json(base64url_to_bytes(credential["response"]["clientDataJSON"]))
    except (KeyError, TypeError, ValueError, WebAuthnException):
        raise PasskeyRejected() from None
    return data.challenge


def _parsed(raw: str) -> dict[str, Any]:
    if not (raw or "").strip():
        raise NeedsJavaScript()
    try:
        credential = json.loads(raw)
    except ValueError:
        raise PasskeyRejected() from None
    if not isinstance(credential, dict) or not isinstance(credential.get("response"), dict):
        raise PasskeyRejected()
    return credential


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PasskeyInfo:
    id: UUID
    name: str
    created_at: datetime
    last_used_at: datetime | None
    authenticator: str  # a known product name, or ""
    synced: bool  # backup eligible: a passkey synced across devices


async def list_for(identity_id: UUID) -> list[PasskeyInfo]:
    rows = await Passkey.select(
        Passkey.id, Passkey.name, Passkey.created_at, Passkey.last_used_at, Passkey.aaguid,
        Passkey.backup_eligible,
    ).where(Passkey.identity == identity_id).order_by(Passkey.created_at)
    return [PasskeyInfo(r["id"], r["name"], r["created_at"], r["last_used_at"],
                        KNOWN_AUTHENTICATORS.get(r["aaguid"], ""), r["backup_eligible"])
            for r in rows]


async def count_for(identity_id: UUID) -> int:
    return await Passkey.count().where(Passkey.identity == identity_id)


def _descriptors(rows: list[dict[str, Any]]) -> list[PublicKeyCredentialDescriptor]:
    known = {t.value for t in AuthenticatorTransport}
    return [PublicKeyCredentialDescriptor(
        id=bytes(r["credential_id"]),
        transports=[AuthenticatorTransport(t) for t in r["transports"] if t in known] or None)
        for r in rows]


async def _credentials_of(identity_id: UUID) -> list[PublicKeyCredentialDescriptor]:
    rows = await Passkey.select(Passkey.credential_id, Passkey.transports).where(
        Passkey.identity == identity_id)
    return _descriptors(rows)


# --- registration ----------------------------------------------------------------------------


def clean_name(raw: object) -> str:
    name = " ".join(raw.split()) if isinstance(raw, str) else ""
    if len(name) > NAME_MAX:
        raise InvalidInput({"name": f"Nazwa może mieć najwyżej {NAME_MAX} znaków."})
    return name


async def registration_options(settings: Settings, scope: Scope) -> str:
    """Options for navigator.credentials.create(), as JSON: a discoverable credential with
    user verification, for this ID, bound to this session."""
    challenge = await _new_challenge(REGISTER, scope.session_hash, scope.identity_id)
    options = generate_registration_options(
        rp_id=settings.webauthn_rp_id, rp_name=settings.brand,
        user_id=scope.identity_id.bytes, user_name=scope.email,
        user_display_name=scope.display_name or scope.email,
        challenge=challenge, timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=await _credentials_of(scope.identity_id),
    )
    return options_to_json(options)


async def register(settings: Settings, scope: Scope, raw_credential: str, raw_name: object,
                   client: Client) -> list[str] | None:
    """Verify the browser's new credential and keep it. Returns new recovery codes when this
    is the ID's first second factor (shown once), else None."""
    name = clean_name(raw_name) or DEFAULT_NAME
    credential = _parsed(raw_credential)
    await take_challenge(REGISTER, scope.session_hash, _client_challenge(credential))
    try:
        verified = verify_registration_response(
            credential=parse_registration_credential_json(credential),
            expected_challenge=_client_challenge(credential),
            expected_rp_id=settings.webauthn_rp_id, expected_origin=settings.origin,
            require_user_verification=True)
    except (WebAuthnException, ValueError, KeyError, TypeError):
        await audit.record("identity:passkey:failure", client=client,
                           identity_id=scope.identity_id, step="register")
        raise PasskeyRejected() from None
    transports = credential["response"].get("transports") or []
    try:
        async with ENGINE.transaction():
            await Passkey.insert(Passkey(
                identity=scope.identity_id, credential_id=verified.credential_id,
                public_key=verified.credential_public_key, sign_count=verified.sign_count,
                backup_eligible=verified.credential_device_type.value == "multi_device",
                backup_state=verified.credential_backed_up,
                transports=[str(t)[:16] for t in transports if isinstance(t, str)][:8],
                aaguid=verified.aaguid, device_type=verified.credential_device_type.value,
                name=name))
            codes = await mfa.recovery_if_none(settings, scope.identity_id)
            await _changed(settings, scope, client, "identity:passkey:add", name=name)
    except asyncpg.UniqueViolationError:
        raise AlreadyRegistered() from None
    return codes


async def _owned(scope: Scope, passkey_id: object) -> dict[str, Any]:
    try:
        parsed = passkey_id if isinstance(passkey_id, UUID) else UUID(str(passkey_id))
    except ValueError:
        raise NotFound() from None
    row = await Passkey.select(Passkey.id, Passkey.name).where(
        (Passkey.id == parsed) & (Passkey.identity == scope.identity_id)).first()
    if row is None:
        raise NotFound()
    return row


async def rename(settings: Settings, scope: Scope, passkey_id: object, raw_name: object,
                 client: Client) -> str:
    row = await _owned(scope, passkey_id)
    name = clean_name(raw_name)
    if not name:
        raise InvalidInput({"name": "Podaj nazwę klucza dostępu."})
    async with ENGINE.transaction():
        await Passkey.update({Passkey.name: name}).where(
            (Passkey.id == row["id"]) & (Passkey.identity == scope.identity_id))
        await _changed(settings, scope, client, "identity:passkey:rename", name=name,
                       before=row["name"])
    return name


async def remove(settings: Settings, scope: Scope, passkey_id: object, client: Client) -> None:
    """Remove a passkey (re-authentication required). Refused when it is the ID's last way
    in; recovery codes go with the last second factor, as for the others."""
    mfa.require_fresh(scope)
    row = await _owned(scope, passkey_id)
    async with ENGINE.transaction():
        # The identity row is the lock: two removals of an ID's last two passkeys queue here.
        rows = await Identity.raw(
            "SELECT password_hash IS NOT NULL AS has_password FROM identity WHERE id = {} "
            "FOR UPDATE", scope.identity_id)
        others = await Passkey.count().where(
            (Passkey.identity == scope.identity_id) & (Passkey.id != row["id"]))
        if not rows[0]["has_password"] and others == 0:
            raise LastWayIn()
        await Passkey.delete().where(
            (Passkey.id == row["id"]) & (Passkey.identity == scope.identity_id))
        await mfa.drop_recovery_if_no_factor(scope.identity_id)
        await _changed(settings, scope, client, "identity:passkey:remove", name=row["name"])


async def _changed(settings: Settings, scope: Scope, client: Client, tag: str,
                   **data: Any) -> None:
    await audit.record(tag, client=client, identity_id=scope.identity_id, **data)
    await mail.queue(settings, scope.email, "mfa_changed", language=scope.language,
                     change=mfa.CHANGES[tag])


# --- signing in ------------------------------------------------------------------------------


async def authentication_options(settings: Settings, purpose: str, binding: str,
                                 identity_id: UUID | None = None,
                                 client: Client | None = None) -> str:
    """Options for navigator.credentials.get(), as JSON. Without an identity (sign-in with no
    password) the browser offers any discoverable passkey for this site; as a second factor
    only the ID's own. ``client``: counted against the per-network limit (public callers)."""
    if client is not None and not await throttle.take(OPTIONS_ADDRESS, client.ip):
        raise TooManyAttempts()
    challenge = await _new_challenge(purpose, binding, identity_id)
    allowed = await _credentials_of(identity_id) if identity_id else []
    options = generate_authentication_options(
        rp_id=settings.webauthn_rp_id, challenge=challenge, timeout=TIMEOUT_MS,
        allow_credentials=allowed, user_verification=UserVerificationRequirement.REQUIRED)
    return options_to_json(options)


@dataclass(frozen=True)
class Assertion:
    identity_id: UUID
    passkey_id: UUID
    email: str


async def verify_assertion(settings: Settings, purpose: str, binding: str,
                           raw_credential: str, client: Client,
                           identity_id: UUID | None = None) -> Assertion:
    """Check an assertion from navigator.credentials.get(): a challenge of ours for this
    purpose and binding (spent here), a passkey we know (of ``identity_id`` when given), a
    valid signature from this origin with user verification, and a counter that rose."""
    credential = _parsed(raw_credential)
    challenge = _client_challenge(credential)
    await take_challenge(purpose, binding, challenge)
    try:
        parsed = parse_authentication_credential_json(credential)
    except (WebAuthnException, ValueError, KeyError, TypeError):
        raise PasskeyRejected() from None
    rows = await Passkey.raw(
        "SELECT p.id, p.identity, p.public_key, p.sign_count, i.email FROM passkey p "
        "JOIN identity i ON i.id = p.identity WHERE p.credential_id = {}", parsed.raw_id)
    row = rows[0] if rows else None
    handle = parsed.response.user_handle
    if row is None or (identity_id is not None and row["identity"] != identity_id) or (
            handle is not None and handle != row["identity"].bytes):
        await audit.record("identity:passkey:failure", client=client,
                           identity_id=identity_id, step=purpose)
        raise PasskeyRejected()
    try:
        # The counter is checked below, as one conditional UPDATE (so 0 here: py_webauthn
        # would refuse a backwards counter too, but could not tell it from other errors).
        verified = verify_authentication_response(
            credential=parsed, expected_challenge=challenge,
            expected_rp_id=settings.webauthn_rp_id, expected_origin=settings.origin,
            credential_public_key=bytes(row["public_key"]), credential_current_sign_count=0,
            require_user_verification=True)
    except WebAuthnException:
        await audit.record("identity:passkey:failure", client=client,
                           identity_id=row["identity"], step=purpose)
        raise PasskeyRejected() from None
    await use_counter(row["id"], row["identity"], verified.new_sign_count,
                      verified.credential_backed_up, client)
    return Assertion(row["identity"], row["id"], row["email"])


async def use_counter(passkey_id: UUID, identity_id: UUID, new_count: int, backed_up: bool,
                      client: Client) -> None:
    """The counter rule: a new count must be above the stored one, unless both are 0 (an
    authenticator that keeps no counter). Anything else is a possible clone: refused and
    recorded. One conditional UPDATE decides, so parallel uses of one count let one in."""
    won = await Passkey.raw(
        "UPDATE passkey SET sign_count = {}, backup_state = {}, last_used_at = now() "
        "WHERE id = {} AND (sign_count < {} OR ({} = 0 AND sign_count = 0)) RETURNING id",
        new_count, backed_up, passkey_id, new_count, new_count)
    if not won:
        await audit.record("identity:passkey:clone_warning", client=client,
                           identity_id=identity_id, passkey=str(passkey_id),
                           presented=new_count)
        raise CloneSuspected()


async def sign_in(settings: Settings, binding: str, raw_credential: str,
                  client: Client) -> Assertion:
    """A complete sign-in with a passkey and no password (user verification is required, so
    the passkey is two factors in one: possession and the person's PIN or biometrics)."""
    reservation = await throttle.reserve((SIGN_IN_ADDRESS, client.ip))
    if not reservation:
        await audit.record("identity:login:throttled", client=client, method="passkey")
        raise TooManyAttempts()
    found = await verify_assertion(settings, LOGIN, binding, raw_credential, client)
    await throttle.refund(*reservation.counted)  # a right one is given back
    await audit.record("identity:login:success", client=client, identity_id=found.identity_id,
                       method="passkey")
    return found


async def complete_second_factor(settings: Settings, raw_attempt: str | None,
                                 raw_credential: str, client: Client) -> mfa.Attempt:
    """The passkey as the second step after the password (or a step-up)."""
    current = await mfa.attempt(raw_attempt)
    if "passkey" not in current.methods:
        raise mfa.FactorMissing()
    await verify_assertion(settings, SECOND_FACTOR, binding_of(raw_attempt or ""),
                           raw_credential, client, identity_id=current.identity_id)
    return await mfa.spend_attempt(raw_attempt or "", current, "passkey", client)
