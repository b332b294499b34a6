import { inject, Injectable, InjectionToken, OnDestroy, signal } from '@angular/core';
import {
  HttpTransportType,
  HubConnectionBuilder,
  IRetryPolicy,
  LogLevel,
  RetryContext,
} from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { ApiService } from './api.service';
import { AuthService } from './auth.service';
import { DashboardStore, PeriodDays } from './dashboard.store';
import { fmtType } from './format';
import { normalizeSnapshot, str } from './models';
import { NotificationsService } from './notifications.service';

export type ConnectionState = 'connecting' | 'live' | 'reconnecting' | 'offline';
export type TransportName = 'websockets' | 'sse' | 'longpolling';
export type ProtocolName = 'json' | 'messagepack';

/** The part of `@microsoft/signalr`'s HubConnection this service uses (so tests can fake it). */
export interface HubLike {
  on(methodName: string, handler: (...args: any[]) => void): void;
  onreconnecting(callback: (error?: Error) => void): void;
  onreconnected(callback: (connectionId?: string) => void): void;
  onclose(callback: (error?: Error) => void): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  invoke<T = any>(methodName: string, ...args: any[]): Promise<T>;
}

export interface HubConnectionSpec {
  url: string;
  accessTokenFactory: () => string;
  transport: TransportName | null;
  protocol: ProtocolName;
  retryPolicy: IRetryPolicy;
}

export type HubConnectionFactory = (spec: HubConnectionSpec) => HubLike;

export interface RealtimeOptions {
  /** null: let the client negotiate (WebSockets, then SSE, then long polling) */
  transport: TransportName | null;
  protocol: ProtocolName;
  /** REST fallback interval while the hub is NOT live; never used while live */
  fallbackPollMs: number;
  retryBaseMs: number;
  retryCapMs: number;
}

const TRANSPORTS: Record<TransportName, HttpTransportType> = {
  websockets: HttpTransportType.WebSockets,
  sse: HttpTransportType.ServerSentEvents,
  longpolling: HttpTransportType.LongPolling,
};

/** Builds the real connection, shaped as in the seed's RealtimeService. */
export const defaultHubConnectionFactory: HubConnectionFactory = (spec) => {
  const builder = new HubConnectionBuilder()
    .withUrl(spec.url, {
      accessTokenFactory: spec.accessTokenFactory,
      ...(spec.transport ? { transport: TRANSPORTS[spec.transport] } : {}),
    })
    .withAutomaticReconnect(spec.retryPolicy)
    // Warning, not Information: lower levels print URLs that can carry access_token.
    .configureLogging(LogLevel.Warning);
  if (spec.protocol === 'messagepack') builder.withHubProtocol(new MessagePackHubProtocol());
  return builder.build();
};

/**
 * Reads `?transport=longpolling|sse|websockets` and `?protocol=json|messagepack` from the page
 * URL (the e2e tests force a transport this way). SSE is text-only, so it implies JSON.
 */
export function optionsFromQuery(search: string): RealtimeOptions {
  const q = new URLSearchParams(search);
  const t = (q.get('transport') ?? '').toLowerCase().replace(/[-_ ]/g, '');
  const transport: TransportName | null =
    t === 'websockets' || t === 'websocket' || t === 'ws'
      ? 'websockets'
      : t === 'sse' || t === 'serversentevents'
        ? 'sse'
        : t === 'longpolling' || t === 'lp'
          ? 'longpolling'
          : null;
  const p = (q.get('protocol') ?? '').toLowerCase();
  let protocol: ProtocolName = p === 'json' ? 'json' : 'messagepack';
  if (transport === 'sse') protocol = 'json';
  return { transport, protocol, fallbackPollMs: 30_000, retryBaseMs: 1000, retryCapMs: 30_000 };
}

export const HUB_CONNECTION_FACTORY = new InjectionToken<HubConnectionFactory>('HUB_CONNECTION_FACTORY', {
  providedIn: 'root',
  factory: () => defaultHubConnectionFactory,
});

export const REALTIME_OPTIONS = new InjectionToken<RealtimeOptions>('REALTIME_OPTIONS', {
  providedIn: 'root',
  factory: () => optionsFromQuery(globalThis.location?.search ?? ''),
});

