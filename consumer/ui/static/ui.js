// flumelet's streaming UI: one EventSource; "state" resets everything, "batch" appends.
(function () {
  "use strict";
  const CHART_SPAN_S = 300;  // the charts show the last five minutes of batch time
  const BATCH_ROWS = 100;    // rows in the completed-batches table
  let state = null;
  const charts = {};

  const $ = (id) => document.getElementById(id);
  const fmtTime = (ms) => new Date(ms).toLocaleTimeString([], {hour12: false});
  const fmtDate = (ms) => new Date(ms).toLocaleString([], {hour12: false});
  const fmtMs = (v) => v < 1000 ? v.toFixed(0) + " ms" : (v / 1000).toFixed(2) + " s";
  function fmtSpan(ms) {
    const s = Math.floor(ms / 1000), h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60;
    return (h ? h + " h " : "") + (h || m ? m + " min " : "") + (s % 60) + " s";
  }
  function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }
  const show = (v) => typeof v === "string" ? v : JSON.stringify(v);

  function renderJob() {
    const j = state.job;
    $("job-name").textContent = j.name;
    document.title = "flumelet streaming: " + j.name;
    $("job-description").textContent = j.description;
    $("job-source").textContent = "Input: " + j.source;
    const t = state.totals;
    $("job-running").textContent = "Running batches of " + fmtMs(j.batch) + " for " +
      fmtSpan(state.now - j.started) + " since " + fmtDate(j.started) + " (" + t.batches +
      " completed batches, " + t.records + " records, " + t.input_rate.toFixed(1) +
      " events/s now).";
  }

  function renderWindows() {
    const box = $("windows");
    box.textContent = "";
    const shown = state.windows;
    $("windows-note").textContent = shown.length ? "(top " + state.job.top + " per window)" :
      state.job.top ? "(none closed yet)" : "(a script's windows are its own output)";
    for (const w of shown) {
      const table = document.createElement("table");
      table.className = "window";
      table.dataset.start = w.start;
      table.dataset.end = w.end;
      const cap = table.createCaption();
      cap.textContent = "[" + fmtTime(w.start) + ", " + fmtTime(w.end) + ") " + w.keys + " keys";
      const head = table.createTHead().insertRow();
      for (const h of ["#", "Key", "Value"]) {
        const th = document.createElement("th"); th.textContent = h; head.appendChild(th);
      }
      const body = table.createTBody();
      w.top.forEach(([k, v], i) => {
        const tr = body.insertRow();
        cell(tr, String(i + 1), "num");
        cell(tr, show(k), "key");
        cell(tr, show(v), "num value");
      });
      box.appendChild(table);
    }
  }

  function renderReceivers() {
    const body = $("receivers").tBodies[0];
    body.textContent = "";
    for (const r of state.receivers) {
      const tr = body.insertRow();
      cell(tr, r.name + " (" + r.kind + ")");
      cell(tr, r.address || "");
      cell(tr, (r.peers || []).join(", ") || "none", "peers");
      cell(tr, String(r.pending_records || 0), "num");
      cell(tr, String(r.backlog_calls || 0), "num");
      const e = r.last_error;
      cell(tr, e ? (e.time ? fmtTime(e.time) + " " : "") + e.message : "", e ? "error" : "");
    }
  }

  function renderBatches() {
    const rows = state.batches.slice(-BATCH_ROWS).reverse();
    $("batches-title").textContent = "Completed batches (last " + rows.length + " out of " +
      state.totals.batches + ")";
    const body = $("batches").tBodies[0];
    body.textContent = "";
    for (const b of rows) {
      const tr = body.insertRow();
      cell(tr, fmtDate(b.time));
      cell(tr, String(b.records), "num");
      cell(tr, fmtMs(b.scheduling_delay), "num");
      cell(tr, fmtMs(b.processing), "num");
      cell(tr, fmtMs(b.total_delay), "num");
      const d = Object.entries(b.dropped).map(([k, v]) => k + " " + v).join(", ");
      cell(tr, d);
      cell(tr, String(b.windows), "num");
    }
  }

  function reasons() {
    const seen = new Set(Object.keys(state.totals.dropped));
    for (const b of state.batches) for (const k of Object.keys(b.dropped)) seen.add(k);
    return [...seen].sort();
  }

  function chartData() {
    const last = state.batches.length ? state.batches[state.batches.length - 1].time : 0;
    const rows = state.batches.filter((b) => b.time > last - CHART_SPAN_S * 1000);
    const x = rows.map((b) => b.time / 1000);
    const perS = 1000 / state.job.batch;
    const why = reasons();
    return {
      input: [x, rows.map((b) => b.records * perS)],
      processing: [x, rows.map((b) => b.processing)],
      delay: [x, rows.map((b) => b.scheduling_delay)],
      dropped: [x, ...(why.length ? why : ["malformed"]).map(
        (k) => rows.map((b) => b.dropped[k] || 0))],
      why: why.length ? why : ["malformed"],
    };
  }

  const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];

  function makeChart(id, labels, data) {
    const el = $(id);
    const opts = {
      width: Math.max(el.clientWidth || 440, 300), height: 180,
      scales: {x: {time: true}},
      legend: {show: labels.length > 1},
      series: [{}].concat(labels.map((l, i) => ({label: l, stroke: COLORS[i % COLORS.length],
                                                 width: 1.5, points: {show: false}}))),
      hooks: {draw: [(u) => {  // something a test (or a curious user) can check
        el.dataset.points = String(u.data[0].length);
      }]},
    };
    if (charts[id]) charts[id].destroy();
    charts[id] = new uPlot(opts, data, el);
    charts[id].labels = labels.join(",");
  }

  function renderCharts() {
    const d = chartData();
    const specs = [["chart-input", ["events/s"], d.input],
                   ["chart-processing", ["processing ms"], d.processing],
                   ["chart-delay", ["scheduling delay ms"], d.delay],
                   ["chart-dropped", d.why, d.dropped]];
    for (const [id, labels, data] of specs) {
      const c = charts[id];
      if (c && c.labels === labels.join(",")) c.setData(data);
      else makeChart(id, labels, data);
    }
  }

  function render() {
    renderJob(); renderWindows(); renderReceivers(); renderBatches(); renderCharts();
    document.body.dataset.batches = String(state.totals.batches);
  }

  function onState(ev) { state = JSON.parse(ev.data); render(); }

  function onBatch(ev) {
    if (!state) return;
    const u = JSON.parse(ev.data);
    state.now = u.now; state.totals = u.totals; state.receivers = u.receivers;
    state.batches.push(u.batch);
    if (state.batches.length > 1000) state.batches.splice(0, state.batches.length - 1000);
    if (u.windows.length) state.windows = u.windows.slice(-12);
    render();
  }

  const source = new EventSource("events");
  source.addEventListener("state", onState);
  source.addEventListener("batch", onBatch);
  source.onopen = () => { $("status").textContent = "live"; $("status").dataset.state = "live"; };
  source.onerror = () => {
    $("status").textContent = "reconnecting";
    $("status").dataset.state = "reconnecting";
  };
})();
