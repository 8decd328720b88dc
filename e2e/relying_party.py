"""The single sign-on e2e suite's Python relying party, built on Authlib (an OpenID-certified
client library), run as its own process:

    python -m e2e.relying_party --port 9001 --portal http://127.0.0.1:8000 \
        --client-id app_... --client-secret ... --name "Aplikacja A"

It does what the Node one (e2e/clients/node/relying_party.mjs, panva's openid-client) does,
with the same pages, so one test drives either (the contract is in e2e/test_single_sign_on.py):
the authorization code flow with PKCE, sent by GET (``/login``) or as a form by POST
(``/login-post``); the callback checks ``state`` and ``iss`` (RFC 9207) and Authlib's
``CodeIDToken`` checks the ID token (signature from the JWKS, iss, aud, exp, nonce, at_hash);
``/tokens`` refreshes (rotation), introspects, revokes and shows what the portal answered;
``/logout`` and ``/logout-post`` are RP-initiated logout by GET and POST;
``POST /backchannel-logout`` ends the session a logout token names. ``--private-key FILE``
(a private JWK) authenticates with private_key_jwt instead of the secret; ``--ui-locales``
asks for the portal's pages in that language. (The single-page app is the Node one's.)
"""

from __future__ import annotations

import argparse
import html
import json
import secrets
import threading
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client, OAuthError
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
SCOPE = "openid email profile accounts offline_access"