/** True when an error from the SignalR client is an HTTP 401 (negotiate or transport request). */
export function isUnauthorized(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const e = err as { statusCode?: unknown; message?: unknown };
  if (e.statusCode === 401) return true;
  return typeof e.message === 'string' && /\b401\b|Unauthorized/.test(e.message);
}

/**
 * Reconnect policy that never gives up (the stock one stops after 4 tries, leaving a
 * dashboard silently dead): 0 ms, then exponential from `baseMs`, capped at `capMs`,
 * with +-20 % jitter so a restarted server is not hit by every dashboard at once.
 */
export class CappedBackoffRetryPolicy implements IRetryPolicy {
  constructor(
    private readonly baseMs: number,
    private readonly capMs: number,
    private readonly onRetry: (ctx: RetryContext) => void = () => {},
    private readonly random: () => number = Math.random,
  ) {}

  nextRetryDelayInMilliseconds(ctx: RetryContext): number {
    this.onRetry(ctx);
    return this.delay(ctx.previousRetryCount);
  }

  delay(previousRetryCount: number): number {
    if (previousRetryCount <= 0) return 0;
    const exp = Math.min(this.capMs, this.baseMs * 2 ** Math.min(previousRetryCount - 1, 16));
    return Math.round(Math.min(this.capMs, exp * (0.8 + 0.4 * this.random())));
  }
}

/**
 * The live link to `/hubs/analytics` (contract.md "Hub").
 *
 * - Connection state as a signal: connecting -> live; reconnecting while the client's
 *   automatic reconnect runs; offline when the connection is down and a restart is scheduled.
 * - After every (re)connect a fresh snapshot is loaded (hub `GetDashboardSnapshot`, REST
 *   fallback) together with the alert list and pending exports, so nothing pushed during
 *   the gap is lost.
 * - While live the dashboard never polls; `GET /api/dashboard` is polled only while the hub
 *   is not live (the "fallback when the hub is unreachable").
 * - A 401 raises the re-login dialog (AuthService) and keeps retrying; after re-login
 *   `reconnectNow()` restarts at once with the new token.
 */
@Injectable({ providedIn: 'root' })
export class RealtimeService implements OnDestroy {
  private readonly auth = inject(AuthService);
  private readonly api = inject(ApiService);
  private readonly store = inject(DashboardStore);
  private readonly notify = inject(NotificationsService);
  private readonly factory = inject(HUB_CONNECTION_FACTORY);
  readonly options = inject(REALTIME_OPTIONS);

  readonly state = signal<ConnectionState>('offline');
  /** epoch ms of the next restart attempt while offline */
  readonly nextRetryAt = signal<number | null>(null);
  readonly lastError = signal<string | null>(null);
  /** Organization the current connection was opened for. */
  readonly connectedOrg = signal<string | null>(null);

  private hub: HubLike | null = null;
  /** Bumped on every new connection; callbacks of older ones are ignored. */
  private generation = 0;
  private restartTimer: ReturnType<typeof setTimeout> | null = null;
  private viewInFlight = false;
  private viewPending = false;
  private pollTimer: ReturnType<typeof setInterval> | null = null;
  private readonly policy: CappedBackoffRetryPolicy;

  constructor() {
    this.policy = new CappedBackoffRetryPolicy(this.options.retryBaseMs, this.options.retryCapMs, (ctx) => {
      if (isUnauthorized(ctx.retryReason)) this.auth.markUnauthorized();
    });
  }

  /** Open the connection if none is open (idempotent). */
  connect(): void {
    if (this.hub !== null) return;
    this.open();
  }

  /** Close for good (logout). */
  disconnect(): void {
    this.generation++;
    this.clearRestart();
    this.stopPolling();
    const hub = this.hub;
    this.hub = null;
    this.connectedOrg.set(null);
    this.state.set('offline');
    if (hub) void hub.stop().catch(() => {});
  }

  /** Drop the current connection and open a new one now (re-login, organization switch). */
  reconnectNow(): void {
    this.disconnect();
    this.open();
  }

  /** Re-login succeeded: resume at once unless the live connection is fine. */
  onRelogin(): void {
    if (this.state() !== 'live') this.reconnectNow();
  }

  /**
   * SuperAdmin organization switch: a new connection with the new `organizationId`
   * (the server joins `org:{id}` on connect), then JoinOrganization for servers that
   * group SuperAdmins by token only. The store is reset so no number of the previous
   * organization is shown under the new one.
   */
  switchOrganization(orgId: string): void {
    if (!this.auth.isSuperAdmin() || orgId.trim() === '' || orgId.trim() === this.connectedOrg()) return;
    this.auth.selectOrganization(orgId);
    this.store.reset();
    this.reconnectNow();
  }

