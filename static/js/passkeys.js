/* Passkeys (WebAuthn), the browser half of views/passkeys.py. Hand-written, no dependencies.
 *
 * A form marked data-passkey="register|login|second_factor" is a normal form with a hidden
 * "credential" field. On submit this asks the form's data-passkey-options URL for a challenge
 * (JSON, made by py_webauthn on the server), runs navigator.credentials.create() or .get(),
 * writes the result as JSON into "credential" and submits the form as usual, so the server
 * answers with a page as for any form. Without JavaScript the form posts an empty credential
 * and the server says that passkeys need JavaScript; the page says so too, in the notes marked
 * data-passkey-needs-js, which this script hides (the class "passkeys-js" on <html>, so notes
 * that htmx swaps in later stay hidden as well).
 * On /login the email field (autocomplete="username webauthn") also offers passkeys in its
 * autofill where the browser supports conditional mediation.
 */
(function () {
  "use strict";

  var supported = !!(window.PublicKeyCredential && navigator.credentials &&
    navigator.credentials.create && navigator.credentials.get);
  document.documentElement.classList.add("passkeys-js");

  function toBytes(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) base64 += "=";
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (item) {
      return { type: item.type, id: toBytes(item.id), transports: item.transports };
    });
  }

  function creationOptions(json) {
    json.challenge = toBytes(json.challenge);
    json.user.id = toBytes(json.user.id);
    json.excludeCredentials = descriptors(json.excludeCredentials);
    return json;
  }

  function requestOptions(json) {
    json.challenge = toBytes(json.challenge);
    json.allowCredentials = descriptors(json.allowCredentials);
    return json;
  }

  function credentialJson(credential) {
    var response = credential.response;
    var out = {
      id: credential.id, rawId: toText(credential.rawId), type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults ?
        credential.getClientExtensionResults() : {},
      response: { clientDataJSON: toText(response.clientDataJSON) }
    };
    if (response.attestationObject) {
      out.response.attestationObject = toText(response.attestationObject);
      out.response.transports = response.getTransports ? response.getTransports() : [];
    } else {
      out.response.authenticatorData = toText(response.authenticatorData);
      out.response.signature = toText(response.signature);
      out.response.userHandle = response.userHandle ? toText(response.userHandle) : null;
    }
    return out;
  }

  function options(form) {
    var token = form.querySelector('input[name="_csrf_token"]');
    return fetch(form.getAttribute("data-passkey-options"), {
      method: "POST", credentials: "same-origin",
      headers: { "x-csrftoken": token ? token.value : "",
                 "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(new FormData(form))
    }).then(function (response) {
      if (!response.ok) throw new Error("options " + response.status);
      return response.json();
    });
  }

  // The autofill request on /login, aborted when the person presses the button instead.
  var pending = null;

  function ceremony(form, conditional) {
    var kind = form.getAttribute("data-passkey");
    return options(form).then(function (json) {
      if (kind === "register") {
        return navigator.credentials.create({ publicKey: creationOptions(json) });
      }
      var request = { publicKey: requestOptions(json) };
      if (conditional) {
        pending = new AbortController();
        request.mediation = "conditional";
        request.signal = pending.signal;
      }
      return navigator.credentials.get(request);
    }).then(function (credential) {
      if (!credential) throw new Error("no credential");
      form.querySelector('input[name="credential"]').value =
        JSON.stringify(credentialJson(credential));
      HTMLFormElement.prototype.submit.call(form);
    });
  }

  function say(form, text) {
    var status = form.querySelector("[data-passkey-status]");
    if (!status) return;
    status.textContent = text;
    status.hidden = !text;
  }

  function showUnsupported() {
    document.querySelectorAll("[data-passkey-unsupported]").forEach(function (note) {
      note.hidden = false;
    });
  }

  var waitForAbort = Promise.resolve();

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form || !form.hasAttribute || !form.hasAttribute("data-passkey")) return;
    event.preventDefault();
    if (!supported) { showUnsupported(); return; }
    var button = form.querySelector('button[type="submit"]');
    if (button) button.disabled = true;
    say(form, "");
    if (pending) { pending.abort(); pending = null; }
    waitForAbort.then(function () { return ceremony(form, false); }).catch(function () {
      if (button) button.disabled = false;
      say(form, form.getAttribute("data-passkey-failed") ||
        document.documentElement.getAttribute("data-passkey-failed") || "");
      if (button) button.focus();
    });
  });

  function autofill() {
    var form = document.querySelector('form[data-passkey="login"]');
    if (!form || !supported || !PublicKeyCredential.isConditionalMediationAvailable) return;
    PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
      if (!available) return;
      // Settles when the person picks a passkey, or rejects when the button aborts it.
      waitForAbort = ceremony(form, true).catch(function () {});
    });
  }

  function start() {
    if (!supported) showUnsupported();
    else autofill();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
