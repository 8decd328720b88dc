// Small enhancements; every page works without them. No inline scripts (the CSP forbids them).
(function () {
  "use strict";
  var en = (document.documentElement.lang || "pl") === "en";
  var T = en
    ? { show: "Show password", hide: "Hide password", expiring: "Your session is about to expire.",
        extend: "Stay signed in", expired: "Your session has expired. Sign in again.",
        copied: "Copied to the clipboard." }
    : { show: "Pokaż hasło", hide: "Ukryj hasło", expiring: "Twoja sesja za chwilę wygaśnie.",
        extend: "Przedłuż sesję", expired: "Sesja wygasła. Zaloguj się ponownie.",
        copied: "Skopiowano do schowka." };

  function addRevealButtons(root) {
    root.querySelectorAll("input[data-reveal]:not([data-reveal-ready])").forEach(function (input) {
      input.setAttribute("data-reveal-ready", "");
      var wrap = document.createElement("div");
      wrap.className = "reveal-wrap";
      input.parentNode.insertBefore(wrap, input);
      wrap.appendChild(input);
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = T.show;
      button.setAttribute("aria-pressed", "false");
      button.addEventListener("click", function () {
        var shown = input.type === "text";
        input.type = shown ? "password" : "text";
        button.textContent = shown ? T.show : T.hide;
        button.setAttribute("aria-pressed", shown ? "false" : "true");
      });
      wrap.appendChild(button);
    });
  }

  function focusFirstError(root) {
    var invalid = root.querySelector('[aria-invalid="true"]') || root.querySelector(".form-error");
    if (invalid) {
      if (!invalid.matches("input, select, textarea, button")) invalid.setAttribute("tabindex", "-1");
      invalid.focus();
      return true;
    }
    return false;
  }

  function announce(text) {
    var live = document.getElementById("live");
    if (live) { live.textContent = ""; window.setTimeout(function () { live.textContent = text; }, 50); }
  }

  // Session idle warning (WCAG 2.2.1): offer to extend before the idle timeout ends it.
  function sessionWarning() {
    var body = document.body;
    var idle = parseInt(body.getAttribute("data-idle-seconds") || "0", 10);
    if (!idle) return;
    var lead = Math.min(120, Math.floor(idle / 4));
    var dialog = document.getElementById("session-dialog");
    var timer = null;
    function arm() {
      window.clearTimeout(timer);
      timer = window.setTimeout(function () {
        if (dialog && dialog.showModal) { dialog.showModal(); } else { announce(T.expiring); }
        timer = window.setTimeout(function () { announce(T.expired); }, lead * 1000);
      }, (idle - lead) * 1000);
    }
    if (dialog) {
      dialog.querySelector("form").addEventListener("submit", function (event) {
        event.preventDefault();
        var token = (JSON.parse(body.getAttribute("hx-headers") || "{}"))["x-csrftoken"];
        fetch("/session/extend", { method: "POST", headers: { "x-csrftoken": token, "HX-Request": "true" },
          credentials: "same-origin" }).then(function (response) {
          dialog.close();
          if (response.ok) { arm(); } else { window.location.assign("/login"); }
        });
      });
    }
    document.body.addEventListener("htmx:afterRequest", arm);
    arm();
  }

  // Copy buttons: <button data-copy="text">. Without JS the text itself stays selectable.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-copy]");
    if (!button || !navigator.clipboard) return;
    navigator.clipboard.writeText(button.getAttribute("data-copy")).then(function () {
      announce(T.copied);
    });
  });

  document.addEventListener("DOMContentLoaded", function () {
    addRevealButtons(document);
    focusFirstError(document);
    sessionWarning();
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.elt && event.detail.elt.isConnected ? event.detail.elt : event.detail.target;
    addRevealButtons(document);
    if (!focusFirstError(target || document)) {
      var focusable = document.querySelector("[data-focus-after-swap]");
      if (focusable) { focusable.removeAttribute("data-focus-after-swap"); focusable.focus(); }
    }
  });
})();
