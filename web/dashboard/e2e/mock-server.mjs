// A small stand-in for `aiusage serve`, for developing the dashboard and running the e2e
// script before (or without) the Python backend. It serves dist/dashboard/browser with SPA
// fallback, the REST endpoints the dashboard uses, and a SignalR hub at /hubs/analytics
// (WebSockets; JSON and MessagePack hub protocols). Binds to 127.0.0.1 only.
//
//   node e2e/mock-server.mjs [--port 8099] [--simulate]
//   login: admin@example.com / admin (Admin, org-a), manager@example.com / manager,
//          super@example.com / super (SuperAdmin)
// Control (tests): POST /__mock/drop (drop every hub connection abnormally),
//                  POST /__mock/alert {type,message,severity}
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
const WebSocketServer = WebSocket.Server;
import { encode, decode } from '@msgpack/msgpack';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = join(here, '..', 'dist', 'dashboard', 'browser');
const args = process.argv.slice(2);
const PORT = Number(args[args.indexOf('--port') + 1] || process.env.PORT || 8099);
const SIMULATE = args.includes('--simulate');
const RS = '\x1e';

const USERS = {
  'admin@example.com': { password: 'admin', user: { id: 'u-admin', email: 'admin@example.com', role: 'Admin', organizationId: 'org-a' } },
  'manager@example.com': { password: 'manager', user: { id: 'u-mgr', email: 'manager@example.com', role: 'Manager', organizationId: 'org-a' } },
  'super@example.com': { password: 'super', user: { id: 'u-super', email: 'super@example.com', role: 'SuperAdmin', organizationId: 'platform' } },
};
const tokens = new Map(); // token -> user
const TOOLS = ['ChatGPT', 'Claude', 'GitHub Copilot', 'Cursor', 'Gemini'];
const APPROVED = new Set(['ChatGPT', 'GitHub Copilot', 'Claude']);

/** Per-organization state, enough to make the KPIs move consistently. */
const orgs = new Map();
function org(id) {
  if (!orgs.has(id)) {
    const now = Date.now();
    const hourly = Array.from({ length: 24 }, (_, i) => ({
      hour: new Date(Math.floor(now / 3600e3) * 3600e3 - (23 - i) * 3600e3).toISOString(),
      sessions: i > 7 && i < 20 ? 3 + (i % 5) : i % 2, aiUsageSeconds: (i > 7 && i < 20 ? 1800 : 120) + i * 30, activeUsers: i > 7 && i < 20 ? 4 : 1,
    }));
    const daily = Array.from({ length: 30 }, (_, i) => ({
      date: new Date(now - (29 - i) * 86400e3).toISOString().slice(0, 10),
      sessions: 20 + ((i * 7) % 13), aiUsageSeconds: 20000 + i * 300, activeUsers: 8 + ((i * 5) % 6),
    }));
    orgs.set(id, {
      active: new Set(), sessionsToday: 14, aiToday: 9 * 3600, detectionsToday: 30, unapprovedToday: 2,
      users: new Map([['alice', 5400], ['bob', 3600], ['carol', 1800]]), tools: new Map(TOOLS.map((t, i) => [t, 3600 * (5 - i)])),
      hourly, daily, alerts: [], exports: new Map(),
    });
  }
  return orgs.get(id);
}
function snapshot(orgId) {
  const o = org(orgId);
  return {
    metrics: {
      organizationId: orgId, generatedAt: new Date().toISOString(), activeSessions: o.active.size, sessionsToday: o.sessionsToday,
      aiUsageSecondsToday: o.aiToday, detectionsToday: o.detectionsToday, activeUsersToday: o.users.size, activeUsers7d: 9, activeUsers30d: 12,
      totalUsers: 20, adoptionRate: 12 / 20, unapprovedDetectionsToday: o.unapprovedToday,
      usageByTool: [...o.tools].map(([tool, s]) => ({ tool, detections: Math.round(s / 300), durationSeconds: s, users: 3, approved: APPROVED.has(tool) })),
      usageByUser: [...o.users].map(([userId, s]) => ({ userId, sessions: Math.round(s / 900), aiUsageSeconds: s, detections: 3 })),
    },
    trends: { hourly: o.hourly, daily: o.daily },
  };
}

