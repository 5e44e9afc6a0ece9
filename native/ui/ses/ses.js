/* The SES setup page (docs/cli.md, "ses setup"). */
(function () {
  "use strict";
  var wz = window.regstackWizard;
  var statusEl = document.getElementById("wz-status");
  var checked = { ok: false, sandbox: false };
  // Each change of an answer starts a new round; a check answered for an older one is dropped.
  var round = 0;

  function source() {
    var r = document.querySelector("input[name='source']:checked");
    return r ? r.value : "chain";
  }

  // Only the fields of the chosen credential source go.
  function answers() {
    var explicit = source() === "explicit";
    return {
      region: document.getElementById("wz-region").value,
      from_address: document.getElementById("wz-from").value.trim(),
      credential_source: source(),
      profile: source() === "profile" ? (document.getElementById("wz-profile").value.trim() || null) : null,
      access_key_id: explicit ? (document.getElementById("wz-key-id").value.trim() || null) : null,
      secret_access_key: explicit ? (document.getElementById("wz-key-secret").value.trim() || null) : null
    };
  }

  function showSource() {
    document.getElementById("wz-profile-field").hidden = source() !== "profile";
    document.getElementById("wz-keys").hidden = source() !== "explicit";
  }

  function canSave() {
    var ack = document.getElementById("wz-sandbox-ack").checked;
    document.getElementById("wz-save").disabled = !(checked.ok && (!checked.sandbox || ack));
  }

  // Any change of an answer asks for a new check.
  function stale() {
    round += 1;
    checked = { ok: false, sandbox: false };
    document.getElementById("wz-results").textContent = "";
    document.getElementById("wz-sandbox-ack").checked = false;
    document.getElementById("wz-sandbox-ack-label").hidden = true;
    var none = document.getElementById("wz-sandbox-none");
    none.hidden = false;
    none.textContent = "Run the check first.";
    canSave();
  }

  function list(el, results) {
    el.textContent = "";
    results.forEach(function (c) {
      var li = document.createElement("li");
      li.className = "wz-" + c.outcome;
      li.setAttribute("data-check", c.name);
      li.setAttribute("data-outcome", c.outcome);
      li.textContent = c.name + ": " + c.detail;
      el.appendChild(li);
    });
  }

  document.querySelectorAll("input[name='source']").forEach(function (r) {
    r.addEventListener("change", function () { showSource(); stale(); });
  });
  ["wz-region", "wz-from", "wz-profile", "wz-key-id", "wz-key-secret"].forEach(function (id) {
    document.getElementById(id).addEventListener("input", stale);
    document.getElementById(id).addEventListener("change", stale);
  });
  document.getElementById("wz-sandbox-ack").addEventListener("change", canSave);

  document.getElementById("wz-check").addEventListener("click", function () {
    wz.say(statusEl, "Asking AWS…");
    var asked = round;
    wz.api("POST", "/api/check", answers()).then(function (r) {
      if (asked !== round) { return; }
      if (!r.ok) { wz.say(statusEl, wz.detail(r.data), true); return; }
      list(document.getElementById("wz-results"), r.data.results);
      var failed = r.data.results.some(function (c) { return c.outcome === "fail"; });
      var sandbox = r.data.results.some(function (c) { return c.name === "sandbox" && c.outcome === "warn"; });
      var unknown = r.data.results.some(function (c) { return c.name === "sandbox state"; });
      checked = { ok: !failed, sandbox: sandbox };
      var none = document.getElementById("wz-sandbox-none");
      none.hidden = sandbox;
      none.textContent = unknown ? "The sandbox state could not be read: check it in the SES console before going live."
        : "No sandbox limit: SES sends to any address.";
      document.getElementById("wz-sandbox-ack-label").hidden = !sandbox;
      canSave();
      wz.say(statusEl, failed ? "A check failed: fix it and check again." : "Checked.", failed);
    });
  });
  document.getElementById("wz-send").addEventListener("click", function () {
    var body = answers();
    body.to = document.getElementById("wz-test-to").value.trim();
    wz.api("POST", "/api/send-test", body).then(function (r) {
      if (!r.ok) { wz.say(statusEl, wz.detail(r.data), true); return; }
      list(document.getElementById("wz-send-result"), [r.data.result]);
    });
  });
  document.getElementById("wz-preview").addEventListener("click", function () {
    wz.api("POST", "/api/preview", answers()).then(function (r) {
      if (!r.ok) { wz.say(statusEl, wz.detail(r.data), true); return; }
      var rows = wz.showDiff(document.getElementById("wz-diff"), r.data.diff);
      wz.say(statusEl, rows ? "These are the changes Save will make." : "Nothing would change.");
    });
  });
  document.getElementById("wz-save").addEventListener("click", function () {
    wz.api("POST", "/api/save", answers()).then(function (r) {
      if (!r.ok) { wz.say(statusEl, wz.detail(r.data), true); return; }
      wz.showDiff(document.getElementById("wz-diff"), r.data.diff);
      wz.say(statusEl, r.data.written ? "Saved. Restart the server to use it." : "Nothing changed: the files already say this.");
    });
  });
  document.getElementById("wz-done").addEventListener("click", function () {
    wz.api("POST", "/api/done").then(function () { wz.say(statusEl, "The wizard has stopped; you can close this tab."); });
  });

  wz.api("GET", "/api/state").then(function (r) {
    if (!r.ok) { wz.say(statusEl, wz.detail(r.data), true); return; }
    document.getElementById("wz-config").textContent = r.data.config;
    var select = document.getElementById("wz-region");
    r.data.regions.forEach(function (name) {
      var o = document.createElement("option");
      o.value = name; o.textContent = name;
      select.appendChild(o);
    });
    select.value = r.data.region;
    if (r.data.from_address) { document.getElementById("wz-from").value = r.data.from_address; }
    var radio = document.querySelector("input[name='source'][value='" + r.data.credential_source + "']");
    if (radio) { radio.checked = true; }
    if (r.data.profile) { document.getElementById("wz-profile").value = r.data.profile; }
    if (r.data.access_key_id) { document.getElementById("wz-key-id").value = r.data.access_key_id; }
    showSource();
    wz.say(statusEl, "Ready.");
  });
})();
