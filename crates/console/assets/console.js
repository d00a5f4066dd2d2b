// codeyard console: live fragments over server-sent events. Elements with data-live="URL"
// are replaced by each "state" event; "log" events append lines to #log; "done" ends the stream.
(function () {
  function follow(log) {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  }
  document.querySelectorAll("[data-live]").forEach(function (el) {
    var es = new EventSource(el.dataset.live);
    es.addEventListener("state", function (e) {
      el.innerHTML = e.data;
      el.dataset.updates = String(Number(el.dataset.updates || "0") + 1);
    });
    es.addEventListener("log", function (e) {
      var log = document.getElementById("log");
      if (!log) return;
      var stick = follow(log);
      log.appendChild(document.createTextNode(e.data + "\n"));
      if (stick) log.scrollTop = log.scrollHeight;
    });
    es.addEventListener("done", function () {
      es.close();
      el.dataset.done = "true";
    });
  });
})();
// Copy buttons: data-copy="CSS selector" copies that element's text.
(function () {
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var el = document.querySelector(button.dataset.copy);
      if (!el) return;
      var text = el.textContent;
      var done = function () { button.textContent = "Copied"; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () { fallback(el); done(); });
      } else {
        fallback(el);
        done();
      }
    });
  });
  function fallback(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    try { document.execCommand("copy"); } catch (e) { /* the text stays selected to copy by hand */ }
  }
})();
