"""A small relying-party application for the single sign-on e2e tests, run as its own process:

    python -m e2e.relying_party --port 9001 --portal http://127.0.0.1:8000 \
        --client-id app_... --client-secret ... --name "Aplikacja A"

It signs people in with the authorization code flow + PKCE, verifies the ID token against
the portal's JWKS (iss, aud, exp, nonce), and ends its sessions on a back-channel logout.
``/login`` sends the authorization request by GET, ``/login-post`` shows a form that sends it
by POST; ``/logout`` and ``/logout-post`` do the same for RP-initiated logout. With
``--private-key FILE`` (a private JWK) it authenticates with private_key_jwt instead of its
secret; ``--ui-locales`` asks for the portal's pages in that language.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import secrets
import threading
import time
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
from joserfc import jwt
from joserfc.jwk import JWKRegistry, KeySet

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


class RelyingParty:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.base = f"http://127.0.0.1:{args.port}"
        self.meta = httpx.get(f"{args.portal}/.well-known/openid-configuration").json()
        self.pending: dict[str, dict] = {}  # state -> nonce, verifier
        self.sessions: dict[str, dict] = {}  # cookie -> claims, id_token
        self.lock = threading.Lock()

        self.private_key = (JWKRegistry.import_key(json.loads(Path(args.private_key).read_text()))
                            if args.private_key else None)

    def client_auth(self) -> dict:
        """httpx arguments that authenticate this client: its secret, or a signed assertion."""
        if self.private_key is None:
            return {"auth": (self.args.client_id, self.args.client_secret), "data": {}}
        now = int(time.time())
        assertion = jwt.encode(
            {"alg": "RS256", "kid": self.private_key.kid},
            {"iss": self.args.client_id, "sub": self.args.client_id,
             "aud": self.meta["token_endpoint"], "jti": secrets.token_hex(12),
             "iat": now, "exp": now + 60}, self.private_key)
        return {"data": {"client_assertion_type":
                         "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                         "client_assertion": assertion}}

    def authorization_request(self, query: dict) -> dict:
        state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        with self.lock:
            self.pending[state] = {"nonce": nonce, "verifier": verifier}
        params = {"client_id": self.args.client_id, "response_type": "code",
                  "redirect_uri": self.base + "/callback",
                  "scope": "openid email profile accounts", "state": state,
                  "nonce": nonce, "code_challenge": challenge,
                  "code_challenge_method": "S256"}
        if query.get("account"):
            params["account"] = query["account"]
        if self.args.ui_locales:
            params["ui_locales"] = self.args.ui_locales
        return params

    def logout_request(self, session: dict) -> dict:
        return {"id_token_hint": session["id_token"], "state": "bye",
                "post_logout_redirect_uri": self.base + "/bye"}

    def keys(self) -> KeySet:
        return KeySet.import_key_set(httpx.get(self.meta["jwks_uri"]).json())

    def verify(self, token: str) -> dict:
        claims = jwt.decode(token, self.keys()).claims
        jwt.JWTClaimsRegistry(iss={"essential": True, "value": self.meta["issuer"]},
                              aud={"essential": True, "value": self.args.client_id},
                              exp={"essential": True}).validate(claims)
        return claims


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
                               f"</p><p><a href='/logout'>Wyloguj z aplikacji</a></p>"
                               f"<p><a href='/logout-post'>Wylogowanie formularzem (POST)</a></p>")
                else:
                    self._send(200, "<p id='who'>Niezalogowano</p>"
                               "<p><a href='/login'>Zaloguj przez Konto ID</a></p>"
                               "<p><a href='/login-post'>Logowanie formularzem (POST)</a></p>")
            elif url.path == "/login":
                params = rp.authorization_request(query)
                self._redirect(rp.meta["authorization_endpoint"] + "?" + urlencode(params))
            elif url.path == "/login-post":
                self._send(200, _form(rp.meta["authorization_endpoint"],
                                      rp.authorization_request(query),
                                      "Zaloguj przez Konto ID (POST)"))
            elif url.path == "/callback":
                with rp.lock:
                    pending = rp.pending.pop(query.get("state", ""), None)
                if pending is None or "code" not in query:
                    error = html.escape(query.get("error", "state"))
                    self._send(400, f"<p id='error'>Błąd: {error}</p>")
                    return
                auth = rp.client_auth()
                response = httpx.post(rp.meta["token_endpoint"], data={
                    "grant_type": "authorization_code", "code": query["code"],
                    "redirect_uri": rp.base + "/callback", "code_verifier": pending["verifier"],
                    **auth["data"]}, auth=auth.get("auth"))
                if response.status_code != 200:
                    self._send(400, f"<p id='error'>{html.escape(response.text)}</p>")
                    return
                tokens = response.json()
                claims = rp.verify(tokens["id_token"])
                if claims.get("nonce") != pending["nonce"]:
                    self._send(400, "<p id='error'>nonce</p>")
                    return
                key = secrets.token_urlsafe(24)
                with rp.lock:
                    rp.sessions[key] = {"claims": claims, "id_token": tokens["id_token"]}
                self._redirect("/", {"Set-Cookie": f"rp={key}; HttpOnly; Path=/"})
            elif url.path == "/logout":
                key, session = self._session()
                if not session:
                    self._redirect("/")
                    return
                with rp.lock:
                    rp.sessions.pop(key, None)
                self._redirect(rp.meta["end_session_endpoint"] + "?" + urlencode(
                    rp.logout_request(session)))
            elif url.path == "/logout-post":
                key, session = self._session()
                if not session:
                    self._redirect("/")
                    return
                with rp.lock:
                    rp.sessions.pop(key, None)
                self._send(200, _form(rp.meta["end_session_endpoint"],
                                      rp.logout_request(session), "Wyloguj w Koncie ID (POST)"))
            elif url.path == "/spa":
                self._send(200, "<p id='who'>Niezalogowano</p>"
                           "<p><button type='button' id='spa-login'>Zaloguj (SPA)</button></p>"
                           f"<script>{SPA_SCRIPT % json.dumps(rp.args.portal)}</script>"
                           .replace("CLIENT_ID", rp.args.client_id))
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
                claims = rp.verify(form["logout_token"][0])
                assert BACKCHANNEL_EVENT in claims["events"] and "nonce" not in claims
            except Exception:  # any invalid token is refused
                self._send(400, "<p>bad logout token</p>")
                return
            with rp.lock:
                for key in [k for k, s in rp.sessions.items()
                            if s["claims"].get("sid") == claims.get("sid")]:
                    rp.sessions.pop(key)
            self._send(200, "<p>ok</p>")

    return Handler


#: A single-page app in a few lines: the code flow with PKCE from the browser, then the token
#: and userinfo endpoints called across origins (CORS), as a public client (no secret).
SPA_SCRIPT = """
const portal = %s, clientId = "CLIENT_ID", redirectUri = location.origin + "/spa";
const b64 = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
  .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
