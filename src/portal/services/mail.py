"""Mail: written to the outbox in the caller's transaction, delivered later over SMTP.

A mail server that is down loses nothing: a failed delivery is retried with a growing
backoff. Several app processes (and machines) share the queue: each claims a batch with
``FOR UPDATE SKIP LOCKED`` in a committed statement before sending it, so no two send the same
mail, also across a database failover (see ``deliver_due``).

Mail carries live one-time links and codes (verification, reset, invitations, sign-in
codes), so a copy of the database must not be a copy of them: bodies are stored encrypted
with a key derived from PORTAL_SECRET_KEY and emptied once the mail is sent. The row keeps
what support needs: recipient, subject, template and times.
"""

from __future__ import annotations

import html
import logging
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote, urlparse

import aiosmtplib
from jinja2 import Environment, FileSystemLoader

from portal.i18n import translator
from portal.security import totp
from portal.settings import Settings
from portal.tables import OutboxEmail

log = logging.getLogger(__name__)

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parents[1] / "templates" / "mail"),
    autoescape=False,  # noqa: S701  (plain-text templates; HTML is escaped in to_html)
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)

SUBJECTS = {
    "verify": "Potwierdź adres e-mail",
    "already_registered": "Masz już Konto ID",
    "password_reset": "Ustaw nowe hasło",
    "password_changed": "Hasło zostało zmienione",
    "new_device": "Nowe logowanie do Twojego Konta ID",
    "verify_unknown": "Nie masz jeszcze Konta ID",
    "mfa_code": "Kod logowania",
    "mfa_changed": "Zmiana logowania dwuetapowego",
    "recovery_code_used": "Użyto kodu odzyskiwania",
    "invitation": "Zaproszenie do konta firmy",
    "membership_removed": "Nie masz już dostępu do konta firmy",
    "trial_started": "Rozpoczęto okres próbny",
    "ticket_created": "Przyjęliśmy Twoje zgłoszenie",
    "ticket_reply": "Odpowiedź na Twoje zgłoszenie",
    "account_transferred": "Zostałeś właścicielem konta firmy",
    "identity_deleted": "Twoje Konto ID zostało usunięte",
    "office_request": "Biuro rachunkowe prosi o dostęp do konta firmy",
}

MAX_BACKOFF = timedelta(hours=1)


async def queue(settings: Settings, to: str, template: str, *, language: str = "pl", **context):
    """Write a mail to the outbox. Call inside the transaction of the change that causes it."""
    _ = translator(language or "pl")
    text = _TEMPLATES.get_template(f"{template}.txt").render(
        _=_, brand=settings.brand, base_url=settings.base_url, **context
    )
    subject = _(SUBJECTS[template])
    await OutboxEmail.insert(
        OutboxEmail(
            to_address=to,
            subject=f"{subject} · {settings.brand}",
            template=template,
            text_body=seal(text, settings.secret_key),
            html_body=seal(to_html(text, language or "pl"), settings.secret_key),
            next_attempt_at=datetime.now(UTC),
        )
    )


#: Sealed bodies start with this; anything else is a body from before sealing (plain).
_SEALED = "sealed:"


def seal(body: str, secret_key: str) -> str:
    # The same HKDF-derived Fernet as TOTP secrets, under its own purpose string.
    return _SEALED + totp.encrypt(body, secret_key + ":outbox-mail")


def unseal(body: str, secret_key: str) -> str:
    """The readable body ('' when it was emptied after sending, or the key changed)."""
    if not body.startswith(_SEALED):
        return body
    return totp.decrypt(body[len(_SEALED):], secret_key + ":outbox-mail") or ""


def readable(row: dict, secret_key: str) -> dict:
    """An outbox row with its bodies decrypted (the sender, the dev mailbox, tests)."""
    return {**row, "text_body": unseal(row.get("text_body", ""), secret_key),
            "html_body": unseal(row.get("html_body", ""), secret_key)}


_URL = re.compile(r"(https?://[^\s<>\"]+)")


def to_html(text: str, language: str) -> str:
    """The HTML part: the same paragraphs, escaped, with links made clickable."""
    paragraphs = []
    for block in text.strip().split("\n\n"):
        escaped = html.escape(block).replace("\n", "<br>\n")
        paragraphs.append("<p>" + _URL.sub(r'<a href="\1">\1</a>', escaped) + "</p>")
    return (
        f'<!doctype html><html lang="{language}"><head><meta charset="utf-8"></head>'
        '<body style="font-family: sans-serif; line-height: 1.5">'
        + "\n".join(paragraphs)
        + "</body></html>"
    )


