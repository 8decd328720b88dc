// Small enhancements; every page works without them. No inline scripts (the CSP forbids them).
(function () {
  "use strict";
  var en = (document.documentElement.lang || "pl") === "en";
  var T = en
    ? { show: "Show password", expiring: "Your session is about to expire.",
        extend: "Stay signed in", expired: "Your session has expired. Sign in again.",
        copied: "Copied to the clipboard." }
    : { show: "Pokaż hasło", expiring: "Twoja sesja za chwilę wygaśnie.",
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
      // A toggle button: its name stays "Show password", aria-pressed says whether it is on
      // (changing both reads as "Hide password, pressed").
      button.textContent = T.show;
      button.setAttribute("aria-pressed", "false");
      button.addEventListener("click", function () {
        var shown = input.type === "text";
        input.type = shown ? "password" : "text";
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
    // At least 20 seconds to react (WCAG 2.2.1), two minutes when the idle limit allows.
    var lead = Math.min(idle, Math.max(20, Math.min(120, Math.floor(idle / 4))));
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

  // The access matrix (partials/access_matrix.html): a filter that hides the rows whose company
  // name does not match, and "set all shown" choosing one level in every shown row. Without
  // JS the filter is not offered and "set all" is a submit button the server handles.
  function accessMatrix(root) {
    root.querySelectorAll("[data-matrix-tools]:not([data-ready])").forEach(function (tools) {
      tools.setAttribute("data-ready", "");
      var matrix = document.getElementById(tools.getAttribute("data-matrix"));
      var shown = tools.querySelector("[data-matrix-shown]");
      var setAll = tools.querySelector("[data-matrix-set-all]");
      var level = tools.querySelector("select");
      var filter = tools.querySelector("[data-matrix-filter]");
      if (!matrix || !shown || !setAll || !level) return;
      var text = shown.textContent.replace(/\d+/, "{count}");
      function rows() {
        return Array.prototype.filter.call(matrix.querySelectorAll("[data-company-name]"),
          function (row) { return !row.hidden; });
      }
      if (filter) {
        filter.addEventListener("input", function () {
          var query = filter.value.trim().toLowerCase();
          matrix.querySelectorAll("[data-company-name]").forEach(function (row) {
            row.hidden = query !== "" && row.getAttribute("data-company-name").indexOf(query) < 0;
          });
          shown.textContent = text.replace("{count}", rows().length);
        });
        filter.addEventListener("keydown", function (event) {
          if (event.key === "Enter") event.preventDefault();
        });
      }
      // Enter in the form's fields keeps sending the form itself, not this button.
      setAll.type = "button";
      setAll.addEventListener("click", function () {
        var changed = rows();
        changed.forEach(function (row) {
          var radio = row.querySelector('input[type="radio"][value="' + level.value + '"]');
          if (radio) radio.checked = true;
        });
        announce(level.options[level.selectedIndex].text + ": " +
          text.replace("{count}", changed.length));
      });
    });
  }

  // A response that started a new session id (an MFA change) carries the CSRF token bound to
  // it: every later request from this page must send that one (web/csrf.py).
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

  // One focus rule after every swap, for every partial (STYLE.md habit 6):
  // 1. the new content's first invalid field;
  // 2. an element the partial marks [data-focus-after-swap] (e.g. a form just opened);
  // 3. when the swap removed the focused control: the same control again (same id), else the
  //    region's [data-focus-if-lost] element (a list's summary), its first heading, the region
  //    itself. Never <body>.
  // Text marked [data-announce] in the new content is read out by the live region.
  var swapped = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var active = document.activeElement;
    var target = event.detail.target;
    var lost = !!(active && target && (target === active || target.contains(active)));
    swapped = { targetId: target && target.id, lostId: lost ? (active.id || "") : null };
  });
  function focusable(element) {
    if (!element.matches("a[href], button, input, select, textarea, [tabindex]")) {
      element.setAttribute("tabindex", "-1");
    }
    element.focus();
  }
  function focusAfterSwap(root, lostId) {
    if (focusFirstError(root)) return;
    var marked = root.querySelector("[data-focus-after-swap]") ||
      document.querySelector("[data-focus-after-swap]");
    if (marked) { marked.removeAttribute("data-focus-after-swap"); focusable(marked); return; }
    var active = document.activeElement;
    if (lostId === null || (active && active !== document.body && active.isConnected)) return;
    var same = lostId && document.getElementById(lostId);
    if (same) { same.focus(); return; }
    focusable(root.querySelector("[data-focus-if-lost]") ||
      root.querySelector("h1, h2, h3, h4, h5, h6") || root);
  }
  document.addEventListener("htmx:afterSettle", function (event) {
    var state = swapped || { targetId: null, lostId: null };
    swapped = null;
    var elt = event.detail.elt;
    var root = (state.targetId && document.getElementById(state.targetId)) ||
      (elt && elt.isConnected ? elt : null) ||
      (event.detail.target && event.detail.target.isConnected ? event.detail.target : null);
    if (!root || root.id === "live") return;
    addRevealButtons(root);
    accessMatrix(root);
    var notes = root.querySelectorAll("[data-announce]");
    if (notes.length) announce(notes[notes.length - 1].textContent.trim());
    focusAfterSwap(root, state.lostId);
  });

  // A form sent again clears the message about the previous one (a success must not stand
  // next to a new error); the response writes its own.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var verb = (event.detail.requestConfig && event.detail.requestConfig.verb) || "get";
    var live = document.getElementById("live");
    if (verb.toLowerCase() !== "get" && live) live.textContent = "";
  });

  // The profile menu (<details>): Escape closes it and returns to its button; so does moving
  // focus or clicking elsewhere.
  function profileMenu() {
    var menu = document.querySelector("details.profile-menu");
    if (!menu) return;
    var summary = menu.querySelector("summary");
    menu.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && menu.open) {
        event.preventDefault();
        menu.open = false;
        summary.focus();
      }
    });
    menu.addEventListener("focusout", function (event) {
      if (menu.open && event.relatedTarget && !menu.contains(event.relatedTarget)) menu.open = false;
    });
    document.addEventListener("click", function (event) {
      if (menu.open && !menu.contains(event.target)) menu.open = false;
    });
  }

  // A message rendered with the page (after a redirect: "Dodano firmę.") is already in the
  // live region when the page loads, and live regions only announce changes: write it again.
  function announceFlash() {
    var live = document.getElementById("live");
    if (!live || !live.textContent.trim()) return;
    var html = live.innerHTML;
    live.innerHTML = "";
    window.setTimeout(function () { if (!live.textContent) live.innerHTML = html; }, 150);
  }

  document.addEventListener("DOMContentLoaded", function () {
    revealEnhancements(document);
    accountSwitcher();
    accessMatrix(document);
  });
  document.addEventListener("htmx:afterSwap", function () { revealEnhancements(document); });

  document.addEventListener("DOMContentLoaded", function () {
    addRevealButtons(document);
    focusFirstError(document);
    sessionWarning();
    profileMenu();
    announceFlash();
    // Markers rendered with a whole page are for swaps only (the page has autofocus).
    document.querySelectorAll("[data-focus-after-swap]").forEach(function (element) {
      element.removeAttribute("data-focus-after-swap");
    });
  });
})();
