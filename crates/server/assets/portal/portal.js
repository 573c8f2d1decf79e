// Slipway portal: progressive enhancement only — every page works without this file.
// Follows a deployment's log live (Server-Sent Events from the API) and refreshes its status when
// it ends. Log text is inserted as text nodes, never as HTML.
(function () {
  "use strict";
  function refreshStatus() {
    var s = document.getElementById("deployment-status");
    if (s && window.htmx) window.htmx.trigger(s, "refresh");
  }
  function followLog() {
    var log = document.getElementById("log");
    if (!log || log.getAttribute("data-follow") !== "true" || !window.EventSource) return;
    var state = document.getElementById("log-state");
    var stick = true;
    log.addEventListener("scroll", function () {
      stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 40;
    });
    log.scrollTop = log.scrollHeight;
    if (state) state.textContent = "Following the log live…";
    var es = new EventSource(log.getAttribute("data-src"));
    es.addEventListener("log", function (ev) {
      // "2026-11-24T15:15:44.251Z [stdout] text"
      var m = /^(\S+) \[(\w+)\] ([\s\S]*)$/.exec(ev.data);
      var line = document.createElement("span");
      line.className = "l " + (m ? m[2] : "");
      var t = document.createElement("span");
      t.className = "t";
      t.textContent = m ? m[1].slice(11, 23) : "";
      line.appendChild(t);
      line.appendChild(document.createTextNode(" " + (m ? m[3] : ev.data)));
      log.appendChild(line);
      log.appendChild(document.createTextNode("\n"));
      if (stick) log.scrollTop = log.scrollHeight;
    });
    es.addEventListener("end", function (ev) {
      es.close();
      if (state) state.textContent = "The deployment has ended: " + ev.data + ".";
      refreshStatus();
    });
  }
  function focusErrors() {
    var e = document.getElementById("errors");
    if (e) e.focus();
  }
  document.addEventListener("DOMContentLoaded", function () {
    followLog();
    focusErrors();
  });
})();
