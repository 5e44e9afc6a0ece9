/* regstack.js: the browser side of regstack's account pages (docs/pages.md).
 *
 * One deferred script, no inline code, no dependencies. It reads its settings from
 * <body data-rs-api data-rs-ui data-rs-page>, keeps the session in
 * localStorage["regstack.access_token"] and a pending sign-in code step in
 * sessionStorage["regstack.mfa_pending"], and wires every element marked data-rs-*.
 * Page overrides written for regstack 0.9.3 use the same hooks and keep working.
 */
(function () {
  "use strict";

  var TOKEN_KEY = "regstack.access_token";
  var MFA_KEY = "regstack.mfa_pending";
  var body = document.body;
  // An empty value is a real setting (a prefix of "/"); only a missing attribute falls back.
  function setting(name, fallback) {
    return (body.hasAttribute(name) ? body.getAttribute(name) : fallback).replace(/\/$/, "");
  }
  var API = setting("data-rs-api", "/api/auth");
  var UI = setting("data-rs-ui", "/account");
  var PAGE = body.getAttribute("data-rs-page") || document.documentElement.getAttribute("data-rs-page") || "";

  var OAUTH_ERRORS = {
    oauth_failed: "Sign-in with that provider failed. Please try again.",
    missing_code_or_state: "The provider did not send us back correctly. Please try again.",
    unknown_provider: "That sign-in provider is not available.",
    bad_state: "That sign-in attempt is no longer valid. Please start again.",
    state_expired: "That sign-in attempt took too long. Please start again.",
    token_exchange_failed: "We could not complete sign-in with the provider. Please try again.",
    id_token_failed: "The provider's answer could not be verified. Please try again.",
    email_in_use: "An account with that email already exists. Sign in with your password, then connect the provider from your account page.",
    identity_in_use: "That provider account is already connected to another account.",
    already_linked: "That provider is already connected to your account.",
    user_inactive: "This account is disabled.",
    registration_disabled: "New accounts cannot be created here. Sign in with an existing account."
  };

  var NOTICES = {
    reset: "Your password has been reset. Sign in with your new password.",
    password_changed: "Your password has been changed. Sign in with your new password.",
    deleted: "Your account has been deleted.",
    signed_out: "You have been signed out.",
    email_changed: "Your email address has been changed. Sign in with your new address."
  };

  // ---- storage -------------------------------------------------------------------------

  function store(kind) {
    try { return kind === "session" ? window.sessionStorage : window.localStorage; } catch (e) { return null; }
  }
  function getToken() { var s = store("local"); return s ? s.getItem(TOKEN_KEY) : null; }
  function setToken(t) { var s = store("local"); if (s) { s.setItem(TOKEN_KEY, t); } }
  function clearToken() { var s = store("local"); if (s) { s.removeItem(TOKEN_KEY); } }
  function getPending() { var s = store("session"); return s ? s.getItem(MFA_KEY) : null; }
  function setPending(t) { var s = store("session"); if (s) { s.setItem(MFA_KEY, t); } }
  function clearPending() { var s = store("session"); if (s) { s.removeItem(MFA_KEY); } }

  // ---- navigation and the address bar --------------------------------------------------

  function go(path) { window.location.assign(UI + path); }

  function param(name) {
    try { return new URLSearchParams(window.location.search).get(name); } catch (e) { return null; }
  }

  // One-time tokens leave the address bar (and so the history) as soon as they are read.
  function dropQuery() {
    if (window.history && window.history.replaceState) {
      window.history.replaceState(null, "", window.location.pathname);
    }
  }

  // ---- messages ------------------------------------------------------------------------

  function say(text, tone) {
    var el = document.querySelector("[data-rs-message]");
    if (!el) { return; }
    el.textContent = text;
    el.setAttribute("data-rs-tone", tone || "success");
    el.hidden = false;
  }

  function status(text) {
    var el = document.querySelector("[data-rs-status]");
    if (el) { el.textContent = text; } else { say(text); }
  }

  // A string `detail` verbatim; a validation list as its messages joined with "; ".
  function errorText(data, code) {
    if (data && typeof data.detail === "string") { return data.detail; }
    if (data && Array.isArray(data.detail)) {
      return data.detail.map(function (e) { return e && e.msg ? String(e.msg) : "Invalid input"; }).join("; ");
    }
    return "Something went wrong (" + code + "). Please try again.";
  }

  // ---- the API -------------------------------------------------------------------------

  function api(method, path, payload, withToken) {
    var headers = { "Accept": "application/json" };
    if (payload !== undefined) { headers["Content-Type"] = "application/json"; }
    var token = getToken();
    if (withToken && token) { headers.Authorization = "Bearer " + token; }
    return fetch(API + path, {
      method: method,
      headers: headers,
      body: payload === undefined ? undefined : JSON.stringify(payload),
      credentials: "same-origin"
    }).then(function (resp) {
      return resp.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        return { ok: resp.ok, status: resp.status, data: data };
      });
    }, function () {
      return { ok: false, status: 0, data: { detail: "The server could not be reached. Check your connection and try again." } };
    });
  }

  // A session that is no longer valid sends the user to sign in again.
  function authed(method, path, payload) {
    return api(method, path, payload, true).then(function (r) {
      if (r.status === 401) {
        clearToken();
        go("/login");
      }
      return r;
    });
  }

  // ---- forms ---------------------------------------------------------------------------

  function fields(form) {
    var out = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.disabled || el.type === "submit" || el.type === "button") { return; }
      out[el.name] = el.value;
    });
    return out;
  }

  // The Turnstile widget puts its token in a field of this name inside the form.
  function withCaptcha(form, payload) {
    var el = form.querySelector("[name='cf-turnstile-response']");
    if (el && el.value) { payload["cf-turnstile-response"] = el.value; }
    return payload;
  }

  function resetCaptcha() {
    if (window.turnstile && typeof window.turnstile.reset === "function") {
      try { window.turnstile.reset(); } catch (e) { /* no widget rendered */ }
    }
  }

  function onSubmit(name, handler) {
    var forms = document.querySelectorAll("[data-rs-form='" + name + "']");
    Array.prototype.forEach.call(forms, function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var button = form.querySelector("[type='submit']");
        if (button) { button.disabled = true; }
        // A handler that throws (an override missing a field, say) still frees the button.
        Promise.resolve().then(function () { return handler(form, fields(form)); }).then(function () {
          if (button) { button.disabled = false; }
        }, function () {
          if (button) { button.disabled = false; }
          say("Something went wrong. Please try again.", "error");
        });
      });
    });
  }

  function failed(r) {
    resetCaptcha();
    say(errorText(r.data, r.status), "error");
  }

  // ---- pages ---------------------------------------------------------------------------

  function loginPage() {
    var code = param("error");
    var notice = param("notice");
    if (code) {
      say(OAUTH_ERRORS[code] || "Sign-in failed (" + code.replace(/[^a-z0-9_]/gi, "") + ").", "error");
      dropQuery();
    } else if (notice && NOTICES[notice]) {
      say(NOTICES[notice]);
      dropQuery();
    } else if (getToken()) {
      go("/me");
      return;
    }
    onSubmit("login", function (form, f) {
      var payload = withCaptcha(form, { email: f.email.trim(), password: f.password });
      return api("POST", "/login", payload).then(function (r) {
        if (!r.ok) { return failed(r); }
        if (r.data && r.data.status === "mfa_required") {
          setPending(r.data.mfa_pending_token);
          go("/mfa-confirm");
          return;
        }
        setToken(r.data.access_token);
        go("/me");
      });
    });
  }

  function registerPage() {
    onSubmit("register", function (form, f) {
      var payload = { email: f.email.trim(), password: f.password };
      if (f.full_name && f.full_name.trim()) { payload.full_name = f.full_name.trim(); }
      return api("POST", "/register", withCaptcha(form, payload)).then(function (r) {
        if (!r.ok) { return failed(r); }
        form.reset();
        resetCaptcha();
        if (r.data && r.data.status === "pending_verification") {
          say("Check your inbox: we sent a link to " + r.data.email + " to confirm your address.");
        } else {
          say("Your account is ready. You can sign in now.");
        }
      });
    });
  }

  function handoff(path, done) {
    var token = param("token");
    dropQuery();
    if (!token) {
      status("This link is missing its token. Open the link from your email again.");
      return;
    }
    api("POST", path, { token: token }).then(function (r) {
      if (!r.ok) {
        status(errorText(r.data, r.status));
        return;
      }
      done(r);
    });
  }

  function verifyPage() {
    handoff("/verify", function () {
      status("Your email address is confirmed. You can sign in now.");
    });
  }

  function emailChangePage() {
    handoff("/confirm-email-change", function () {
      // Changing the address ends every session.
      clearToken();
      status(NOTICES.email_changed);
    });
  }

  function forgotPage() {
    onSubmit("forgot", function (form, f) {
      return api("POST", "/forgot-password", { email: f.email.trim() }).then(function (r) {
        if (!r.ok) { return failed(r); }
        form.reset();
        say("If an account exists for that address, we have emailed a link to reset the password.");
      });
    });
  }

  function resetPage() {
    var token = param("token");
    dropQuery();
    var hidden = document.querySelector("[data-rs-token]");
    if (hidden && token) { hidden.value = token; }
    if (!token) { say("This link is missing its token. Open the link from your email again.", "error"); }
    onSubmit("reset", function (form, f) {
      return api("POST", "/reset-password", { token: f.token, new_password: f.new_password }).then(function (r) {
        if (!r.ok) { return failed(r); }
        if (hidden) { hidden.value = ""; }
        clearToken();
        go("/login?notice=reset");
      });
    });
  }

  function mfaPage() {
    var pending = getPending();
    if (!pending) { go("/login"); return; }
    onSubmit("mfa-confirm", function (form, f) {
      return api("POST", "/login/mfa-confirm", { mfa_pending_token: pending, code: f.code.trim() }).then(function (r) {
        if (!r.ok) { return failed(r); }
        clearPending();
        setToken(r.data.access_token);
        go("/me");
      });
    });
  }

  function oauthCompletePage() {
    var id = param("id");
    dropQuery();
    if (!id) { status("This sign-in link is incomplete. Please start again."); return; }
    api("POST", "/oauth/exchange", { id: id }).then(function (r) {
      if (!r.ok) { status(errorText(r.data, r.status)); return; }
      if (r.data.mfa_required) {
        setPending(r.data.mfa_pending_token);
        go("/mfa-confirm");
        return;
      }
      setToken(r.data.access_token);
      // The server only hands back targets on this origin; check again before leaving.
      var to = null;
      try { to = new URL(String(r.data.redirect_to || ""), window.location.href); } catch (e) { to = null; }
      if (to && to.origin === window.location.origin) {
        window.location.assign(to.href);
      } else {
        go("/me");
      }
    });
  }

  function fill(user) {
    var shown = {
      email: user.email,
      full_name: user.full_name || "—",
      is_verified: user.is_verified ? "Yes" : "Not yet",
      created_at: user.created_at ? new Date(user.created_at).toLocaleDateString() : ""
    };
    Array.prototype.forEach.call(document.querySelectorAll("[data-rs-field]"), function (el) {
      var key = el.getAttribute("data-rs-field");
      if (Object.prototype.hasOwnProperty.call(shown, key)) { el.textContent = shown[key]; }
    });
    var name = document.querySelector("[data-rs-form='update-profile'] [name='full_name']");
    if (name && document.activeElement !== name) { name.value = user.full_name || ""; }
    var mfa = document.querySelector("[data-rs-mfa-section]");
    if (mfa) {
      var on = !!user.is_mfa_enabled;
      var st = mfa.querySelector("[data-rs-mfa-status]");
      if (st) { st.textContent = on ? "On: codes go to " + (user.phone_number || "your phone") + "." : "Off."; }
      var enable = mfa.querySelector("[data-rs-mfa-enable]");
      var disable = mfa.querySelector("[data-rs-mfa-disable]");
      if (enable) { enable.hidden = on; }
      if (disable) { disable.hidden = !on; }
    }
  }

  function loadMe() {
    return authed("GET", "/me").then(function (r) {
      if (r.ok) { fill(r.data); }
      return r;
    });
  }

  function oauthSection() {
    var section = document.querySelector("[data-rs-oauth-section]");
    if (!section) { return; }
    var list = section.querySelector("[data-rs-oauth-list]");
    var st = section.querySelector("[data-rs-oauth-status]");
    authed("GET", "/oauth/providers").then(function (r) {
      if (!r.ok || !list) { if (st && !r.ok) { st.textContent = errorText(r.data, r.status); } return; }
      var linked = {};
      (r.data.linked || []).forEach(function (l) { linked[l.provider] = l; });
      list.textContent = "";
      (r.data.available || []).forEach(function (p) {
        var item = document.createElement("li");
        var label = document.createElement("span");
        var button = document.createElement("button");
        button.type = "button";
        button.className = "rs-btn rs-btn-ghost";
        button.setAttribute("data-rs-oauth-provider", p);
        if (linked[p]) {
          label.textContent = p + (linked[p].email ? " (" + linked[p].email + ")" : "") + ": connected";
          button.textContent = "Disconnect";
          button.setAttribute("aria-label", "Disconnect " + p);
          button.addEventListener("click", function () {
            authed("DELETE", "/oauth/" + encodeURIComponent(p) + "/link").then(function (u) {
              if (!u.ok) { failed(u); return; }
              say("Disconnected " + p + ".");
              oauthSection();
            });
          });
        } else {
          label.textContent = p + ": not connected";
          button.textContent = "Connect";
          button.setAttribute("aria-label", "Connect " + p);
          button.addEventListener("click", function () {
            authed("POST", "/oauth/" + encodeURIComponent(p) + "/link/start?redirect_to=" + encodeURIComponent(UI + "/me")).then(function (u) {
              if (!u.ok) { failed(u); return; }
              window.location.assign(u.data.authorization_url);
            });
          });
        }
        item.appendChild(label);
        item.appendChild(button);
        list.appendChild(item);
      });
      if (st) { st.textContent = ""; }
    });
  }

  function mePage() {
    if (!getToken()) { go("/login"); return; }
    loadMe();
    oauthSection();
    var code = param("error");
    if (code) { say(OAUTH_ERRORS[code] || "Connecting failed (" + code.replace(/[^a-z0-9_]/gi, "") + ").", "error"); dropQuery(); }

    onSubmit("update-profile", function (form, f) {
      var name = (f.full_name || "").trim();
      return authed("PATCH", "/me", { full_name: name ? name : null }).then(function (r) {
        if (!r.ok) { return failed(r); }
        fill(r.data);
        say("Your profile is saved.");
      });
    });

    onSubmit("change-password", function (form, f) {
      var payload = withCaptcha(form, { current_password: f.current_password, new_password: f.new_password });
      return authed("POST", "/change-password", payload).then(function (r) {
        if (!r.ok) { return failed(r); }
        // Every session ends with a password change, this one included.
        clearToken();
        go("/login?notice=password_changed");
      });
    });

    onSubmit("change-email", function (form, f) {
      return authed("POST", "/change-email", { new_email: f.new_email.trim(), current_password: f.current_password }).then(function (r) {
        if (!r.ok) { return failed(r); }
        form.reset();
        say((r.data && r.data.message) || "Check the new address for a confirmation link.");
      });
    });

    var pendingPhone = null;
    onSubmit("phone-setup-start", function (form, f) {
      return authed("POST", "/phone/start", { phone_number: f.phone_number.trim(), current_password: f.current_password }).then(function (r) {
        if (!r.ok) { return failed(r); }
        pendingPhone = r.data.pending_token;
        var confirm = document.querySelector("[data-rs-form='phone-setup-confirm']");
        if (confirm) { confirm.hidden = false; var c = confirm.querySelector("[name='code']"); if (c) { c.focus(); } }
        say("We texted a code to that number. Enter it to turn two-step sign-in on.");
      });
    });

    onSubmit("phone-setup-confirm", function (form, f) {
      if (!pendingPhone) { say("Ask for a code first.", "error"); return null; }
      return authed("POST", "/phone/confirm", { pending_token: pendingPhone, code: f.code.trim() }).then(function (r) {
        if (!r.ok) { return failed(r); }
        pendingPhone = null;
        form.reset();
        form.hidden = true;
        say("Two-step sign-in is on.");
        return loadMe();
      });
    });

    onSubmit("mfa-disable", function (form, f) {
      return authed("DELETE", "/phone", { current_password: f.current_password }).then(function (r) {
        if (!r.ok) { return failed(r); }
        form.reset();
        say("Two-step sign-in is off.");
        return loadMe();
      });
    });

    // Deleting takes two presses of the button: no dialog, nothing a script must dismiss.
    onSubmit("delete-account", function (form, f) {
      var button = form.querySelector("[type='submit']");
      if (button && !button.hasAttribute("data-rs-armed")) {
        button.setAttribute("data-rs-armed", "");
        button.textContent = "Press again to delete your account for good";
        say("This cannot be undone. Press the button again to delete your account.", "error");
        return null;
      }
      return authed("DELETE", "/account", { current_password: f.current_password }).then(function (r) {
        if (!r.ok) { return failed(r); }
        clearToken();
        go("/login?notice=deleted");
      });
    });
  }

  // A sign-out button may sit on any page (a header in an override, say).
  function wireLogout() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-rs-action='logout']"), function (el) {
      el.addEventListener("click", function () {
        api("POST", "/logout", undefined, true).then(function () {
          clearToken();
          go("/login?notice=signed_out");
        });
      });
    });
  }

  var PAGES = {
    login: loginPage,
    register: registerPage,
    verify: verifyPage,
    forgot: forgotPage,
    reset: resetPage,
    "confirm-email-change": emailChangePage,
    me: mePage,
    "mfa-confirm": mfaPage,
    "oauth-complete": oauthCompletePage
  };

  wireLogout();
  if (PAGES[PAGE]) { PAGES[PAGE](); }
})();
