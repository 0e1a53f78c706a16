// sweetspot ui: filters for the runs list and the trials table, and the
// live run page, which puts in place the parts the server sends as the
// run goes on (server-sent events from /runs/ID/events).
(function () {
  "use strict";

  // filterRows hides the rows of a table whose text lacks every word of q.
  function filterRows(table, q) {
    if (!table || !table.tBodies[0]) return;
    var words = q.toLowerCase().split(/\s+/).filter(Boolean);
    Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
      var text = r.textContent.toLowerCase();
      var keep = words.every(function (w) { return text.indexOf(w) >= 0; });
      r.classList.toggle("hidden", !keep);
    });
  }

  // The page's state can be given in its address: #filter=TEXT&sort=COLUMN:desc.
  function hashState() {
    var out = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
      var i = kv.indexOf("=");
      if (i > 0) out[decodeURIComponent(kv.slice(0, i))] = decodeURIComponent(kv.slice(i + 1));
    });
    return out;
  }

  // sortBy clicks a column's heading until the table is sorted its way.
  function sortBy(table, spec) {
    if (!table || !spec) return;
    var parts = spec.split(":"), want = parts[1] === "desc" ? "descending" : "ascending";
    Array.prototype.forEach.call(table.querySelectorAll("th button"), function (b) {
      if (b.textContent !== parts[0]) return;
      for (var i = 0; i < 2 && b.parentNode.getAttribute("aria-sort") !== want; i++) b.click();
    });
  }

  var state = hashState();

  var runsFilter = document.getElementById("runs-filter");
  if (runsFilter) {
    var runsTable = document.getElementById("runs-table");
    if (state.filter) runsFilter.value = state.filter;
    runsFilter.addEventListener("input", function () { filterRows(runsTable, runsFilter.value); });
    filterRows(runsTable, runsFilter.value);
    sortBy(runsTable, state.sort);
  }

  var trialFilter = document.getElementById("trial-filter");
  var sorted = state.sort || "";
  function trialsTable() { return document.getElementById("trials-table"); }
  function applyTrialState() {
    var t = trialsTable();
    if (!t) return;
    t.addEventListener("click", function () {
      var th = t.querySelector("th[aria-sort]");
      if (th) sorted = th.textContent + ":" + (th.getAttribute("aria-sort") === "descending" ? "desc" : "asc");
    });
    sortBy(t, sorted);
    if (trialFilter) filterRows(t, trialFilter.value);
  }
  if (trialFilter) {
    if (state.filter) trialFilter.value = state.filter;
    trialFilter.addEventListener("input", function () { filterRows(trialsTable(), trialFilter.value); });
    applyTrialState();
  }

  var run = document.getElementById("run");
  if (run && run.getAttribute("data-live") === "1" && window.EventSource) {
    var es = new EventSource("/runs/" + encodeURIComponent(run.getAttribute("data-id")) + "/events");
    es.addEventListener("update", function (e) {
      var u = JSON.parse(e.data);
      Object.keys(u.parts).forEach(function (name) {
        var el = document.getElementById("live-" + name);
        if (!el) return;
        el.innerHTML = u.parts[name];
        if (name === "trials") { sweetspotSortable(el); applyTrialState(); }
      });
      run.setAttribute("data-status", u.status);
    });
    es.addEventListener("end", function () {
      es.close();
      var note = document.getElementById("live-note");
      if (note) note.textContent = "the run has ended";
    });
    es.addEventListener("gone", function () {
      es.close();
      var note = document.getElementById("live-note");
      if (note) note.textContent = "this run was deleted";
    });
  }
})();