// ---------------------------------------------------------------- hub
const conns = new Set(); // {ws, protocol, user, orgId}
function frame(protocol, msg) {
  if (protocol === 'json') return JSON.stringify(msg) + RS;
  let arr;
  if (msg.type === 1) arr = [1, {}, null, msg.target, msg.arguments];
  else if (msg.type === 3) arr = msg.error ? [3, {}, msg.invocationId, 1, msg.error] : msg.result === undefined ? [3, {}, msg.invocationId, 2] : [3, {}, msg.invocationId, 3, msg.result];
  else if (msg.type === 6) arr = [6];
  else if (msg.type === 7) arr = [7, msg.error ?? null, !!msg.allowReconnect];
  const body = encode(arr);
  const len = []; let n = body.length;
  do { let b = n & 0x7f; n >>= 7; if (n) b |= 0x80; len.push(b); } while (n);
  return Buffer.concat([Buffer.from(len), Buffer.from(body)]);
}
function send(c, msg) { if (c.ws.readyState === 1) c.ws.send(frame(c.protocol, msg)); }
function push(orgId, target, payload, userId) {
  for (const c of conns) if (c.ready && c.orgId === orgId && (!userId || c.user.id === userId)) send(c, { type: 1, target, arguments: [payload] });
}
let updateTimer = null; const dirty = new Set();
function dashboardUpdateSoon(orgId) { // coalesced, at most once per second per org (as the real server)
  dirty.add(orgId);
  if (!updateTimer) updateTimer = setTimeout(() => { updateTimer = null; for (const id of dirty) push(id, 'DashboardUpdate', { ...snapshot(id), organizationId: id }); dirty.clear(); }, 1000);
}
function parseMessages(c, data, isBinary) {
  const out = [];
  // ws 7 passes text frames as strings (no isBinary argument); ws 8 passes isBinary.
  if (isBinary === false || typeof data === 'string') {
    for (const part of data.toString().split(RS)) if (part) out.push(JSON.parse(part));
    return out;
  }
  const buf = Buffer.from(data); let off = 0;
  while (off < buf.length) {
    let len = 0, shift = 0, b;
    do { b = buf[off++]; len |= (b & 0x7f) << shift; shift += 7; } while (b & 0x80);
    const m = decode(buf.subarray(off, off + len)); off += len;
    if (m[0] === 1) out.push({ type: 1, invocationId: m[2], target: m[3], arguments: m[4] });
    else out.push({ type: m[0] });
  }
  return out;
}
function invoke(c, m) {
  const target = String(m.target).toLowerCase();
  if (target === 'getdashboardsnapshot') return snapshot(c.orgId);
  if (target === 'joinorganizationgroup') return undefined;
  if (target === 'joinorganization' || target === 'leaveorganization') {
    if (c.user.role !== 'SuperAdmin') throw new Error('Forbidden');
    return undefined;
  }
  throw new Error(`Unknown hub method '${m.target}'`);
}

