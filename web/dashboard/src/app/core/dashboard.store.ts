import { computed, inject, Injectable, signal } from '@angular/core';
import { CLOCK, VIEWER_TIME_ZONE } from './clock';
import {
  AlertItem,
  emptyMetrics,
  ExportJob,
  FeedItem,
  FeedKind,
  Metrics,
  normalizeAlert,
  normalizeExportJob,
  num,
  Snapshot,
  str,
  Trends,
} from './models';

/** Newest-first cap of the live activity feed. */
export const FEED_CAP = 50;
/**
 * Events older than this are not live activity (an agent catching up on its queue): they are
 * left to the next snapshot. Longer than an agent's idle timeout, since a session's end is
 * dated at its last activity and reported that long after it.
 */
export const LIVE_WINDOW_MS = 30 * 60_000;
/** How many recent event keys are remembered to drop duplicate deliveries. */
const DEDUPE_CAP = 1000;
/** Periods the dashboard offers, in days (the server's `?period=7d|30d|90d`). */
export const PERIODS = [7, 30, 90] as const;
export type PeriodDays = (typeof PERIODS)[number];
/** The period of the hub's DashboardUpdate pushes (computed in UTC). */
export const PUSH_PERIOD = '30d';

/**
 * Single source of truth for what the dashboard shows, as signals.
 *
 * Snapshots (hub `GetDashboardSnapshot`, `GET /api/dashboard`, the `DashboardUpdate` event)
 * replace the metrics wholesale: they are authoritative. Live events in between adjust the
 * tiles optimistically (SessionStarted bumps active sessions at once) so the page moves within
 * the same frame as the push; the next DashboardUpdate (coalesced server-side, at most ~1 s
 * later) or snapshot corrects any drift.
 */
@Injectable({ providedIn: 'root' })
export class DashboardStore {
  private readonly clock = inject(CLOCK);
  /** The viewer's IANA zone, sent with every snapshot request. */
  readonly timeZone = inject(VIEWER_TIME_ZONE);
  /** Selected period in days. */
  readonly periodDays = signal<PeriodDays>(30);
  readonly period = computed(() => `${this.periodDays()}d`);

  readonly metrics = signal<Metrics>(emptyMetrics());
  readonly trends = signal<Trends>({ hourly: [], daily: [] });
  /** epoch ms of the last authoritative snapshot, null before the first */
  readonly lastSnapshotAt = signal<number | null>(null);
  readonly hasSnapshot = computed(() => this.lastSnapshotAt() !== null);
  readonly feed = signal<FeedItem[]>([]);
  readonly alerts = signal<AlertItem[]>([]);
  readonly unacknowledgedAlerts = computed(() => this.alerts().filter((a) => !a.acknowledged).length);
  readonly exports = signal<ExportJob[]>([]);

  private readonly seen = new Set<string>();
  private seq = 0;

  /**
   * True when a pushed snapshot is the view the page shows: the pushes are computed for UTC
   * and the default period, so a viewer in another zone or period fetches their own instead.
   */
  matchesView(s: Snapshot): boolean {
    const zone = s.metrics.timezone ?? 'UTC';
    const period = s.metrics.period ?? PUSH_PERIOD;
    return sameZone(zone, this.timeZone) && period === this.period();
  }

  applySnapshot(s: Snapshot): void {
    this.metrics.set(s.metrics);
    this.trends.set(s.trends);
    this.lastSnapshotAt.set(this.clock());
  }

  /** SessionStarted {sessionId, userId, startTime}. */
  onSessionStarted(raw: unknown): void {
    const sessionId = str(raw, 'sessionId', 'id');
    if (this.isOld(raw, 'startTime', 'occurredAt') || !this.firstTime('start', sessionId)) return;
    this.metrics.update((m) => ({
      ...m,
      activeSessions: inc(m.activeSessions, 1),
      sessionsToday: inc(m.sessionsToday, 1),
    }));
    this.pushFeed('SessionStarted', raw, { sessionId, at: time(raw, 'startTime', 'occurredAt', 'timestamp') });
  }

  /** SessionEnded {sessionId, duration, aiUsageTime} (seconds). */
  onSessionEnded(raw: unknown): void {
    const sessionId = str(raw, 'sessionId', 'id');
    if (this.isOld(raw, 'endTime', 'occurredAt') || !this.firstTime('end', sessionId)) return;
    // AI time is not bumped here: the server counts it live as detections arrive (a session's
    // total added again at its end would count it twice until the next snapshot).
    this.metrics.update((m) => ({
      ...m,
      activeSessions: m.activeSessions === null ? null : Math.max(0, m.activeSessions - 1),
    }));
    this.pushFeed('SessionEnded', raw, { sessionId, at: time(raw, 'endTime', 'occurredAt', 'timestamp') });
  }

  /** AIDetected {tool, duration, userId}. */
  onAIDetected(raw: unknown): void {
    const id = str(raw, 'eventId', 'detectionId', 'id');
    if (this.isOld(raw, 'occurredAt', 'timestamp') || (id !== null && !this.firstTime('ai', id))) return;
    const tool = str(raw, 'tool');
    if (tool) {
      this.metrics.update((m) => ({
        ...m,
        detectionsToday: inc(m.detectionsToday, 1),
        usageByTool: m.usageByTool.map((t) => (t.tool === tool ? { ...t, detections: inc(t.detections, 1) } : t)),
      }));
    }
    this.pushFeed('AIDetected', raw, { sessionId: str(raw, 'sessionId'), at: time(raw, 'occurredAt', 'timestamp') });
  }

