/* Shared by the setup wizards' pages (docs/cli.md, "Local wizards"). The per-launch token
 * arrives in the URL's fragment, leaves the address bar at once, and goes with every API
 * call in X-Regstack-Token. */
(function () {
  "use strict";
  var m = /(?:^|[#&])token=([0-9a-f]+)/.exec(window.location.hash);
  var token = m ? m[1] : "";
  if (window.history && window.history.replaceState) {
    window.history.replaceState(null, "", window.location.pathname);
  }

  function api(method, path, body) {
    return fetch(path, {
      method: method,
      headers: { "Content-Type": "application/json", "X-Regstack-Token": token },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin"
    }).then(function (resp) {
      return resp.json().then(function (data) { return { ok: resp.ok, status: resp.status, data: data }; },
        function () { return { ok: resp.ok, status: resp.status, data: null }; });
    }, function () { return { ok: false, status: 0, data: { detail: "The wizard has stopped." } }; });
  }

  function detail(data) {
    if (!data) { return "The wizard did not answer."; }
    if (Array.isArray(data.detail)) { return data.detail.map(function (e) { return e.msg; }).join("; "); }
    return String(data.detail || "Something went wrong.");
  }

  function say(el, text, bad) {
    el.textContent = text;
    el.className = "wz-status" + (bad ? " wz-error" : "");
  }

  // The diff as a table: file, key, before, after.
  function showDiff(table, diff) {
    var body = table.querySelector("tbody");
    body.textContent = "";
    var rows = 0;
    Object.keys(diff || {}).forEach(function (file) {
      Object.keys(diff[file]).forEach(function (key) {
        var tr = document.createElement("tr");
        [file, key, diff[file][key].before, diff[file][key].after].forEach(function (v, i) {
          var td = document.createElement("td");
          if (i >= 2) {
            var code = document.createElement("code");
            code.textContent = v === null ? "(absent)" : v;
            td.appendChild(code);
          } else { td.textContent = v; }
          tr.appendChild(td);
        });
        body.appendChild(tr);
        rows += 1;
      });
    });
    table.hidden = rows === 0;
    return rows;
  }

  function copyButton(button, text) {
    button.addEventListener("click", function () {
      if (navigator.clipboard && navigator.clipboard.writeText) { navigator.clipboard.writeText(text()); }
    });
  }

  window.regstackWizard = { api: api, detail: detail, say: say, showDiff: showDiff, copyButton: copyButton };
})();
