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
    <h2>Rules</h2>
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
      <thead><tr><th>destination</th><th>kind</th><th>topic</th><th class="n">routed</th></tr></thead>
      <tbody></tbody>
    </table>
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
    fill("rules", rules.rules, r => [[r.name], [r.when, "code"], [r.route_to.join(", ")], [r.priority],
      [Math.round(r.sample * 1000) / 10 + "%"], [fmt.format(r.matched), "n"],
      [fmt.format(r.sampled_out), "n"], [fmt.format(r.rate_limited), "n"], [fmt.format(r.routed), "n"]]);
    fill("destinations", status.destinations, d => [[d.name], [d.kind], [d.topic, "code"],
      [fmt.format(d.routed), "n"]]);
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
