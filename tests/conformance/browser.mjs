// Runs browser/scenario.js in headless Chromium via playwright-core (no browser download:
// the system Chromium at CHROMIUM_PATH, default /usr/bin/chromium).
//
//   node browser.mjs '<json list of cases>'
//   case = {"page": "<page url>", "hub": "<hub url>", "transport": "...", "protocol": "json|messagepack"}
//
// Prints ONE JSON line: {"results": [<runScenario result per case, in order>]}. One browser,
// a fresh context (no shared cookies/cache) per case. Page console errors go to stderr.

import { chromium } from "playwright-core";

const CASE_TIMEOUT_MS = 45_000;
const cases = JSON.parse(process.argv[2] ?? "[]");
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  timeout: 30_000,
});
const results = [];
try {
  for (const c of cases) {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(CASE_TIMEOUT_MS);
    page.on("console", (msg) => {
      if (msg.type() === "error") console.error(`[page ${c.transport}/${c.protocol}] ${msg.text()}`);
    });
    try {
      await page.goto(c.page, { waitUntil: "load" });
      results.push(
        await page.evaluate(([hub, t, p]) => window.runScenario(hub, t, p), [c.hub, c.transport, c.protocol]),
      );
    } catch (err) {
      results.push({ transport: c.transport, protocol: c.protocol, error: `driver: ${err.message}` });
    } finally {
      await context.close();
    }
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify({ results }) + "\n");