  /** Ask the server for a fresh snapshot (and resync alerts/exports). */
  async resync(): Promise<void> {
    const hub = this.hub;
    const gen = this.generation;
    let snapshot: unknown = null;
    let gotSnapshot = false;
    if (hub && this.state() === 'live') {
      try {
        snapshot = await hub.invoke('GetDashboardSnapshot', this.store.timeZone, this.store.period());
        gotSnapshot = true;
      } catch {
        // Older hub without the method, or a transient error: fall back to REST below.
      }
    }
    if (gen !== this.generation) return;
    if (gotSnapshot) this.store.applySnapshot(normalizeSnapshot(snapshot));
    else await this.pollOnce(gen);
    await Promise.allSettled([this.reloadAlerts(gen), this.refreshPendingExports(gen)]);
  }

  /** Show another period: store it and load its snapshot. */
  changePeriod(days: PeriodDays): void {
    if (days === this.store.periodDays()) return;
    this.store.periodDays.set(days);
    this.refreshView();
  }

  /**
   * Load the snapshot of the viewer's zone and period (hub method, REST fallback), coalesced:
   * at most one request in flight and one more queued, however fast pushes arrive.
   */
  refreshView(): void {
    if (this.viewInFlight) {
      this.viewPending = true;
      return;
    }
    this.viewInFlight = true;
    const gen = this.generation;
    void this.loadView(gen).finally(() => {
      this.viewInFlight = false;
      if (this.viewPending && gen === this.generation) {
        this.viewPending = false;
        this.refreshView();
      }
    });
  }

  ngOnDestroy(): void {
    this.disconnect();
  }

  private async loadView(gen: number): Promise<void> {
    const hub = this.hub;
    if (hub && this.state() === 'live') {
      try {
        const raw = await hub.invoke('GetDashboardSnapshot', this.store.timeZone, this.store.period());
        if (gen === this.generation) this.store.applySnapshot(normalizeSnapshot(raw));
        return;
      } catch {
        // Older hub without the arguments, or a transient error: REST below.
      }
    }
    await this.pollOnce(gen);
  }

  private open(): void {
    if (!this.auth.isLoggedIn()) return;
    const gen = ++this.generation;
    const org = this.auth.organizationId();
    const url = org ? `/hubs/analytics?organizationId=${encodeURIComponent(org)}` : '/hubs/analytics';
    const hub = this.factory({
      url,
      // Read at every negotiate/reconnect so a re-login is picked up without a new connection.
      accessTokenFactory: () => this.auth.token() ?? '',
      transport: this.options.transport,
      protocol: this.options.protocol,
      retryPolicy: this.policy,
    });
    this.hub = hub;
    this.connectedOrg.set(org);
    this.register(hub, gen);
    this.state.set('connecting');
    void this.tryStart(gen, 0);
  }

  private register(hub: HubLike, gen: number): void {
    const live = <T extends unknown[]>(fn: (...a: T) => void) => (...a: T) => {
      if (gen === this.generation) fn(...a);
    };
    // Defence in depth for tenant isolation: the server only sends this organization's
    // events, but a payload stamped with another organizationId is never shown.
    const mine = (fn: (p: unknown) => void) =>
      live((p: unknown) => {
        const org = str(p, 'organizationId');
        const expected = this.connectedOrg();
        if (org !== null && expected !== null && org !== expected) return;
        fn(p);
      });
    hub.on('SessionStarted', mine((p: unknown) => this.store.onSessionStarted(p)));
    hub.on('SessionEnded', mine((p: unknown) => this.store.onSessionEnded(p)));
    hub.on('AIDetected', mine((p: unknown) => this.store.onAIDetected(p)));
    hub.on('UserJoined', mine((p: unknown) => this.store.onUserJoined(p)));
    hub.on(
      'DashboardUpdate',
      mine((p: unknown) => {
        const s = normalizeSnapshot(p);
        // Pushes are computed for UTC and the default period; another view fetches its own.
        if (this.store.matchesView(s)) this.store.applySnapshot(s);
        else this.refreshView();
      }),
    );
    hub.on(
      'Alert',
      mine((p: unknown) => {
        const a = this.store.onAlert(p);
        if (a) this.notify.show({ kind: 'alert', severity: a.severity, title: fmtType(a.type), message: a.message });
      }),
    );
    hub.on(
      'ExportCompleted',
      live((p: unknown) => {
        const job = this.store.onExportCompleted(p);
        if (job) {
          this.notify.show({
            kind: 'export',
            severity: 'info',
            title: 'Export ready',
            message: `Export ${job.jobId} has completed.`,
            href: job.downloadUrl,
            linkText: 'Download',
          });
        }
      }),
    );
    hub.onreconnecting(
      live(() => {
        this.state.set('reconnecting');
        this.startPolling();
      }),
    );
    hub.onreconnected(live(() => void this.becameLive(gen)));
    hub.onclose(
      live((err?: Error) => {
        // Reconnect gave up or the server closed without allowReconnect: restart ourselves.
        if (err) this.lastError.set(err.message);
        this.state.set('offline');
        this.startPolling();
        this.scheduleRestart(gen, 1);
      }),
    );
  }

