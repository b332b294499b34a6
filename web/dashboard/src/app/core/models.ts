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
  /** seconds with the tool in the period (tools used together count in each) */
  usageSeconds: number | null;
  users: number | null;
  approved: boolean | null;
  firstSeen: string | null;
  lastSeen: string | null;
}

export interface UserUsage {
  userId: string;
  email: string | null;
  team: string | null;
  sessions: number | null;
  /** AI seconds in the period (union of the person's detections) */
  usageSeconds: number | null;
  sessionSeconds: number | null;
  detections: number | null;
  /** last activity (ISO), null when unknown */
  lastSeen: string | null;
  engaged: boolean | null;
  tools: string[];
}

/** A monitored person without activity in the last 7 days. */
export interface InactivePerson {
  userId: string;
  email: string | null;
  team: string | null;
  /** ISO; null = never active (or unknown) */
  lastActivity: string | null;
}

export interface TeamUsage {
  /** null = no team assigned */
  team: string | null;
  people: number | null;
  activePeople: number | null;
  aiSeconds: number | null;
  sessionSeconds: number | null;
}

export interface DeviceUsage {
  deviceId: string;
  userId: string | null;
  name: string | null;
  aiSeconds: number | null;
  sessions: number | null;
  lastSeen: string | null;
}

export interface ShadowTool {
  tool: string;
  people: number | null;
  detections: number | null;
  aiSeconds: number | null;
  firstSeen: string | null;
  lastSeen: string | null;
  newThisWeek: boolean | null;
}

export interface ShadowAi {
  tools: ShadowTool[];
  newThisWeek: string[];
}

export interface Metrics {
  /** IANA zone of "today" and of the daily points, as the server computed them */
  timezone: string | null;
  /** "7d" | "30d" | "90d" */
  period: string | null;
  periodDays: number | null;
  activeSessions: number | null;
  sessionsToday: number | null;
  /** AI seconds today (union of each person's detections) */
  aiUsageTimeToday: number | null;
  /** session seconds today (union of each person's sessions) */
  sessionSecondsToday: number | null;
  aiSecondsPeriod: number | null;
  sessionSecondsPeriod: number | null;
  activeUsersToday: number | null;
  activeUsers7d: number | null;
  activeUsers30d: number | null;
  activeUsers90d: number | null;
  activeUsersPeriod: number | null;
  /** people with AI time in the period */
  aiUsersPeriod: number | null;
  aiSecondsPerActiveUser: number | null;
  /** ratio 0..1 */
  adoptionRate: number | null;
  adoptionNumerator: number | null;
  monitoredPeople: number | null;
  /** "seats" | "enrolledDevices" | "reportingPeople" */
  monitoredBasis: string | null;
  engagedUsers: number | null;
  casualUsers: number | null;
  engagedMinSeconds: number | null;
  engagedMinDays: number | null;
  totalUsers: number | null;
  unapprovedDetectionsToday: number | null;
  detectionsToday: number | null;
  usageByTool: ToolUsage[];
  usageByUser: UserUsage[];
  /** The lists below are null when the server does not send them (older server). */
  people: UserUsage[] | null;
  inactivePeople: InactivePerson[] | null;
  byTeam: TeamUsage[] | null;
  byDevice: DeviceUsage[] | null;
  shadowAi: ShadowAi | null;
}

export interface TrendPoint {
  /** hour start (ISO instant) or calendar day ("YYYY-MM-DD", in the snapshot's zone) */
  t: string;
  sessions: number | null;
  usageSeconds: number | null;
  sessionSeconds: number | null;
  detections: number | null;
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
        : num(r, 'aiSeconds', 'durationSeconds', 'aiUsageSeconds', 'aiUsageTime', 'usageSeconds', 'duration', 'seconds', 'totalDuration'),
    users: typeof r === 'number' ? null : num(r, 'users', 'userCount', 'activeUsers'),
    approved: typeof r === 'number' ? null : bool(r, 'approved', 'isApproved'),
    firstSeen: typeof r === 'number' ? null : str(r, 'firstSeen'),
    lastSeen: typeof r === 'number' ? null : str(r, 'lastSeen'),
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
      team: str(r, 'team'),
      sessions: num(r, 'sessions', 'sessionCount'),
      usageSeconds: num(r, 'aiSeconds', 'aiUsageSeconds', 'aiUsageTime', 'usageSeconds', 'durationSeconds', 'duration', 'seconds'),
      sessionSeconds: num(r, 'sessionSeconds'),
      detections: num(r, 'detections', 'detectionCount'),
      lastSeen: str(r, 'lastActivity', 'lastSeen', 'lastActive'),
      engaged: bool(r, 'engaged'),
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
        usageSeconds: num(p, 'aiSeconds', 'aiUsageSeconds', 'aiUsageTime', 'usageSeconds', 'duration', 'seconds'),
        sessionSeconds: num(p, 'sessionSeconds'),
        detections: num(p, 'detections'),
        activeUsers: num(p, 'activeUsers', 'users'),
      };
    })
    .filter((p): p is TrendPoint => p !== null);
}

/** A list of records when the field is an array, null when it is missing (older server). */
function listOf<T>(raw: unknown, row: (r: unknown) => T | null): T[] | null {
  if (!Array.isArray(raw)) return null;
  return raw.map(row).filter((r): r is T => r !== null);
}

export function inactivePeople(raw: unknown): InactivePerson[] | null {
  return listOf(raw, (r) => {
    const userId = str(r, 'userId', 'id');
    return userId === null ? null : { userId, email: str(r, 'email'), team: str(r, 'team'), lastActivity: str(r, 'lastActivity', 'lastSeen') };
  });
}

