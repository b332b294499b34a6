/**
 * Client-side data model of the dashboard, plus tolerant normalizers.
 *
 * The server's snapshot structure ({metrics, trends}, camelCase) is defined in
 * docs/metrics.md. Every field is optional on the wire: the UI must render a
 * partial snapshot (older server, field added later) rather than break, so the
 * normalizers below accept a few aliases and fall back to `null` ("unknown",
 * rendered as an em dash) instead of inventing a zero.
 */

export type Role = 'Admin' | 'Manager' | 'SuperAdmin' | 'Employee' | 'Agent';

export interface User {
  id: string;
  email: string;
  role: Role | string;
  organizationId: string;
}

export interface LoginResponse {
  token: string;
  expiresAt: string;
  user: User;
}

export interface ToolUsage {
  tool: string;
  sessions: number | null;
  detections: number | null;
  /** seconds of AI usage attributed to the tool */
  usageSeconds: number | null;
  users: number | null;
  approved: boolean | null;
}

export interface UserUsage {
  userId: string;
  email: string | null;
  sessions: number | null;
  usageSeconds: number | null;
  detections: number | null;
  lastSeen: string | null;
  tools: string[];
}

export interface Metrics {
  activeSessions: number | null;
  sessionsToday: number | null;
  /** seconds */
  aiUsageTimeToday: number | null;
  activeUsersToday: number | null;
  activeUsers7d: number | null;
  activeUsers30d: number | null;
  /** ratio 0..1 */
  adoptionRate: number | null;
  totalUsers: number | null;
  unapprovedDetectionsToday: number | null;
  detectionsToday: number | null;
  usageByTool: ToolUsage[];
  usageByUser: UserUsage[];
}

export interface TrendPoint {
  /** ISO timestamp (hour start or day) or label */
  t: string;
  sessions: number | null;
  usageSeconds: number | null;
  activeUsers: number | null;
}

export interface Trends {
  hourly: TrendPoint[];
  daily: TrendPoint[];
}

export interface Snapshot {
  metrics: Metrics;
  trends: Trends;
  generatedAt: string | null;
  organizationId: string | null;
}

export type FeedKind = 'SessionStarted' | 'SessionEnded' | 'AIDetected' | 'UserJoined';

export interface FeedItem {
  /** unique per item, used for @for tracking */
  key: string;
  kind: FeedKind;
  at: number;
  userId: string | null;
  sessionId: string | null;
  tool: string | null;
  email: string | null;
  duration: number | null;
  aiUsageTime: number | null;
}

export type Severity = 'info' | 'warning' | 'critical';

export interface AlertItem {
  id: string | null;
  type: string;
  message: string;
  severity: Severity;
  createdAt: string | null;
  acknowledged: boolean;
}

export type ExportFormat = 'csv' | 'jsonl';

export interface ExportJob {
  jobId: string;
  status: string;
  format: string | null;
  from: string | null;
  to: string | null;
  createdAt: string | null;
  downloadUrl: string | null;
  error: string | null;
}

type Dict = Record<string, unknown>;

