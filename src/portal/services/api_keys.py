"""API keys of an account: made by owners and admins (after re-authentication), shown once,
stored as a hash, limited to scopes and optionally to some companies, revoked at once.

A secret looks like ``pak_<key id>_<random>``: the fixed ``pak_`` prefix lets secret scanners
spot a leaked key, the 12-hex key id names it in lists and finds its row, and 256 random bits
make it unguessable. Only the SHA-256 of the whole secret is stored.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from portal.db import ENGINE
from portal.i18n import end_of_day, today
from portal.security.permissions import Permission
from portal.security.tokens import new_hex_id, new_token, token_hash
from portal.services import audit, companies, mfa, tenancy, throttle
from portal.services.errors import Forbidden, InvalidInput
from portal.services.scope import AccountRef, Client, Scope
from portal.tables import ApiKey

PREFIX = "pak_"
SCOPES = ("read", "write")
_SECRET = re.compile(r"^pak_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
LAST_USED_EVERY = timedelta(minutes=1)
#: Wrong secrets per client address, with the same doubling waits as sign-in. Deliberately
#: no limit per key id: the id is in the secret's prefix and in lists and logs, so such a
#: limit would let anyone who saw it switch an integration off from elsewhere, while 256
#: random bits need no protection from guessing (this bounds the probing, not the odds).
GUESSES_PER_ADDRESS = throttle.Limit("api:address", 30, timedelta(minutes=5), by_network=True)

READ_PERMISSIONS = frozenset({Permission.ACCOUNT_VIEW, Permission.COMPANY_VIEW,
                              Permission.PEOPLE_VIEW, Permission.AUDIT_VIEW})
WRITE_PERMISSIONS = READ_PERMISSIONS | {Permission.COMPANY_EDIT}


class NotAllowed(Forbidden):
    message = "Kluczami API zarządzają właściciele i administratorzy konta."


class InvalidKey(Exception):
    """Unknown, malformed, expired or revoked: all the same to the caller (401)."""


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__("rate limited")
        self.retry_after = retry_after


def _require(scope: Scope) -> None:
    if not scope.can(Permission.API_KEY_MANAGE):
        raise NotAllowed()


async def listing(scope: Scope) -> list[dict[str, Any]]:
    _require(scope)
    return await tenancy.select(
        ApiKey, scope, ApiKey.id, ApiKey.name, ApiKey.key_id, ApiKey.scopes, ApiKey.company_ids,
        ApiKey.created_at, ApiKey.expires_at, ApiKey.revoked_at, ApiKey.last_used_at,
        ApiKey.created_by.email.as_alias("creator"),
    ).order_by(ApiKey.created_at, ascending=False)


def validate(values: dict[str, Any], company_choices: set[UUID]) -> dict[str, Any]:
    errors = {}
    name = (values.get("name") or "").strip()
    if not name:
        errors["name"] = "Podaj nazwę klucza, np. „Integracja z księgowością”."
    elif len(name) > 100 or any(ord(ch) < 32 for ch in name):
        errors["name"] = "Nazwa może mieć najwyżej 100 znaków, bez znaków sterujących."
    scopes = [s for s in values.get("scopes") or [] if s in SCOPES]
    if "read" not in scopes:
        errors["scopes"] = "Klucz musi mieć co najmniej odczyt."
    companies: list[UUID] = []
    for raw in values.get("company_ids") or []:
        parsed = tenancy.parse_id(raw)
        if parsed is None or parsed not in company_choices:
            errors["company_ids"] = "Wybierz firmy z listy."
            break
        companies.append(parsed)
    expires_at = None
    raw_date = (values.get("expires_on") or "").strip()
    if raw_date:
        try:
            day = date.fromisoformat(raw_date)
        except ValueError:
            errors["expires_on"] = "Podaj datę w formacie RRRR-MM-DD."
        else:
            if day <= today():
                errors["expires_on"] = "Data wygaśnięcia musi być w przyszłości."
            elif day > today() + timedelta(days=3 * 366):
                errors["expires_on"] = "Klucz może być ważny najwyżej 3 lata."
            else:
                expires_at = end_of_day(day)
    if errors:
        raise InvalidInput(errors)
    return {"name": name, "scopes": scopes, "company_ids": companies, "expires_at": expires_at}


async def company_choices(scope: Scope, query: str | None = None,
                          chosen: list[str] | None = None) -> companies.Picker:
    """The companies the form offers (a page of them, searchable, the chosen ones kept)."""
    return await companies.picker(scope, query, chosen or [])


async def create(scope: Scope, values: dict[str, Any], client: Client) -> tuple[dict, str]:
    """Make a key; returns its row and the secret (shown once, never stored)."""
    _require(scope)
    mfa.require_fresh(scope)
    # Any company of the account may be chosen, whether or not the form's page listed it.
    choices = await companies.existing(scope, [
        parsed for raw in values.get("company_ids") or []
        if (parsed := tenancy.parse_id(raw)) is not None][:10_000])
    clean = validate(values, choices)
    account_id = tenancy.account_id(scope)
    key_id = new_hex_id(12)
    secret = f"{PREFIX}{key_id}_{new_token(32)}"
    async with ENGINE.transaction():
        row = (await ApiKey.insert(ApiKey(
            account=account_id, key_id=key_id, secret_hash=token_hash(secret),
            created_by=scope.identity_id, **clean,
        )).returning(ApiKey.id, ApiKey.key_id, ApiKey.name))[0]
        await audit.record("api_key:key:create", client=client, identity_id=scope.identity_id,
                           account_id=account_id, key_id=key_id, name=clean["name"],
                           scopes=",".join(clean["scopes"]))
    return row, secret


async def revoke(scope: Scope, key_row_id: object, client: Client) -> dict[str, Any]:
    _require(scope)
    row = await tenancy.get(ApiKey, scope, key_row_id, ApiKey.id, ApiKey.key_id,
                            ApiKey.name, ApiKey.revoked_at)
    if row["revoked_at"] is None:
        async with ENGINE.transaction():
            await tenancy.update(ApiKey, scope, {ApiKey.revoked_at: datetime.now(UTC)}).where(
                ApiKey.id == row["id"])
            await audit.record("api_key:key:revoke", client=client,
                               identity_id=scope.identity_id,
                               account_id=tenancy.account_id(scope), key_id=row["key_id"])
    return row


# --- authenticating API requests -------------------------------------------------------------

# The key and, in the same round trip, whether the caller's address is waiting after too
# many wrong secrets (a row even for an unknown key id, so both cost the same).
_LOOKUP = """
SELECT g.waiting, k.id, k.key_id, k.secret_hash, k.scopes, k.company_ids, k.created_by,
       k.expires_at, k.revoked_at, k.last_used_at, a.id AS account_id, a.public_id,
       a.name AS account_name
