// Live lists: an element with data-live-url is refreshed from that URL every LIVE_MS while
// the tab is visible (the server answers 204 when nothing changed, and htmx keeps the page).
// Polling pauses while the tab is hidden, refreshes once when it shows again, and stops
// when the refreshed part has no data-live-url any more (the list is not live, or done).
(function () {
  "use strict";
  var LIVE_MS = 3000;
  var timer = null;

  function target() { return document.querySelector("[data-live-url]"); }

  function refresh() {
    var el = target();
    if (!el || document.hidden || !window.htmx) return;
    window.htmx.ajax("GET", el.getAttribute("data-live-url"), { source: el, target: el, swap: "outerHTML" });
  }

  function schedule() {
    if (timer) { clearInterval(timer); timer = null; }
    if (target() && !document.hidden) timer = setInterval(refresh, LIVE_MS);
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) refresh();
    schedule();
  });
  document.addEventListener("htmx:afterSettle", schedule);
  document.addEventListener("DOMContentLoaded", schedule);
})();
