import { provideHttpClient } from '@angular/common/http';
import { provideHttpClientTesting } from '@angular/common/http/testing';
import { TestBed } from '@angular/core/testing';
import { HttpError } from '@microsoft/signalr';
import { FakeHubFactory, flush, MemoryStorage, snapshotPayload } from '../testing/fakes';
import { ApiService } from './api.service';
import { AuthService } from './auth.service';
import { CLOCK, SESSION_STORAGE, VIEWER_TIME_ZONE } from './clock';
import { DashboardStore } from './dashboard.store';
import { normalizeSnapshot, Snapshot } from './models';
import { NotificationsService } from './notifications.service';
import {
  CappedBackoffRetryPolicy,
  HUB_CONNECTION_FACTORY,
  optionsFromQuery,
  REALTIME_OPTIONS,
  RealtimeOptions,
  RealtimeService,
} from './realtime.service';

const NOW = Date.parse('2026-11-26T12:00:00Z');

class FakeApi {
  dashboardCalls = 0;
  alertsCalls = 0;
  dashboardResult: Snapshot = normalizeSnapshot(snapshotPayload({ activeSessions: 99 }));
  dashboardArgs: Array<[string | null | undefined, string | null | undefined]> = [];
  dashboard = async (tz?: string | null, period?: string | null) => {
    this.dashboardCalls++;
    this.dashboardArgs.push([tz, period]);
    return this.dashboardResult;
  };
  alerts = async () => {
    this.alertsCalls++;
    return [];
  };
  exportJob = async (id: string) => ({ jobId: id, status: 'completed', downloadUrl: `/dl/${id}` }) as never;
}

function setup(opts: Partial<RealtimeOptions> = {}, role = 'Admin', timeZone = 'UTC') {
  const storage = new MemoryStorage();
  storage.setItem(
    'aiusage.session',
    JSON.stringify({
      token: 'tok-1',
      expiresAt: NOW + 3_600_000,
      user: { id: 'u-admin', email: 'admin@example.com', role, organizationId: 'org-a' },
    }),
  );
  const factory = new FakeHubFactory();
  factory.prepare = (hub) => hub.invokeResults.set('GetDashboardSnapshot', snapshotPayload());
  const api = new FakeApi();
  TestBed.configureTestingModule({
    providers: [
      provideHttpClient(),
      provideHttpClientTesting(),
      { provide: SESSION_STORAGE, useValue: storage },
      { provide: CLOCK, useValue: () => NOW },
      { provide: VIEWER_TIME_ZONE, useValue: timeZone },
      { provide: HUB_CONNECTION_FACTORY, useValue: factory.create },
      { provide: ApiService, useValue: api },
      {
        provide: REALTIME_OPTIONS,
        useValue: { transport: null, protocol: 'messagepack', fallbackPollMs: 30_000, retryBaseMs: 1000, retryCapMs: 30_000, ...opts },
      },
    ],
  });
  const rt = TestBed.inject(RealtimeService);
  const store = TestBed.inject(DashboardStore);
  const auth = TestBed.inject(AuthService);
  return { rt, store, auth, factory, api };
}

