// Live parts of a page: each element with data-live-url is refreshed from that URL every
// LIVE_MS while the tab is visible. The server answers 204 when nothing changed (htmx then
// keeps the page) or the part itself, re-rendered. Polling pauses while the tab is hidden,
// catches up once when it shows again, and stops when no part has a data-live-url any more
// (the list is not on its first page, the import is done).
(function () {
  "use strict";
  var LIVE_MS = 3000;
  var timer = null;

  function parts() { return document.querySelectorAll("[data-live-url]"); }

  function refresh() {
    if (document.hidden || !window.htmx) return;
    parts().forEach(function (el) {
      if (el.getAttribute("data-live-busy")) return;  // the last answer is still coming
      el.setAttribute("data-live-busy", "1");
      window.htmx.ajax("GET", el.getAttribute("data-live-url"), { source: el, target: el, swap: "outerHTML" })
        .finally(function () { el.removeAttribute("data-live-busy"); });
    });
  }

  function schedule() {
    if (timer) { clearInterval(timer); timer = null; }
    if (parts().length && !document.hidden) timer = setInterval(refresh, LIVE_MS);
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) refresh();
    schedule();
  });
  document.addEventListener("htmx:afterSettle", schedule);
  document.addEventListener("DOMContentLoaded", schedule);
})();
