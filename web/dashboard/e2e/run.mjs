// End-to-end tests of the dashboard in real (Debian) Chromium, driven by playwright-core.
// No Playwright browser download: CHROMIUM_PATH (default /usr/bin/chromium) is used.
//
// Environment:
//   BASE_URL        server under test (default http://127.0.0.1:8099, the mock server)
//   E2E_EMAIL / E2E_PASSWORD   a dashboard login (Admin); defaults match the mock server
//   E2E_AGENT_TOKEN agent JWT (role Agent, same org) to post events through /api/agent/events;
//                   without it the agent-event test is skipped (the mock accepts any token)
//   E2E_OTHER_AGENT_TOKEN  agent JWT of ANOTHER organization: its events must never show up
//   E2E_MANAGER_EMAIL / E2E_MANAGER_PASSWORD  a Manager login of the same organization
//   E2E_SUPER_EMAIL / E2E_SUPER_PASSWORD  a SuperAdmin login; E2E_ORG / E2E_OTHER_ORG the two org ids
//   E2E_RESTART_CMD shell command that restarts the server under test (e2e/real.sh sets it)
//   E2E_MOCK=1      BASE_URL is e2e/mock-server.mjs: enables mock-only controls (drop links)
//   E2E_ARTIFACTS   screenshot/download directory (default e2e/artifacts)
//   E2E_ONLY        comma-separated test names to run
// Prints "N passed, N failed" and exits non-zero when a test fails.
import { chromium } from 'playwright-core';
import { mkdir, writeFile, readFile } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const BASE = (process.env.BASE_URL ?? 'http://127.0.0.1:8099').replace(/\/$/, '');
const EMAIL = process.env.E2E_EMAIL ?? 'admin@example.com';
const PASSWORD = process.env.E2E_PASSWORD ?? 'admin';
const AGENT_TOKEN = process.env.E2E_AGENT_TOKEN ?? (process.env.E2E_MOCK ? 'mock-agent' : '');
const MOCK = !!process.env.E2E_MOCK;
const RESTART_CMD = process.env.E2E_RESTART_CMD ?? '';
const OTHER_AGENT_TOKEN = process.env.E2E_OTHER_AGENT_TOKEN ?? (MOCK ? 'mock-agent-b' : '');
const SUPER_EMAIL = process.env.E2E_SUPER_EMAIL ?? (MOCK ? 'super@example.com' : '');
const SUPER_PASSWORD = process.env.E2E_SUPER_PASSWORD ?? (MOCK ? 'super' : '');
const ORG_A = process.env.E2E_ORG ?? 'org-a';
const ORG_B = process.env.E2E_OTHER_ORG ?? 'org-b';
const MANAGER_EMAIL = process.env.E2E_MANAGER_EMAIL ?? (MOCK ? 'manager@example.com' : '');
const MANAGER_PASSWORD = process.env.E2E_MANAGER_PASSWORD ?? (MOCK ? 'manager' : '');
const ART = process.env.E2E_ARTIFACTS ?? join(here, 'artifacts');
const ONLY = (process.env.E2E_ONLY ?? '').split(',').filter(Boolean);
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const host = new URL(BASE).hostname;
if (!/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(host)) throw new Error(`BASE_URL must be a loopback address, got ${host}`);

const DASH = '\u2014';
const sel = (id) => `[data-testid="${id}"]`;
const kpi = (id) => `${sel(`kpi-${id}`)} ${sel('kpi-value')}`;

