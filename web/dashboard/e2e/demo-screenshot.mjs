// Full-page screenshot of a running `aiusage serve --demo`, as a viewer in a given time zone
// sees it after watching for a while (docs/img/dashboard-demo.png), plus the snapshot the page
// showed, for checking that its numbers agree with each other.
//
//   BASE_URL=http://127.0.0.1:8093 DEMO_PASSWORD=... [DEMO_TZ=America/New_York]
//   [WATCH_SECONDS=240] [OUT=../../docs/img/dashboard-demo.png] node e2e/demo-screenshot.mjs
import { chromium } from 'playwright-core';
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const BASE = (process.env.BASE_URL ?? 'http://127.0.0.1:8093').replace(/\/$/, '');
const EMAIL = process.env.DEMO_EMAIL ?? 'admin@demo.local';
const PASSWORD = process.env.DEMO_PASSWORD ?? '';
const TZ = process.env.DEMO_TZ ?? 'America/New_York';
const WATCH_MS = Number(process.env.WATCH_SECONDS ?? 240) * 1000;
const OUT = process.env.OUT ?? join(here, '..', '..', '..', 'docs', 'img', 'dashboard-demo.png');
const JSON_OUT = process.env.JSON_OUT ?? '/tmp/dashboard-demo.json';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
if (!/^(127\.\d+\.\d+\.\d+|localhost)$/.test(new URL(BASE).hostname)) throw new Error('BASE_URL must be a loopback address');
if (!PASSWORD) throw new Error('DEMO_PASSWORD is required (printed by `aiusage serve --demo`)');

const sel = (id) => `[data-testid="${id}"]`;
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
try {
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 }, timezoneId: TZ, locale: 'en-US' });
  const page = await context.newPage();
  const dashboardRequests = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname === '/api/dashboard') dashboardRequests.push(r.url());
  });
  await page.goto(`${BASE}/login`);
  await page.fill(sel('login-email'), EMAIL);
  await page.fill(sel('login-password'), PASSWORD);
  await page.click(sel('login-submit'));
  await page.waitForSelector(`${sel('connection-badge')}[data-state="live"]`, { timeout: 30_000 });
  await page.waitForTimeout(WATCH_MS);
  await page.screenshot({ path: OUT, fullPage: true });
  const tiles = await page.$$eval('[data-testid^="kpi-"]', (els) =>
    els
      .filter((e) => e.querySelector('[data-testid="kpi-value"]'))
      .map((e) => ({
        id: e.getAttribute('data-testid'),
        value: e.querySelector('[data-testid="kpi-value"]')?.textContent?.trim(),
        hint: e.querySelector('.kpi__hint')?.textContent?.trim() ?? null,
      })),
  );
  const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem('aiusage.session') ?? '{}').token);
  const res = await fetch(`${BASE}/api/dashboard?tz=${encodeURIComponent(TZ)}&period=30d`, { headers: { authorization: `Bearer ${token}` } });
  const snapshot = await res.json();
  const feed = await page.$$eval('[data-testid="feed-item"] .feed__text', (els) => els.slice(0, 12).map((e) => e.textContent?.trim()));
  const zone = (await page.textContent(sel('view-zone')))?.trim();
  await writeFile(JSON_OUT, JSON.stringify({ zone, tiles, feed, restPollsWhileWatching: dashboardRequests.length, snapshot }, null, 2));
  console.log(JSON.stringify({ out: OUT, zone, tiles, feed, restPollsWhileWatching: dashboardRequests.length }, null, 2));
} finally {
  await browser.close();
}
