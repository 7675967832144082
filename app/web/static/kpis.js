// KPI dashboard: draws the chart from the JSON block next to it (the CSP allows no inline
// script). The table beside the chart holds the same figures and is the source of truth.
(function () {
  "use strict";
  // Okabe-Ito colours: told apart with colour-vision deficiencies; lines are also dashed.
  var COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00"];
  var LINES = { baseline: "#555555", target: "#B00020" };

  function draw() {
    var canvas = document.getElementById("kpi-chart");
    var block = document.getElementById("kpi-chart-data");
    if (!canvas || !block || typeof window.Chart === "undefined") { return; }
    var data = JSON.parse(block.textContent);
    var bars = 0;
    var datasets = data.series.map(function (s, i) {
      var line = s.kind === "line";
      var colour = line ? (i % 2 === 0 ? LINES.baseline : LINES.target) : COLOURS[bars++ % COLOURS.length];
      if (line && /target|doel/i.test(s.name)) { colour = LINES.target; }
      return {
        type: line ? "line" : "bar",
        label: s.name,
        data: s.data,
        backgroundColor: colour,
        borderColor: colour,
        borderWidth: line ? 2 : 0,
        borderDash: line ? [6, 4] : [],
        pointRadius: line ? 3 : 0,
        spanGaps: false,
        order: line ? 0 : 1
      };
    });
    var percent = data.percent;
    var chart = new window.Chart(canvas, {
      data: { labels: data.labels, datasets: datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: {
          y: {
            beginAtZero: true,
            ticks: { callback: function (v) { return percent ? v + " %" : v; } }
          }
        },
        plugins: {
          legend: { position: "bottom" },
          tooltip: {
            callbacks: {
              label: function (ctx) {
                var v = ctx.raw;
                return ctx.dataset.label + ": " + (v === null ? data.gap : v + (percent ? " %" : ""));
              }
            }
          }
        }
      }
    });
    canvas.setAttribute("data-points", String(data.labels.length));
    canvas.setAttribute("data-ready", "true");
    window.kpiChart = chart;
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