  private async tryStart(gen: number, attempt: number): Promise<void> {
    const hub = this.hub;
    if (gen !== this.generation || hub === null) return;
    this.nextRetryAt.set(null);
    try {
      await hub.start();
    } catch (err) {
      if (gen !== this.generation) return;
      this.lastError.set(err instanceof Error ? err.message : String(err));
      if (isUnauthorized(err)) this.auth.markUnauthorized();
      this.state.set('offline');
      this.startPolling();
      this.scheduleRestart(gen, attempt + 1);
      return;
    }
    if (gen !== this.generation) {
      void hub.stop().catch(() => {});
      return;
    }
    await this.becameLive(gen);
  }

  private async becameLive(gen: number): Promise<void> {
    if (gen !== this.generation) return;
    this.state.set('live');
    this.lastError.set(null);
    this.stopPolling();
    const org = this.connectedOrg();
    const own = this.auth.user()?.organizationId ?? null;
    if (this.auth.isSuperAdmin() && org && org !== own && this.hub) {
      try {
        await this.hub.invoke('JoinOrganization', org);
      } catch {
        // The organizationId query parameter already selected the group on connect.
      }
    }
    await this.resync();
  }

  private scheduleRestart(gen: number, attempt: number): void {
    this.clearRestart();
    // Restart attempts use the same capped backoff, but never 0 ms: a start just failed.
    const delay = Math.max(this.policy.delay(attempt), this.options.retryBaseMs);
    this.nextRetryAt.set(Date.now() + delay);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (gen !== this.generation) return;
      this.state.set('connecting');
      void this.tryStart(gen, attempt);
    }, delay);
  }

  private clearRestart(): void {
    if (this.restartTimer !== null) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    this.nextRetryAt.set(null);
  }

  private startPolling(): void {
    if (this.pollTimer !== null || this.options.fallbackPollMs <= 0) return;
    const gen = this.generation;
    this.pollTimer = setInterval(() => {
      if (this.state() === 'live') this.stopPolling();
      else void this.pollOnce(gen);
    }, this.options.fallbackPollMs);
  }

  private stopPolling(): void {
    if (this.pollTimer !== null) clearInterval(this.pollTimer);
    this.pollTimer = null;
  }

  private async pollOnce(gen: number): Promise<void> {
    try {
      const s = await this.api.dashboard(this.store.timeZone, this.store.period());
      if (gen === this.generation) this.store.applySnapshot(s);
    } catch {
      // Server unreachable too: keep the last numbers; the badge already says offline.
    }
  }

  private async reloadAlerts(gen: number): Promise<void> {
    try {
      const list = await this.api.alerts();
      if (gen === this.generation) this.store.setAlerts(list);
    } catch {
      // Alerts are optional for the overview; the list view shows its own error.
    }
  }

  private async refreshPendingExports(gen: number): Promise<void> {
    if (!this.auth.canExport()) return;
    const pending = this.store.exports().filter((j) => !j.downloadUrl && j.status !== 'failed');
    for (const j of pending.slice(0, 10)) {
      try {
        const fresh = await this.api.exportJob(j.jobId);
        if (gen === this.generation) this.store.upsertExport(fresh);
      } catch {
        // Keep the local entry; ExportCompleted will still arrive if the job finishes.
      }
    }
  }
}
