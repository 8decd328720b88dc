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

  // Controls that only work with JS (copy buttons) are rendered hidden and shown here.
  function revealEnhancements(root) {
    root.querySelectorAll("[data-needs-js][hidden]").forEach(function (element) {
      if (element.hasAttribute("data-copy") && !navigator.clipboard) return;
      element.removeAttribute("hidden");
    });
  }

  // The account switcher: a disclosure (a button with aria-expanded controlling a region).
  // Without JS the same button submits a GET to /accounts, a page with the same list.
  function accountSwitcher() {
    var root = document.querySelector("[data-account-switcher]");
    var toggle = root && root.querySelector("[data-switcher-toggle]");
    var panel = root && root.querySelector(".account-switcher-panel");
    if (!toggle || !panel || !window.htmx) return;
    var loaded = false;
    toggle.setAttribute("aria-expanded", "false");
    toggle.setAttribute("aria-controls", panel.id);
    function options() {
      return Array.prototype.slice.call(panel.querySelectorAll("[data-switcher-option]"));
    }
    function focusStart() {
      var start = panel.querySelector("[data-switcher-filter]") ||
        panel.querySelector('[data-switcher-option][aria-current="true"]') || options()[0];
      if (start) start.focus();
    }
    function open() {
      panel.hidden = false;
      toggle.setAttribute("aria-expanded", "true");
      if (loaded) { focusStart(); return; }
      panel.setAttribute("aria-busy", "true");
      window.htmx.ajax("GET", panel.getAttribute("data-src"), { target: panel, swap: "innerHTML" })
        .then(function () {
          loaded = true;
          panel.removeAttribute("aria-busy");
          if (!panel.hidden) focusStart();
        });
    }
    function close(returnFocus) {
      panel.hidden = true;
      toggle.setAttribute("aria-expanded", "false");
      if (returnFocus) toggle.focus();
    }
    toggle.addEventListener("click", function (event) {
      event.preventDefault();
      if (panel.hidden) { open(); } else { close(false); }
    });
    root.addEventListener("keydown", function (event) {
      if (panel.hidden) return;
      if (event.key === "Escape") { event.preventDefault(); close(true); return; }
      var list = options();
      if (!list.length) return;
      var index = list.indexOf(document.activeElement);
      var filter = panel.querySelector("[data-switcher-filter]");
      var next = null;
      if (event.key === "ArrowDown") {
        next = list[index < 0 ? 0 : Math.min(index + 1, list.length - 1)];
      } else if (event.key === "ArrowUp") {
        next = index > 0 ? list[index - 1] : (index === 0 ? (filter || list[0]) : null);
      } else if (event.key === "Home" && index >= 0) {
        next = list[0];
      } else if (event.key === "End" && index >= 0) {
        next = list[list.length - 1];
      }
      if (next) { event.preventDefault(); next.focus(); }
    });
    document.addEventListener("click", function (event) {
      if (!panel.hidden && !root.contains(event.target)) close(false);
    });
    root.addEventListener("focusout", function (event) {
      if (!panel.hidden && event.relatedTarget && !root.contains(event.relatedTarget)) close(false);
    });
    // Filtering replaces the list: say how many accounts match.
    panel.addEventListener("htmx:afterSettle", function () {
      var status = document.getElementById("account-options-status");
      var list = document.getElementById("account-options");
      if (status && list && loaded) status.textContent = list.getAttribute("data-status") || "";
    });
  }

  // A swap that removed the focused control gives focus back to the same control (same id)
  // or to the region's [data-focus-if-lost] element, never to the start of the page.
  var lostFocus = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var active = document.activeElement;
    var target = event.detail.target;
    lostFocus = active && target && target.contains(active) ? (active.id || "") : null;
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (lostFocus === null) return;
    var id = lostFocus;
    lostFocus = null;
    var active = document.activeElement;
    if (active && active !== document.body && active.isConnected) return;
    var fallback = (id && document.getElementById(id)) || document.querySelector("[data-focus-if-lost]");
    if (fallback) fallback.focus();
  });

  // A response that started a new session id (an MFA change) carries the CSRF token bound to
  // it: every later request from this page must send that one (security/csrf.py).
  document.addEventListener("htmx:afterRequest", function (event) {
    var xhr = event.detail.xhr;
    var token = xhr && xhr.getResponseHeader("X-CSRF-Token");
    if (!token || !/^[0-9a-f]{96}$/.test(token)) return;
    var headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
    headers["x-csrftoken"] = token;
    document.body.setAttribute("hx-headers", JSON.stringify(headers));
    document.querySelectorAll('input[name="_csrf_token"]').forEach(function (input) {
      input.value = token;
    });
  });

  document.addEventListener("DOMContentLoaded", function () {
    revealEnhancements(document);
    accountSwitcher();
  });
  document.addEventListener("htmx:afterSwap", function () { revealEnhancements(document); });

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
