// Nuvom dashboard: local times, live counters over server-sent events,
// select-all and confirmations. No library; nothing loaded from elsewhere.
(function () {
  "use strict";
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) { el.textContent = d.toLocaleString(); el.title = el.getAttribute("datetime"); }
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    var all = document.querySelector("[data-check-all]");
    if (all) {
      all.addEventListener("change", function () {
        document.querySelectorAll("input[name=id]").forEach(function (c) { c.checked = all.checked; });
      });
    }
    document.querySelectorAll("[data-confirm]").forEach(function (b) {
      b.addEventListener("click", function (e) { if (!window.confirm(b.getAttribute("data-confirm"))) { e.preventDefault(); } });
    });
    var live = document.getElementById("live");
    if (live && window.EventSource) {
      var es = new EventSource("events");
      es.onmessage = function (e) {
        var s = JSON.parse(e.data);
        live.querySelectorAll("[data-live]").forEach(function (el) {
          var v = s[el.getAttribute("data-live")];
          if (typeof v === "number") { el.textContent = v % 1 ? v.toFixed(1) : String(v); }
        });
        if (s.totals) {
          live.querySelectorAll("[data-total]").forEach(function (el) {
            el.textContent = String(s.totals[el.getAttribute("data-total")] || 0);
          });
        }
        live.setAttribute("data-seq", String(s.seq));
      };
    }
  });
})();