describe('RealtimeService', () => {
  beforeEach(() => vi.useFakeTimers({ now: NOW }));
  afterEach(() => {
    TestBed.resetTestingModule();
    vi.useRealTimers();
  });

  it('connects to /hubs/analytics with the organization as a query parameter and the current token', async () => {
    const { rt, factory } = setup();
    rt.connect();
    expect(rt.state()).toBe('connecting');
    await flush();
    const spec = factory.last.spec;
    expect(spec.url).toBe('/hubs/analytics?organizationId=org-a');
    expect(spec.accessTokenFactory()).toBe('tok-1');
    expect(spec.protocol).toBe('messagepack');
    expect(rt.state()).toBe('live');
  });

  it('loads a snapshot through the hub after connecting, without any REST poll', async () => {
    const { rt, store, factory, api } = setup();
    rt.connect();
    await flush();
    expect(factory.last.invocations.map((i) => i.method)).toContain('GetDashboardSnapshot');
    expect(store.metrics().activeSessions).toBe(3);
    await vi.advanceTimersByTimeAsync(5 * 60_000);
    expect(api.dashboardCalls).toBe(0);
  });

  it('falls back to GET /api/dashboard when the hub has no snapshot method', async () => {
    const { rt, store, factory, api } = setup();
    factory.prepare = () => {};
    rt.connect();
    await flush();
    expect(api.dashboardCalls).toBe(1);
    expect(store.metrics().activeSessions).toBe(99);
  });

  it('shows reconnecting while the link is down and reloads the snapshot after reconnecting', async () => {
    const { rt, store, factory } = setup();
    rt.connect();
    await flush();
    const hub = factory.last;
    hub.dropLink();
    expect(rt.state()).toBe('reconnecting');
    // While disconnected the server moved on: the snapshot after reconnect must show it.
    hub.invokeResults.set('GetDashboardSnapshot', snapshotPayload({ activeSessions: 7 }));
    hub.restoreLink();
    await flush();
    expect(rt.state()).toBe('live');
    expect(store.metrics().activeSessions).toBe(7);
    expect(hub.invocations.filter((i) => i.method === 'GetDashboardSnapshot')).toHaveLength(2);
  });

  it('polls the REST snapshot only while not live and stops polling once live again', async () => {
    const { rt, factory, api } = setup();
    rt.connect();
    await flush();
    factory.last.dropLink();
    await vi.advanceTimersByTimeAsync(30_000);
    expect(api.dashboardCalls).toBe(1);
    factory.last.restoreLink();
    await flush();
    await vi.advanceTimersByTimeAsync(120_000);
    expect(api.dashboardCalls).toBe(1);
  });

  it('applies pushed events to the store', async () => {
    const { rt, store, factory } = setup();
    rt.connect();
    await flush();
    factory.last.emit('SessionStarted', { sessionId: 's1', userId: 'u1', startTime: '2026-11-26T11:59:00Z' });
    expect(store.metrics().activeSessions).toBe(4);
    expect(store.feed()[0].kind).toBe('SessionStarted');
    factory.last.emit('DashboardUpdate', snapshotPayload({ activeSessions: 42 }));
    expect(store.metrics().activeSessions).toBe(42);
  });

  it('never shows an event stamped with another organization', async () => {
    const { rt, store, factory } = setup();
    rt.connect();
    await flush();
    factory.last.emit('SessionStarted', { sessionId: 's-b', userId: 'u-b', organizationId: 'org-b' });
    factory.last.emit('DashboardUpdate', { ...snapshotPayload({ activeSessions: 500 }), organizationId: 'org-b' });
    expect(store.feed()).toHaveLength(0);
    expect(store.metrics().activeSessions).toBe(3);
    factory.last.emit('SessionStarted', { sessionId: 's-a', userId: 'u-a', organizationId: 'org-a' });
    expect(store.feed()).toHaveLength(1);
  });

  it('turns Alert and ExportCompleted pushes into toasts', async () => {
    const { rt, store, factory } = setup();
    const notes = TestBed.inject(NotificationsService);
    rt.connect();
    await flush();
    factory.last.emit('Alert', { id: 'a1', type: 'UnapprovedTool', message: 'Claude used', severity: 'warning' });
    factory.last.emit('ExportCompleted', { jobId: 'j1', downloadUrl: '/api/exports/j1/download?sig=x' });
    expect(store.alerts()[0].message).toBe('Claude used');
    const toasts = notes.toasts();
    expect(toasts.map((t) => t.kind)).toEqual(['alert', 'export']);
    expect(toasts[1].href).toBe('/api/exports/j1/download?sig=x');
  });

  it('keeps retrying a failed start with capped backoff and never gives up', async () => {
    const { rt, factory } = setup();
    factory.prepare = (hub) => {
      for (let i = 0; i < 8; i++) hub.startPlan.push(new Error('connection refused'));
      hub.invokeResults.set('GetDashboardSnapshot', snapshotPayload());
    };
    rt.connect();
    await flush();
    expect(rt.state()).toBe('offline');
    // Eight failures with delays capped at 30 s (+20 % jitter) fit in 8 x 36 s.
    await vi.advanceTimersByTimeAsync(8 * 36_000);
    expect(factory.last.startCalls).toBe(9);
    expect(rt.state()).toBe('live');
  });

  it('restarts on its own when the connection closes for good', async () => {
    const { rt, factory } = setup();
    rt.connect();
    await flush();
    factory.last.close(new Error('Server returned an error on close'));
    expect(rt.state()).toBe('offline');
    await vi.advanceTimersByTimeAsync(2_000);
    expect(factory.last.startCalls).toBe(2);
    expect(rt.state()).toBe('live');
  });

  it('asks for a re-login on 401 and resumes with the new token right after it', async () => {
    const { rt, auth, factory } = setup();
    factory.prepare = (hub) => {
      if (factory.hubs.length === 0) hub.startPlan.push(new HttpError('Unauthorized', 401));
      hub.invokeResults.set('GetDashboardSnapshot', snapshotPayload());
    };
    rt.connect();
    await flush();
    expect(rt.state()).toBe('offline');
    expect(auth.reloginRequired()).toBe('unauthorized');
    // The user signs in again in the dialog (simulated by writing the new session).
    (auth as unknown as { session: { set(v: unknown): void } }).session.set({
      token: 'tok-2',
      expiresAt: NOW + 7_200_000,
      user: { id: 'u-admin', email: 'admin@example.com', role: 'Admin', organizationId: 'org-a' },
    });
    rt.onRelogin();
    await flush();
    expect(factory.hubs).toHaveLength(2);
    expect(factory.last.spec.accessTokenFactory()).toBe('tok-2');
    expect(rt.state()).toBe('live');
  });

  it('flags a re-login when an automatic reconnect is refused with 401', async () => {
    const { rt, auth, factory } = setup();
    rt.connect();
    await flush();
    const delay = factory.last.spec.retryPolicy.nextRetryDelayInMilliseconds({
      previousRetryCount: 2,
      elapsedMilliseconds: 5000,
      retryReason: new HttpError('Unauthorized', 401),
    });
    expect(delay).not.toBeNull();
    expect(auth.reloginRequired()).toBe('unauthorized');
  });

  it('ignores events from a connection it has replaced', async () => {
    const { rt, store, factory } = setup();
    rt.connect();
    await flush();
    const old = factory.last;
    rt.reconnectNow();
    await flush();
    old.emit('SessionStarted', { sessionId: 'ghost', userId: 'u9' });
    expect(store.feed()).toHaveLength(0);
    expect(old.stopCalls).toBe(1);
  });

  it('switches organization for a SuperAdmin: new connection, JoinOrganization, clean store', async () => {
    const { rt, store, factory } = setup({}, 'SuperAdmin');
    factory.prepare = (hub) => {
      hub.invokeResults.set('GetDashboardSnapshot', snapshotPayload());
      hub.invokeResults.set('JoinOrganization', null);
    };
    rt.connect();
    await flush();
    factory.last.emit('SessionStarted', { sessionId: 's-a', userId: 'u1' });
    rt.switchOrganization('org-b');
    expect(store.feed()).toHaveLength(0);
    await flush();
    expect(factory.last.spec.url).toBe('/hubs/analytics?organizationId=org-b');
    expect(factory.last.invocations[0]).toEqual({ method: 'JoinOrganization', args: ['org-b'] });
  });

  it('does not let an Admin switch organization', async () => {
    const { rt, factory } = setup();
    rt.connect();
    await flush();
    rt.switchOrganization('org-b');
    expect(factory.hubs).toHaveLength(1);
  });
});

