// The period view: another period loads at once; the indicator select shows its chart without a
// reload. (The state and text filters of the table are console.js's.)
(function () {
  "use strict";
  var form = document.getElementById("period-form");
  var periodSelect = document.getElementById("period-select");
  if (form && periodSelect) {
    periodSelect.addEventListener("change", function () { form.submit(); });
  }
  var chartSelect = document.getElementById("chart-select");
  if (chartSelect) {
    chartSelect.addEventListener("change", function () {
      document.querySelectorAll("figure.chart").forEach(function (fig) {
        fig.hidden = fig.dataset.chart !== chartSelect.value;
      });
      var url = new URL(window.location.href);
      url.searchParams.set("chart", chartSelect.value);
      window.history.replaceState(null, "", url);
    });
  }
})();
