// The single sign-on e2e suite's Node relying party, built on panva's openid-client (an
// OpenID-certified client library), run as its own process:
//
//     node relying_party.mjs --port 9001 --portal http://127.0.0.1:8000 \
//         --client-id app_... --client-secret ... --name "Aplikacja A"
//
// Same pages and options as the Python one on Authlib (e2e/relying_party.py), so one test
// drives either; the contract is in e2e/test_single_sign_on.py. The protocol is all
// openid-client's: discovery, the authorization URL with PKCE, the callback (RFC 9207 iss,
// state, then the code exchange and the ID token: signature, iss, aud, exp, nonce, at_hash),
// refresh, introspection, revocation and the end-session URL. Back-channel logout tokens are
// checked with jose (openid-client's own JOSE library). `/spa` is a single-page app that runs
// openid-client itself in the browser as a public client, served from this origin (CORS).

import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { randomBytes } from "node:crypto";

import * as client from "openid-client";
import { createRemoteJWKSet, importJWK, jwtVerify } from "jose";

const BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout";
const SCOPE = "openid email profile accounts offline_access";
const MODULES = join(dirname(fileURLToPath(import.meta.url)), "node_modules");

const { values: args } = parseArgs({
  options: {
    port: { type: "string" }, portal: { type: "string" }, "client-id": { type: "string" },
    "client-secret": { type: "string", default: "" }, name: { type: "string" },
    "private-key": { type: "string", default: "" }, "ui-locales": { type: "string", default: "" },
    "id-token-alg": { type: "string", default: "RS256" },
  },
});
const base = `http://127.0.0.1:${args.port}`;
const clientId = args["client-id"];

async function clientAuthentication() {
  if (!args["private-key"]) {
    return args["client-secret"] ? client.ClientSecretBasic(args["client-secret"]) : client.None();
  }
  const jwk = JSON.parse(await readFile(args["private-key"], "utf8"));
  return client.PrivateKeyJwt({ key: await importJWK(jwk, "RS256"), kid: jwk.kid });
}

// http://127.0.0.1 is the test's portal: openid-client wants HTTPS unless told otherwise.
// --id-token-alg: what the client was registered with; openid-client accepts only that.
const config = await client.discovery(new URL(args.portal), clientId,
  { id_token_signed_response_alg: args["id-token-alg"] },
  await clientAuthentication(), { execute: [client.allowInsecureRequests] });
const meta = config.serverMetadata();
const jwks = createRemoteJWKSet(new URL(meta.jwks_uri));
const pending = new Map(); // state -> { nonce, verifier }
const sessions = new Map(); // cookie -> { claims, tokens }

