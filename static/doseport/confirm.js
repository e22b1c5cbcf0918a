// Forms with data-confirm="question" ask before submitting (inline onsubmit handlers are
// blocked by the Content-Security-Policy, doseport/security.py).
document.addEventListener("submit", function (event) {
  var question = event.target.getAttribute && event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
}, true);
