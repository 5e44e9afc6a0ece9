/* The OAuth setup page (docs/cli.md, "oauth setup"). */
(function () {
  "use strict";
  var wz = window.regstackWizard;
  var statusEl = document.getElementById("wz-status");
  var redirect = document.getElementById("wz-redirect");

  function answers() {
    return {
      client_id: document.getElementById("wz-client-id").value.trim(),
      client_secret: document.getElementById("wz-client-secret").value.trim(),
      auto_link: document.getElementById("wz-auto-link").checked,
      mfa: document.getElementById("wz-mfa").checked
    };
  }

  function send(path, done) {
    wz.api("POST", path, answers()).then(function (r) {
      if (!r.ok) { wz.say(statusEl, wz.detail(r.data), true); return; }
      redirect.textContent = r.data.redirect_uri;
      var rows = wz.showDiff(document.getElementById("wz-diff"), r.data.diff);
      done(r.data, rows);
    });
  }

  wz.copyButton(document.getElementById("wz-copy-redirect"), function () { return redirect.textContent; });
  document.getElementById("wz-preview").addEventListener("click", function () {
    send("/api/preview", function (data, rows) {
      wz.say(statusEl, rows ? "These are the changes Save will make." : "Nothing would change.");
    });
  });
  document.getElementById("wz-save").addEventListener("click", function () {
    send("/api/save", function (data) {
      wz.say(statusEl, data.written ? "Saved. Restart the server to use it." : "Nothing changed: the files already say this.");
    });
  });
  document.getElementById("wz-done").addEventListener("click", function () {
    wz.api("POST", "/api/done").then(function () { wz.say(statusEl, "The wizard has stopped; you can close this tab."); });
  });

  wz.api("GET", "/api/state").then(function (r) {
    if (!r.ok) { wz.say(statusEl, wz.detail(r.data), true); return; }
    document.getElementById("wz-config").textContent = r.data.config;
    redirect.textContent = r.data.redirect_uri;
    if (r.data.client_id) { document.getElementById("wz-client-id").value = r.data.client_id; }
    document.getElementById("wz-auto-link").checked = !!r.data.auto_link;
    document.getElementById("wz-mfa").checked = !!r.data.mfa;
    wz.say(statusEl, "Ready.");
  });
})();
