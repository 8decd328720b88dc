"""One-shot messages carried across a redirect in a signed cookie (works before sign-in too)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from litestar import Request
from litestar.datastructures import Cookie

COOKIE = "portal_flash"


def _sign(secret: str, payload: bytes) -> str:
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def flash_cookie(secret: str, message: str, secure: bool) -> Cookie:
    payload = base64.urlsafe_b64encode(json.dumps(message).encode())
    value = payload.decode() + "." + _sign(secret, payload)
    return Cookie(
        key=COOKIE, value=value, path="/", httponly=True, secure=secure, samesite="lax", max_age=120
    )


def read_flash(request: Request, secret: str) -> str | None:
    value = request.cookies.get(COOKIE)
    if not value or "." not in value:
        return None
    payload, _, signature = value.rpartition(".")
    if not hmac.compare_digest(_sign(secret, payload.encode()), signature):
        return None
    try:
        message = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except ValueError:
        return None
    return message if isinstance(message, str) else None


def clear_flash_cookie() -> Cookie:
    return Cookie(key=COOKIE, value="", path="/", max_age=0, httponly=True, samesite="lax")
