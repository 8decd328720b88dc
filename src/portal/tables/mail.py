"""The transactional outbox: mail written in the same transaction as its cause.

Bodies are encrypted (they carry one-time links and codes) and emptied once sent."""

from piccolo.columns import Integer, Text, Timestamptz, Varchar

from portal.tables._base import Base


class OutboxEmail(Base, tablename="outbox_email"):
    to_address = Varchar(length=320)
    subject = Varchar(length=300)
    template = Varchar(length=64, default="")
    text_body = Text()
    html_body = Text(default="")
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz(index=True)
    sent_at = Timestamptz(null=True, default=None, index=True)
    last_error = Text(default="")
    # Set by the sender that took the mail to send it (migration of 2026-12-03): nobody else
    # takes it before then, and after then only if that sender died before recording it.
    claimed_until = Timestamptz(null=True, default=None)