// ---------------------------------------------------------------- http
const json = (res, status, body, headers = {}) => { res.writeHead(status, { 'content-type': 'application/json', ...headers }); res.end(body === undefined ? '' : JSON.stringify(body)); };
const readBody = (req) => new Promise((ok) => { let b = ''; req.on('data', (d) => (b += d)); req.on('end', () => { try { ok(b ? JSON.parse(b) : {}); } catch { ok(null); } }); });
function authUser(req, url) {
  const h = req.headers.authorization ?? '';
  const t = h.startsWith('Bearer ') ? h.slice(7) : url.searchParams.get('access_token');
  return t ? tokens.get(t) ?? null : null;
}
function scopeOrg(user, req, url) {
  const asked = req.headers['x-organization-id'] ?? url.searchParams.get('organizationId');
  if (!asked) return user.organizationId;
  if (asked !== user.organizationId && user.role !== 'SuperAdmin') return null;
  return asked;
}
const MIME = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.ico': 'image/x-icon', '.json': 'application/json' };
async function serveStatic(res, path) {
  let file = normalize(join(ROOT, path));
  if (!file.startsWith(ROOT)) return json(res, 404, { detail: 'not found' });
  try { if (!(await stat(file)).isFile()) throw new Error(); } catch { file = join(ROOT, 'index.html'); }
  res.writeHead(200, { 'content-type': MIME[extname(file)] ?? 'application/octet-stream' });
  res.end(await readFile(file));
}
function applyAgentEvent(orgId, e) {
  const o = org(orgId);
  if (e.type === 'SessionStarted') {
    o.active.add(e.sessionId); o.sessionsToday++; if (!o.users.has(e.userId)) o.users.set(e.userId, 0);
    push(orgId, 'SessionStarted', { sessionId: e.sessionId, userId: e.userId, startTime: e.startTime ?? new Date().toISOString(), tool: e.tool ?? null, organizationId: orgId });
  } else if (e.type === 'SessionEnded') {
    o.active.delete(e.sessionId); o.aiToday += e.aiUsageTime ?? 0; o.users.set(e.userId, (o.users.get(e.userId) ?? 0) + (e.aiUsageTime ?? 0));
    push(orgId, 'SessionEnded', { sessionId: e.sessionId, duration: e.duration ?? 0, aiUsageTime: e.aiUsageTime ?? 0, userId: e.userId, organizationId: orgId });
  } else if (e.type === 'AIDetected') {
    o.detectionsToday++; o.tools.set(e.tool, (o.tools.get(e.tool) ?? 0) + (e.duration ?? 0));
    if (!APPROVED.has(e.tool)) {
      o.unapprovedToday++;
      const alert = { id: String(o.alerts.length + 1), type: 'UnapprovedTool', message: `${e.userId} used ${e.tool}, which is not approved`, severity: 'warning', createdAt: new Date().toISOString(), acknowledged: false };
      o.alerts.unshift(alert); push(orgId, 'Alert', { ...alert, organizationId: orgId });
    }
    push(orgId, 'AIDetected', { tool: e.tool, duration: e.duration ?? 0, userId: e.userId, sessionId: e.sessionId ?? null, organizationId: orgId });
  }
  dashboardUpdateSoon(orgId);
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  const p = url.pathname;
  try {
    if (p === '/healthz') return json(res, 200, { status: 'ok' });
    if (p === '/__mock/drop' && req.method === 'POST') { for (const c of conns) c.ws.terminate(); return json(res, 200, { dropped: true }); }
    if (p === '/api/auth/login' && req.method === 'POST') {
      const b = await readBody(req); const u = b && USERS[b.email];
      if (!u || u.password !== b.password) return json(res, 401, { detail: 'Invalid email or password' });
      const token = randomUUID(); tokens.set(token, u.user);
      return json(res, 200, { token, expiresAt: new Date(Date.now() + 3600e3).toISOString(), user: u.user });
    }
    if (p === '/api/agent/events' && req.method === 'POST') {
      const b = await readBody(req); const orgId = url.searchParams.get('org') ?? req.headers['x-mock-org'] ?? 'org-a';
      for (const e of b?.events ?? []) applyAgentEvent(orgId, e);
      return json(res, 200, { accepted: b?.events?.length ?? 0, duplicates: 0 });
    }
    if (p.startsWith('/hubs/analytics/negotiate') && req.method === 'POST') {
      const user = authUser(req, url); if (!user) return json(res, 401, { detail: 'Unauthorized' });
      if (scopeOrg(user, req, url) === null) return json(res, 403, { detail: 'Forbidden' });
      const id = randomUUID();
      return json(res, 200, { negotiateVersion: 1, connectionId: id, connectionToken: id, availableTransports: [{ transport: 'WebSockets', transferFormats: ['Text', 'Binary'] }] });
    }
    if (p.startsWith('/api/')) {
      const user = authUser(req, url); if (!user) return json(res, 401, { detail: 'Unauthorized' });
      const orgId = scopeOrg(user, req, url); if (orgId === null) return json(res, 403, { detail: 'Forbidden' });
      const o = org(orgId);
      if (p === '/api/dashboard') return json(res, 200, snapshot(orgId));
      if (p === '/api/alerts') return json(res, 200, { items: o.alerts, nextCursor: null });
      let m = /^\/api\/alerts\/([^/]+)\/acknowledge$/.exec(p);
      if (m && req.method === 'POST') { const a = o.alerts.find((x) => x.id === m[1]); if (!a) return json(res, 404, { detail: 'no such alert' }); a.acknowledged = true; return json(res, 200, a); }
      if (p === '/api/exports' && req.method === 'POST') {
        if (user.role === 'Manager') return json(res, 403, { detail: 'Forbidden' });
        const b = await readBody(req); const id = randomUUID().slice(0, 8);
        const job = { id, status: 'pending', format: b.format, from: b.from, to: b.to, createdAt: new Date().toISOString(), downloadUrl: null, owner: user.id };
        o.exports.set(id, job);
        setTimeout(() => { job.status = 'completed'; job.downloadUrl = `/api/exports/${id}/download?exp=${Date.now() + 3600e3}&sig=mock`; push(orgId, 'ExportCompleted', { jobId: id, downloadUrl: job.downloadUrl }, user.id); }, 800);
        return json(res, 202, job, { location: `/api/exports/${id}` });
      }
      m = /^\/api\/exports\/([^/]+)(\/download)?$/.exec(p);
      if (m && req.method === 'GET') {
        const job = o.exports.get(m[1]); if (!job || job.owner !== user.id) return json(res, 404, { detail: 'no such job' });
        if (!m[2]) return json(res, 200, job);
        res.writeHead(200, { 'content-type': 'text/csv', 'content-disposition': `attachment; filename="export-${job.id}.csv"` });
        return res.end('sessionId,userId,tool,aiUsageSeconds\ns1,alice,ChatGPT,300\n');
      }
      return json(res, 404, { detail: 'not found' });
    }
    return serveStatic(res, p === '/' ? '/index.html' : p);
  } catch (err) {
    console.error(err); json(res, 500, { detail: 'mock error' });
  }
});