async function start() {
  const meta = await (await fetch(portal + "/.well-known/openid-configuration")).json();
  const verifier = b64(crypto.getRandomValues(new Uint8Array(32)));
  const challenge = b64(await crypto.subtle.digest("SHA-256",
                                                   new TextEncoder().encode(verifier)));
  const state = b64(crypto.getRandomValues(new Uint8Array(16)));
  sessionStorage.setItem("spa", JSON.stringify({verifier, state}));
  location.href = meta.authorization_endpoint + "?" + new URLSearchParams({
    client_id: clientId, redirect_uri: redirectUri, response_type: "code",
    scope: "openid email", state, code_challenge: challenge,
    code_challenge_method: "S256"});
}
async function finish(code, state) {
  const saved = JSON.parse(sessionStorage.getItem("spa") || "{}");
  if (state !== saved.state) throw new Error("state");
  const meta = await (await fetch(portal + "/.well-known/openid-configuration")).json();
  const tokens = await (await fetch(meta.token_endpoint, {method: "POST", body:
    new URLSearchParams({grant_type: "authorization_code", code, redirect_uri: redirectUri,
                         code_verifier: saved.verifier, client_id: clientId})})).json();
  const info = await (await fetch(meta.userinfo_endpoint, {headers:
    {Authorization: "Bearer " + tokens.access_token}})).json();
  document.getElementById("who").textContent = "Zalogowano: " + info.email;
}
document.getElementById("spa-login").addEventListener("click", start);
const query = new URLSearchParams(location.search);
if (query.get("code")) finish(query.get("code"), query.get("state")).catch(
  (error) => { document.getElementById("who").textContent = "Błąd: " + error; });
"""


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
