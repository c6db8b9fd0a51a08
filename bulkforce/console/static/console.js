// bulkforce console: re-fetch a server-rendered fragment so the page follows running jobs
// without a reload. Only this file's code runs (the CSP forbids inline scripts).
(function () {
  "use strict";
  var FAST_MS = 1500;  // while something runs
  var SLOW_MS = 5000;  // lists keep watching for new jobs

  function running(box) {
    var live = box.querySelector(".live");
    return live !== null && live.getAttribute("data-running") === "1";
  }

  function follow(box) {
    var url = box.getAttribute("data-refresh");
    var always = box.getAttribute("data-always") === "1";
    function next() {
      if (running(box)) { setTimeout(tick, FAST_MS); }
      else if (always) { setTimeout(tick, SLOW_MS); }
    }
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) {
          if (r.status === 401) { window.location.assign("/login"); return null; }
          return r.ok ? r.text() : Promise.reject(r.status);
        })
        .then(function (html) { if (html !== null) { box.innerHTML = html; next(); } })
        .catch(function () { setTimeout(tick, SLOW_MS); });
    }
    next();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh]").forEach(follow);
  });
})();
