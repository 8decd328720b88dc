"""The outbox keeps no live links or codes (issue 19, finding 4). Hand-written.

Mail bodies are now stored encrypted (services/mail.py) and emptied once sent; the row keeps
what support needs: recipient, subject, template, times. This migration adds the template
column and empties the bodies of mail already sent. Mail still waiting keeps its plain body
until it is sent (the key that encrypts new mail is not available to SQL).
"""

from portal.tables.sql_migration import sql_migration

ID = "2026-12-01T23:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "outbox: template name, sent bodies emptied"

FORWARDS = [
    "ALTER TABLE outbox_email ADD COLUMN template varchar(64) NOT NULL DEFAULT ''",
    "UPDATE outbox_email SET text_body = '', html_body = '' WHERE sent_at IS NOT NULL",
]

BACKWARDS = [
    "ALTER TABLE outbox_email DROP COLUMN template",
]


async def forwards():
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
