// Sort a table.sortable by a column when its heading is clicked: numbers
// by value, text naturally, empty values last in both directions. The
// offline report runs it once on load; sweetspot ui runs it again on each
// table it replaces while a run goes on (sweetspotSortable(root)).
function sweetspotSortable(root) {
  root.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      th.querySelector("button").addEventListener("click", function () {
        var num = th.hasAttribute("data-num");
        var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var key = function (r) { var v = r.cells[col].getAttribute("data-v"); return num ? (v === "" ? NaN : Number(v)) : v; };
        rows.sort(function (a, b) {
          var x = key(a), y = key(b);
          if (num) {
            if (isNaN(x)) return isNaN(y) ? 0 : 1;
            if (isNaN(y)) return -1;
            return (x - y) * dir;
          }
          if (x === "") return y === "" ? 0 : 1;
          if (y === "") return -1;
          return x.localeCompare(y, undefined, { numeric: true }) * dir;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
}
sweetspotSortable(document);
