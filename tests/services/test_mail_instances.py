"""The outbox shared by several instances (issue 16): parallel senders never send one mail
twice, and a database that fails over between sending and recording loses nothing and sends
nothing again."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from portal.db import ENGINE
from portal.services import mail
from portal.tables import OutboxEmail
from tests.services.test_mail import free_port, start_server


async def _queue(settings, count: int) -> None:
    async with ENGINE.transaction():
        for n in range(count):
            await mail.queue(settings, f"osoba{n}@example.com", "password_changed")


async def test_parallel_senders_share_the_queue_and_send_each_mail_once(settings):
    port = free_port()
    settings = replace(settings, smtp_url=f"smtp://127.0.0.1:{port}")
    controller, inbox = start_server(port)
    try:
        await _queue(settings, 30)
        # Four senders at once, as four instances would: small batches, so they interleave.
        sent = await asyncio.gather(*(mail.deliver_due(settings, batch=3) for _ in range(4)))
        while await mail.deliver_due(settings, batch=3):
            pass
    finally:
        controller.stop()
    assert sum(sent) >= 4  # they ran side by side
    ids = [message["Message-ID"] for message in inbox.messages]
    assert len(ids) == 30 and len(set(ids)) == 30
    rows = await OutboxEmail.select(OutboxEmail.id, OutboxEmail.sent_at)
    assert all(row["sent_at"] is not None for row in rows)
    assert set(ids) == {mail.message_id(row["id"]) for row in rows}


async def test_a_failover_between_sending_and_recording_sends_nothing_twice(settings,
                                                                           monkeypatch):
    port = free_port()
    settings = replace(settings, smtp_url=f"smtp://127.0.0.1:{port}")
    controller, inbox = start_server(port)
    real_record = mail._record
    failing = {"on": True}

    async def record(row_id, values):
        if failing["on"]:
            raise ConnectionResetError("the primary is gone")
        await real_record(row_id, values)

    monkeypatch.setattr(mail, "_record", record)
    try:
        await _queue(settings, 2)
        try:
            await mail.deliver_due(settings)
        except ConnectionResetError:
            pass
        assert len(inbox.messages) == 2  # the mail server has them; the database does not
        # Another instance finds them claimed, not due (its own records are in order).
        monkeypatch.setattr(mail, "_unrecorded", {})
        assert await mail.deliver_due(settings) == 0
        monkeypatch.undo()
        failing["on"] = False  # the new primary is up
        assert await mail.deliver_due(settings) == 0  # the outcomes are recorded first
    finally:
        controller.stop()
    assert len(inbox.messages) == 2
    rows = await OutboxEmail.select(OutboxEmail.sent_at, OutboxEmail.claimed_until,
                                    OutboxEmail.text_body)
    assert all(r["sent_at"] and r["claimed_until"] is None and r["text_body"] == ""
               for r in rows)


async def test_a_claim_keeps_other_senders_off_until_it_runs_out(settings):
    port = free_port()
    settings = replace(settings, smtp_url=f"smtp://127.0.0.1:{port}")
    await _queue(settings, 1)
    claimed = await OutboxEmail.raw(mail._CLAIM, mail.CLAIM_FOR, 10)
    assert len(claimed) == 1  # a sender took it, then died before sending
    controller, inbox = start_server(port)
    try:
        assert await mail.deliver_due(settings) == 0  # still its claim
        await OutboxEmail.update({OutboxEmail.claimed_until: None}).where(
            OutboxEmail.id == claimed[0]["id"])  # the claim ran out
        assert await mail.deliver_due(settings) == 1
    finally:
        controller.stop()
    assert [m["Message-ID"] for m in inbox.messages] == [mail.message_id(claimed[0]["id"])]
