import { TestBed } from '@angular/core/testing';
import { snapshotPayload } from '../testing/fakes';
import { CLOCK, VIEWER_TIME_ZONE } from './clock';
import { DashboardStore, FEED_CAP } from './dashboard.store';
import { normalizeSnapshot } from './models';

function makeStore(timeZone = 'UTC'): DashboardStore {
  TestBed.configureTestingModule({
    providers: [
      { provide: CLOCK, useValue: () => 1_000 },
      { provide: VIEWER_TIME_ZONE, useValue: timeZone },
    ],
  });
  return TestBed.inject(DashboardStore);
}

describe('DashboardStore', () => {
  afterEach(() => TestBed.resetTestingModule());

  it('replaces metrics and trends with a snapshot', () => {
    const store = makeStore();
    store.applySnapshot(normalizeSnapshot(snapshotPayload()));
    expect(store.metrics().sessionsToday).toBe(12);
    expect(store.trends().daily).toHaveLength(1);
    expect(store.hasSnapshot()).toBe(true);
  });

  it('bumps active sessions and sessions today on SessionStarted until the next snapshot corrects them', () => {
    const store = makeStore();
    store.applySnapshot(normalizeSnapshot(snapshotPayload()));
    store.onSessionStarted({ sessionId: 's1', userId: 'u1', startTime: '2026-11-26T10:00:00Z' });
    expect(store.metrics().activeSessions).toBe(4);
    expect(store.metrics().sessionsToday).toBe(13);
    store.applySnapshot(normalizeSnapshot(snapshotPayload({ activeSessions: 10, sessionsToday: 20 })));
    expect(store.metrics().activeSessions).toBe(10);
  });

  it('counts a duplicate delivery of the same session start once', () => {
    const store = makeStore();
    store.applySnapshot(normalizeSnapshot(snapshotPayload()));
    store.onSessionStarted({ sessionId: 's1', userId: 'u1' });
    store.onSessionStarted({ sessionId: 's1', userId: 'u1' });
    expect(store.metrics().activeSessions).toBe(4);
    expect(store.feed()).toHaveLength(1);
  });

  it('decrements active sessions on SessionEnded (never below zero) and leaves AI time to the server', () => {
    const store = makeStore();
    store.applySnapshot(normalizeSnapshot(snapshotPayload({ activeSessions: 0, aiUsageTimeToday: 100 })));
    store.onSessionEnded({ sessionId: 's1', duration: 600, aiUsageTime: 300 });
    expect(store.metrics().activeSessions).toBe(0);
    // The server counted the session's detections live already: adding 300 would count twice.
    expect(store.metrics().aiUsageTimeToday).toBe(100);
    expect(store.feed()[0]).toMatchObject({ kind: 'SessionEnded', duration: 600, aiUsageTime: 300 });
  });

  it('leaves unknown tiles unknown instead of counting from zero before the first snapshot', () => {
    const store = makeStore();
    store.onSessionStarted({ sessionId: 's1', userId: 'u1' });
    expect(store.metrics().activeSessions).toBeNull();
    expect(store.feed()).toHaveLength(1);
  });

  it('keeps the feed newest first and capped', () => {
    const store = makeStore();
    for (let i = 0; i < FEED_CAP + 10; i++) store.onAIDetected({ tool: 'ChatGPT', duration: i, userId: `u${i}` });
    const feed = store.feed();
    expect(feed).toHaveLength(FEED_CAP);
    expect(feed[0].userId).toBe(`u${FEED_CAP + 9}`);
  });

  it('counts AIDetected against the tool row and records UserJoined in the feed', () => {
    const store = makeStore();
    store.applySnapshot(normalizeSnapshot(snapshotPayload({ usageByTool: [{ tool: 'Claude', detections: 2 }] })));
    store.onAIDetected({ tool: 'Claude', duration: 30, userId: 'u1' });
    store.onUserJoined({ userId: 'u7', email: 'new@example.com', timestamp: '2026-11-26T10:00:00Z' });
    expect(store.metrics().usageByTool[0].detections).toBe(3);
    expect(store.feed()[0]).toMatchObject({ kind: 'UserJoined', email: 'new@example.com' });
    expect(store.metrics().totalUsers).toBe(26);
  });

  it('prepends live alerts, drops duplicates by id and tracks acknowledgements', () => {
    const store = makeStore();
    store.setAlerts([{ id: 'a0', type: 't', message: 'old', severity: 'info', createdAt: null, acknowledged: false }]);
    expect(store.onAlert({ id: 'a1', type: 'Spike', message: 'usage spike', severity: 'critical' })).not.toBeNull();
    expect(store.onAlert({ id: 'a1', type: 'Spike', message: 'usage spike', severity: 'critical' })).toBeNull();
    expect(store.alerts().map((a) => a.id)).toEqual(['a1', 'a0']);
    expect(store.unacknowledgedAlerts()).toBe(2);
    store.markAcknowledged('a1');
    expect(store.unacknowledgedAlerts()).toBe(1);
  });

  it('completes an export job with its download URL and keeps the URL against a late pending answer', () => {
    const store = makeStore();
    store.upsertExport({ jobId: 'j1', status: 'pending', format: 'csv', from: null, to: null, createdAt: null, downloadUrl: null, error: null });
    const job = store.onExportCompleted({ jobId: 'j1', downloadUrl: '/dl/j1' });
    expect(job).toMatchObject({ jobId: 'j1', status: 'done', downloadUrl: '/dl/j1', format: 'csv' });
    store.upsertExport({ jobId: 'j1', status: 'pending', format: 'csv', from: null, to: null, createdAt: null, downloadUrl: null, error: null });
    expect(store.exports()[0].downloadUrl).toBe('/dl/j1');
  });

  it('forgets everything on reset (organization switch)', () => {
    const store = makeStore();
    store.applySnapshot(normalizeSnapshot(snapshotPayload()));
    store.onSessionStarted({ sessionId: 's1' });
    store.reset();
    expect(store.metrics().activeSessions).toBeNull();
    expect(store.feed()).toEqual([]);
    // After a reset the same session id counts again (it belongs to a new view).
    store.onSessionStarted({ sessionId: 's1' });
    expect(store.feed()).toHaveLength(1);
  });

  it('takes a push as its view only for the same zone and period', () => {
    const utc = makeStore('Etc/UTC');
    expect(utc.matchesView(normalizeSnapshot(snapshotPayload({ timezone: 'UTC', period: '30d' })))).toBe(true);
    expect(utc.matchesView(normalizeSnapshot(snapshotPayload()))).toBe(true); // an older server: UTC, 30 days
    utc.periodDays.set(7);
    expect(utc.matchesView(normalizeSnapshot(snapshotPayload({ timezone: 'UTC', period: '30d' })))).toBe(false);
    TestBed.resetTestingModule();
    const west = makeStore('America/Denver');
    expect(west.matchesView(normalizeSnapshot(snapshotPayload({ timezone: 'UTC' })))).toBe(false);
    expect(west.matchesView(normalizeSnapshot(snapshotPayload({ timezone: 'America/Denver' })))).toBe(true);
  });

  it('leaves events of an agent catching up on old activity to the snapshot', () => {
    TestBed.configureTestingModule({ providers: [{ provide: CLOCK, useValue: () => Date.parse('2026-11-26T12:00:00Z') }] });
    const store = TestBed.inject(DashboardStore);
    store.applySnapshot(normalizeSnapshot(snapshotPayload({ activeSessions: 2, sessionsToday: 5 })));
    store.onSessionStarted({ sessionId: 'old', userId: 'u1', startTime: '2026-11-20T09:00:00Z' });
    store.onAIDetected({ eventId: 'e-old', userId: 'u1', tool: 'ChatGPT', duration: 60, occurredAt: '2026-11-26T11:00:00Z' });
    store.onSessionEnded({ sessionId: 'old', userId: 'u1', endTime: '2026-11-20T10:00:00Z', duration: 3600 });
    expect(store.metrics().activeSessions).toBe(2);
    expect(store.metrics().sessionsToday).toBe(5);
    expect(store.feed()).toEqual([]);
    // A session end is dated at its last activity, some minutes before it is reported: still live.
    store.onSessionEnded({ sessionId: 'recent', userId: 'u1', endTime: '2026-11-26T11:50:00Z', duration: 600 });
    store.onSessionStarted({ sessionId: 'now', userId: 'u2', startTime: '2026-11-26T12:00:00Z' });
    expect(store.feed().map((f) => f.sessionId)).toEqual(['now', 'recent']);
    expect(store.metrics().activeSessions).toBe(2);
  });
});
