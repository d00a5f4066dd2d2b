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