class RelyingParty:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.base = f"http://127.0.0.1:{args.port}"
        self.meta = httpx.get(f"{args.portal}/.well-known/openid-configuration").json()
        self.pending: dict[str, dict] = {}  # state -> nonce, verifier
        self.sessions: dict[str, dict] = {}  # cookie -> claims, tokens
        self.lock = threading.Lock()
        self.private_key = (RSAKey.import_key(json.loads(Path(args.private_key).read_text()))
                            if args.private_key else None)

    def oauth(self) -> OAuth2Client:
        """An Authlib client for one request (they are not shared between threads). With a
        private key, Authlib signs a client assertion whose audience is the URL it calls."""
        common = {"scope": SCOPE, "redirect_uri": self.base + "/callback",
                  "code_challenge_method": "S256", "timeout": 10}
        if self.private_key is None:
            return OAuth2Client(self.args.client_id, self.args.client_secret or None,
                                token_endpoint_auth_method="client_secret_basic", **common)
        client = OAuth2Client(self.args.client_id, self.private_key,
                              token_endpoint_auth_method="private_key_jwt",
                              revocation_endpoint_auth_method="private_key_jwt", **common)
        client.register_client_auth_method(
            PrivateKeyJWT(alg="RS256", headers={"kid": self.private_key.kid}))
        return client

    def authorization_url(self, query: dict) -> str:
        state, nonce, verifier = generate_token(24), generate_token(24), generate_token(48)
        with self.lock:
            self.pending[state] = {"nonce": nonce, "verifier": verifier}
        extra = {"nonce": nonce}
        if query.get("account"):
            extra["account"] = query["account"]
        if self.args.ui_locales:
            extra["ui_locales"] = self.args.ui_locales
        client = self.oauth()
        if query.get("scope"):
            client.scope = query["scope"]
        url, _ = client.create_authorization_url(self.meta["authorization_endpoint"],
                                                 state=state, code_verifier=verifier, **extra)
        return url

    def callback(self, url: str, query: dict) -> dict:
        """The authorization response: ``iss`` and ``state`` first (an error response
        carries them too), then the code exchange and the ID token."""
        if query.get("iss") != self.meta["issuer"]:
            raise RelyingPartyError("iss")
        with self.lock:
            pending = self.pending.pop(query.get("state", ""), None)
        if pending is None:
            raise RelyingPartyError("state")
        if "error" in query:
            raise RelyingPartyError(query["error"])
        with self.oauth() as client:
            tokens = client.fetch_token(self.meta["token_endpoint"], authorization_response=url,
                                        code_verifier=pending["verifier"])
        return {"claims": self.id_token_claims(tokens, pending["nonce"]), "tokens": tokens}

    def id_token_claims(self, tokens: dict, nonce: str | None) -> dict:
        """What Authlib's OpenID client does (``parse_id_token``): verify with the JWKS,
        then ``CodeIDToken`` validates iss, aud, exp, iat, nonce and at_hash."""
        decoded = jwt.decode(tokens["id_token"], self.keys(),
                             algorithms=self.meta["id_token_signing_alg_values_supported"])
        claims = CodeIDToken(decoded.claims, decoded.header,
                             {"iss": {"values": [self.meta["issuer"]]}},
                             {"nonce": nonce, "client_id": self.args.client_id,
                              "access_token": tokens["access_token"]})
        claims.validate(leeway=30)
        return dict(claims)

    def tokens_report(self, session: dict) -> dict[str, str]:
        """Refresh (the refresh token must rotate and a new ID token verify), introspect the
        new access token, revoke the new refresh token, then introspect and use it again:
        what the portal answered to each, as the library reports it."""
        report: dict[str, str] = {}
        old = session["tokens"]
        with self.oauth() as client:
            fresh = client.refresh_token(self.meta["token_endpoint"],
                                         refresh_token=old["refresh_token"])
            claims = self.id_token_claims(fresh, None)
            report["rotated"] = str(fresh["refresh_token"] != old["refresh_token"]).lower()
            report["same-person"] = str(claims["sub"] == session["claims"]["sub"]).lower()
            answer = client.introspect_token(self.meta["introspection_endpoint"],
                                             token=fresh["access_token"]).json()
            report["introspection"] = (f"{str(answer['active']).lower()} "
                                       f"{answer.get('client_id', '')}")
            client.revoke_token(self.meta["revocation_endpoint"],
                                token=fresh["refresh_token"],
                                token_type_hint="refresh_token").raise_for_status()
            answer = client.introspect_token(self.meta["introspection_endpoint"],
                                             token=fresh["refresh_token"]).json()
            report["after-revocation"] = str(answer["active"]).lower()
            try:
                client.refresh_token(self.meta["token_endpoint"],
                                     refresh_token=fresh["refresh_token"])
                report["refresh-after-revocation"] = "accepted"
            except OAuthError as error:
                report["refresh-after-revocation"] = error.error
        return report

    def logout_request(self, session: dict) -> dict:
        return {"id_token_hint": session["tokens"]["id_token"], "state": "bye",
                "post_logout_redirect_uri": self.base + "/bye"}

    def keys(self) -> KeySet:
        return KeySet.import_key_set(httpx.get(self.meta["jwks_uri"]).json())

    def logout_token_claims(self, token: str) -> dict:
        """A back-channel logout token (OpenID Connect Back-Channel Logout 1.0 §2.6)."""
        claims = jwt.decode(token, self.keys()).claims
        jwt.JWTClaimsRegistry(iss={"essential": True, "value": self.meta["issuer"]},
                              aud={"essential": True, "value": self.args.client_id},
                              iat={"essential": True}).validate(claims)
        if BACKCHANNEL_EVENT not in claims.get("events", {}) or "nonce" in claims:
            raise RelyingPartyError("not a logout token")
        return claims


class RelyingPartyError(Exception):
    """The reason a sign-in was refused, shown on the page."""


