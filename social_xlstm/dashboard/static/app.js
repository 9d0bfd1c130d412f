// The dashboard page: a sensor map coloured by reading or forecast, and one sensor's chart.
// Reads only this server's JSON API (/api/meta, /api/sensors, /api/forecast, /api/sensors/{id}).
"use strict";

(function () {
  const state = { meta: null, sensors: null, forecast: null, selected: null };
  const $ = (id) => document.getElementById(id);
  const PLOT_CONFIG = { displaylogo: false, responsive: true };
  const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
  // Speed: red = slow (congested) .. green = free flow (ColorBrewer RdYlGn).
  const RED_YELLOW_GREEN = [[0, "#d73027"], [0.25, "#fc8d59"], [0.5, "#fee08b"], [0.75, "#91cf60"], [1, "#1a9850"]];

  async function getJSON(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    let body = null;
    try { body = await response.json(); } catch (e) { /* not JSON */ }
    if (!response.ok) {
      throw new Error((body && body.detail) || `${response.status} ${response.statusText}`);
    }
    return body;
  }

  // ISO time with offset -> wall-clock time of the data's time zone (what Plotly draws as-is).
  const wall = (iso) => iso.slice(0, 19).replace("T", " ");
  const fmt = (v) => (v === null || v === undefined ? "no reading" : Number(v).toFixed(1));
  const status = (message) => { $("status").textContent = message || ""; };
  const unit = (name) => (state.meta.units[name] ? ` ${state.meta.units[name]}` : "");
  const horizonLabel = (i) => (i < 0 ? "now" : `+${state.meta.minutes[i]} min`);

  async function init() {
    try {
      [state.meta, state.sensors] = await Promise.all([getJSON("/api/meta"), getJSON("/api/sensors")]);
    } catch (e) {
      status(e.message);
      return;
    }
    const meta = state.meta;
    $("title").textContent = `${meta.name}: traffic forecast`;
    $("subtitle").textContent = `${meta.num_sensors} sensors, readings every ${meta.interval}, ` +
      `forecasts up to ${meta.minutes[meta.minutes.length - 1]} min ahead (${meta.timezone})`;
    const target = $("target");
    for (const name of meta.targets) target.add(new Option(name + unit(name), name));
    target.value = meta.targets.includes("speed") ? "speed" : meta.targets[0];
    const horizon = $("horizon");
    horizon.add(new Option("now", "-1"));
    meta.horizons.forEach((h, i) => horizon.add(new Option(horizonLabel(i), String(i))));
    target.addEventListener("change", drawMap);
    horizon.addEventListener("change", drawMap);
    $("go").addEventListener("click", loadForecast);
    $("at").addEventListener("keydown", (e) => { if (e.key === "Enter") loadForecast(); });
    await loadForecast();
  }

  async function loadForecast() {
    const at = $("at").value.trim() || "latest";
    try {
      state.forecast = await getJSON(`/api/forecast?at=${encodeURIComponent(at)}`);
    } catch (e) {
      status(e.message);
      return;
    }
    status("");
    $("origin").textContent = `origin ${wall(state.forecast.origin)}`;
    await drawMap();
    if (state.selected) await selectSensor(state.selected);
  }

  function mapValues(target, h) {
    const f = state.forecast;
    const values = h < 0 ? f.observed[target] : f.forecast[target][h];
    return new Map(f.sensor_ids.map((id, n) => [id, values[n]]));
  }

  async function drawMap() {
    if (!state.forecast) return;
    const meta = state.meta;
    const target = $("target").value;
    const h = Number($("horizon").value);
    const values = mapValues(target, h);
    const sensors = state.sensors.sensors;
    const known = sensors.filter((s) => values.get(s.sensor_id) !== null && values.get(s.sensor_id) !== undefined);
    const missing = sensors.filter((s) => !known.includes(s));
    const [low, high] = meta.colour_ranges[target];
    const hover = (s) => `<b>${s.sensor_id}</b><br>${target} ${horizonLabel(h)}: ${fmt(values.get(s.sensor_id))}${unit(target)}`;
    const traces = [{
      type: "scatter", mode: "markers", name: target, hoverinfo: "text",
      x: known.map((s) => s.longitude), y: known.map((s) => s.latitude),
      customdata: known.map((s) => s.sensor_id), text: known.map(hover),
      marker: {
        size: 13, color: known.map((s) => values.get(s.sensor_id)), cmin: low, cmax: high,
        // speed: red = slow, green = free flow; other targets: a neutral sequential scale
        colorscale: target === "speed" ? RED_YELLOW_GREEN : "Viridis",
        showscale: true, colorbar: { title: { text: target + unit(target) } },
        line: { width: 1, color: "#333" },
      },
    }, {
      type: "scatter", mode: "markers", name: "no reading", hoverinfo: "text",
      x: missing.map((s) => s.longitude), y: missing.map((s) => s.latitude),
      customdata: missing.map((s) => s.sensor_id), text: missing.map(hover),
      marker: { size: 11, color: "#b0b7c3", symbol: "x" },
    }];
    const chosen = sensors.find((s) => s.sensor_id === state.selected);
    if (chosen) {
      traces.push({
        type: "scatter", mode: "markers", name: "selected", hoverinfo: "skip",
        x: [chosen.longitude], y: [chosen.latitude],
        marker: { size: 24, symbol: "circle-open", color: "#111", line: { width: 3 } },
      });
    }
    const lat0 = sensors.reduce((a, s) => a + s.latitude, 0) / Math.max(1, sensors.length);
    const layout = {
      title: { text: `${target}, ${horizonLabel(h)} (${wall(h < 0 ? state.forecast.origin : state.forecast.timestamps[h])})`, x: 0.02, xanchor: "left" },
      margin: { l: 60, r: 20, t: 50, b: 50 }, showlegend: false, hovermode: "closest",
      xaxis: { title: { text: "longitude" } },
      yaxis: { title: { text: "latitude" }, scaleanchor: "x", scaleratio: 1 / Math.cos((lat0 * Math.PI) / 180) },
    };
    const map = $("map");
    await Plotly.react(map, traces, layout, PLOT_CONFIG);
    if (!map.dataset.bound) {
      map.on("plotly_click", (event) => {
        const point = event.points && event.points[0];
        if (point && point.customdata) selectSensor(point.customdata);
      });
      map.dataset.bound = "1";
    }
    map.dataset.ready = "1";
  }

  async function selectSensor(sensorId) {
    state.selected = sensorId;
    const at = state.forecast ? state.forecast.origin : "latest";
    let detail;
    try {
      detail = await getJSON(`/api/sensors/${encodeURIComponent(sensorId)}` +
        `?history=${state.meta.limits.default_history}&at=${encodeURIComponent(at)}`);
    } catch (e) {
      status(e.message);
      return;
    }
    status("");
    $("sensor-title").textContent = `sensor ${detail.sensor_id}`;
    const attributes = Object.entries(detail.attributes).filter(([, v]) => v !== null).map(([k, v]) => `${k} ${v}`);
    $("sensor-info").textContent = [`${detail.latitude.toFixed(5)}, ${detail.longitude.toFixed(5)}`, ...attributes,
      `forecast from ${wall(detail.origin)}`].join(" | ");
    const targets = state.meta.targets;
    const traces = [];
    targets.forEach((target, i) => {
      const axis = i === 0 ? "y" : `y${i + 1}`;
      const colour = COLOURS[i % COLOURS.length];
      traces.push({
        type: "scatter", mode: "lines", name: `${target} observed`, xaxis: "x", yaxis: axis,
        x: detail.history.timestamps.map(wall), y: detail.history.values[target],
        line: { color: colour, width: 1.5 }, hovertemplate: `%{y:.1f}${unit(target)}`,
      });
      traces.push({
        type: "scatter", mode: "lines+markers", name: `${target} forecast`, xaxis: "x", yaxis: axis,
        x: detail.forecast.timestamps.map(wall), y: detail.forecast.values[target],
        text: detail.forecast.minutes.map((m) => `+${m} min`), hovertemplate: `%{y:.1f}${unit(target)} (%{text})`,
        line: { color: colour, width: 2, dash: "dot" }, marker: { size: 7, symbol: "diamond" },
      });
    });
    const layout = {
      grid: { rows: targets.length, columns: 1, pattern: "coupled", roworder: "top to bottom" },
      margin: { l: 60, r: 20, t: 20, b: 40 }, hovermode: "x unified",
      legend: { orientation: "h", y: -0.12 },
      shapes: [{ type: "line", xref: "x", yref: "paper", x0: wall(detail.origin), x1: wall(detail.origin), y0: 0, y1: 1,
                 line: { color: "#888", width: 1, dash: "dash" } }],
    };
    targets.forEach((target, i) => {
      // a long unit ("vehicles per 5min over all lanes") goes to the hover text, not the axis
      const label = unit(target).length <= 14 ? target + unit(target) : target;
      layout[i === 0 ? "yaxis" : `yaxis${i + 1}`] = { title: { text: label } };
    });
    const chart = $("sensor-chart");
    await Plotly.react(chart, traces, layout, PLOT_CONFIG);
    chart.dataset.sensorId = detail.sensor_id;
    await drawMap();
  }

  window.dashboard = { state, selectSensor, loadForecast };
  init();
})();
