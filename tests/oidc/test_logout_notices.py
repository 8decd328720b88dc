"""Back-channel logout notices are durable (issue 16): queued in the transaction that ends
the session, retried with backoff while the application fails, delivered once however many
instances send."""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from portal.db import ENGINE
from portal.services import oidc_logout, sessions
from portal.tables import LogoutNotice, OAuthClient, OAuthLogin
from portal.testing import factories
from tests.oidc.conftest import register


class _Application(BaseHTTPRequestHandler):
    answers: list[int] = []
    received: list[str] = []

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        status = self.answers.pop(0) if self.answers else 200
        if status < 300:
            self.received.append(self.path)
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args):
        pass


async def _signed_in_app(uri: str) -> str:
    app = await register(name="Jedna", backchannel_logout_uri=uri)
    client = await OAuthClient.select(OAuthClient.id).where(
        OAuthClient.client_id == app.client_id).first()
    person = await factories.identity("sso@example.com")
    await OAuthLogin.insert(OAuthLogin(client=client["id"], identity=person,
                                       session_hash="s" * 64, sid="sid-1"))
    return "s" * 64


async def test_a_notice_is_queued_with_the_session_end_and_retried_until_delivered(
        app, settings):
    server = HTTPServer(("127.0.0.1", 0), _Application)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Application.answers, _Application.received = [503], []
    try:
        session_hash = await _signed_in_app(f"http://127.0.0.1:{server.server_port}/bc")
        try:  # a session end that rolls back queues nothing
            async with ENGINE.transaction():
                await sessions.end(session_hash, hashed=True)
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        assert await LogoutNotice.count() == 0
        async with ENGINE.transaction():
            await sessions.end(session_hash, hashed=True)
        assert await LogoutNotice.count() == 1
        assert await oidc_logout.deliver_due(settings) == 0  # the application answered 503
        row = await LogoutNotice.select().first()
        assert row["attempts"] == 1 and row["sent_at"] is None and row["last_error"]
        assert await oidc_logout.deliver_due(settings) == 0  # not due yet: backoff
        await LogoutNotice.update({LogoutNotice.next_attempt_at: row["created_at"]}).where(
            LogoutNotice.id == row["id"])
        # Two instances at once: one of them delivers it.
        results = await asyncio.gather(oidc_logout.deliver_due(settings),
                                       oidc_logout.deliver_due(settings))
        assert sorted(results) == [0, 1]
        assert _Application.received == ["/bc"]
        assert (await LogoutNotice.select().first())["sent_at"] is not None
    finally:
        server.shutdown()
