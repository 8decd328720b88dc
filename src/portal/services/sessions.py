"""Server-side sessions: the cookie holds a random id, the table holds its hash.

A session ends when it is deleted (log out, log out elsewhere, password reset), when it has
been idle too long, or when its absolute lifetime is over. Deleting the row is instant
revocation: the next request with the old cookie finds nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from portal.db import ENGINE
from portal.security.permissions import DELEGATE
from portal.security.tokens import new_token, token_hash
from portal.services import audit, delegation_access
from portal.services.paging import Keyed, decode_cursor, encode_cursor, page_count, parse_page
from portal.services.scope import AccountRef, Client, Scope
from portal.settings import Settings
from portal.tables import Membership, Session

#: last_seen_at is written at most this often, so a page view is not a write every time.
TOUCH_EVERY = timedelta(seconds=60)

#: Called with the hashes of sessions that just ended (single sign-on logs the apps out).
ENDED_LISTENERS: dict[str, Callable[[list[str]], Awaitable[None]]] = {}


async def _ended(hashes: list[str]) -> None:
    if hashes:
        for listener in ENDED_LISTENERS.values():
            await listener(hashes)


ended = _ended  # services/cleanup.py ends the expired sessions it deletes


@dataclass(frozen=True)
class Lifetimes:
    idle: timedelta
    absolute: timedelta

    @classmethod
    def of(cls, settings: Settings) -> Lifetimes:
        return cls(idle=timedelta(seconds=settings.session_idle_seconds),
                   absolute=timedelta(seconds=settings.session_absolute_seconds))


_START = """
WITH started AS (
    INSERT INTO session (id, created_at, id_hash, identity, account_public_id, last_seen_at,
                         expires_at, ip, user_agent, mfa_at, amr, reauth_at)
    VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}::varchar[], {})
    RETURNING identity, created_at)