async function login(page, query = '', email = EMAIL, password = PASSWORD) {
  await page.goto(`${BASE}/login${query}`);
  await page.fill(sel('login-email'), email);
  await page.fill(sel('login-password'), password);
  await page.click(sel('login-submit'));
  await page.waitForSelector(sel('kpis'), { timeout: 10_000 });
  // `?transport=` must survive the redirect after login: it is read at connect time.
  if (query) await page.goto(`${BASE}/${query}`);
}
async function waitLive(page, timeout = 15_000) {
  await page.waitForSelector(`${sel('connection-badge')}[data-state="live"]`, { timeout });
}
async function kpiNumber(page, id) {
  const t = (await page.textContent(kpi(id)))?.trim() ?? '';
  return t === DASH ? null : Number(t.replace(/[^\d.-]/g, ''));
}
async function postAgentEvents(events, token = AGENT_TOKEN, mockOrg = 'org-a') {
  // `org` is read by the mock server only (the real one takes the organization from the token).
  const res = await fetch(`${BASE}/api/agent/events${MOCK ? `?org=${mockOrg}` : ''}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ events }),
  });
  if (!res.ok) throw new Error(`agent POST -> ${res.status} ${await res.text()}`);
}
async function shot(page, name) {
  await page.screenshot({ path: join(ART, `${name}.png`), fullPage: true });
}
function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

const tests = {
  async 'login shows KPIs'(page) {
    await login(page);
    await page.waitForFunction((s) => { const e = document.querySelector(s); return e && e.textContent.trim() !== '\u2014'; }, kpi('sessions-today'), { timeout: 10_000 });
    for (const id of ['active-sessions', 'sessions-today', 'ai-time-today', 'active-users', 'adoption']) {
      assert(await page.isVisible(kpi(id)), `tile ${id} not visible`);
    }
    await shot(page, 'overview');
  },

  async 'connection badge shows live'(page) {
    await login(page);
    await waitLive(page);
    await shot(page, 'badge-live');
  },

  async 'no polling while the hub is connected'(page) {
    const polls = [];
    page.on('request', (r) => { if (new URL(r.url()).pathname === '/api/dashboard') polls.push(r.url()); });
    await login(page);
    await waitLive(page);
    const before = polls.length;
    await page.waitForTimeout(6_000);
    assert(polls.length === before, `dashboard polled ${polls.length - before} times while live`);
  },

  async 'agent event updates tile and feed within 1 s'(page) {
    if (!AGENT_TOKEN) return 'skipped (no E2E_AGENT_TOKEN)';
    await login(page);
    await waitLive(page);
    await page.waitForFunction((s) => { const e = document.querySelector(s); return e && e.textContent.trim() !== '\u2014'; }, kpi('active-sessions'));
    const before = await kpiNumber(page, 'active-sessions');
    const tag = `e2e-${Date.now().toString(36)}`;
    const t0 = Date.now();
    await postAgentEvents([{ eventId: tag, type: 'SessionStarted', occurredAt: new Date().toISOString(), userId: tag, sessionId: tag, startTime: new Date().toISOString() }]);
    await page.waitForSelector(`${sel('feed-item')}:has-text("${tag}")`, { timeout: 1_000 });
    await page.waitForFunction(([s, b]) => Number(document.querySelector(s)?.textContent?.replace(/[^\d]/g, '')) > b, [kpi('active-sessions'), before ?? -1], { timeout: 1_000 });
    const ms = Date.now() - t0;
    await shot(page, 'agent-event');
    return `${ms} ms`;
  },

  async "another organization's events never show up"(page) {
    if (!AGENT_TOKEN || !OTHER_AGENT_TOKEN) return 'skipped (needs E2E_AGENT_TOKEN and E2E_OTHER_AGENT_TOKEN)';
    await login(page);
    await waitLive(page);
    const now = new Date().toISOString();
    const foreign = `other-${Date.now().toString(36)}`;
    const own = `own-${Date.now().toString(36)}`;
    await postAgentEvents([{ eventId: foreign, type: 'SessionStarted', occurredAt: now, userId: foreign, sessionId: foreign, startTime: now }], OTHER_AGENT_TOKEN, 'org-b');
    // Our own event afterwards: once it is shown, the foreign one (sent first) would be too.
    await postAgentEvents([{ eventId: own, type: 'SessionStarted', occurredAt: now, userId: own, sessionId: own, startTime: now }]);
    await page.waitForSelector(`${sel('feed-item')}:has-text("${own}")`, { timeout: 2_000 });
    await page.waitForTimeout(1_500);
    assert(!(await page.content()).includes(foreign), 'an event of another organization was shown');
  },

  async 'alert arrives as a toast and can be acknowledged'(page) {
    if (!AGENT_TOKEN) return 'skipped (no E2E_AGENT_TOKEN)';
    await login(page);
    await waitLive(page);
    const tag = `alert-${Date.now().toString(36)}`;
    const now = new Date().toISOString();
    // A tool nobody approved raises the unapproved-tool alert (issue 5 default rule).
    await postAgentEvents([{ eventId: tag, type: 'AIDetected', occurredAt: now, userId: tag, sessionId: tag, tool: `ShadowTool-${tag}`, duration: 30 }]);
    await page.waitForSelector(`${sel('toast')}[data-kind="alert"]`, { timeout: 5_000 });
    await shot(page, 'alert-toast');
    await page.click(sel('nav-alerts'));
    const item = await page.waitForSelector(`${sel('alert-item')}:has-text("${tag}") ${sel('alert-ack')}`, { timeout: 5_000 });
    await shot(page, 'alerts');
    await item.click();
    await page.waitForSelector(`${sel('alert-item')}:has-text("${tag}")`, { state: 'detached', timeout: 5_000 });
  },

  async 'a Manager sees no exports'(page) {
    if (!MANAGER_EMAIL) return 'skipped (no E2E_MANAGER_EMAIL)';
    await login(page, '', MANAGER_EMAIL, MANAGER_PASSWORD);
    await waitLive(page);
    assert(!(await page.isVisible(sel('nav-exports'))), 'exports link shown to a Manager');
    await page.goto(`${BASE}/exports`);
    await page.waitForSelector(sel('kpis'));
    assert(!(await page.isVisible(sel('export-form'))), 'exports page reachable by a Manager');
    await shot(page, 'manager');
  },

  async 'a SuperAdmin switches organization'(page) {
    if (!SUPER_EMAIL || !AGENT_TOKEN || !OTHER_AGENT_TOKEN) return 'skipped (needs E2E_SUPER_EMAIL and both agent tokens)';
    await login(page, '', SUPER_EMAIL, SUPER_PASSWORD);
    await page.fill(sel('org-input'), ORG_B);
    await page.click(sel('org-switch'));
    await waitLive(page);
    await page.waitForFunction((s) => { const e = document.querySelector(s); return e && e.textContent.trim() !== '\u2014'; }, kpi('sessions-today'));
    const now = new Date().toISOString();
    const a = `sa-a-${Date.now().toString(36)}`;
    const b = `sa-b-${Date.now().toString(36)}`;
    await postAgentEvents([{ eventId: a, type: 'SessionStarted', occurredAt: now, userId: a, sessionId: a, startTime: now }], AGENT_TOKEN, ORG_A);
    await postAgentEvents([{ eventId: b, type: 'SessionStarted', occurredAt: now, userId: b, sessionId: b, startTime: now }], OTHER_AGENT_TOKEN, ORG_B);
    await page.waitForSelector(`${sel('feed-item')}:has-text("${b}")`, { timeout: 2_000 });
    await page.waitForTimeout(1_000);
    assert(!(await page.content()).includes(a), 'the previous organization is still streaming in');
    await shot(page, 'superadmin-org-b');
  },

  async 'login page'(page) {
    await page.goto(`${BASE}/login`);
    await page.waitForSelector(sel('login-form'));
    await shot(page, 'login');
  },

  async 'narrow screen layout'(page) {
    await page.setViewportSize({ width: 390, height: 844 });
    await login(page);
    await waitLive(page);
    await shot(page, 'mobile');
  },

  async 'server restart: reconnecting, then live with correct numbers'(page) {
    if (!MOCK && !RESTART_CMD) return 'skipped (needs E2E_RESTART_CMD, see e2e/real.sh)';
    await login(page);
    await waitLive(page);
    const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem('aiusage.session')).token);
    const seen = page.waitForSelector(`${sel('connection-badge')}:not([data-state="live"])`, { timeout: 15_000 });
    if (MOCK) {
      await fetch(`${BASE}/__mock/drop`, { method: 'POST' });
      await seen;
      await shot(page, 'reconnecting');
      // Change the truth while the dashboard is away; it must show it after reconnecting.
      const tag = `gap-${Date.now().toString(36)}`;
      await postAgentEvents([{ eventId: tag, type: 'SessionStarted', occurredAt: new Date().toISOString(), userId: tag, sessionId: tag, startTime: new Date().toISOString() }]);
    } else {
      const restarted = new Promise((ok, fail) => {
        const child = spawn(RESTART_CMD, { shell: true, stdio: 'inherit' });
        child.on('exit', (code) => (code === 0 ? ok() : fail(new Error(`restart command exited ${code}`))));
      });
      await seen;
      await shot(page, 'reconnecting');
      await restarted;
    }
    await waitLive(page, 40_000);
    // Numbers move all the time under the demo simulator: the tile must meet the REST truth.
    const deadline = Date.now() + 8_000;
    let last = null;
    for (;;) {
      const truth = (await (await fetch(`${BASE}/api/dashboard`, { headers: { authorization: `Bearer ${token}` } })).json()).metrics;
      const shown = await kpiNumber(page, 'sessions-today');
      last = `shown ${shown}, server ${truth.sessionsToday}`;
      if (shown === truth.sessionsToday) break;
      assert(Date.now() < deadline, `sessions today never matched the server after reconnect (${last})`);
      await page.waitForTimeout(250);
    }
    await shot(page, 'reconnected');
    return last;
  },

  async 'forced long polling connects'(page) {
    if (MOCK) return 'skipped (the mock hub speaks WebSockets only)';
    await login(page, '?transport=longpolling');
    await waitLive(page);
    const lp = [];
    page.on('request', (r) => { if (new URL(r.url()).pathname === '/hubs/analytics' && r.method() === 'GET') lp.push(r.url()); });
    await page.waitForTimeout(1_500);
    assert(lp.length > 0, 'no long-polling GET seen');
    await shot(page, 'longpolling');
  },

  async 'export ends in a notification whose link downloads the file'(page) {
    await login(page);
    await waitLive(page);
    await page.click(sel('nav-exports'));
    await page.click(sel('export-submit'));
    const link = await page.waitForSelector(sel('toast-download'), { timeout: 30_000 });
    await shot(page, 'export-toast');
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 10_000 }), link.click()]);
    const path = join(ART, `download-${download.suggestedFilename()}`);
    await download.saveAs(path);
    const body = await readFile(path, 'utf8');
    assert(body.length > 0, 'downloaded file is empty');
    return download.suggestedFilename();
  },
};

await mkdir(ART, { recursive: true });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
let passed = 0, failed = 0, skipped = 0;
const results = [];
try {
  for (const [name, fn] of Object.entries(tests)) {
    if (ONLY.length && !ONLY.some((o) => name.includes(o))) continue;
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, acceptDownloads: true });
    const page = await context.newPage();
    const consoleErrors = [];
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    const t0 = Date.now();
    try {
      const note = await Promise.race([fn(page), new Promise((_, rej) => setTimeout(() => rej(new Error('test timeout (60 s)')), 60_000))]);
      if (typeof note === 'string' && note.startsWith('skipped')) { skipped++; console.log(`- ${name}: ${note}`); }
      else { passed++; console.log(`✓ ${name} (${Date.now() - t0} ms${note ? `, ${note}` : ''})`); }
      results.push({ name, ok: true, note: note ?? null });
    } catch (err) {
      failed++;
      console.log(`✗ ${name}: ${err.message}`);
      if (consoleErrors.length) console.log(`  console errors: ${consoleErrors.slice(0, 5).join(' | ')}`);
      await shot(page, `FAILED-${name.replace(/\W+/g, '_')}`).catch(() => {});
      results.push({ name, ok: false, error: err.message });
    } finally {
      await context.close();
    }
  }
} finally {
  await browser.close();
}
await writeFile(join(ART, 'results.json'), JSON.stringify({ base: BASE, results }, null, 2));
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed ? 1 : 0);
