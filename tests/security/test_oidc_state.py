"""OIDC state and nonce (issue 19, finding 10): a value over the limit is refused with
invalid_request, never silently cut (a cut state fails the client's own check with no word
why, and a cut nonce would be signed into the ID token)."""

from __future__ import annotations

from portal.services.oidc_authorization import MAX_STATE
from tests.oidc.conftest import (
    authorize_url,
    code_for,
    decode,
    exchange,
    pkce,
    query_of,
    register,
    signed_in,
)


async def test_an_over_long_state_or_nonce_is_refused_not_cut(client):
    app = await register()
    await signed_in(client)
    _, challenge = pkce()
    for extra in ({"state": "s" * (MAX_STATE + 1)}, {"nonce": "n" * (MAX_STATE + 1)}):
        response = await client.get(authorize_url(app, challenge, **extra))
        assert response.status_code == 302
        assert response.headers["location"].startswith(app.redirect_uri)
        query = query_of(response.headers["location"])
        assert query["error"] == "invalid_request"
        assert "code" not in query
        assert "state" not in query  # neither cut nor echoed at this length


async def test_a_state_and_nonce_at_the_limit_come_back_whole(client):
    app = await register()
    await signed_in(client)
    state, nonce = "s" * (MAX_STATE - 1) + "!", "n" * (MAX_STATE - 1) + "?"
    _, challenge = pkce()
    response = await client.get(authorize_url(app, challenge, state=state, nonce=nonce))
    assert query_of(response.headers["location"])["state"] == state
    code, verifier = await code_for(client, app, state=state, nonce=nonce)
    tokens = (await exchange(client, app, code, verifier)).json()
    assert (await decode(client, tokens["id_token"])).claims["nonce"] == nonce