function isDict(v: unknown): v is Dict {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** First finite number among the given keys, else null. */
export function num(o: unknown, ...keys: string[]): number | null {
  if (!isDict(o)) return null;
  for (const k of keys) {
    const v = o[k];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  }
  return null;
}

/** First non-empty string among the given keys, else null. */
export function str(o: unknown, ...keys: string[]): string | null {
  if (!isDict(o)) return null;
  for (const k of keys) {
    const v = o[k];
    if (typeof v === 'string' && v !== '') return v;
    if (typeof v === 'number') return String(v);
    // MessagePack timestamps arrive as Date objects.
    if (v instanceof Date) return v.toISOString();
  }
  return null;
}

function bool(o: unknown, ...keys: string[]): boolean | null {
  if (!isDict(o)) return null;
  for (const k of keys) {
    const v = o[k];
    if (typeof v === 'boolean') return v;
  }
  return null;
}

function arr(o: unknown, ...keys: string[]): unknown[] | null {
  if (!isDict(o)) return null;
  for (const k of keys) {
    const v = o[k];
    if (Array.isArray(v)) return v;
  }
  return null;
}

/**
 * Adoption is documented as a ratio; accept a percentage too (a value above 1
 * cannot be a ratio of users) so a server that sends 42.0 still shows 42 %.
 */
function ratio(v: number | null): number | null {
  if (v === null) return null;
  return v > 1 ? v / 100 : v;
}

/** Usage-by-tool may be a list of records or a map tool -> number|record. */
function toolUsage(raw: unknown): ToolUsage[] {
  const rows: ToolUsage[] = [];
  const one = (tool: string, r: unknown): ToolUsage => ({
    tool,
    sessions: typeof r === 'number' ? null : num(r, 'sessions', 'sessionCount', 'count'),
    detections: typeof r === 'number' ? null : num(r, 'detections', 'detectionCount'),
    usageSeconds:
      typeof r === 'number'
        ? r
        : num(r, 'durationSeconds', 'aiUsageSeconds', 'aiUsageTime', 'usageSeconds', 'duration', 'seconds', 'totalDuration'),
    users: typeof r === 'number' ? null : num(r, 'users', 'userCount', 'activeUsers'),
    approved: typeof r === 'number' ? null : bool(r, 'approved', 'isApproved'),
  });
  if (Array.isArray(raw)) {
    for (const r of raw) {
      const tool = str(r, 'tool', 'name');
      if (tool) rows.push(one(tool, r));
    }
  } else if (isDict(raw)) {
    for (const [tool, r] of Object.entries(raw)) rows.push(one(tool, r));
  }
  return rows.sort((a, b) => (b.usageSeconds ?? b.sessions ?? 0) - (a.usageSeconds ?? a.sessions ?? 0));
}

function userUsage(raw: unknown): UserUsage[] {
  const rows: UserUsage[] = [];
  const list = Array.isArray(raw) ? raw : isDict(raw) ? Object.entries(raw).map(([userId, r]) => ({ userId, ...(isDict(r) ? r : { aiUsageTime: r }) })) : [];
  for (const r of list) {
    const userId = str(r, 'userId', 'id', 'user');
    if (!userId) continue;
    const tools = arr(r, 'tools') ?? [];
    rows.push({
      userId,
      email: str(r, 'email'),
      sessions: num(r, 'sessions', 'sessionCount'),
      usageSeconds: num(r, 'aiUsageSeconds', 'aiUsageTime', 'usageSeconds', 'durationSeconds', 'duration', 'seconds'),
      detections: num(r, 'detections', 'detectionCount'),
      lastSeen: str(r, 'lastSeen', 'lastActive', 'lastActivity'),
      tools: tools.filter((t): t is string => typeof t === 'string'),
    });
  }
  return rows.sort((a, b) => (b.usageSeconds ?? 0) - (a.usageSeconds ?? 0));
}

function trendPoints(raw: unknown): TrendPoint[] {
  if (!Array.isArray(raw)) return [];
  return raw
    .map((p): TrendPoint | null => {
      const t = str(p, 't', 'hour', 'date', 'day', 'bucket', 'start', 'timestamp');
      if (t === null) return null;
      return {
        t,
        sessions: num(p, 'sessions', 'sessionCount', 'count'),
        usageSeconds: num(p, 'aiUsageSeconds', 'aiUsageTime', 'usageSeconds', 'duration', 'seconds'),
        activeUsers: num(p, 'activeUsers', 'users'),
      };
    })
    .filter((p): p is TrendPoint => p !== null);
}

export function emptyMetrics(): Metrics {
  return {
    activeSessions: null,
    sessionsToday: null,
    aiUsageTimeToday: null,
    activeUsersToday: null,
    activeUsers7d: null,
    activeUsers30d: null,
    adoptionRate: null,
    totalUsers: null,
    unapprovedDetectionsToday: null,
    detectionsToday: null,
    usageByTool: [],
    usageByUser: [],
  };
}

/**
 * Turn a snapshot / DashboardUpdate payload into a Snapshot. Accepts both the
 * documented `{metrics, trends}` envelope and a bare metrics object (the seed's
 * `BroadcastDashboardUpdate(orgId, metrics)` sends metrics only).
 */
export function normalizeSnapshot(raw: unknown): Snapshot {
  const root = isDict(raw) ? raw : {};
  const m = isDict(root['metrics']) ? root['metrics'] : root;
  const t = isDict(root['trends']) ? root['trends'] : isDict(m['trends']) ? (m['trends'] as Dict) : {};
  const activeUsers = isDict(m['activeUsers']) ? m['activeUsers'] : null;
  return {
    metrics: {
      activeSessions: num(m, 'activeSessions', 'activeSessionsNow'),
      sessionsToday: num(m, 'sessionsToday'),
      aiUsageTimeToday: num(m, 'aiUsageTimeToday', 'aiUsageSecondsToday', 'aiUsageTime'),
      activeUsersToday: num(m, 'activeUsersToday', 'dailyActiveUsers') ?? num(activeUsers, 'today', 'd1', '1d'),
      activeUsers7d: num(m, 'activeUsers7d', 'weeklyActiveUsers') ?? num(activeUsers, 'd7', '7d', 'week'),
      activeUsers30d: num(m, 'activeUsers30d', 'monthlyActiveUsers') ?? num(activeUsers, 'd30', '30d', 'month'),
      adoptionRate: ratio(num(m, 'adoptionRate', 'adoption')),
      totalUsers: num(m, 'totalUsers', 'users', 'licensedUsers'),
      unapprovedDetectionsToday: num(m, 'unapprovedDetectionsToday', 'unapprovedToolDetections', 'unapprovedDetections'),
      detectionsToday: num(m, 'detectionsToday'),
      usageByTool: toolUsage(m['usageByTool'] ?? root['usageByTool']),
      usageByUser: userUsage(m['usageByUser'] ?? root['usageByUser']),
    },
    trends: {
      hourly: trendPoints(t['hourly'] ?? t['hourly24h'] ?? t['hours']),
      daily: trendPoints(t['daily'] ?? t['daily30d'] ?? t['days']),
    },
    generatedAt: str(root, 'generatedAt', 'asOf', 'timestamp') ?? str(m, 'generatedAt', 'asOf'),
    organizationId: str(root, 'organizationId', 'orgId') ?? str(m, 'organizationId', 'orgId'),
  };
}

export function normalizeAlert(raw: unknown): AlertItem {
  const sev = (str(raw, 'severity') ?? 'info').toLowerCase();
  const severity: Severity =
    sev === 'critical' || sev === 'error' || sev === 'high' ? 'critical' : sev === 'warning' || sev === 'warn' || sev === 'medium' ? 'warning' : 'info';
  return {
    id: str(raw, 'id', 'alertId'),
    type: str(raw, 'type', 'kind') ?? 'alert',
    message: str(raw, 'message', 'text') ?? '',
    severity,
    createdAt: str(raw, 'createdAt', 'timestamp', 'raisedAt', 'at'),
    acknowledged: bool(raw, 'acknowledged') ?? (str(raw, 'acknowledgedAt') !== null),
  };
}

/** GET /api/alerts may return a bare list or `{items|alerts: [...]}`. */
export function normalizeAlertList(raw: unknown): AlertItem[] {
  const list = Array.isArray(raw) ? raw : arr(raw, 'items', 'alerts', 'data') ?? [];
  return list.map(normalizeAlert);
}

export function normalizeExportJob(raw: unknown, fallback: Partial<ExportJob> = {}): ExportJob {
  return {
    jobId: str(raw, 'jobId', 'id') ?? fallback.jobId ?? '',
    status: str(raw, 'status', 'state') ?? fallback.status ?? 'pending',
    format: str(raw, 'format') ?? fallback.format ?? null,
    from: str(raw, 'from', 'fromTime') ?? fallback.from ?? null,
    to: str(raw, 'to', 'toTime') ?? fallback.to ?? null,
    createdAt: str(raw, 'createdAt') ?? fallback.createdAt ?? null,
    downloadUrl: str(raw, 'downloadUrl', 'url') ?? fallback.downloadUrl ?? null,
    error: str(raw, 'error') ?? fallback.error ?? null,
  };
}

export function normalizeExportList(raw: unknown): ExportJob[] {
  const list = Array.isArray(raw) ? raw : arr(raw, 'items', 'exports', 'jobs', 'data') ?? [];
  return list.map((r) => normalizeExportJob(r)).filter((j) => j.jobId !== '');
}