FROM (SELECT coalesce((SELECT blocked_until > now() FROM throttle WHERE key = {}), false)
             AS waiting) g
LEFT JOIN (api_key k JOIN account a ON a.id = k.account) ON k.key_id = {}
"""


@dataclass(frozen=True)
class Principal:
    scope: Scope
    key_id: str
    scopes: tuple[str, ...]


async def authenticate(secret: str, per_minute: int = 600,
                       address: str | None = None) -> Principal:
    """The API caller behind ``secret``: a Scope in the key's account with the key's rights.
    ``per_minute`` requests per key are allowed, counted across every app process.

    With an ``address`` (the API guard always gives the client's), at most
    GUESSES_PER_ADDRESS wrong secrets from it are answered as wrong; past that it waits, and
    even a right secret from it is refused (429) without being compared. The comparison is a
    SHA-256, not an expensive check, so unlike a password it is not reserved beforehand: a
    wrong secret is counted, atomically, before its answer, and whether the address may go on
    is read with the key. Parallel guesses therefore get no more "wrong" answers than the
    limit, while an integration's own parallel requests never count against it. None is for
    in-process callers that guess nothing (bench)."""
    match = _SECRET.match(secret or "")
    if not match:
        raise InvalidKey()
    guess = (GUESSES_PER_ADDRESS, address or "")
    row = (await ApiKey.raw(_LOOKUP, GUESSES_PER_ADDRESS.key(guess[1]), match.group(1)))[0]
    if address is not None and row["waiting"]:
        raise RateLimited(await throttle.retry_after(*guess))
    expected = row["secret_hash"] or "0" * 64
    if not hmac.compare_digest(token_hash(secret), expected) or row["id"] is None:
        if address is not None and not await throttle.reserve(guess):
            raise RateLimited(await throttle.retry_after(*guess))  # waiting since the read
        raise InvalidKey()
    now = datetime.now(UTC)
    if row["revoked_at"] is not None or (row["expires_at"] and row["expires_at"] <= now):
        raise InvalidKey()
    retry_after = await throttle.rate(f"api:key:{row['key_id']}", per_minute,
                                      timedelta(minutes=1))
    if retry_after is not None:
        raise RateLimited(retry_after)
    if row["last_used_at"] is None or now - row["last_used_at"] >= LAST_USED_EVERY:
        # At most one write a minute per key, not one per request.
        await ApiKey.update({ApiKey.last_used_at: now}).where(ApiKey.id == row["id"])
    scopes = tuple(row["scopes"] or ())
    scope = Scope(
        session_hash=f"api:{row['key_id']}",
        identity_id=row["created_by"] or UUID(int=0),
        email="",
        language="",
        account=AccountRef(row["account_id"], row["public_id"], row["account_name"]),
        role="admin",
        permissions=WRITE_PERMISSIONS if "write" in scopes else READ_PERMISSIONS,
        company_ids=frozenset(row["company_ids"]) if row["company_ids"] else None,
        api_key_id=row["key_id"],
    )
    return Principal(scope=scope, key_id=row["key_id"], scopes=scopes)
