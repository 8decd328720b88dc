"""Logging that never writes a secret: tokens in link paths are masked in every record."""

from __future__ import annotations

import logging
import re

#: Paths whose last segment is a secret token (verification, reset, invitation links).
_TOKEN_PATH = re.compile(r"(/verify/|/password/reset/|/invitations/)[^\s\"'?#/]+")


def redact(text: str) -> str:
    return _TOKEN_PATH.sub(r"\1[redacted]", text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v
                           for k, v in record.args.items()}
        return True


def install() -> None:
    """Attach the filter to the loggers that see request paths (uvicorn's) and to the root."""
    secret_filter = RedactSecrets()
    for name in ("", "uvicorn", "uvicorn.access", "uvicorn.error", "portal"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(secret_filter)