describe('CappedBackoffRetryPolicy', () => {
  it('retries at once first, then backs off exponentially up to the cap, forever', () => {
    const p = new CappedBackoffRetryPolicy(1000, 30_000, () => {}, () => 0.5);
    const delays = [0, 1, 2, 3, 4, 5, 6, 50, 1000].map((n) => p.delay(n));
    expect(delays).toEqual([0, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
  });

  it('spreads clients with jitter but never exceeds the cap', () => {
    const hi = new CappedBackoffRetryPolicy(1000, 30_000, () => {}, () => 0.999);
    const lo = new CappedBackoffRetryPolicy(1000, 30_000, () => {}, () => 0);
    expect(hi.delay(3)).toBeGreaterThan(4000);
    expect(lo.delay(3)).toBeLessThan(4000);
    expect(hi.delay(20)).toBe(30_000);
  });
});

describe('optionsFromQuery', () => {
  it('forces a transport from the page URL and implies JSON for SSE', () => {
    expect(optionsFromQuery('?transport=longpolling')).toMatchObject({ transport: 'longpolling', protocol: 'messagepack' });
    expect(optionsFromQuery('?transport=sse&protocol=messagepack')).toMatchObject({ transport: 'sse', protocol: 'json' });
    expect(optionsFromQuery('?transport=websockets&protocol=json')).toMatchObject({ transport: 'websockets', protocol: 'json' });
    expect(optionsFromQuery('')).toMatchObject({ transport: null, protocol: 'messagepack' });
  });
});

describe('RealtimeService: the viewer zone and period', () => {
  beforeEach(() => vi.useFakeTimers({ now: NOW }));
  afterEach(() => {
    TestBed.resetTestingModule();
    vi.useRealTimers();
  });

  it('asks the hub for the snapshot of the viewer zone and period', async () => {
    const { rt, factory } = setup({}, 'Admin', 'America/Los_Angeles');
    rt.connect();
    await flush();
    const call = factory.last.invocations.find((i) => i.method === 'GetDashboardSnapshot');
    expect(call?.args).toEqual(['America/Los_Angeles', '30d']);
  });

  it('applies a UTC push directly for a UTC viewer', async () => {
    const { rt, store, factory } = setup();
    rt.connect();
    await flush();
    const before = factory.last.invocations.length;
    factory.last.emit('DashboardUpdate', snapshotPayload({ activeSessions: 42, timezone: 'UTC', period: '30d' }));
    await flush();
    expect(store.metrics().activeSessions).toBe(42);
    expect(factory.last.invocations.length).toBe(before);
  });

  it('re-fetches its own-zone snapshot on a UTC push west of UTC, coalescing a burst', async () => {
    const { rt, store, factory, api } = setup({}, 'Admin', 'America/Los_Angeles');
    let release: (v: unknown) => void = () => {};
    rt.connect();
    await flush();
    const hub = factory.last;
    const calls = () => hub.invocations.filter((i) => i.method === 'GetDashboardSnapshot').length;
    const initial = calls();
    hub.invokeResults.set('GetDashboardSnapshot', () => new Promise((ok) => (release = ok)));
    for (let i = 0; i < 5; i++) hub.emit('DashboardUpdate', snapshotPayload({ activeSessions: 1000 + i, timezone: 'UTC' }));
    await flush();
    // The UTC numbers are never shown to this viewer; one request runs, one more is queued.
    expect(store.metrics().activeSessions).toBe(3);
    expect(calls()).toBe(initial + 1);
    release(snapshotPayload({ activeSessions: 8, timezone: 'America/Los_Angeles' }));
    await flush(20);
    expect(store.metrics().activeSessions).toBe(8);
    expect(calls()).toBe(initial + 2);
    release(snapshotPayload({ activeSessions: 9, timezone: 'America/Los_Angeles' }));
    await flush(20);
    expect(store.metrics().activeSessions).toBe(9);
    expect(calls()).toBe(initial + 2);
    expect(hub.invocations.at(-1)?.args).toEqual(['America/Los_Angeles', '30d']);
    expect(api.dashboardCalls).toBe(0);
  });

  it('changes the period through the hub, and through REST with tz and period when the hub cannot', async () => {
    const { rt, store, factory, api } = setup({}, 'Admin', 'Europe/Berlin');
    rt.connect();
    await flush();
    rt.changePeriod(7);
    await flush();
    expect(store.period()).toBe('7d');
    expect(factory.last.invocations.at(-1)?.args).toEqual(['Europe/Berlin', '7d']);
    factory.last.invokeResults.set('GetDashboardSnapshot', () => {
      throw new Error('no such arguments');
    });
    rt.changePeriod(90);
    await flush(20);
    expect(api.dashboardArgs.at(-1)).toEqual(['Europe/Berlin', '90d']);
  });
});
