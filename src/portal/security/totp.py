"""Authenticator-app codes (RFC 6238 via pyotp): secrets encrypted at rest, replay-safe steps.

The secret is encrypted with a key derived (HKDF) from PORTAL_SECRET_KEY, so a copy of the
database alone cannot mint codes. A code is matched to its time step; the caller stores the
last accepted step and accepts only later ones, so a code works once.
"""

from __future__ import annotations

import base64
import hmac
import time

import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

STEP = 30
WINDOW = 1  # accept the previous and the next step too (clock drift)


def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"portal totp secret encryption").derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def new_secret() -> str:
    return pyotp.random_base32(32)  # 160 bits


def encrypt(secret: str, secret_key: str) -> str:
    return _fernet(secret_key).encrypt(secret.encode()).decode()


def decrypt(token: str, secret_key: str) -> str | None:
    try:
        return _fernet(secret_key).decrypt(token.encode()).decode()
    except InvalidToken:
        return None


def grouped(secret: str) -> str:
    """The setup key in groups of four, as people type it into an app."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def provisioning_uri(secret: str, email: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def qr_svg(uri: str, title: str) -> str:
    """The QR code as inline SVG (no external service, no script)."""
    return segno.make(uri, error="m").svg_inline(scale=5, title=title, border=2,
                                                 svgclass="qr", lineclass=None)


def normalise(code: str) -> str:
    return "".join(ch for ch in (code or "") if ch.isdigit())


def matching_step(secret: str, code: str, at: float | None = None) -> int | None:
    """The time step whose code equals ``code`` within the window, or None."""
    code = normalise(code)
    if len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    now_step = int((time.time() if at is None else at) // STEP)
    for step in range(now_step - WINDOW, now_step + WINDOW + 1):
        if hmac.compare_digest(totp.at(step * STEP), code):
            return step
    return None
