/* Progressive enhancement only: the page is complete without this script. */
(function () {
  "use strict";
  // Sortable tables: a button in each header cell of table.sortable.
  function cellValue(row, index) {
    var cell = row.cells[index];
    var text = cell ? cell.textContent.trim() : "";
    var num = parseFloat(text);
    return (text !== "" && !isNaN(num) && /^[-+0-9.eEinfa]+$/.test(text)) ? num : text.toLowerCase();
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var head = table.tHead;
    if (!head || !table.tBodies.length) return;
    Array.prototype.forEach.call(head.rows[0].cells, function (th, index) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      button.textContent = th.textContent;
      th.textContent = "";
      th.appendChild(button);
      th.setAttribute("aria-sort", "none");
      button.addEventListener("click", function () {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(head.rows[0].cells, function (c) { c.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = cellValue(a, index), y = cellValue(b, index);
          var r = (typeof x === "number" && typeof y === "number") ? x - y : String(x).localeCompare(String(y));
          return ascending ? r : -r;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });

  // Filtering groups by text and kind.
  var filters = document.getElementById("filters");
  var groups = Array.prototype.slice.call(document.querySelectorAll("article.group"));
  if (filters && groups.length) {
    filters.hidden = false;
    var text = document.getElementById("filter-text");
    var kinds = Array.prototype.slice.call(document.querySelectorAll(".kind-filter"));
    var count = document.getElementById("filter-count");
    var apply = function () {
      var q = text.value.trim().toLowerCase();
      var allowed = kinds.filter(function (k) { return k.checked; }).map(function (k) { return k.value; });
      var shown = 0;
      groups.forEach(function (g) {
        var visible = allowed.indexOf(g.getAttribute("data-kind")) >= 0 && (!q || g.textContent.toLowerCase().indexOf(q) >= 0);
        g.hidden = !visible;
        var row = document.querySelector('tr[data-group="' + g.id.slice(2) + '"]');
        if (row) row.hidden = !visible;
        if (visible) shown += 1;
      });
      count.textContent = shown + " of " + groups.length + " groups shown";
    };
    text.addEventListener("input", apply);
    kinds.forEach(function (k) { k.addEventListener("change", apply); });
    apply();
  }

  // Copy buttons for the reproducers.
  document.querySelectorAll("button.copy").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var pre = document.getElementById(button.getAttribute("data-copy"));
      if (!pre) return;
      var done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy script"; }, 1500); };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(pre.textContent).then(done, function () { selectText(pre); });
      } else {
        selectText(pre);
      }
    });
  });
  function selectText(node) {
    var details = node.closest("details");
    if (details) details.open = true;
    var range = document.createRange();
    range.selectNodeContents(node);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  // Printing: open every collapsed block so the paper copy is complete.
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("details").forEach(function (d) { d.setAttribute("data-was-open", d.open ? "1" : "0"); d.open = true; });
  });
  window.addEventListener("afterprint", function () {
    document.querySelectorAll("details[data-was-open]").forEach(function (d) { d.open = d.getAttribute("data-was-open") === "1"; });
  });
})();
