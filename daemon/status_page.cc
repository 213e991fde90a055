#include "daemon/status_page.h"

namespace triaged {

const char kStatusPageHtml[] = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>triaged</title>
<link rel="icon" href="data:,">
<style>
  :root { --fg: #1d2430; --muted: #667085; --line: #e4e7ec; --bg: #f8f9fb; --ok: #12805c;
          --bad: #c4320a; --accent: #3547d6; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
         color: var(--fg); background: var(--bg); }
  header { display: flex; align-items: baseline; gap: 16px; padding: 14px 24px;
           background: #fff; border-bottom: 1px solid var(--line); }
  header h1 { font-size: 18px; margin: 0; }
  header .meta { color: var(--muted); font-size: 12px; }
  #state { font-weight: 600; }
  #state.ready { color: var(--ok); } #state.unready { color: var(--bad); }
  main { padding: 18px 24px; display: grid; gap: 18px; }
  .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; }
  .card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
  .card .label { color: var(--muted); font-size: 12px; }
  .card .value { font-size: 22px; font-variant-numeric: tabular-nums; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 8px; overflow: auto; }
  section h2 { font-size: 14px; margin: 0; padding: 10px 14px; border-bottom: 1px solid var(--line); }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 6px 14px; border-bottom: 1px solid var(--line);
           vertical-align: top; }
  th { color: var(--muted); font-weight: 500; font-size: 12px; }
  td.n { text-align: right; font-variant-numeric: tabular-nums; }
  #recent td:nth-child(-n+5), #rules td:first-child { white-space: nowrap; }
  code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; }
  .bar { height: 6px; background: var(--line); border-radius: 3px; margin-top: 6px; }
  .bar > div { height: 6px; background: var(--accent); border-radius: 3px; width: 0; }
  #error { color: var(--bad); padding: 0 24px; }
  svg.spark { display: block; width: 180px; height: 28px; overflow: visible; }
  svg.spark polyline { fill: none; stroke: var(--accent); stroke-width: 1.5; }
  svg.spark.bad polyline { stroke: var(--bad); }
  td.spark { display: flex; align-items: center; gap: 10px; white-space: nowrap; }
  td.spark .rate { font-variant-numeric: tabular-nums; min-width: 5em; }
  .budget .bar { width: 120px; }
  .split { display: grid; grid-template-columns: minmax(260px, 1fr) 2fr; }
  .split > div { padding: 10px 14px; }
</style>
</head>
<body>
<header>
  <h1>triaged</h1>
  <span id="state">loading…</span>
  <span class="meta" id="meta"></span>
</header>
<p id="error" hidden></p>
<main>
  <div class="cards">
    <div class="card"><div class="label">open traces</div><div class="value" id="traces-open">–</div>
      <div class="bar"><div id="traces-bar"></div></div></div>
    <div class="card"><div class="label">consumer lag (messages)</div><div class="value" id="lag">–</div></div>
    <div class="card"><div class="label">events consumed</div><div class="value" id="consumed">–</div></div>
    <div class="card"><div class="label">routed items</div><div class="value" id="routed">–</div></div>
    <div class="card"><div class="label">dead letters</div><div class="value" id="dead-lettered">–</div></div>
    <div class="card"><div class="label">produce errors</div><div class="value" id="produce-errors">–</div></div>
    <div class="card"><div class="label">repartitioned events</div><div class="value" id="repartitioned">–</div></div>
    <div class="card" title="traces decided on feedback alone: spans and feedback not meeting"><div class="label">traces without spans</div><div class="value" id="without-spans">–</div></div>
  </div>
  <section>
    <h2>Rules <code id="filter" hidden></code></h2>
    <table id="rules">
      <thead><tr><th>rule</th><th>when</th><th>route to</th><th>priority</th><th>sample</th>
        <th class="n">matched</th><th class="n">sampled out</th><th class="n">rate limited</th>
        <th class="n">routed</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section>
    <h2>Destinations</h2>
    <table id="destinations">
      <thead><tr><th>destination</th><th>kind</th><th>topic</th><th class="n">routed</th>
        <th>routed per second, last 15 minutes</th><th>budget left in its window</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section>
    <h2>Dead letters</h2>
    <div class="split">
      <div><div class="label">per second, last 15 minutes</div>
        <table><tbody><tr><td class="spark" id="dead-spark"></td></tr></tbody></table></div>
      <table id="reasons">
        <thead><tr><th>top reasons</th><th class="n">dead letters</th></tr></thead>
        <tbody></tbody>
      </table>
    </div>
  </section>
  <section>
    <h2>Last routed items</h2>
    <table id="recent">
      <thead><tr><th>routed at</th><th>trace</th><th>rule</th><th>destination</th><th>trigger</th>
        <th>reason</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
