"""Single logout: when a portal session ends, every application that signed in through it is
told over the back channel (OpenID Connect Back-Channel Logout 1.0), and RP-initiated logout
(the end-session endpoint) ends the portal session.

The notices are durable: queued in the transaction that ends the session (``logout_notice``)
and sent by the background work of any instance (``deliver_due``), with retries.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.errors import JoseError

from portal.services import oidc, oidc_clients, oidc_keys
from portal.settings import Settings
from portal.tables import LogoutNotice, OAuthGrant, OAuthLogin

log = logging.getLogger(__name__)
EVENT = "http://schemas.openid.net/event/backchannel-logout"


def listener(settings: Settings):
    """The sessions.ENDED_LISTENERS entry: in the caller's transaction (the one that ends the
    sessions), find whom to tell and queue a notice for each; ``deliver_due`` sends them, so
    a slow or unreachable application never slows the person's request, and neither a
    restart nor a database failover loses a notice."""

    async def sessions_ended(hashes: list[str]) -> None:
        rows = await OAuthLogin.select(
            OAuthLogin.identity, OAuthLogin.session_hash, OAuthLogin.sid,
            OAuthLogin.client.client_id.as_alias("client_id"),
            OAuthLogin.client.backchannel_logout_uri.as_alias("uri"),
        ).where(OAuthLogin.session_hash.is_in(hashes))
        if not rows:
            return  # no application signed in through these sessions (tokens need a login)
        await OAuthLogin.delete().where(OAuthLogin.session_hash.is_in(hashes))
        # Grants that ride on the session end with it; offline_access grants survive.
        await OAuthGrant.update({OAuthGrant.revoked_at: datetime.now(UTC)}).where(
            OAuthGrant.session_hash.is_in(hashes)
            & OAuthGrant.revoked_at.is_null()
            & OAuthGrant.scope.not_like("%offline_access%"))
        notices = [
            LogoutNotice(client_id=row["client_id"], uri=row["uri"],
                         subject=str(row["identity"]), sid=row["sid"],
                         next_attempt_at=datetime.now(UTC))
            for row in rows if row["uri"]
        ]
        if notices:
            await LogoutNotice.insert(*notices)

    return sessions_ended


def logout_token(settings: Settings, key, row: dict[str, Any]) -> str:
    now = int(datetime.now(UTC).timestamp())
    claims = {
        "iss": oidc.issuer(settings), "aud": row["client_id"], "iat": now, "exp": now + 120,
        "jti": secrets.token_hex(16), "sub": row["subject"], "sid": row["sid"],
        "events": {EVENT: {}},
    }
    alg = row.get("alg") or oidc_keys.ALGORITHM
    return jwt.encode({"alg": alg, "kid": key.kid, "typ": "logout+jwt"}, claims, key,
                      algorithms=[alg])


#: A notice is retried with a growing wait (10 s, 20 s, ... up to an hour) for a day, then
#: given up: by then the application's own session has long expired.
GIVE_UP_AFTER = timedelta(days=1)
MAX_BACKOFF = timedelta(hours=1)
#: As for mail: a claimed notice is another instance's only if its sender died.
CLAIM_FOR = timedelta(minutes=2)

_CLAIM = """
UPDATE logout_notice SET claimed_until = now() + {}::interval
WHERE id IN (
    SELECT id FROM logout_notice
    WHERE sent_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= now()
      AND (claimed_until IS NULL OR claimed_until < now())
    ORDER BY next_attempt_at LIMIT {} FOR UPDATE SKIP LOCKED)
RETURNING id, client_id, uri, subject, sid, attempts, created_at,
    -- Signed like the client's ID tokens (Back-Channel Logout 1.0 §2.4).
    (SELECT c.id_token_signed_response_alg FROM oauth_client c
     WHERE c.client_id = logout_notice.client_id) AS alg
"""


def backoff(attempts: int) -> timedelta:
    return min(timedelta(seconds=10 * 2 ** min(attempts, 12)), MAX_BACKOFF)


async def deliver_due(settings: Settings, batch: int = 50) -> int:
    """Send the notices that are due (claimed first, as the mail outbox does); return how many
    were delivered. An application that answers 2xx-4xx has it (a 4xx will not change by
    retrying); a 5xx or no answer is retried later."""
    rows = await LogoutNotice.raw(_CLAIM, CLAIM_FOR, batch)
    if not rows:
        return 0
    keys = {alg: await oidc_keys.current(settings.secret_key, alg)
            for alg in {row["alg"] or oidc_keys.ALGORITHM for row in rows}}
    delivered = 0
    async with httpx.AsyncClient(timeout=5, follow_redirects=False) as http:
        for row in rows:
            error = ""
            try:
                response = await http.post(
                    row["uri"], data={"logout_token": logout_token(
                        settings, keys[row["alg"] or oidc_keys.ALGORITHM], row)})
            except httpx.HTTPError as failure:
                error = type(failure).__name__
            else:
                if response.status_code >= 500:
                    error = f"HTTP {response.status_code}"
            moment = datetime.now(UTC)
            if not error:
                delivered += 1
                values = {LogoutNotice.sent_at: moment, LogoutNotice.claimed_until: None}
            else:
                log.warning("back-channel logout to %s failed (attempt %d): %s", row["uri"],
                            row["attempts"] + 1, error)
                values = {LogoutNotice.attempts: row["attempts"] + 1,
                          LogoutNotice.last_error: error[:500],
                          LogoutNotice.claimed_until: None,
                          LogoutNotice.next_attempt_at: moment + backoff(row["attempts"])}
                if moment - row["created_at"] > GIVE_UP_AFTER:
                    values[LogoutNotice.gave_up_at] = moment
            await LogoutNotice.update(values).where(LogoutNotice.id == row["id"])
    return delivered


async def settle(settings: Settings) -> None:
    """Deliver every notice that is due now (tests; the background loop does it otherwise)."""
    while await deliver_due(settings):
        pass


async def check_end_session(settings: Settings, id_token_hint: str | None,
                            post_logout_redirect_uri: str | None, client_id: str | None
                            ) -> dict[str, Any] | None:
    """Validate an RP-initiated logout request; returns the client (or None when the request
    names none). A post-logout URI must be registered for the client named by the hint."""
    hinted = None
    if id_token_hint:
        try:
            decoded = jwt.decode(id_token_hint, await oidc_keys.key_set(),
                                 algorithms=list(oidc_keys.ALGORITHMS))
        except (JoseError, ValueError):
            raise oidc.OAuthError("invalid_request", "id_token_hint is not ours") from None
        if decoded.claims.get("iss") != oidc.issuer(settings):
            raise oidc.OAuthError("invalid_request", "id_token_hint is not ours")
        audience = decoded.claims.get("aud")
        hinted = audience[0] if isinstance(audience, list) else audience
    if client_id and hinted and client_id != hinted:
        raise oidc.OAuthError("invalid_request", "client_id does not match id_token_hint")
    row = await oidc_clients.get_client(client_id or hinted)
    if post_logout_redirect_uri:
        if row is None or post_logout_redirect_uri not in row["post_logout_redirect_uris"]:
            raise oidc.OAuthError("invalid_request", "post_logout_redirect_uri not registered")
    return row


def after_logout(uri: str | None, state: str | None) -> str | None:
    if not uri:
        return None
    return uri + (("&" if "?" in uri else "?") + urlencode({"state": state}) if state else "")
