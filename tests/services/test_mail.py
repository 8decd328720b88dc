"""The outbox against a real SMTP server (aiosmtpd): delivered, and nothing lost while down."""

from __future__ import annotations

import json
import socket
from dataclasses import replace
from datetime import UTC, datetime
from email.header import decode_header, make_header

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message

from portal.db import ENGINE
from portal.services import mail
from portal.tables import OutboxEmail
from tests.conftest import last_mail


class Inbox(Message):
    def __init__(self):
        super().__init__()
        self.messages = []

    def handle_message(self, message):
        self.messages.append(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_port():
    return free_port()


def start_server(port: int) -> tuple[Controller, Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, inbox


async def queue_one(settings, to="odbiorca@example.com"):
    async with ENGINE.transaction():
        await mail.queue(settings, to, "password_changed", language="pl")


async def test_a_queued_mail_is_delivered_as_text_and_html(settings, smtp_port):
    settings = replace(settings, smtp_url=f"smtp://127.0.0.1:{smtp_port}")
    controller, inbox = start_server(smtp_port)
    try:
        await queue_one(settings)
        assert await mail.deliver_due(settings) == 1
    finally:
        controller.stop()
    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    assert message["To"] == "odbiorca@example.com"
    assert "Hasło zostało zmienione" in str(make_header(decode_header(message["Subject"])))
    kinds = {part.get_content_type() for part in message.walk()}
    assert {"text/plain", "text/html"} <= kinds
    row = await OutboxEmail.select().first()
    assert row["sent_at"] is not None


async def test_mail_waits_while_the_server_is_down_and_goes_when_it_is_up(settings, smtp_port):
    settings = replace(settings, smtp_url=f"smtp://127.0.0.1:{smtp_port}")
    await queue_one(settings, "a@example.com")
    await queue_one(settings, "b@example.com")

    assert await mail.deliver_due(settings) == 0  # nobody listens on the port
    rows = await OutboxEmail.select().order_by(OutboxEmail.to_address)
    assert [r["attempts"] for r in rows] == [1, 1]
    assert all(r["sent_at"] is None and r["next_attempt_at"] > datetime.now(UTC) for r in rows)
    assert all(r["last_error"] for r in rows)
    assert await mail.deliver_due(settings) == 0  # not due yet: backoff

    controller, inbox = start_server(smtp_port)
    try:
        await OutboxEmail.update({OutboxEmail.next_attempt_at: datetime.now(UTC)}, force=True)
        assert await mail.deliver_due(settings) == 2
    finally:
        controller.stop()
    assert sorted(m["To"] for m in inbox.messages) == ["a@example.com", "b@example.com"]
    assert await OutboxEmail.count().where(OutboxEmail.sent_at.is_null()) == 0


async def test_without_an_smtp_url_mail_stays_in_the_outbox_and_shows_in_dev_mail(client):
    await client.post_form("/register", {"email": "dev@example.com"})
    assert await OutboxEmail.count().where(OutboxEmail.sent_at.is_null()) == 1
    page = await client.get("/dev/mail")
    assert page.status_code == 200
    assert "dev@example.com" in page.text and "/verify/" in page.text


def test_backoff_grows_and_is_capped():
    waits = [mail.backoff(n).total_seconds() for n in range(20)]
    assert waits == sorted(waits)
    assert waits[0] == 10 and waits[-1] == 3600


async def test_mail_is_written_in_the_callers_transaction(settings):
    with pytest.raises(RuntimeError):
        async with ENGINE.transaction():
            await mail.queue(settings, "x@example.com", "password_changed")
            raise RuntimeError("the change failed")
    assert await OutboxEmail.count() == 0


async def test_a_copy_of_the_database_holds_no_live_link_or_code(settings, smtp_port):
    """Verification, reset and invitation links and sign-in codes are in the outbox only
    encrypted, and not at all once sent; support still sees who got what and when."""
    await mail.queue(settings, "osoba@example.com", "verify", token="SEKRET-LINKU-123")
    await mail.queue(settings, "osoba@example.com", "mfa_code", code="87654321")
    dump = json.dumps(await OutboxEmail.select(), default=str)
    assert "SEKRET-LINKU-123" not in dump and "87654321" not in dump
    readable = await last_mail("osoba@example.com")
    assert "87654321" in readable["text_body"] and "87654321" in readable["html_body"]

    controller, inbox = start_server(smtp_port)
    try:
        assert await mail.deliver_due(replace(settings,
                                              smtp_url=f"smtp://127.0.0.1:{smtp_port}")) == 2
    finally:
        controller.stop()
    delivered = b"".join(part.get_payload(decode=True) or b"" for message in inbox.messages
                         for part in message.walk() if not part.is_multipart())
    assert b"SEKRET-LINKU-123" in delivered and b"87654321" in delivered
    rows = await OutboxEmail.select().order_by(OutboxEmail.template)
    assert [(r["to_address"], r["template"]) for r in rows] == [
        ("osoba@example.com", "mfa_code"), ("osoba@example.com", "verify")]
    assert all(r["sent_at"] and r["text_body"] == r["html_body"] == "" for r in rows)
