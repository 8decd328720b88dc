"""A software WebAuthn authenticator for tests: answers the portal's registration and
sign-in options the way a browser and a platform authenticator would (an ES256 key, "none"
attestation), so service and HTTP tests can register passkeys, sign in, replay an assertion
or sign one for another origin. Never used by the app itself."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class SoftAuthenticator:
    origin: str
    rp_id: str
    sign_count: int = 0
    synced: bool = False
    credential_id: bytes = field(default_factory=lambda: os.urandom(16))
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    user_handle: str | None = None

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                            -3: numbers.y.to_bytes(32, "big")})

    def _flags(self, uv: bool) -> int:
        return UP | (UV if uv else 0) | ((BE | BS) if self.synced else 0)

    def _client_data(self, kind: str, options_json: str, origin: str | None) -> bytes:
        challenge = json.loads(options_json)["challenge"]
        return json.dumps({"type": kind, "challenge": challenge,
                           "origin": origin or self.origin, "crossOrigin": False}).encode()

    def register(self, options_json: str, *, origin: str | None = None,
                 uv: bool = True) -> str:
        """The JSON a browser posts after navigator.credentials.create()."""
        self.user_handle = json.loads(options_json)["user"]["id"]
        rp_hash = hashlib.sha256(self.rp_id.encode()).digest()
        auth_data = (rp_hash + bytes([self._flags(uv) | AT])
                     + self.sign_count.to_bytes(4, "big") + bytes(16)
                     + len(self.credential_id).to_bytes(2, "big") + self.credential_id
                     + self._cose_key())
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data("webauthn.create", options_json, origin)
        return json.dumps({
            "id": b64url(self.credential_id), "rawId": b64url(self.credential_id),
            "type": "public-key", "clientExtensionResults": {},
            "response": {"clientDataJSON": b64url(client_data),
                         "attestationObject": b64url(attestation), "transports": ["internal"]},
        })

    def assertion(self, options_json: str, *, origin: str | None = None, uv: bool = True,
                  sign_count: int | None = None) -> str:
        """The JSON a browser posts after navigator.credentials.get(). The counter rises by
        one unless ``sign_count`` says what to send."""
        self.sign_count = self.sign_count + 1 if sign_count is None else sign_count
        rp_hash = hashlib.sha256(self.rp_id.encode()).digest()
        auth_data = rp_hash + bytes([self._flags(uv)]) + self.sign_count.to_bytes(4, "big")
        client_data = self._client_data("webauthn.get", options_json, origin)
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(),
                                  ec.ECDSA(hashes.SHA256()))
        return json.dumps({
            "id": b64url(self.credential_id), "rawId": b64url(self.credential_id),
            "type": "public-key", "clientExtensionResults": {},
            "response": {"clientDataJSON": b64url(client_data),
                         "authenticatorData": b64url(auth_data), "signature": b64url(signature),
                         "userHandle": self.user_handle},
        })
