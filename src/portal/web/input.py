"""Input PostgreSQL cannot hold, refused at the door with a 400 before any handler runs.

PostgreSQL ``text`` refuses the NUL character (asyncpg raises
``CharacterNotInRepertoireError``; in ``jsonb`` ``UntranslatableCharacterError``) and UTF-8
cannot carry a lone surrogate. Either, anywhere a value reaches a query, used to be a 500. JSON
nested thousands of levels deep made the decoder raise ``RecursionError``, another 500. Rather
than hoping every field of every form is checked, this middleware looks once at everything a
handler can read: the path, the query string, the headers (HTTP Basic credentials decoded, as
the OAuth endpoints decode them), and the body, which it buffers (up to the route's
``request_max_body_size``) and then replays to the app unchanged.

It is on the sign-in hot path, so it only scans bytes: ``in`` on the raw query string, headers
and body (microseconds for a sign-in form), a structural match of a JSON body
only when it has more brackets than the limit (linear, in C), and a multipart body split into
its parts only when it has a NUL or non-ASCII bytes.

The refusal is ``RefusedInput`` (a 400); ``views/errors.py`` turns it into the page, the API's
JSON error or the OAuth JSON error. Those handlers also map the database's own refusal to the
same 400, as a last resort for whatever reaches a query some other way.
"""

from __future__ import annotations

import base64
import binascii
import re

from litestar.enums import ScopeType
from litestar.exceptions import ClientException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Send
from litestar.types import Scope as ASGIScope

#: How deeply JSON arrays and objects may nest. The API's documents nest two or three levels.
MAX_JSON_DEPTH = 32
BODYLESS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

_NUL = b"\x00"
_PERCENT_NUL = b"%00"
#: Arrays and objects alike: "(" opens, ")" closes; quotes are kept, every other byte dropped.
_UNIFY = bytes.maketrans(b"[{]}", b"(())")
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')


def _nesting(depth: int) -> re.Pattern[bytes]:
    """Strings and brackets nested at most ``depth`` deep, as one regular expression: a
    string is two quotes and what is between them, a level is strings and bracketed levels
    one less deep. Every quantifier is possessive and the grammar needs one byte of
    lookahead, so the match is one linear pass in C."""
    string = rb'"[^"]*+"'
    level = rb"(?:" + string + rb")*+"
    for _ in range(depth):
        level = rb"(?:" + string + rb"|\(" + level + rb"\))*+"
    return re.compile(level)


_WITHIN_DEPTH = _nesting(MAX_JSON_DEPTH)

_BOUNDARY = re.compile(rb'boundary="?([^";,]+)"?', re.IGNORECASE)
_CHARSET = re.compile(rb'charset="?([A-Za-z0-9_.:-]+)"?', re.IGNORECASE)
_FILENAME = re.compile(rb"filename\*?=", re.IGNORECASE)


class RefusedInput(ClientException):
    """A request with characters the portal cannot store, or JSON nested too deeply."""

    status_code = 400


class InputMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: ASGIScope, receive: Receive, send: Send,
                     next_app: ASGIApp) -> None:
        problem = _in_path(scope["path"]) or _in_query(scope.get("query_string", b"")) \
            or _in_headers(scope["headers"])
        if problem:
            raise RefusedInput(problem)
        if scope["method"] in BODYLESS:
            await next_app(scope, receive, send)
            return
        body, ended = await _read_body(scope, receive)
        if ended is not None:  # the client went away mid-body: the app hears just that
            await next_app(scope, _replay(ended, receive), send)
            return
        problem = _in_body(_content_type(scope["headers"]), body)
        if problem:
            raise RefusedInput(problem)
        await next_app(scope, _replay({"type": "http.request", "body": body,
                                       "more_body": False}, receive), send)


def _in_path(path: str) -> str | None:
    if "\x00" in path:
        return "the path contains a NUL character"
    if not path.isascii():
        try:
            path.encode()
        except UnicodeEncodeError:
            return "the path contains a character that is not valid UTF-8"
    return None


def _in_query(query: bytes) -> str | None:
    if _NUL in query or _PERCENT_NUL in query:
        return "the query string contains a NUL character"
    return None


