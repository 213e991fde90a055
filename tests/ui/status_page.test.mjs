// Opens the status page of a running daemon in headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core) and checks what an operator would look at: the daemon is ready,
// every rule is listed with live counters, destinations are listed, the last routed items show
// their rule and reason; the sparklines of each destination's routed items per second and of the
// dead letters, drawn and changing under traffic; the capped destination's budget left; the top
// dead-letter reasons. Keeps a screenshot.
//
//   node status_page.test.mjs URL RULES SCREENSHOT.png
import { chromium } from "playwright-core";
import assert from "node:assert/strict";

const [url, expectedRules, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  await page.goto(url);

  await page.locator("#state.ready").waitFor({ timeout: 30_000 });
  await page.waitForFunction(
    (n) => document.querySelectorAll("#rules tbody tr").length === n, Number(expectedRules),
    { timeout: 30_000 });
  await page.waitForFunction(() => document.querySelectorAll("#recent tbody tr").length > 0,
    null, { timeout: 60_000 });

  const rules = await page.$$eval("#rules tbody tr", (rows) => rows.map((r) =>
    Array.from(r.querySelectorAll("td"), (td) => td.textContent)));
  for (const r of rules) {
    assert.equal(r.length, 9, `a rule row has every column: ${r}`);
    for (const n of r.slice(5)) assert.match(n, /^[0-9,]+$/, `counters are numbers: ${r}`);
  }
  const routed = rules.reduce((sum, r) => sum + Number(r[8].replaceAll(",", "")), 0);
  assert.ok(routed > 0, "some rule routed something");

  const recent = await page.$$eval("#recent tbody tr", (rows) => rows.map((r) =>
    Array.from(r.querySelectorAll("td"), (td) => td.textContent)));
  const names = new Set(rules.map((r) => r[0]));
  for (const [at, trace, rule, destination, trigger, reason] of recent) {
    assert.match(at, /^\d{4}-\d\d-\d\dT/, "routed at is a time");
    assert.match(trace, /^[0-9a-f]{32}$/, "trace id");
    assert.ok(names.has(rule), `the item's rule ${rule} is a listed rule`);
    assert.ok(destination.length > 0 && reason.length > 0, "destination and reason shown");
    assert.match(trigger, /^(close|late_feedback)$/);
  }
  assert.equal(await page.locator("#filter").textContent(), 'filter: trace.name != "healthcheck"');
  const destinations = await page.locator("#destinations tbody tr").count();
  assert.ok(destinations > 0, "destinations listed");

  // Sparklines: drawn for every destination once rates are known, and moving under traffic.
  const sparks = () => page.$$eval("#destinations tbody tr", (rows) => rows.map((r) => ({
    name: r.children[0].textContent,
    lines: Array.from(r.children[4].querySelectorAll("svg.spark polyline"),
                      (l) => l.getAttribute("points")).join(" | "),
    rate: r.children[4].querySelector(".rate")?.textContent ?? "",
    budget: r.children[5].textContent,
  })));
  // The rate shown is the latest 10 s bucket's, which may have just begun with nothing routed
  // in it yet: wait (under traffic) for a destination whose rate is not zero.
  await page.waitForFunction(() => Array.from(document.querySelectorAll("#destinations tbody tr"))
    .some((r) => r.children[4].querySelector("svg.spark polyline")), null, { timeout: 30_000 });
  await page.waitForFunction(() => Array.from(document.querySelectorAll("#destinations tbody tr"))
    .some((r) => /^[0-9,.]+\/s$/.test(r.children[4].querySelector(".rate")?.textContent ?? "") &&
                 r.children[4].querySelector(".rate").textContent !== "0/s"),
    null, { timeout: 30_000 }).catch(async (e) => {
      throw new Error(`some destination routes per second: ${JSON.stringify(await sparks())}`,
                      { cause: e });
    });
  const before = await sparks();
  for (const d of before) {
    assert.match(d.rate, /^([0-9,.]+\/s|–)$/, `${d.name}: a rate or none: ${d.rate}`);
  }
  await page.waitForFunction((old) => {
    const now = Array.from(document.querySelectorAll("#destinations tbody tr"), (r) =>
      Array.from(r.children[4].querySelectorAll("polyline"), (l) => l.getAttribute("points")).join(" | "));
    return now.some((p, i) => p !== old[i]);
  }, before.map((d) => d.lines), { timeout: 30_000 });
  const capped = before.find((d) => d.name === "support-review");
  assert.ok(capped, "support-review listed");
  assert.match(capped.budget, /^[0-9,]+ of 200 \(limit 200 per 60 s\)$/, `budget: ${capped.budget}`);
  for (const d of before.filter((d) => d.name !== "support-review")) {
    assert.equal(d.budget, "not capped", `${d.name} is not capped`);
  }
  const width = await page.$eval("#destinations tbody tr .budget .bar > div", (e) => e.style.width);
  assert.match(width, /^[0-9.]+%$/, "the budget bar has a width");

  // Dead letters: the generator's malformed messages, by reason, with their sparkline.
  await page.waitForFunction(() => document.querySelectorAll("#reasons tbody tr").length > 0 &&
    document.querySelector("#dead-spark svg.spark polyline"), null, { timeout: 30_000 });
  const reasons = await page.$$eval("#reasons tbody tr", (rows) => rows.map((r) =>
    Array.from(r.querySelectorAll("td"), (td) => td.textContent)));
  assert.ok(reasons.length <= 5, "at most five reasons");
  for (const [reason, count] of reasons) {
    assert.match(reason, /^[a-z_]+$/, `a reason: ${reason}`);
    assert.match(count, /^[0-9,]+$/, `a count: ${count}`);
  }
  const counts = reasons.map(([, c]) => Number(c.replaceAll(",", "")));
  assert.deepEqual(counts, [...counts].sort((a, b) => b - a), "the most frequent first");
  const open = await page.locator("#traces-open").textContent();
  assert.match(open, /^[0-9,]+$/, "open traces shown");

  await page.screenshot({ path: screenshot, fullPage: true });
  assert.deepEqual(errors, [], "no script errors on the page");
  console.log(`status page: ${rules.length} rules, ${routed} routed, ${recent.length} recent items, ` +
              `${destinations} destinations (${capped.budget} left), ${reasons.length} dead-letter ` +
              `reasons; screenshot ${screenshot}`);
} finally {
  await browser.close();
}
