// leaf7 dashboard, the free-keys page: the funnel chart (uPlot) and, in the settings form, the
// fields of the provider each checkpoint uses. The copy buttons are dashboard.js's. No inline
// script anywhere (the CSP forbids it): the chart's data is the element's data-series.
(function () {
  "use strict";

  var COLORS = ["#0f172a", "#2563eb", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04",
    "#db2777", "#4f46e5", "#65a30d", "#b91c1c", "#0d9488", "#7c3aed"];

  function drawFunnel(el) {
    if (!el || el.dataset.drawn || typeof uPlot === "undefined") return;
    var data = JSON.parse(el.dataset.series || '{"x":[],"series":[]}');
    el.dataset.drawn = "1";
    var n = data.series.length;
    var series = [{}];
    var columns = [data.x];
    data.series.forEach(function (s, i) {
      var last = i === n - 1; // the refusals: dashed red
      series.push({
        label: s.label,
        stroke: last ? "#b42318" : COLORS[i % COLORS.length],
        width: 2,
        dash: last ? [6, 4] : undefined,
      });
      columns.push(s.values);
    });
    var width = Math.max(260, el.clientWidth || 600);
    var opts = {
      width: width,
      height: 240,
      scales: { x: { time: true } },
      // UTC days, as the funnel counts them: one tick a day at most, labelled M/D.
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      axes: [
        {
          stroke: "#555",
          incrs: [86400, 2 * 86400, 7 * 86400, 14 * 86400, 30 * 86400],
          values: function (u, splits) {
            return splits.map(function (v) {
              var d = new Date(v * 1000);
              return (d.getUTCMonth() + 1) + "/" + d.getUTCDate();
            });
          },
        },
        { stroke: "#555" },
      ],
      series: series,
    };
    var plot = new uPlot(opts, columns, el);
    window.addEventListener("resize", function () {
      plot.setSize({ width: Math.max(260, el.clientWidth), height: 240 });
    });
  }

  // Each checkpoint shows the fields of its provider only (without JavaScript: all of them,
  // each label naming its provider).
  function showFields(select) {
    var box = select.closest("fieldset");
    if (!box) return;
    box.querySelectorAll(".cp-field").forEach(function (f) {
      var wanted = (f.dataset.providers || "").split(" ");
      f.hidden = wanted.indexOf(select.value) < 0;
    });
  }

  function init(root) {
    var scope = root.querySelectorAll ? root : document;
    drawFunnel(document.getElementById("funnel-chart"));
    scope.querySelectorAll("select.cp-provider").forEach(function (s) {
      showFields(s);
      if (!s.dataset.bound) {
        s.dataset.bound = "1";
        s.addEventListener("change", function () { showFields(s); });
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
