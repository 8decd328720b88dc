"""Logs never contain a password, code, token or key."""

import logging

from portal.logs import RedactSecrets
from tests.conftest import last_mail, link_in

PASSWORD = "tajne hasło do sprawdzenia logów"


def test_uvicorn_access_lines_have_their_tokens_masked():
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d',
                               ("1.2.3.4:5", "GET", "/password/reset/AbC-123_x?a=1", "1.1", 200),
                               None)
    RedactSecrets().filter(record)
    line = record.getMessage()
    assert "AbC-123_x" not in line
    assert "/password/reset/[redacted]?a=1" in line


async def test_a_whole_sign_up_and_sign_in_logs_no_secret(client, caplog):
    caplog.set_level(logging.DEBUG)
    from portal import logs

    logs.install()
    await client.post_form("/register", {"email": "logi@example.com"})
    link = link_in(await last_mail("logi@example.com"), "/verify/")
    token = link.rsplit("/", 1)[1]
    logging.getLogger("uvicorn.access").info('%s - "%s %s"', "ip", "GET", link)
    await client.get(link)
    await client.post_form(link, {"password": PASSWORD, "password_confirm": PASSWORD})
    await client.post_form("/logout", {})
    await client.post_form("/login", {"email": "logi@example.com", "password": PASSWORD + "x"})
    await client.sign_in("logi@example.com", PASSWORD)
    session = client.cookies["portal_session"]
    # httpx/httpcore are this test's HTTP client, not the portal.
    records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    text = "\n".join(r.getMessage() for r in records)
    assert records  # the flow did log
    for secret in (PASSWORD, token, session):
        assert secret not in text
