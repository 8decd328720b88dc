"""Single logout: when a portal session ends, every application that signed in through it is
told over the back channel (OpenID Connect Back-Channel Logout 1.0), and RP-initiated logout
(the end-session endpoint) ends the portal session.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.errors import JoseError

from portal.services import oidc, oidc_clients, oidc_keys
from portal.settings import Settings
from portal.tables import OAuthGrant, OAuthLogin

log = logging.getLogger(__name__)
EVENT = "http://schemas.openid.net/event/backchannel-logout"
_pending: set[asyncio.Task] = set()


def listener(settings: Settings):
    """The sessions.ENDED_LISTENERS entry: find whom to tell (in the caller's transaction),
    then deliver outside it, so a slow application never slows the person's request."""

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
        targets = [row for row in rows if row["uri"]]
        if not targets:
            return
        key = await oidc_keys.current(settings.secret_key)
        messages = [(row["uri"], logout_token(settings, key, row)) for row in targets]
        task = asyncio.create_task(_deliver(messages))
        _pending.add(task)
        task.add_done_callback(_pending.discard)

    return sessions_ended


def logout_token(settings: Settings, key, row: dict[str, Any]) -> str:
    now = int(datetime.now(UTC).timestamp())
    claims = {
        "iss": oidc.issuer(settings), "aud": row["client_id"], "iat": now, "exp": now + 120,
        "jti": secrets.token_hex(16), "sub": str(row["identity"]), "sid": row["sid"],
        "events": {EVENT: {}},
    }
    return jwt.encode({"alg": oidc_keys.ALGORITHM, "kid": key.kid, "typ": "logout+jwt"},
                      claims, key)


async def _deliver(messages: list[tuple[str, str]]) -> None:
    async with httpx.AsyncClient(timeout=5, follow_redirects=False) as http:
        for uri, token in messages:
            for attempt in range(3):
                try:
                    response = await http.post(uri, data={"logout_token": token})
                except httpx.HTTPError as error:
                    log.warning("back-channel logout to %s failed: %s", uri,
                                type(error).__name__)
                else:
                    if response.status_code < 500:
                        break
                await asyncio.sleep(0.5 * (attempt + 1))


async def settle() -> None:
    """Wait for back-channel deliveries in flight (tests, shutdown)."""
    if _pending:
        await asyncio.gather(*list(_pending), return_exceptions=True)


async def check_end_session(settings: Settings, id_token_hint: str | None,
                            post_logout_redirect_uri: str | None, client_id: str | None
                            ) -> dict[str, Any] | None:
    """Validate an RP-initiated logout request; returns the client (or None when the request
    names none). A post-logout URI must be registered for the client named by the hint."""
    hinted = None
    if id_token_hint:
        try:
            decoded = jwt.decode(id_token_hint, await oidc_keys.key_set(),
                                 algorithms=[oidc_keys.ALGORITHM])
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