export function teamUsage(raw: unknown): TeamUsage[] | null {
  return listOf(raw, (r) =>
    isDict(r)
      ? {
          team: str(r, 'team'),
          people: num(r, 'people'),
          activePeople: num(r, 'activePeople'),
          aiSeconds: num(r, 'aiSeconds'),
          sessionSeconds: num(r, 'sessionSeconds'),
        }
      : null,
  );
}

export function deviceUsage(raw: unknown): DeviceUsage[] | null {
  return listOf(raw, (r) => {
    const deviceId = str(r, 'deviceId', 'id');
    return deviceId === null
      ? null
      : { deviceId, userId: str(r, 'userId'), name: str(r, 'name'), aiSeconds: num(r, 'aiSeconds'), sessions: num(r, 'sessions'), lastSeen: str(r, 'lastSeen') };
  });
}

export function shadowAi(raw: unknown): ShadowAi | null {
  if (!isDict(raw)) return null;
  const tools =
    listOf(raw['tools'], (r) => {
      const tool = str(r, 'tool', 'name');
      return tool === null
        ? null
        : {
            tool,
            people: num(r, 'people', 'users'),
            detections: num(r, 'detections'),
            aiSeconds: num(r, 'aiSeconds'),
            firstSeen: str(r, 'firstSeen'),
            lastSeen: str(r, 'lastSeen'),
            newThisWeek: bool(r, 'newThisWeek'),
          };
    }) ?? [];
  const fresh = (arr(raw, 'newThisWeek') ?? []).filter((t): t is string => typeof t === 'string');
  return { tools, newThisWeek: fresh };
}

export function emptyMetrics(): Metrics {
  return {
    timezone: null,
    period: null,
    periodDays: null,
    activeSessions: null,
    sessionsToday: null,
    aiUsageTimeToday: null,
    sessionSecondsToday: null,
    aiSecondsPeriod: null,
    sessionSecondsPeriod: null,
    activeUsersToday: null,
    activeUsers7d: null,
    activeUsers30d: null,
    activeUsers90d: null,
    activeUsersPeriod: null,
    aiUsersPeriod: null,
    aiSecondsPerActiveUser: null,
    adoptionRate: null,
    adoptionNumerator: null,
    monitoredPeople: null,
    monitoredBasis: null,
    engagedUsers: null,
    casualUsers: null,
    engagedMinSeconds: null,
    engagedMinDays: null,
    totalUsers: null,
    unapprovedDetectionsToday: null,
    detectionsToday: null,
    usageByTool: [],
    usageByUser: [],
    people: null,
    inactivePeople: null,
    byTeam: null,
    byDevice: null,
    shadowAi: null,
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
  const engagement = isDict(m['engagement']) ? m['engagement'] : null;
  return {
    metrics: {
      timezone: str(m, 'timezone', 'timeZone') ?? str(root, 'timezone'),
      period: str(m, 'period'),
      periodDays: num(m, 'periodDays'),
      activeSessions: num(m, 'activeSessions', 'activeSessionsNow'),
      sessionsToday: num(m, 'sessionsToday'),
      aiUsageTimeToday: num(m, 'aiSecondsToday', 'aiUsageSecondsToday', 'aiUsageTimeToday', 'aiUsageTime'),
      sessionSecondsToday: num(m, 'sessionSecondsToday'),
      aiSecondsPeriod: num(m, 'aiSecondsPeriod'),
      sessionSecondsPeriod: num(m, 'sessionSecondsPeriod'),
      activeUsersToday: num(m, 'activeUsersToday', 'dailyActiveUsers') ?? num(activeUsers, 'today', 'd1', '1d'),
      activeUsers7d: num(m, 'activeUsers7d', 'weeklyActiveUsers') ?? num(activeUsers, 'd7', '7d', 'week'),
      activeUsers30d: num(m, 'activeUsers30d', 'monthlyActiveUsers') ?? num(activeUsers, 'd30', '30d', 'month'),
      activeUsers90d: num(m, 'activeUsers90d'),
      activeUsersPeriod: num(m, 'activeUsersPeriod'),
      aiUsersPeriod: num(m, 'aiUsersPeriod'),
      aiSecondsPerActiveUser: num(m, 'aiSecondsPerActiveUser'),
      adoptionRate: ratio(num(m, 'adoptionRate', 'adoption')),
      adoptionNumerator: num(m, 'adoptionNumerator'),
      monitoredPeople: num(m, 'monitoredPeople'),
      monitoredBasis: str(m, 'monitoredBasis'),
      engagedUsers: num(m, 'engagedUsers'),
      casualUsers: num(m, 'casualUsers'),
      engagedMinSeconds: num(engagement, 'engagedMinSeconds'),
      engagedMinDays: num(engagement, 'engagedMinDays'),
      totalUsers: num(m, 'totalUsers', 'users', 'licensedUsers'),
      unapprovedDetectionsToday: num(m, 'unapprovedDetectionsToday', 'unapprovedToolDetections', 'unapprovedDetections'),
      detectionsToday: num(m, 'detectionsToday'),
      usageByTool: toolUsage(m['usageByTool'] ?? root['usageByTool']),
      usageByUser: userUsage(m['usageByUser'] ?? root['usageByUser']),
      people: Array.isArray(m['people']) ? userUsage(m['people']) : null,
      inactivePeople: inactivePeople(m['inactivePeople']),
      byTeam: teamUsage(m['byTeam']),
      byDevice: deviceUsage(m['byDevice']),
      shadowAi: shadowAi(m['shadowAi']),
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