  /** UserJoined {userId, email, timestamp}. */
  onUserJoined(raw: unknown): void {
    if (!this.firstTime('join', str(raw, 'userId'))) return;
    this.metrics.update((m) => ({ ...m, totalUsers: inc(m.totalUsers, 1) }));
    this.pushFeed('UserJoined', raw, { sessionId: null, at: time(raw, 'timestamp', 'occurredAt') });
  }

  setAlerts(list: AlertItem[]): void {
    // Keep live alerts that arrived while the list was loading and are not in it.
    const ids = new Set(list.map((a) => a.id).filter((id) => id !== null));
    const liveOnly = this.alerts().filter((a) => a.id === null || !ids.has(a.id));
    this.alerts.set([...liveOnly.filter((a) => a.id === null), ...list].slice(0, 200));
  }

  /** Alert event {type, message, severity}; returns the alert, or null for a duplicate. */
  onAlert(raw: unknown): AlertItem | null {
    const a = normalizeAlert(raw);
    if (a.createdAt === null) a.createdAt = new Date(this.clock()).toISOString();
    if (a.id !== null && this.alerts().some((x) => x.id === a.id)) return null;
    this.alerts.update((list) => [a, ...list].slice(0, 200));
    return a;
  }

  markAcknowledged(id: string): void {
    this.alerts.update((list) => list.map((a) => (a.id === id ? { ...a, acknowledged: true } : a)));
  }

  setExports(list: ExportJob[]): void {
    const known = new Map(list.map((j) => [j.jobId, j]));
    // Server list wins; keep locally requested jobs the server list does not have (yet).
    const local = this.exports().filter((j) => !known.has(j.jobId));
    this.exports.set([...local, ...list]);
  }

  upsertExport(job: ExportJob): void {
    this.exports.update((list) => {
      const i = list.findIndex((j) => j.jobId === job.jobId);
      if (i < 0) return [job, ...list];
      const copy = list.slice();
      // Merge only what the update knows: a partial push ({jobId, downloadUrl}) must not blank
      // the format/range, and a late "pending" answer must not hide an arrived download URL.
      const merged: ExportJob = { ...copy[i] };
      for (const [k, v] of Object.entries(job) as [keyof ExportJob, ExportJob[keyof ExportJob]][]) {
        if (v !== null && v !== '') (merged as unknown as Record<string, unknown>)[k] = v;
      }
      if (copy[i].downloadUrl && !job.downloadUrl) {
        merged.downloadUrl = copy[i].downloadUrl;
        merged.status = copy[i].status;
      }
      copy[i] = merged;
      return copy;
    });
  }

  /** ExportCompleted {jobId, downloadUrl}; returns the updated job. */
  onExportCompleted(raw: unknown): ExportJob | null {
    const job = normalizeExportJob(raw, { status: 'done' });
    if (job.jobId === '') return null;
    if (job.status === 'pending' || job.status === 'running') job.status = 'done';
    this.upsertExport(job);
    return this.exports().find((j) => j.jobId === job.jobId) ?? job;
  }

  /** Forget everything (organization switch, logout). */
  reset(): void {
    this.metrics.set(emptyMetrics());
    this.trends.set({ hourly: [], daily: [] });
    this.lastSnapshotAt.set(null);
    this.feed.set([]);
    this.alerts.set([]);
    this.exports.set([]);
    this.seen.clear();
  }

  /**
   * True for an event that happened more than LIVE_WINDOW_MS ago: an agent uploading its
   * backlog is not live activity (the next snapshot counts it) and must not move the tiles.
   */
  private isOld(raw: unknown, ...keys: string[]): boolean {
    const at = time(raw, ...keys);
    return at !== null && this.clock() - at > LIVE_WINDOW_MS;
  }

  private firstTime(kind: string, id: string | null): boolean {
    if (id === null) return true;
    const key = `${kind}:${id}`;
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    if (this.seen.size > DEDUPE_CAP) {
      // Sets iterate in insertion order: drop the oldest key.
      const oldest = this.seen.values().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
    return true;
  }

  private pushFeed(kind: FeedKind, raw: unknown, extra: { sessionId: string | null; at: number | null }): void {
    const item: FeedItem = {
      key: `${kind}-${++this.seq}`,
      kind,
      at: extra.at ?? this.clock(),
      userId: str(raw, 'userId'),
      sessionId: extra.sessionId,
      tool: str(raw, 'tool'),
      email: str(raw, 'email'),
      duration: num(raw, 'duration'),
      aiUsageTime: num(raw, 'aiUsageTime'),
    };
    this.feed.update((f) => [item, ...f].slice(0, FEED_CAP));
  }
}

function sameZone(a: string, b: string): boolean {
  const utc = (z: string) => (['UTC', 'Etc/UTC', 'Etc/GMT', 'GMT', 'Etc/Universal', 'Universal', 'Zulu'].includes(z) ? 'UTC' : z);
  return utc(a) === utc(b);
}

function inc(v: number | null, by: number): number | null {
  // Unknown stays unknown: incrementing "no data" would show a wrong small number.
  return v === null ? null : v + by;
}

function time(raw: unknown, ...keys: string[]): number | null {
  const s = str(raw, ...keys);
  if (s === null) return null;
  const t = Date.parse(s);
  return Number.isNaN(t) ? null : t;
}