const escape = (text) => String(text).replace(/[&<>"']/g,
  (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

function page(response, status, body, headers = {}) {
  const html = `<!doctype html><html lang='pl'><head><meta charset='utf-8'>` +
    `<title>${escape(args.name)}</title></head><body><main><h1>${escape(args.name)}</h1>` +
    `${body}</main></body></html>`;
  response.writeHead(status, { "Content-Type": "text/html; charset=utf-8", ...headers });
  response.end(html);
}

function redirect(response, location, headers = {}) {
  response.writeHead(302, { Location: location, ...headers });
  response.end();
}

function form(action, fields, label) {
  const hidden = [...fields].map(([name, value]) =>
    `<input type='hidden' name='${escape(name)}' value='${escape(value)}'>`).join("");
  return `<form method='post' action='${escape(action)}'>${hidden}` +
    `<button type='submit'>${escape(label)}</button></form>`;
}

function sessionOf(request) {
  const match = /(?:^|;\s*)rp=([^;]+)/.exec(request.headers.cookie || "");
  return match ? [match[1], sessions.get(match[1])] : [null, undefined];
}

async function authorizationUrl(query) {
  const state = client.randomState(), nonce = client.randomNonce();
  const verifier = client.randomPKCECodeVerifier();
  pending.set(state, { nonce, verifier });
  const parameters = {
    redirect_uri: `${base}/callback`, scope: query.get("scope") || SCOPE, state, nonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
  };
  if (query.get("account")) parameters.account = query.get("account");
  if (args["ui-locales"]) parameters.ui_locales = args["ui-locales"];
  return client.buildAuthorizationUrl(config, parameters);
}

async function callback(url) {
  // The library checks iss and state before anything else, an error response included;
  // the state it expects is the one of this browser's pending request.
  const saved = pending.get(url.searchParams.get("state") || "");
  if (!saved) throw Object.assign(new Error("state"), { error: "state" });
  pending.delete(url.searchParams.get("state"));
  const tokens = await client.authorizationCodeGrant(config, url, {
    pkceCodeVerifier: saved.verifier, expectedState: url.searchParams.get("state"),
    expectedNonce: saved.nonce, idTokenExpected: true,
  });
  return { claims: tokens.claims(), tokens };
}

async function tokensReport(session) {
  const report = {};
  const old = session.tokens;
  const fresh = await client.refreshTokenGrant(config, old.refresh_token);
  report.rotated = String(fresh.refresh_token !== old.refresh_token);
  report["same-person"] = String(fresh.claims().sub === session.claims.sub);
  let answer = await client.tokenIntrospection(config, fresh.access_token);
  report.introspection = `${answer.active} ${answer.client_id || ""}`;
  await client.tokenRevocation(config, fresh.refresh_token, { token_type_hint: "refresh_token" });
  answer = await client.tokenIntrospection(config, fresh.refresh_token);
  report["after-revocation"] = String(answer.active);
  try {
    await client.refreshTokenGrant(config, fresh.refresh_token);
    report["refresh-after-revocation"] = "accepted";
  } catch (error) {
    report["refresh-after-revocation"] = await reason(error);
  }
  return report;
}

// What the portal said: the error code of an authorization error response or of a JSON
// token-endpoint error. A 401 with a WWW-Authenticate challenge (RFC 6749 §5.2 for a client
// that authenticated with Basic) is its own error class, with the JSON body unread.
async function reason(error) {
  if (error instanceof client.WWWAuthenticateChallengeError) {
    return (await error.response.json()).error;
  }
  return error.error || error.message;
}

function logoutRequest(session) {
  return { id_token_hint: session.tokens.id_token, state: "bye",
           post_logout_redirect_uri: `${base}/bye` };
}

async function logoutTokenClaims(token) {
  // OpenID Connect Back-Channel Logout 1.0 §2.6.
  const { payload } = await jwtVerify(token, jwks, {
    issuer: meta.issuer, audience: clientId, requiredClaims: ["iat", "jti", "events"],
  });
  if (!(payload.events && BACKCHANNEL_EVENT in payload.events) || "nonce" in payload) {
    throw new Error("not a logout token");
  }
  return payload;
}

// The single-page app: openid-client in the browser (its ES modules served from this
// origin), a public client with PKCE calling the portal's discovery, token and userinfo
// endpoints across origins.
const IMPORT_MAP = JSON.stringify({ imports: {
  "openid-client": "/modules/openid-client/build/index.js",
  "oauth4webapi": "/modules/oauth4webapi/build/index.js",
  "jose/jwe/compact/decrypt": "/modules/jose/dist/webapi/jwe/compact/decrypt.js",
  "jose/errors": "/modules/jose/dist/webapi/util/errors.js",
} });
const SPA_SCRIPT = `
import * as client from "openid-client";
const portal = new URL(${JSON.stringify(args.portal)}), redirectUri = location.origin + "/spa";
const who = document.getElementById("who");
const config = await client.discovery(portal, ${JSON.stringify(clientId)}, undefined,
  client.None(), { execute: [client.allowInsecureRequests] });
document.getElementById("spa-login").addEventListener("click", async () => {
  const verifier = client.randomPKCECodeVerifier(), state = client.randomState();
  sessionStorage.setItem("spa", JSON.stringify({ verifier, state }));
  location.href = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri, scope: "openid email", state, code_challenge_method: "S256",
    code_challenge: await client.calculatePKCECodeChallenge(verifier) }).href;
});
if (new URLSearchParams(location.search).has("code")) {
  try {
    const saved = JSON.parse(sessionStorage.getItem("spa") || "{}");
    const tokens = await client.authorizationCodeGrant(config, new URL(location.href),
      { pkceCodeVerifier: saved.verifier, expectedState: saved.state });
    const info = await client.fetchUserInfo(config, tokens.access_token, tokens.claims().sub);
    who.textContent = "Zalogowano: " + info.email;
  } catch (error) {
    who.textContent = "Błąd: " + (error.error || error.message);
  }
}
`;

async function serveModule(response, path) {
  const file = normalize(join(MODULES, path.slice("/modules/".length)));
  const allowed = ["openid-client", "oauth4webapi", "jose"].some(
    (name) => file.startsWith(join(MODULES, name) + "/"));
  if (!allowed || !file.endsWith(".js")) return page(response, 404, "<p>404</p>");
  try {
    const body = await readFile(file);
    response.writeHead(200, { "Content-Type": "text/javascript; charset=utf-8" });
    response.end(body);
  } catch {
    page(response, 404, "<p>404</p>");
  }
}

async function handle(request, response) {
  const url = new URL(request.url, base);
  const [key, session] = sessionOf(request);
  if (request.method === "POST") {
    if (url.pathname !== "/backchannel-logout") return page(response, 404, "<p>404</p>");
    let body = "";
    for await (const chunk of request) body += chunk;
    try {
      const claims = await logoutTokenClaims(new URLSearchParams(body).get("logout_token"));
      for (const [cookie, held] of sessions) {
        if (held.claims.sid === claims.sid) sessions.delete(cookie);
      }
      return page(response, 200, "<p>ok</p>");
    } catch {
      return page(response, 400, "<p>bad logout token</p>");
    }
  }
  switch (url.pathname) {
    case "/":
      if (session) {
        return page(response, 200,
          `<p id='who'>Zalogowano: ${escape(session.claims.email)}</p>` +
          `<p id='account'>Konto: ${escape(session.claims.account || "-")}</p>` +
          "<p><a href='/tokens'>Tokeny</a></p>" +
          "<p><a href='/logout'>Wyloguj z aplikacji</a></p>" +
          "<p><a href='/logout-post'>Wylogowanie formularzem (POST)</a></p>");
      }
      return page(response, 200, "<p id='who'>Niezalogowano</p>" +
        "<p><a href='/login'>Zaloguj przez Konto ID</a></p>" +
        "<p><a href='/login-post'>Logowanie formularzem (POST)</a></p>");
    case "/login":
      return redirect(response, (await authorizationUrl(url.searchParams)).href);
    case "/login-post": {
      const target = await authorizationUrl(url.searchParams);
      return page(response, 200, form(target.origin + target.pathname, target.searchParams,
                                       "Zaloguj przez Konto ID (POST)"));
    }
    case "/callback": {
      let signedIn;
      try {
        signedIn = await callback(url);
      } catch (error) {
        return page(response, 400, `<p id='error'>Błąd: ${escape(await reason(error))}</p>`);
      }
      const cookie = randomBytes(24).toString("base64url");
      sessions.set(cookie, signedIn);
      return redirect(response, "/", { "Set-Cookie": `rp=${cookie}; HttpOnly; Path=/` });
    }
    case "/tokens": {
      if (!session) return redirect(response, "/");
      const report = await tokensReport(session);
      return page(response, 200, "<dl>" + Object.entries(report).map(([name, value]) =>
        `<dt>${name}</dt><dd id='${name}'>${escape(value)}</dd>`).join("") + "</dl>");
    }
    case "/logout":
    case "/logout-post": {
      if (!session) return redirect(response, "/");
      sessions.delete(key);
      if (url.pathname === "/logout") {
        return redirect(response, client.buildEndSessionUrl(config, logoutRequest(session)).href);
      }
      return page(response, 200, form(meta.end_session_endpoint,
                                       Object.entries(logoutRequest(session)),
                                       "Wyloguj w Koncie ID (POST)"));
    }
    case "/spa":
      return page(response, 200, "<p id='who'>Niezalogowano</p>" +
        "<p><button type='button' id='spa-login'>Zaloguj (SPA)</button></p>" +
        `<script type="importmap">${IMPORT_MAP}</script>` +
        `<script type="module">${SPA_SCRIPT}</script>`);
    case "/bye":
      return page(response, 200, "<p id='who'>Wylogowano</p>");
    default:
      if (url.pathname.startsWith("/modules/")) return serveModule(response, url.pathname);
      return page(response, 404, "<p>404</p>");
  }
}

createServer((request, response) => {
  handle(request, response).catch((error) => {
    if (!response.headersSent) page(response, 500, `<p id='error'>${escape(error.stack)}</p>`);
    else response.end();
  });
}).listen(Number(args.port), "127.0.0.1");
