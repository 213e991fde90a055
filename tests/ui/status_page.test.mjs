// Opens the status page of a running daemon in headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core) and checks what an operator would look at: the daemon is ready,
// every rule is listed with live counters, destinations are listed, the last routed items show
// their rule and reason. Keeps a screenshot.
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
  const destinations = await page.locator("#destinations tbody tr").count();
  assert.ok(destinations > 0, "destinations listed");
  const open = await page.locator("#traces-open").textContent();
  assert.match(open, /^[0-9,]+$/, "open traces shown");

  await page.screenshot({ path: screenshot, fullPage: true });
  assert.deepEqual(errors, [], "no script errors on the page");
  console.log(`status page: ${rules.length} rules, ${routed} routed, ${recent.length} recent items, ` +
              `${destinations} destinations; screenshot ${screenshot}`);
} finally {
  await browser.close();
}