UPDATE identity SET last_login_at = started.created_at FROM started
WHERE identity.id = started.identity
"""


def now() -> datetime:
    return datetime.now(UTC)


async def start(
    identity_id: UUID,
    client: Client,
    lifetimes: Lifetimes,
    account_public_id: str | None = None,
    amr: tuple[str, ...] = ("pwd",),
) -> str:
    """Create a session and return the raw id for the cookie (never stored). ``amr`` says how
    the person proved it (RFC 8176): "pwd", plus "otp" (app or email code) or "kba"
    (a recovery code) after a second factor; "hwk" and "user" for a passkey (possession of
    a key and the authenticator's check of the person), alone or after the password."""
    raw = new_token()
    moment = now()
    # Every completed sign-in starts here (password, second factor, an accepted invitation,
    # a set password): "Ostatnie logowanie" is recorded in one place for all of them, in the
    # statement that makes the session (one round trip).
    await Session.raw(
        _START, uuid4(), moment, token_hash(raw), identity_id, account_public_id, moment,
        moment + lifetimes.absolute, client.ip[:64], client.user_agent[:512],
        moment if len(amr) > 1 else None, list(amr), moment)
    return raw


_LOAD = """
SELECT s.id, s.last_seen_at, s.expires_at, s.account_public_id, s.reauth_at,
       i.id AS identity_id, i.email, i.is_staff, i.last_account_id,
       i.totp_confirmed_at IS NOT NULL AS has_app, i.mfa_email_enabled AS has_email,
       EXISTS (SELECT 1 FROM passkey k WHERE k.identity = i.id) AS has_passkey,
       coalesce(p.language, '') AS language,
       trim(coalesce(p.first_name, '') || ' ' || coalesce(p.last_name, '')) AS display_name,
       a.id AS account_id, a.public_id, a.name AS account_name, a.mfa_policy,
       a.is_accounting_office, m.role
FROM session s
JOIN identity i ON i.id = s.identity
LEFT JOIN profile p ON p.identity = i.id
LEFT JOIN account a ON a.public_id = coalesce(s.account_public_id, i.last_account_id)
LEFT JOIN membership m ON m.account = a.id AND m.identity = i.id
WHERE s.id_hash = {}
"""


async def load(raw: str, lifetimes: Lifetimes) -> Scope | None:
    """The Scope for a session cookie, or None when it is unknown, idle or expired."""
    id_hash = token_hash(raw)
    rows = await Session.raw(_LOAD, id_hash)
    if not rows:
        return None
    row = rows[0]
    moment = now()
    if row["expires_at"] <= moment or row["last_seen_at"] + lifetimes.idle <= moment:
        await Session.delete().where(Session.id_hash == id_hash)
        await _ended([id_hash])
        return None
    if moment - row["last_seen_at"] >= TOUCH_EVERY:
        await Session.update({Session.last_seen_at: moment}).where(Session.id_hash == id_hash)
    delegated = None
    if row["role"] is None and row["account_id"] is not None:
        # No membership here: an accounting office's delegation may still let the person in.
        delegated = await delegation_access.find(row["identity_id"], client_id=row["account_id"])
        if delegated is not None:
            row = {**row, "role": DELEGATE}
    if row["role"] is None:
        row = {**row, **await _first_membership(row["identity_id"])}
    return Scope.build(
        session_hash=id_hash,
        identity_id=row["identity_id"],
        email=row["email"],
        language=row["language"],
        is_staff=row["is_staff"],
        display_name=row["display_name"],
        account=(
            AccountRef(row["account_id"], row["public_id"], row["account_name"],
                       bool(row.get("is_accounting_office")))
            if row["role"]
            else None
        ),
        delegation=delegated.delegation if delegated else None,
        role=row["role"],
        reauth_at=row["reauth_at"],
        mfa_factors=frozenset(
            factor for factor, on in (("app", row["has_app"]), ("email", row["has_email"]),
                                      ("passkey", row["has_passkey"])) if on
        ),
        account_mfa_policy=(row["mfa_policy"] or "none") if row["role"] else "none",
    )


async def _first_membership(identity_id: UUID) -> dict[str, Any]:
    """When the session's account is gone (or never set), fall back to the first account."""
    rows = (
        await Membership.select(
            Membership.role,
            Membership.account.id.as_alias("account_id"),
            Membership.account.public_id.as_alias("public_id"),
            Membership.account.name.as_alias("account_name"),
            Membership.account.mfa_policy.as_alias("mfa_policy"),
            Membership.account.is_accounting_office.as_alias("is_accounting_office"),
        )
        .where(Membership.identity == identity_id)
        .order_by(Membership.account.name)
        .limit(1)
    )
    return rows[0] if rows else {"role": None}


async def seconds_left(scope: Scope, lifetimes: Lifetimes) -> int:
    row = (
        await Session.select(Session.last_seen_at, Session.expires_at)
        .where(Session.id_hash == scope.session_hash)
        .first()
    )
    if row is None:
        return 0
    end = min(row["expires_at"], row["last_seen_at"] + lifetimes.idle)
    return max(0, int((end - now()).total_seconds()))


async def mark_reauthenticated(scope: Scope) -> None:
    await Session.update({Session.reauth_at: now()}).where(
        Session.id_hash == scope.session_hash
    )


async def rotate(scope: Scope) -> str:
    """A new session id for the same session (after a privilege change); returns the raw id."""
    raw = new_token()
    await Session.update({Session.id_hash: token_hash(raw)}).where(
        Session.id_hash == scope.session_hash
    )
    return raw


async def extend(scope: Scope) -> None:
    await Session.update({Session.last_seen_at: now()}).where(Session.id_hash == scope.session_hash)


async def end(raw_or_hash: str, *, hashed: bool = False) -> None:
    id_hash = raw_or_hash if hashed else token_hash(raw_or_hash)
    await Session.delete().where(Session.id_hash == id_hash)
    await _ended([id_hash])


async def sign_out(scope: Scope, client: Client) -> None:
    async with ENGINE.transaction():
        await end(scope.session_hash, hashed=True)
        await audit.record("identity:logout:success", client=client, identity_id=scope.identity_id)


async def end_others(scope: Scope, client: Client) -> int:
    """ "Log out elsewhere": every session of this person but the current one."""
    async with ENGINE.transaction():
        ended = await end_all(scope.identity_id, keep_hash=scope.session_hash)
        await audit.record(
            "identity:session:revoke_others",
            client=client,
            identity_id=scope.identity_id,
            sessions_ended=ended,
        )
    return ended


async def end_by_id(scope: Scope, session_id: UUID, client: Client) -> bool:
    """End one of this person's sessions; another person's session id finds nothing."""
    async with ENGINE.transaction():
        ended = await end_one(scope.identity_id, session_id)
        if ended:
            await audit.record(
                "identity:session:revoke", client=client, identity_id=scope.identity_id
            )
    return ended


async def end_all(identity_id: UUID, *, keep_hash: str | None = None) -> int:
    query = Session.delete().where(Session.identity == identity_id)
    if keep_hash:
        query = query.where(Session.id_hash != keep_hash)
    rows = await query.returning(Session.id_hash)
    await _ended([row["id_hash"] for row in rows])
    return len(rows)


async def end_one(identity_id: UUID, session_id: UUID) -> bool:
    rows = await (
        Session.delete()
        .where((Session.identity == identity_id) & (Session.id == session_id))
        .returning(Session.id_hash)
    )
    await _ended([row["id_hash"] for row in rows])
    return bool(rows)


async def details(scope: Scope) -> dict[str, Any] | None:
    """When and how this session's person signed in (for single sign-on tokens)."""
    return await Session.select(Session.created_at, Session.amr, Session.mfa_at).where(
        Session.id_hash == scope.session_hash).first()


#: Sessions per page on /security: a person (or a script signing in) may have thousands.
SESSIONS_PER_PAGE = 20


@dataclass(frozen=True)
class SessionPage(Keyed):
    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int
    per_page: int = SESSIONS_PER_PAGE
    #: The next page's cursor (this page's last session); "previous" goes by number.
    next_cursor: str = ""
    prev_cursor: str = ""

    def link_tail(self, key: str) -> str:
        return "&sessions_after=" + self.next_cursor if key == "next" and self.next_cursor \
            else ""


_SESSION_COLUMNS = "SELECT id, id_hash, ip, user_agent, created_at, last_seen_at FROM session "


async def page_for(scope: Scope, page: object = None, after: object = None) -> SessionPage:
    """One page of this person's sessions: the current one first, then the most recently
    seen (two queries, a count and the page, however many sessions there are). ``after``, the
    cursor of the "next" link, reads the page after the previous page's last session along
    the (identity, last_seen_at, id) index instead of skipping the pages before it."""
    total = await Session.count().where(Session.identity == scope.identity_id)
    pages = page_count(total, SESSIONS_PER_PAGE)
    current = min(parse_page(page), pages)
    edge = decode_cursor(after, "sessions", (datetime, UUID)) if current > 1 else None
    rows = None
    if edge is not None:
        rows = await Session.raw(
            _SESSION_COLUMNS + "WHERE identity = {} AND id_hash <> {} "
            "AND (last_seen_at, id) < ({}, {}) ORDER BY last_seen_at DESC, id DESC LIMIT {}",
            scope.identity_id, scope.session_hash, edge[0], edge[1], SESSIONS_PER_PAGE)
        if len(rows) != min(SESSIONS_PER_PAGE, total - (current - 1) * SESSIONS_PER_PAGE):
            rows = None  # the sessions changed since: count from the start
    if rows is None:
        rows = await Session.raw(
            _SESSION_COLUMNS + "WHERE identity = {} "
            "ORDER BY id_hash = {} DESC, last_seen_at DESC, id DESC LIMIT {} OFFSET {}",
            scope.identity_id, scope.session_hash, SESSIONS_PER_PAGE,
            (current - 1) * SESSIONS_PER_PAGE,
        )
    last = rows[-1] if rows else None
    keyed = last is not None and current < pages and last["id_hash"] != scope.session_hash
    return SessionPage(rows=rows, total=total, page=current, pages=pages,
                       next_cursor=encode_cursor("sessions", [last["last_seen_at"], last["id"]])
                       if keyed else "")


async def choose_account(scope: Scope, public_id: str) -> None:
    await Session.update({Session.account_public_id: public_id}).where(
        Session.id_hash == scope.session_hash
    )
