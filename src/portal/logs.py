"""Logging that never writes a secret nor a raw control character.

Every record is cleaned once, as it is made (``install`` wraps the log record factory, so
records of every logger, whichever handler writes them, are covered; a filter on a logger would
miss the records its children pass up):

- secrets are masked: tokens in link paths (verification, reset, invitation links), anything
  that looks like an API key (``pak_…``), and the values of query parameters named like a
  secret (``?api_key=``, ``code``, ``state``, ``id_token_hint``, ``client_secret``…), which
  is what uvicorn's access log line would otherwise keep;
- control characters are escaped (``\\x00``, ``\\n``, ``\\r``, lone surrogates): a value
  from a request cannot forge a log line, hide text from a terminal or break the log file.
  Tracebacks keep their line breaks; only the message's own arguments lose theirs.
"""

from __future__ import annotations

import logging
import numbers
import re

#: Paths whose last segment is a secret token (verification, reset, invitation links).
_TOKEN_PATH = re.compile(r"(/verify/|/password/reset/|/invitations/)[^\s\"'?#/]+")
#: An API key secret, also percent-encoded (``pak%5F…``).
_API_KEY = re.compile(r"\bpak(_|%5[fF])[A-Za-z0-9_%\-]{4,}")
#: A query parameter whose name says it holds a secret; its value is masked.
_SECRET_PARAM = re.compile(
    r"([?&;](?:[^=&;\s\"'#]*?)"
    r"(?:token|code|api_?key|apikey|secret|password|passwd|state|assertion|verifier"
    r"|id_token_hint|session)"
    r"[^=&;\s\"'#]*=)[^&;\s\"'#]*",
    re.IGNORECASE,
)
#: C0 and C1 controls (tab kept), DEL, lone surrogates, the Unicode line separators.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
#: The same without the line break, for tracebacks.
_CONTROL_KEEP_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r"}


def _escape_one(match: re.Match[str]) -> str:
    char = match.group(0)
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100
                                else f"\\u{ord(char):04x}")


def escape(text: str, *, keep_lines: bool = False) -> str:
    """Control characters as Python escapes (``\\x00``); printable text unchanged."""
    return (_CONTROL_KEEP_LINES if keep_lines else _CONTROL).sub(_escape_one, text)


def redact(text: str) -> str:
    if "/" in text:
        text = _TOKEN_PATH.sub(r"\1[redacted]", text)
    if "pak" in text:
        text = _API_KEY.sub("pak_[redacted]", text)
    if "=" in text:
        text = _SECRET_PARAM.sub(r"\1[redacted]", text)
    return text


def clean(text: str, *, keep_lines: bool = False) -> str:
    return escape(redact(text), keep_lines=keep_lines)


class _Cleaned:
    """An argument that is neither text nor a number, cleaned when it is formatted."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __str__(self) -> str:
        return clean(str(self.value))

    def __repr__(self) -> str:
        return clean(repr(self.value))

    def __format__(self, spec: str) -> str:
        return clean(format(self.value, spec))


def _clean_arg(value: object) -> object:
    if isinstance(value, str):
        return clean(value)
    if value is None or isinstance(value, numbers.Number | bytes | _Cleaned):
        return value
    return _Cleaned(value)


def clean_record(record: logging.LogRecord) -> None:
    """Mask secrets and escape control characters in a record, in place (idempotent)."""
    if isinstance(record.msg, str):
        # The message is the program's own text; it keeps its line breaks.
        record.msg = clean(record.msg, keep_lines=True)
    elif record.msg is not None and not isinstance(record.msg, _Cleaned):
        record.msg = _Cleaned(record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(_clean_arg(a) for a in record.args)
    elif isinstance(record.args, dict):
        record.args = {k: _clean_arg(v) for k, v in record.args.items()}
    if record.exc_info and not record.exc_text:
        # Formatters reuse exc_text when it is set: the traceback is cleaned once, here.
        record.exc_text = clean(_FORMATTER.formatException(record.exc_info), keep_lines=True)
    elif record.exc_text:
        record.exc_text = clean(record.exc_text, keep_lines=True)
    if record.stack_info:
        record.stack_info = clean(record.stack_info, keep_lines=True)


_FORMATTER = logging.Formatter()


class RedactSecrets(logging.Filter):
    """The same cleaning as a filter, for handlers and loggers set up elsewhere."""

    def filter(self, record: logging.LogRecord) -> bool:
        clean_record(record)
        return True


def _cleaning_factory(make):
    def factory(*args, **kwargs) -> logging.LogRecord:
        record = make(*args, **kwargs)
        clean_record(record)
        return record

    factory.portal_cleaning = True
    return factory


def install() -> None:
    """Clean every record as it is made; also attach the filter to the loggers that see
    request paths (uvicorn's) and their handlers, in case a library makes records itself."""
    make = logging.getLogRecordFactory()
    if not getattr(make, "portal_cleaning", False):
        logging.setLogRecordFactory(_cleaning_factory(make))
    secret_filter = RedactSecrets()
    for name in ("", "uvicorn", "uvicorn.access", "uvicorn.error", "portal"):
        logger = logging.getLogger(name)
        for target in (logger, *logger.handlers):
            if not any(isinstance(f, RedactSecrets) for f in target.filters):
                target.addFilter(secret_filter)