def backoff(attempts: int) -> timedelta:
    return min(timedelta(seconds=10 * 2 ** min(attempts, 12)), MAX_BACKOFF)


def _message(settings: Settings, row: dict) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = row["to_address"]
    message["Subject"] = row["subject"]
    message["Message-ID"] = message_id(row["id"])
    message.set_content(row["text_body"])
    if row["html_body"]:
        message.add_alternative(row["html_body"], subtype="html")
    return message


async def _send(settings: Settings, message: EmailMessage) -> None:
    url = urlparse(settings.smtp_url or "")
    tls = url.scheme == "smtps"
    await aiosmtplib.send(
        message,
        hostname=url.hostname or "127.0.0.1",
        port=url.port or (465 if tls else 25),
        username=unquote(url.username) if url.username else None,
        password=unquote(url.password) if url.password else None,
        use_tls=tls,
        start_tls=True if "starttls" in url.query else None if not tls else False,
        timeout=10,
    )


#: How long a claimed mail is left to its sender before another instance may take it: only
#: a sender that died between claiming and recording a mail lets it expire.
CLAIM_FOR = timedelta(minutes=5)

# One statement, committed on its own: the batch is this sender's before it talks to the mail
# server. SKIP LOCKED: parallel senders take disjoint batches instead of waiting.
_CLAIM = """
UPDATE outbox_email SET claimed_until = now() + {}::interval
WHERE id IN (
    SELECT id FROM outbox_email
    WHERE sent_at IS NULL AND next_attempt_at <= now()
      AND (claimed_until IS NULL OR claimed_until < now())
    ORDER BY next_attempt_at LIMIT {} FOR UPDATE SKIP LOCKED)
RETURNING id, to_address, subject, text_body, html_body, attempts
"""

#: Outcomes the database could not take (it was failing over): recorded before anything new
#: is claimed. id → the update to make.
_unrecorded: dict[object, dict] = {}


def message_id(row_id: object) -> str:
    """The same Message-ID for every attempt at one outbox mail: should a sender die after
    the mail server took a mail and before recording it, the copy sent after the claim ran
    out carries the same id, and mail systems drop it as a duplicate."""
    return f"<outbox.{row_id}@portal.localhost>"


async def _record(row_id: object, values: dict) -> None:
    await OutboxEmail.update(values).where(OutboxEmail.id == row_id)


async def _record_pending() -> None:
    for row_id, values in list(_unrecorded.items()):
        await _record(row_id, values)  # raises while the database is still away
        _unrecorded.pop(row_id, None)


async def deliver_due(settings: Settings, batch: int = 20) -> int:
    """Send what is due; return how many were sent. Failures are rescheduled.

    Safe with any number of instances: a mail is claimed (committed) before it is sent, and
    its outcome is recorded after; an outcome the database cannot take (a failover) is kept
    and recorded first thing next time, while the claim keeps everyone else off the mail."""
    if not settings.smtp_url:
        return 0
    await _record_pending()
    rows = await OutboxEmail.raw(_CLAIM, CLAIM_FOR, batch)
    sent = 0
    for row in rows:
        try:
            await _send(settings, _message(settings, readable(row, settings.secret_key)))
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            log.warning(
                "mail %s not delivered (attempt %d): %s",
                row["id"],
                row["attempts"] + 1,
                type(error).__name__,
            )
            outcome = {
                OutboxEmail.attempts: row["attempts"] + 1,
                OutboxEmail.next_attempt_at: datetime.now(UTC) + backoff(row["attempts"]),
                OutboxEmail.last_error: f"{type(error).__name__}: {error}"[:500],
                OutboxEmail.claimed_until: None,
            }
        else:
            sent += 1
            # Sent: nothing of it stays to be replayed (its links and codes are live).
            outcome = {
                OutboxEmail.sent_at: datetime.now(UTC),
                OutboxEmail.text_body: "",
                OutboxEmail.html_body: "",
                OutboxEmail.claimed_until: None,
            }
        _unrecorded[row["id"]] = outcome
    await _record_pending()
    return sent


async def recent(settings: Settings, limit: int = 50) -> list[dict]:
    """The outbox, newest first and readable (the dev mailbox at /dev/mail)."""
    rows = await OutboxEmail.select().order_by(OutboxEmail.created_at,
                                               ascending=False).limit(limit)
    return [readable(row, settings.secret_key) for row in rows]
