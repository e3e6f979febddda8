// leaf7 dashboard: the chart and the copy buttons. No inline script anywhere (the CSP forbids
// it); htmx is configured by its <meta name="htmx-config">.
(function () {
  "use strict";

  // A chart of data-series ({"x": epoch seconds, "y": counts}); data-label and data-color
  // name its series (default: the overview's valid executions).
  function drawChart(el) {
    if (!el || el.dataset.drawn || typeof uPlot === "undefined") return;
    var data = JSON.parse(el.dataset.series || '{"x":[],"y":[]}');
    el.dataset.drawn = "1";
    var width = Math.max(260, el.clientWidth || 600);
    var color = el.dataset.color || "#2563eb";
    var opts = {
      width: width,
      height: 220,
      legend: { show: false },
      scales: { x: { time: true } },
      axes: [{ stroke: "#555" }, { stroke: "#555" }],
      series: [{}, { label: el.dataset.label || "Valid executions", stroke: color, width: 2, fill: color + "20" }],
    };
    var plot = new uPlot(opts, [data.x, data.y], el);
    window.addEventListener("resize", function () {
      plot.setSize({ width: Math.max(260, el.clientWidth), height: 220 });
    });
  }

  function copy(ev) {
    var target = document.getElementById(ev.currentTarget.dataset.copy);
    if (!target) return;
    target.select();
    if (navigator.clipboard) {
      navigator.clipboard.writeText(target.value).catch(function () {});
    }
    ev.currentTarget.textContent = "Copied";
  }

  function init(root) {
    if (root.querySelector) {
      drawChart(root.querySelector("#chart"));
      drawChart(root.querySelector("#reports-chart"));
    }
    var buttons = (root.querySelectorAll ? root : document).querySelectorAll("button.copy");
    buttons.forEach(function (b) {
      if (!b.dataset.bound) {
        b.dataset.bound = "1";
        b.addEventListener("click", copy);
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    init(document);
  });
  document.addEventListener("htmx:afterSwap", function (ev) {
    init(ev.target);
  });
})();