</main>
<script>
"use strict";
const fmt = new Intl.NumberFormat("en");
function cell(row, text, cls) {
  const td = document.createElement("td");
  if (cls === "code") { const c = document.createElement("code"); c.textContent = text; td.append(c); }
  else { td.textContent = text; if (cls) td.className = cls; }
  row.append(td);
}
function fill(id, items, columns) {
  const body = document.querySelector("#" + id + " tbody");
  const rows = items.map(item => {
    const tr = document.createElement("tr");
    for (const [value, cls] of columns(item)) cell(tr, value, cls);
    return tr;
  });
  body.replaceChildren(...rows);
}
// A sparkline of per-second rates (oldest first, null = no data: a gap), and the latest rate.
// The markup holds only numbers; the HTML parser puts <svg> in the SVG namespace.
function sparkline(td, rates, bad) {
  const w = 180, h = 28, max = Math.max(1e-9, ...rates.filter(r => r !== null));
  const lines = [];
  let points = [];
  const flush = () => {
    if (points.length === 1) points.push([points[0][0] + 1, points[0][1]]);
    if (points.length) lines.push(`<polyline points="${points.map(p => p.join(",")).join(" ")}"/>`);
    points = [];
  };
  rates.forEach((r, i) => {
    if (r === null) return flush();
    const x = rates.length > 1 ? (i * w) / (rates.length - 1) : 0;
    points.push([Number(x.toFixed(1)), Number((h - 1 - (r / max) * (h - 2)).toFixed(1))]);
  });
  flush();
  const template = document.createElement("template");
  template.innerHTML = `<svg class="${bad ? "spark bad" : "spark"}" viewBox="0 0 ${w} ${h}">` +
    lines.join("") + "</svg>";
  const svg = template.content.firstChild;
  const known = rates.filter(r => r !== null);
  const rate = document.createElement("span");
  rate.className = "rate";
  rate.textContent = known.length ? `${fmt.format(known[known.length - 1])}/s` : "–";
  td.className = "spark";
  td.replaceChildren(svg, rate);
}
function budgetCell(td, limit) {
  if (!limit) { td.textContent = "not capped"; return; }
  const bar = document.createElement("div"), fill = document.createElement("div");
  bar.className = "bar"; bar.append(fill);
  fill.style.width = Math.min(100, 100 * limit.budget_left / Math.max(1, limit.budget)) + "%";
  const text = document.createElement("div");
  text.textContent = `${fmt.format(limit.budget_left)} of ${fmt.format(limit.budget)} ` +
    `(limit ${fmt.format(limit.max)} per ${fmt.format(limit.per_seconds)} s)`;
  td.className = "budget";
  td.replaceChildren(text, bar);
}
function set(id, value) { document.getElementById(id).textContent = fmt.format(value); }
async function get(path) {
  const r = await fetch(path, {cache: "no-store"});
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}
async function refresh() {
  try {
    const [status, rules] = await Promise.all([get("/v1/status"), get("/v1/rules")]);
    const ready = status.ready.broker_reachable && status.ready.partitions_assigned;
    const state = document.getElementById("state");
    state.textContent = ready ? "ready" : (!status.ready.broker_reachable ? "broker unreachable" : "no partitions assigned");
    state.className = ready ? "ready" : "unready";
    document.getElementById("meta").textContent =
      `${status.version} · group ${status.group_id} · ${status.guarantee} · ${status.partitions} partitions · ` +
      `${status.inputs.spans} + ${status.inputs.feedback} (repartition ${status.inputs.repartition}) · config ${status.config_version.slice(0, 12)}`;
    set("traces-open", status.traces_open);
    document.getElementById("traces-bar").style.width =
      Math.min(100, 100 * status.traces_open / Math.max(1, status.max_open_traces)) + "%";
    set("lag", status.consumer_lag);
    set("consumed", status.events_consumed);
    set("routed", status.routed);
    set("dead-lettered", status.dead_lettered);
    set("produce-errors", status.produce_errors);
    set("repartitioned", status.events_repartitioned);
    set("without-spans", status.traces_without_spans);
    const filter = document.getElementById("filter");
    filter.hidden = rules.filter === null;
    filter.textContent = rules.filter === null ? "" : "filter: " + rules.filter;
    fill("rules", rules.rules, r => [[r.name], [r.when, "code"], [r.route_to.join(", ")], [r.priority],
      [Math.round(r.sample * 1000) / 10 + "%"], [fmt.format(r.matched), "n"],
      [fmt.format(r.sampled_out), "n"], [fmt.format(r.rate_limited), "n"], [fmt.format(r.routed), "n"]]);
    fill("destinations", status.destinations, d => [[d.name], [d.kind], [d.topic, "code"],
      [fmt.format(d.routed), "n"], [""], [""]]);
    document.querySelectorAll("#destinations tbody tr").forEach((tr, i) => {
      const d = status.destinations[i];
      sparkline(tr.children[4], d.routed_per_second, false);
      budgetCell(tr.children[5], d.limit);
    });
    sparkline(document.getElementById("dead-spark"), status.history.dead_letters_per_second, true);
    fill("reasons", status.dead_letter_reasons, r => [[r.reason, "code"], [fmt.format(r.count), "n"]]);
    fill("recent", status.recent, i => [[i.routed_at], [i.trace_id, "code"], [i.rule], [i.destination],
      [i.trigger], [i.reason, "code"]]);
    document.getElementById("error").hidden = true;
  } catch (e) {
    const err = document.getElementById("error");
    err.textContent = "cannot reach the daemon: " + e.message;
    err.hidden = false;
  }
}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
)html";

}  // namespace triaged
