"""Logs (issue 19, findings 8 and 9): a value from a request cannot write a raw control
character into the log, and a secret sent in a URL is not kept by the access log."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from uvicorn.logging import AccessFormatter

from portal import logs
from tests.security.served import served

KEY = "pak_0123456789ab_" + "S3cr3t-KeY_" * 4


@contextmanager
def written(logger_name: str, formatter: logging.Formatter | None = None) -> Iterator[io.StringIO]:
    """What a real handler on ``logger_name`` writes, with the portal's logging installed."""
    logs.install()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter or logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger(logger_name)
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def test_the_error_log_escapes_a_nul_and_forged_line_breaks():
    """The app's error handler logs the path of the failed request (views/errors.py); it is
    a child of ``portal``, so a filter on the ``portal`` logger alone never saw its records."""
    try:
        raise ValueError("bad value 'a\x00b'")
    except ValueError as error:
        caught = error
    with written("") as out:
        logging.getLogger("portal.views.errors").error(
            "unhandled error on %s %s", "POST",
            "/security/applications/\x00/revoke\r\nINFO forged: admin signed in",
            exc_info=caught)
    text = out.getvalue()
    assert "\x00" not in text and "\r" not in text
    assert "/security/applications/\\x00/revoke\\r\\nINFO forged" in text
    assert "bad value 'a\\x00b'" in text  # the traceback too, with its own lines kept
    assert "Traceback (most recent call last):\n" in text
    assert not any(line.startswith("INFO forged") for line in text.splitlines())


def test_other_control_characters_and_lone_surrogates_are_escaped():
    with written("portal.anything") as out:
        logging.getLogger("portal.anything").warning(
            "name %s and %r", "a\x1b[31mred\x7f\u2028b", {"x": "\ud800"})
    text = out.getvalue()
    assert "a\\x1b[31mred\\x7f\\u2028b" in text
    assert "\x1b" not in text and "\ud800" not in text and "\\ud800" in text


def test_secrets_in_query_strings_are_masked_in_any_record():
    with written("uvicorn.error") as out:
        logging.getLogger("uvicorn.error").info(
            "%s", f"/oauth/authorize?client_id=abc&state=S-STATE&code=C-CODE"
                  f"&id_token_hint=eyJ.x.y&client_secret=CS&refresh_token=RT&password=PW"
                  f"&x=1&api_key={KEY}")
    text = out.getvalue()
    for secret in ("S-STATE", "C-CODE", "eyJ.x.y", "CS&", "RT", "PW", "S3cr3t"):
        assert secret not in text, secret
    assert "client_id=abc" in text and "x=1" in text
    assert "state=[redacted]" in text and "api_key=[redacted]" in text


@pytest.mark.parametrize("path", [
    f"/api/v1/companies?api_key={KEY}",
    f"/api/v1/companies?page=1&apikey={KEY.replace('_', '%5F')}",
    f"/api/v1/companies?key={KEY}",  # a key under any name is still a key
    f"/api/v1/companies/{KEY}",
])
async def test_the_access_log_line_keeps_no_api_key(app, path):
    with written("uvicorn.access", AccessFormatter(
            '%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False)) as out:
        async with served(app, proxy_headers=False) as url, httpx.AsyncClient() as client:
            response = await client.get(url + path)
            assert response.status_code in (401, 404)
    line = out.getvalue()
    assert "GET /api/v1/companies" in line  # the line was written
    assert "S3cr3t" not in line and "S3cr3t".lower() not in line.lower()
    assert "pak_[redacted]" in line or "=[redacted]" in line


async def test_the_access_log_masks_oauth_parameters(app):
    with written("uvicorn.access", AccessFormatter(
            '%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False)) as out:
        async with served(app, proxy_headers=False) as url, httpx.AsyncClient() as client:
            await client.get(url + "/oauth/logout?id_token_hint=eyJhbGciOi.payload.sig"
                                   "&state=st-secret-1&post_logout_redirect_uri=https://x")
            await client.get(url + "/verify/AbC-verify-123?code=123456")
    text = out.getvalue()
    for secret in ("eyJhbGciOi", "st-secret-1", "AbC-verify-123", "123456"):
        assert secret not in text, secret
    assert "post_logout_redirect_uri=https://x" in text