const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  const user = url.pathname === '/hubs/analytics' ? authUser(req, url) : null;
  const orgId = user ? scopeOrg(user, req, url) : null;
  if (!user || !orgId) { socket.write('HTTP/1.1 401 Unauthorized\r\n\r\n'); return socket.destroy(); }
  wss.handleUpgrade(req, socket, head, (ws) => {
    const c = { ws, protocol: null, user, orgId, ready: false };
    conns.add(c);
    const ping = setInterval(() => c.ready && send(c, { type: 6 }), 10_000);
    ws.on('close', () => { clearInterval(ping); conns.delete(c); });
    ws.on('message', (data, isBinary) => {
      try {
        if (!c.ready) {
          const hs = JSON.parse(data.toString().split(RS)[0]);
          c.protocol = hs.protocol === 'messagepack' ? 'messagepack' : 'json';
          ws.send(c.protocol === 'json' ? '{}' + RS : Buffer.from('{}' + RS));
          c.ready = true;
          return;
        }
        for (const m of parseMessages(c, data, isBinary)) {
          if (m.type !== 1) continue;
          let reply;
          try { reply = { type: 3, invocationId: m.invocationId, result: invoke(c, m) }; } catch (e) { reply = { type: 3, invocationId: m.invocationId, error: e.message }; }
          if (m.invocationId != null) send(c, reply);
        }
      } catch (e) { console.error('hub error', e); ws.close(); }
    });
  });
});

if (SIMULATE) {
  let n = 0;
  setInterval(() => {
    const o = org('org-a'); const users = ['alice', 'bob', 'carol', 'dave', 'erin'];
    const userId = users[n % users.length]; n++;
    const open = [...o.active];
    if (open.length > 3 && n % 2) applyAgentEvent('org-a', { type: 'SessionEnded', sessionId: open[0], userId, duration: 900, aiUsageTime: 420 });
    else if (n % 3) applyAgentEvent('org-a', { type: 'SessionStarted', sessionId: `sim-${n}`, userId, startTime: new Date().toISOString() });
    else applyAgentEvent('org-a', { type: 'AIDetected', tool: TOOLS[n % TOOLS.length], duration: 60 + (n % 5) * 30, userId });
  }, 1500).unref();
}

server.listen(PORT, '127.0.0.1', () => console.log(`mock aiusage on http://127.0.0.1:${PORT}${SIMULATE ? ' (simulating)' : ''}`));
const stop = () => { for (const c of conns) c.ws.terminate(); server.close(() => process.exit(0)); setTimeout(() => process.exit(0), 1000).unref(); };
process.on('SIGINT', stop); process.on('SIGTERM', stop);