def make_handler(rp: RelyingParty):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, status: int, body: str, headers: dict | None = None) -> None:
            data = (f"<!doctype html><html lang='pl'><head><meta charset='utf-8'>"
                    f"<title>{html.escape(rp.args.name)}</title></head><body><main>"
                    f"<h1>{html.escape(rp.args.name)}</h1>{body}</main></body></html>").encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _redirect(self, url: str, headers: dict | None = None) -> None:
            self.send_response(302)
            self.send_header("Location", url)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()

        def _session(self) -> tuple[str | None, dict | None]:
            cookie = SimpleCookie(self.headers.get("Cookie", ""))
            key = cookie["rp"].value if "rp" in cookie else None
            with rp.lock:
                return key, rp.sessions.get(key) if key else None

        def do_GET(self):
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/":
                _, session = self._session()
                if session:
                    claims = session["claims"]
                    self._send(200, f"<p id='who'>Zalogowano: {html.escape(claims['email'])}</p>"
                               f"<p id='account'>Konto: {html.escape(claims.get('account', '-'))}"
                               f"</p><p><a href='/tokens'>Tokeny</a></p>"
                               f"<p><a href='/logout'>Wyloguj z aplikacji</a></p>"
                               f"<p><a href='/logout-post'>Wylogowanie formularzem (POST)</a></p>")
                else:
                    self._send(200, "<p id='who'>Niezalogowano</p>"
                               "<p><a href='/login'>Zaloguj przez Konto ID</a></p>"
                               "<p><a href='/login-post'>Logowanie formularzem (POST)</a></p>")
            elif url.path == "/login":
                self._redirect(rp.authorization_url(query))
            elif url.path == "/login-post":
                action, _, fields = rp.authorization_url(query).partition("?")
                self._send(200, _form(action, {k: v[0] for k, v in parse_qs(fields).items()},
                                      "Zaloguj przez Konto ID (POST)"))
            elif url.path == "/callback":
                try:
                    session = rp.callback(rp.base + self.path, query)
                except (RelyingPartyError, OAuthError, JoseError, ValueError) as error:
                    reason = getattr(error, "error", None) or str(error)
                    self._send(400, f"<p id='error'>Błąd: {html.escape(reason)}</p>")
                    return
                key = secrets.token_urlsafe(24)
                with rp.lock:
                    rp.sessions[key] = session
                self._redirect("/", {"Set-Cookie": f"rp={key}; HttpOnly; Path=/"})
            elif url.path == "/tokens":
                _, session = self._session()
                if not session:
                    self._redirect("/")
                    return
                report = rp.tokens_report(session)
                self._send(200, "<dl>" + "".join(
                    f"<dt>{name}</dt><dd id='{name}'>{html.escape(value)}</dd>"
                    for name, value in report.items()) + "</dl>")
            elif url.path in ("/logout", "/logout-post"):
                key, session = self._session()
                if not session:
                    self._redirect("/")
                    return
                with rp.lock:
                    rp.sessions.pop(key, None)
                if url.path == "/logout":
                    self._redirect(rp.meta["end_session_endpoint"] + "?" + urlencode(
                        rp.logout_request(session)))
                else:
                    self._send(200, _form(rp.meta["end_session_endpoint"],
                                          rp.logout_request(session),
                                          "Wyloguj w Koncie ID (POST)"))
            elif url.path == "/bye":
                self._send(200, "<p id='who'>Wylogowano</p>")
            else:
                self._send(404, "<p>404</p>")

        def do_POST(self):
            if urlparse(self.path).path != "/backchannel-logout":
                self._send(404, "<p>404</p>")
                return
            length = int(self.headers.get("Content-Length", 0))
            form = parse_qs(self.rfile.read(length).decode())
            try:
                claims = rp.logout_token_claims(form["logout_token"][0])
            except Exception:  # any invalid token is refused
                self._send(400, "<p>bad logout token</p>")
                return
            with rp.lock:
                for key in [k for k, s in rp.sessions.items()
                            if s["claims"].get("sid") == claims.get("sid")]:
                    rp.sessions.pop(key)
            self._send(200, "<p>ok</p>")

    return Handler


def _form(action: str, fields: dict, label: str) -> str:
    """A form that sends a protocol request to the portal by POST (no JavaScript needed)."""
    hidden = "".join(f"<input type='hidden' name='{html.escape(name)}' "
                     f"value='{html.escape(value)}'>" for name, value in fields.items())
    return (f"<form method='post' action='{html.escape(action)}'>{hidden}"
            f"<button type='submit'>{html.escape(label)}</button></form>")


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("--port", "--portal", "--client-id", "--name"):
        parser.add_argument(name, required=True)
    parser.add_argument("--client-secret", default="")
    parser.add_argument("--private-key", default="")
    parser.add_argument("--ui-locales", default="")
    args = parser.parse_args()
    args.port = int(args.port)
    rp = RelyingParty(args)
    ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(rp)).serve_forever()


if __name__ == "__main__":
    main()
