/* The theme designer's page (docs/cli.md, "theme design"). wizard.js carries the token and
 * the API calls. Edits apply at once to the preview frame's root element (CSSOM, which the
 * pages' policy allows); Save sends the values to the server, which checks them and writes
 * the file. */
(function () {
  "use strict";

  var wz = window.regstackWizard;
  var api = wz.api;
  var detail = wz.detail;
  var state = { light: {}, dark: {} };
  var defaults = { light: {}, dark: {} };
  var vars = [];
  var frame = document.getElementById("td-frame");
  var statusEl = document.getElementById("td-status");

  function say(text, bad) {
    statusEl.textContent = text;
    statusEl.className = "td-status" + (bad ? " td-error" : "");
  }

  function scheme() {
    var checked = document.querySelector("input[name='scheme']:checked");
    return checked ? checked.value : "light";
  }

  // The value a property has in `which`: the dark scheme inherits what it does not set.
  function valueOf(which, name) {
    if (which === "dark" && state.dark[name] !== undefined) { return state.dark[name]; }
    return state.light[name];
  }

  // #rgb and #rrggbb(aa) as the colour input's #rrggbb, or null.
  function pickerValue(v) {
    var m = /^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$/.exec(String(v || "").trim());
    if (!m) { return null; }
    var h = m[1];
    if (h.length === 3) { h = h[0] + h[0] + h[1] + h[1] + h[2] + h[2]; }
    return "#" + h.slice(0, 6).toLowerCase();
  }

  function applyToFrame() {
    var doc;
    try { doc = frame.contentDocument; } catch (e) { return; }
    if (!doc || !doc.documentElement) { return; }
    var which = scheme();
    vars.forEach(function (v) {
      var value = valueOf(which, v.name);
      if (value !== undefined) { doc.documentElement.style.setProperty(v.name, value); }
    });
    doc.documentElement.style.setProperty("color-scheme", which);
  }

  function render() {
    var which = scheme();
    vars.forEach(function (v) {
      var text = document.getElementById("td-text-" + v.name);
      var picker = document.getElementById("td-pick-" + v.name);
      var value = valueOf(which, v.name) || "";
      if (document.activeElement !== text) { text.value = value; }
      text.removeAttribute("aria-invalid");
      if (picker) {
        var p = pickerValue(value);
        picker.disabled = p === null;
        if (p) { picker.value = p; }
      }
    });
    applyToFrame();
  }

  function set(name, value) {
    state[scheme()][name] = value;
    applyToFrame();
  }

  function build() {
    var box = document.getElementById("td-vars");
    box.textContent = "";
    vars.forEach(function (v) {
      var row = document.createElement("div");
      row.className = "td-var";
      var label = document.createElement("label");
      label.htmlFor = "td-text-" + v.name;
      label.textContent = v.name;
      row.appendChild(label);
      if (v.kind === "colour") {
        var picker = document.createElement("input");
        picker.type = "color";
        picker.id = "td-pick-" + v.name;
        picker.setAttribute("aria-label", v.name + " colour picker");
        picker.addEventListener("input", function () {
          var text = document.getElementById("td-text-" + v.name);
          text.value = picker.value;
          set(v.name, picker.value);
        });
        row.appendChild(picker);
      } else {
        var spacer = document.createElement("span");
        spacer.className = "td-swatch-none";
        row.appendChild(spacer);
      }
      var input = document.createElement("input");
      input.type = "text";
      input.id = "td-text-" + v.name;
      input.setAttribute("data-var", v.name);
      input.spellcheck = false;
      input.autocomplete = "off";
      input.addEventListener("input", function () {
        set(v.name, input.value.trim());
        var p = pickerValue(input.value);
        var pick = document.getElementById("td-pick-" + v.name);
        if (pick) { pick.disabled = p === null; if (p) { pick.value = p; } }
      });
      row.appendChild(input);
      box.appendChild(row);
    });
  }

  function copy(obj) { return JSON.parse(JSON.stringify(obj)); }

  function showPage() {
    var page = document.getElementById("td-page").value;
    // The sample account page needs a session and the code page a pending sign-in; any
    // other page with a session would move on to the account page.
    try {
      if (page === "me") { window.localStorage.setItem("regstack.access_token", "preview"); }
      else { window.localStorage.removeItem("regstack.access_token"); }
      if (page === "mfa-confirm") { window.sessionStorage.setItem("regstack.mfa_pending", "preview"); }
      else { window.sessionStorage.removeItem("regstack.mfa_pending"); }
    } catch (e) { /* storage off: those two pages show the sign-in page instead */ }
    frame.src = "/preview/" + page;
  }

  function markInvalid(data) {
    if (!data || !Array.isArray(data.detail)) { return; }
    data.detail.forEach(function (e) {
      var m = /^(--rs-[a-z-]+):/.exec(e.msg || "");
      var input = m && document.getElementById("td-text-" + m[1]);
      if (input) { input.setAttribute("aria-invalid", "true"); }
    });
  }

  frame.addEventListener("load", applyToFrame);
  document.querySelectorAll("input[name='scheme']").forEach(function (r) { r.addEventListener("change", render); });
  document.getElementById("td-page").addEventListener("change", showPage);

  document.getElementById("td-save").addEventListener("click", function () {
    say("Saving…");
    api("PUT", "/api/theme", state).then(function (r) {
      if (!r.ok) { markInvalid(r.data); say(detail(r.data), true); return; }
      say(r.data.written ? "Saved " + r.data.path + "." : "Nothing changed in " + r.data.path + ".");
    });
  });
  document.getElementById("td-reset").addEventListener("click", function () {
    state = copy(defaults);
    render();
    say("Back to the bundled theme; Save to keep it.");
  });
  document.getElementById("td-copy").addEventListener("click", function () {
    api("POST", "/api/css", state).then(function (r) {
      if (!r.ok) { markInvalid(r.data); say(detail(r.data), true); return; }
      var area = document.getElementById("td-css");
      area.hidden = false;
      area.value = r.data.css;
      var done = function () { say("The stylesheet is on the clipboard."); };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(r.data.css).then(done, function () { area.select(); say("Copy the stylesheet below."); });
      } else { area.select(); say("Copy the stylesheet below."); }
    });
  });
  document.getElementById("td-done").addEventListener("click", function () {
    api("POST", "/api/done").then(function () { say("The designer has stopped; you can close this tab."); });
  });

  api("GET", "/api/theme").then(function (r) {
    if (!r.ok) { say(detail(r.data), true); return; }
    vars = r.data.vars;
    defaults = r.data.defaults;
    state = r.data.theme;
    document.getElementById("td-path").textContent = r.data.path;
    build();
    render();
    showPage();
    say("Loaded.");
  });
})();