def _in_headers(headers) -> str | None:
    for name, value in headers:
        if _NUL in value:
            return "a header contains a NUL character"
        if name == b"authorization" and value[:6].lower() == b"basic ":
            # The OAuth endpoints decode Basic credentials and then form-decode each half
            # (RFC 6749 2.3.1): a NUL may hide behind either encoding.
            try:
                decoded = base64.b64decode(value[6:].strip(), validate=True)
            except (binascii.Error, ValueError):
                continue  # the endpoint answers malformed credentials itself
            if _NUL in decoded or _PERCENT_NUL in decoded:
                return "the Basic credentials contain a NUL character"
    return None


def _content_type(headers) -> bytes:
    for name, value in headers:
        if name == b"content-type":
            return value
    return b""


async def _read_body(scope: ASGIScope, receive: Receive) -> tuple[bytes, Message | None]:
    limit = _body_limit(scope)
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise ClientException("Request Entity Too Large", status_code=413)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"", message
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ClientException("Request Entity Too Large", status_code=413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), None


def _body_limit(scope: ASGIScope) -> float:
    handler = scope.get("route_handler")
    resolve = getattr(handler, "resolve_request_max_body_size", None)
    return (resolve() if resolve else None) or float("inf")


def _replay(first: Message, receive: Receive) -> Receive:
    """The buffered message first, then whatever the server says next (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return first

    return replay


def _in_body(content_type: bytes, body: bytes) -> str | None:
    if not body:
        return None
    kind = content_type.split(b";", 1)[0].strip().lower()
    if kind == b"multipart/form-data":
        return _in_multipart(content_type, body) if _NUL in body else _in_multipart_text(
            content_type, body)
    if _NUL in body:
        return "the request body contains a NUL character"
    if kind == b"application/x-www-form-urlencoded":
        return "the form contains a NUL character" if _PERCENT_NUL in body else None
    # Anything else may be decoded as JSON (the API reads JSON whatever the content type says).
    # Inside a string a backslash escapes the next byte, left to right: without the escaped
    # backslashes, every backslash left starts an escape (outside strings a backslash is
    # invalid and the decoder stops there).
    unescaped = body.replace(b"\\\\", b"") if b"\\" in body else body
    if b"\\u0000" in unescaped:
        return "the JSON document contains a NUL character"
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and _too_deep(unescaped):
        return (f"the JSON document nests more than {MAX_JSON_DEPTH} levels deep "
                "(or is not JSON)")
    return None


def _too_deep(unescaped: bytes) -> bool:
    """Whether a JSON document (its escaped backslashes dropped) nests arrays and objects
    deeper than the limit, brackets in strings aside, or is so broken that the decoder could
    recurse before it noticed (an unclosed bracket or string). Without the escaped quotes too,
    every quote left is a real one. About 15 ms for the worst 1 MiB."""
    if unescaped.lstrip(b" \t\r\n")[:1] not in (b"[", b"{"):
        return False  # a scalar: anything after it is trailing garbage, refused unparsed
    structure = unescaped.replace(b'\\"', b"").translate(_UNIFY, _NOT_STRUCTURE)
    return _WITHIN_DEPTH.fullmatch(structure) is None


def _parts(content_type: bytes, body: bytes):
    """(headers, content) of each part; file parts (with a filename) may hold anything."""
    match = _BOUNDARY.search(content_type)
    if not match:
        return
    for part in body.split(b"--" + match.group(1))[1:]:
        headers, separator, content = part.partition(b"\r\n\r\n")
        if separator and not _FILENAME.search(headers):
            yield headers, content.removesuffix(b"\r\n")


def _in_multipart(content_type: bytes, body: bytes) -> str | None:
    for _headers, content in _parts(content_type, body):
        if _NUL in content:
            return "the form contains a NUL character"
    return _in_multipart_text(content_type, body)


def _in_multipart_text(content_type: bytes, body: bytes) -> str | None:
    """Field values are decoded strictly: bytes that are not text in their charset are a 400
    here rather than a UnicodeDecodeError in the form parser. Only non-ASCII bodies need it."""
    if body.isascii():
        return None
    for headers, content in _parts(content_type, body):
        charset = _CHARSET.search(headers)
        try:
            content.decode(charset.group(1).decode() if charset else "utf-8")
        except (UnicodeDecodeError, LookupError):
            return "the form contains characters that are not valid text"
    return None
