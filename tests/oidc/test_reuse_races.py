"""Reuse detection cannot be outrun (issue 19, finding 6).

An authorization code or a refresh token presented twice at the same moment: one use wins, the
other is a reuse, and the reuse must revoke everything the grant holds, including what the
winner stores while the reuse is being handled. Each round runs the legitimate use and the
reuse concurrently (the reuse shifted by a few event-loop turns so that every interleaving of
their database statements comes up over the rounds) and then checks that no token of the
family still works: not the winner's refresh token, not its access token at userinfo.
"""

from __future__ import annotations

import asyncio

from tests.oidc.conftest import code_for, exchange, signed_in

ROUNDS = 20


async def _after(turns: int, work):
    for _ in range(turns):
        await asyncio.sleep(0)
    return await work


async def _refresh(client, app, refresh_token: str):
    return await client.raw.post("/oauth/token", auth=app.basic(), data={
        "grant_type": "refresh_token", "refresh_token": refresh_token})


async def _userinfo(client, access_token: str):
    return await client.raw.get("/oauth/userinfo",
                                headers={"Authorization": f"Bearer {access_token}"})


async def _survivors(client, app, winner: dict) -> list[str]:
    """What still works of the winner's tokens (nothing should)."""
    alive = []
    if (await _refresh(client, app, winner["refresh_token"])).status_code == 200:
        alive.append("refresh_token")
    if (await _userinfo(client, winner["access_token"])).status_code == 200:
        alive.append("access_token")
    return alive


async def test_a_code_reused_while_it_is_exchanged_revokes_what_the_winner_got(
        client, app_client):
    await signed_in(client)
    survived = {}
    for round_ in range(ROUNDS):
        code, verifier = await code_for(client, app_client)
        first, second = await asyncio.gather(
            exchange(client, app_client, code, verifier),
            _after(round_ % 10, exchange(client, app_client, code, verifier)))
        assert sorted([first.status_code, second.status_code]) == [200, 400], round_
        winner = (first if first.status_code == 200 else second).json()
        alive = await _survivors(client, app_client, winner)
        if alive:
            survived[round_] = alive
    assert survived == {}, f"tokens outlived the code's reuse in rounds {survived}"


async def test_a_refresh_token_reused_while_it_rotates_revokes_the_new_one(client, app_client):
    await signed_in(client)
    survived = {}
    for round_ in range(ROUNDS):
        code, verifier = await code_for(client, app_client)
        tokens = (await exchange(client, app_client, code, verifier)).json()
        first, second = await asyncio.gather(
            _refresh(client, app_client, tokens["refresh_token"]),
            _after(round_ % 10, _refresh(client, app_client, tokens["refresh_token"])))
        assert sorted([first.status_code, second.status_code]) == [200, 400], round_
        winner = (first if first.status_code == 200 else second).json()
        alive = await _survivors(client, app_client, winner)
        if (await _userinfo(client, tokens["access_token"])).status_code == 200:
            alive.append("first access_token")
        if alive:
            survived[round_] = alive
    assert survived == {}, f"tokens outlived the refresh token's reuse in rounds {survived}"
