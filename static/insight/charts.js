/* Dose insight charts: each .chart[data-src] section fetches its data (JSON, same origin),
   draws it with Chart.js, builds its table (the text equivalent, shown by a toggle) and
   offers the drawing as a PNG. No inline script or style: the page's CSP allows neither. */
(function () {
  "use strict";
  // Okabe-Ito: distinguishable with the common colour-vision deficiencies.
  var PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
                 "#000000", "#F0E442"];
  var ROW_PX = 26;

  function unitOf(series) { return series.unit ? " (" + series.unit + ")" : ""; }

  // A white background, so the PNG reads like the page (the canvas is transparent).
  var whiteBackground = {
    id: "whiteBackground",
    beforeDraw: function (chart) {
      var ctx = chart.ctx;
      ctx.save();
      ctx.globalCompositeOperation = "destination-over";
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(0, 0, chart.width, chart.height);
      ctx.restore();
    }
  };

  function valueAxes(data, horizontal) {
    var scales = {}, used = {};
    data.series.forEach(function (s) { used[s.axis] = used[s.axis] || s; });
    Object.keys(used).forEach(function (axis) {
      var id = horizontal ? (axis === "y1" ? "x1" : "x") : axis;
      scales[id] = {
        beginAtZero: true,
        position: horizontal ? (axis === "y1" ? "top" : "bottom") : (axis === "y1" ? "right" : "left"),
        title: { display: true, text: data.y_label || (used[axis].label + unitOf(used[axis])) },
        grid: { drawOnChartArea: axis !== "y1" }
      };
    });
    return scales;
  }

  // Reference levels (bar charts): a black tick per bar at the level that applies to it, and
  // a black outline on bars whose median is above it; the table says the same in words.
  var LEVEL_COLOUR = "#000000";

  function hasLevels(s) { return Boolean(s.levels && s.levels.length); }

  function levelDatasets(data, horizontal) {
    var sets = [];
    data.series.forEach(function (s, i) {
      if (!hasLevels(s)) { return; }
      var set = { type: "line", label: "reference level: " + s.label + unitOf(s), data: s.levels,
                  showLine: false, pointStyle: "line", pointRadius: 10, pointHoverRadius: 12,
                  pointRotation: horizontal ? 90 : 0, borderWidth: 3, borderColor: LEVEL_COLOUR,
                  backgroundColor: LEVEL_COLOUR, levelOf: i, order: -1 };
      set[horizontal ? "xAxisID" : "yAxisID"] = horizontal ? (s.axis === "y1" ? "x1" : "x") : s.axis;
      sets.push(set);
    });
    return sets;
  }

  function tooltipLabel(data, item) {
    var set = item.dataset, i = item.dataIndex, s;
    if (set.levelOf !== undefined) {
      s = data.series[set.levelOf];
      return "reference level " + s.level_names[i] + ": " + s.level_text[i] + " " + s.unit;
    }
    s = data.series[item.datasetIndex];
    var text = s.label + ": " + s.text[i] + (s.quantiles ? " " + s.unit + " (n = " + s.n[i] + ")" : "");
    if (hasLevels(s) && s.above[i]) {
      text += ", above the reference level " + s.level_text[i] + " " + s.unit + " (" + s.level_names[i] + ")";
    }
    return text;
  }

  function config(data) {
    var horizontal = data.kind === "bar";
    if (data.kind === "scatter") {
      return {
        type: "scatter",
        data: { datasets: Object.keys(data.points).map(function (view, i) {
          return { label: view, data: data.points[view].map(function (p) { return { x: p[0], y: p[1] }; }),
                   backgroundColor: PALETTE[i % PALETTE.length], pointRadius: 3 };
        }) },
        options: { animation: false, maintainAspectRatio: false,
          scales: { x: { title: { display: true, text: data.x_label } },
                    y: { beginAtZero: true, title: { display: true, text: data.y_label } } } },
        plugins: [whiteBackground]
      };
    }
    var stacked = data.kind === "stacked", counts = data.series.every(function (s) { return !s.quantiles; });
    var scales = valueAxes(data, horizontal);
    scales[horizontal ? "y" : "x"] = { title: { display: true, text: data.x_label }, stacked: stacked };
    if (stacked) { scales.y.stacked = true; }
    if (counts) { scales.y.ticks = { precision: 0 }; }
    return {
      type: data.kind === "line" ? "line" : "bar",
      data: {
        labels: data.labels,
        datasets: data.series.map(function (s, i) {
          var axis = horizontal ? (s.axis === "y1" ? "x1" : "x") : s.axis;
          var colour = PALETTE[i % PALETTE.length];
          var set = { label: s.quantiles ? "median " + s.label + unitOf(s) : s.label, data: s.values,
                      backgroundColor: colour, borderColor: colour, spanGaps: false };
          if (hasLevels(s) && data.kind === "bar") {
            set.borderColor = s.above.map(function (a) { return a ? LEVEL_COLOUR : colour; });
            set.borderWidth = s.above.map(function (a) { return a ? 3 : 0; });
          }
          set[horizontal ? "xAxisID" : "yAxisID"] = axis;
          return set;
        }).concat(levelDatasets(data, horizontal))
      },
      options: {
        animation: false, maintainAspectRatio: false, indexAxis: horizontal ? "y" : "x",
        scales: scales,
        plugins: { tooltip: { callbacks: { label: function (item) { return tooltipLabel(data, item); } } } }
      },
      plugins: [whiteBackground]
    };
  }

  function cell(row, text, numeric, header) {
    var td = document.createElement(header ? "th" : "td");
    td.textContent = text;
    if (numeric) { td.className = "num"; }
    row.appendChild(td);
    return td;
  }

  function buildTable(data) {
    var table = document.createElement("table"), head, body = document.createElement("tbody");
    table.className = "grid";
    table.createCaption().textContent = data.title;
    head = table.createTHead().insertRow();
    if (data.kind === "scatter") {
      ["view", data.x_label, data.y_label].forEach(function (h) { cell(head, h, false, true); });
      Object.keys(data.points_text).forEach(function (view) {
        data.points_text[view].forEach(function (p) {
          var row = body.insertRow();
          cell(row, view); cell(row, p[0], true); cell(row, p[1], true);
        });
      });
    } else {
      cell(head, data.x_label, false, true);
      data.series.forEach(function (s) {
        if (s.quantiles) {
          cell(head, "median " + s.label + unitOf(s), false, true);
          cell(head, "75th percentile" + unitOf(s), false, true);
          cell(head, "n", false, true);
        } else { cell(head, s.label, false, true); }
        if (hasLevels(s)) {
          cell(head, "reference level" + unitOf(s), false, true);
          cell(head, "median above the level", false, true);
        }
      });
      data.labels.forEach(function (label, i) {
        var row = body.insertRow(), first = cell(row, "");
        if (data.links[i]) {
          var a = document.createElement("a");
          a.href = data.links[i]; a.textContent = label; first.appendChild(a);
        } else { first.textContent = label; }
        data.series.forEach(function (s) {
          if (s.quantiles) { cell(row, s.text[i], true); cell(row, s.p75_text[i], true); cell(row, String(s.n[i]), true); }
          else { cell(row, s.text[i], true); }
          if (hasLevels(s)) {
            cell(row, s.level_text[i] ? s.level_text[i] + " (" + s.level_names[i] + ")" : "", true);
            cell(row, s.above[i] ? "above" : "");
          }
        });
      });
    }
    table.appendChild(body);
    return table;
  }

  function rowsOf(data) {
    if (data.kind === "scatter") {
      return Object.keys(data.points).reduce(function (n, k) { return n + data.points[k].length; }, 0);
    }
    return data.labels.length;
  }

  function show(section, data) {
    var frame = section.querySelector(".chart-frame"), canvas = frame.querySelector("canvas");
    var rows = rowsOf(data), toggle = section.querySelector(".toggle-table");
    var tableBox = section.querySelector(".chart-table"), png = section.querySelector(".download-png");
    section.querySelector(".chart-title").textContent = data.title;
    section.querySelector(".chart-note").textContent = data.note;
    canvas.setAttribute("aria-label", data.title + ": the table below has the values");
    section.dataset.rows = String(rows);
    section.dataset.summary = JSON.stringify(data.series.map(function (s) { return s.values; }).concat([data.labels]));
    section.dataset.above = JSON.stringify(data.series.map(function (s) { return hasLevels(s) ? s.above : []; }));
    if (!rows) {
      frame.hidden = true; png.hidden = true;
      section.querySelector(".chart-empty").hidden = false;
    } else {
      if (data.kind === "bar") {  // one row per group: tall enough to read every label
        frame.style.height = Math.max(200, rows * ROW_PX * Math.max(1, data.series.length * 0.7) + 90) + "px";
      }
      var chart = new window.Chart(canvas, config(data));
      png.addEventListener("click", function () { png.href = chart.toBase64Image("image/png", 1); });
    }
    toggle.addEventListener("click", function () {
      if (!tableBox.firstChild) { tableBox.appendChild(buildTable(data)); }
      var open = tableBox.hidden;
      tableBox.hidden = !open;
      toggle.setAttribute("aria-expanded", String(open));
      toggle.textContent = open ? "Hide table" : "Show table";
    });
    section.setAttribute("aria-busy", "false");
    section.dataset.loaded = "1";
  }

  function load(section) {
    fetch(section.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) { show(section, data); })
      .catch(function (error) {
        section.querySelector(".chart-title").textContent = "This chart could not be loaded (" + error.message + ").";
        section.setAttribute("aria-busy", "false");
        section.dataset.loaded = "error";
      });
  }

  document.querySelectorAll(".chart[data-src]").forEach(load);
}());
