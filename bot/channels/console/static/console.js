// The console's progressive enhancement: sortable and filterable tables. Pages work without it.
"use strict";
(function () {
  function cellValue(row, index) {
    const cell = row.children[index];
    if (!cell) return "";
    const v = cell.getAttribute("data-value");
    if (v !== null && v !== "" && !isNaN(Number(v))) return Number(v);
    return (v !== null ? v : cell.textContent).trim().toLocaleLowerCase();
  }
  function sortBy(th) {
    const table = th.closest("table");
    const body = table.tBodies[0];
    if (!body) return;
    const index = Array.prototype.indexOf.call(th.parentNode.children, th);
    const ascending = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th[data-sort]").forEach((h) => h.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const x = cellValue(a, index), y = cellValue(b, index);
      if (x === y) return 0;
      if (x === "" || x === null) return 1;
      if (y === "" || y === null) return -1;
      return (x < y ? -1 : 1) * (ascending ? 1 : -1);
    });
    rows.forEach((r) => body.appendChild(r));
  }
  function applyFilters(tableId) {
    const table = document.getElementById(tableId);
    if (!table || !table.tBodies[0]) return;
    const text = Array.from(document.querySelectorAll('input.filter[data-filter="' + tableId + '"]'))
      .map((i) => i.value.trim().toLocaleLowerCase()).join(" ").trim();
    const states = Array.from(document.querySelectorAll('select.filter[data-filter="' + tableId + '"]'))
      .map((s) => s.value).filter((v) => v);
    Array.from(table.tBodies[0].rows).forEach((row) => {
      const okText = !text || row.textContent.toLocaleLowerCase().includes(text);
      const rowStates = (row.getAttribute("data-states") || "").split(" ");
      const okState = states.every((s) => rowStates.includes(s));
      row.classList.toggle("hidden", !(okText && okState));
    });
  }
  document.addEventListener("click", (e) => {
    const th = e.target.closest && e.target.closest("table.table th[data-sort]");
    if (th) sortBy(th);
  });
  document.addEventListener("input", (e) => {
    if (e.target.classList && e.target.classList.contains("filter")) applyFilters(e.target.getAttribute("data-filter"));
  });
  document.addEventListener("change", (e) => {
    if (e.target.classList && e.target.classList.contains("filter")) applyFilters(e.target.getAttribute("data-filter"));
  });
})();
