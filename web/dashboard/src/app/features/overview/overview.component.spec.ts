import { provideHttpClient } from '@angular/common/http';
import { HttpTestingController, provideHttpClientTesting } from '@angular/common/http/testing';
import { TestBed } from '@angular/core/testing';
import { SESSION_STORAGE, VIEWER_TIME_ZONE } from '../../core/clock';
import { DashboardStore } from '../../core/dashboard.store';
import { emptyMetrics, normalizeSnapshot } from '../../core/models';
import { MemoryStorage, snapshotPayload } from '../../testing/fakes';
import { kpiTiles, OverviewComponent } from './overview.component';

function render(role: string, timeZone = 'UTC') {
  const storage = new MemoryStorage();
  storage.setItem(
    'aiusage.session',
    JSON.stringify({ token: 't', expiresAt: Date.now() + 3_600_000, user: { id: 'u', email: 'm@example.com', role, organizationId: 'org-a' } }),
  );
  // jsdom has no canvas: the chart component must degrade quietly (tables still carry the numbers).
  vi.spyOn(HTMLCanvasElement.prototype, 'getContext').mockReturnValue(null);
  TestBed.configureTestingModule({
    imports: [OverviewComponent],
    providers: [
      provideHttpClient(),
      provideHttpClientTesting(),
      { provide: SESSION_STORAGE, useValue: storage },
      { provide: VIEWER_TIME_ZONE, useValue: timeZone },
    ],
  });
  const fixture = TestBed.createComponent(OverviewComponent);
  const store = TestBed.inject(DashboardStore);
  return { fixture, store, el: fixture.nativeElement as HTMLElement };
}

const tile = (el: HTMLElement, id: string) => el.querySelector(`[data-testid="kpi-${id}"] [data-testid="kpi-value"]`)?.textContent?.trim();

describe('OverviewComponent', () => {
  afterEach(() => {
    TestBed.resetTestingModule();
    vi.restoreAllMocks();
  });

  it('shows dashes before the first snapshot, then the snapshot numbers', async () => {
    const { fixture, store, el } = render('Admin');
    await fixture.whenStable();
    expect(tile(el, 'active-sessions')).toBe('\u2014');
    store.applySnapshot(normalizeSnapshot(snapshotPayload()));
    await fixture.whenStable();
    expect(tile(el, 'active-sessions')).toBe('3');
    expect(tile(el, 'sessions-today')).toBe('12');
    expect(tile(el, 'ai-time-today')).toBe('1h 30m');
    expect(tile(el, 'active-users')).toBe('4');
    expect(tile(el, 'adoption')).toBe('60%');
    expect(el.querySelectorAll('[data-testid="tool-row"]')).toHaveLength(2);
  });

  it('updates the tile and the feed when a live event arrives', async () => {
    const { fixture, store, el } = render('Admin');
    store.applySnapshot(normalizeSnapshot(snapshotPayload()));
    await fixture.whenStable();
    expect(el.querySelector('[data-testid="feed-empty"]')).not.toBeNull();
    store.onSessionStarted({ sessionId: 's1', userId: 'alice', startTime: new Date().toISOString() });
    await fixture.whenStable();
    expect(tile(el, 'active-sessions')).toBe('4');
    const items = el.querySelectorAll('[data-testid="feed-item"]');
    expect(items).toHaveLength(1);
    expect(items[0].getAttribute('data-kind')).toBe('SessionStarted');
    expect(items[0].textContent).toContain('alice started a session');
  });

  it('shows per-user emails to an Admin but not to a Manager', async () => {
    const admin = render('Admin');
    admin.store.applySnapshot(normalizeSnapshot(snapshotPayload()));
    await admin.fixture.whenStable();
    expect(admin.el.querySelector('[data-testid="users-table"]')?.textContent).toContain('a@example.com');
    TestBed.resetTestingModule();

    const mgr = render('Manager');
    mgr.store.applySnapshot(normalizeSnapshot(snapshotPayload()));
    await mgr.fixture.whenStable();
    const table = mgr.el.querySelector('[data-testid="users-table"]')?.textContent ?? '';
    expect(table).toContain('u1');
    expect(table).not.toContain('a@example.com');
  });

  it('tells what happened in plain words, with the person named from the e-mail', async () => {
    const { fixture, store, el } = render('Admin');
    store.applySnapshot(normalizeSnapshot(snapshotPayload({ usageByUser: [{ userId: 'u7', email: 'ann.lee@demo.local', aiSeconds: 60 }] })));
    store.onSessionStarted({ sessionId: 's7', userId: 'u7', tool: 'Claude', startTime: new Date().toISOString() });
    store.onAIDetected({ eventId: 'e1', userId: 'u7', tool: 'Claude', duration: 120 });
    store.onSessionEnded({ sessionId: 's7', userId: 'u7', duration: 2520, aiUsageTime: 1080 });
    store.onSessionEnded({ sessionId: 's8', userId: 'stranger', duration: 30 });
    await fixture.whenStable();
    const texts = [...el.querySelectorAll('[data-testid="feed-item"] .feed__text')].map((e) => e.textContent?.trim());
    expect(texts).toEqual([
      "stranger's session ended: 30 s",
      "Ann Lee's session ended: 42 min, 18 min with AI",
      'Ann Lee used Claude for 2 min',
      'Ann Lee started using Claude',
    ]);
  });

  it('names people by id for a Manager, who sees no e-mails', async () => {
    const { fixture, store, el } = render('Manager');
    store.applySnapshot(normalizeSnapshot(snapshotPayload({ usageByUser: [{ userId: 'u7', aiSeconds: 60 }] })));
    store.onSessionStarted({ sessionId: 's7', userId: 'u7', tool: 'Claude', email: 'ann.lee@demo.local' });
    await fixture.whenStable();
    expect(el.querySelector('[data-testid="feed-item"]')?.textContent).toContain('Ann Lee started using Claude');
    store.onSessionStarted({ sessionId: 's9', userId: 'u9', tool: 'Claude' });
    await fixture.whenStable();
    expect(el.querySelector('[data-testid="feed-item"]')?.textContent).toContain('u9 started using Claude');
  });

  it('says which zone it shows and labels tool time as overlapping', async () => {
    const { fixture, store, el } = render('Admin', 'America/Los_Angeles');
    await fixture.whenStable();
    expect(el.querySelector('[data-testid="view-zone"]')?.textContent).toContain('America/Los_Angeles');
    store.applySnapshot(normalizeSnapshot(snapshotPayload({ timezone: 'America/Los_Angeles' })));
    await fixture.whenStable();
    expect(el.querySelector('[data-testid="view-zone"]')?.textContent).toContain('America/Los_Angeles');
    expect(el.querySelector('[data-testid="tools-caption"]')?.textContent).toContain('time with each tool; tools used together count in each');
    expect(el.textContent).toContain('Last 24 h');
  });

  it('asks for another period with the viewer zone', async () => {
    const { fixture, el } = render('Admin', 'America/Los_Angeles');
    await fixture.whenStable();
    (el.querySelector('[data-testid="period-7"]') as HTMLButtonElement).click();
    await fixture.whenStable();
    const http = TestBed.inject(HttpTestingController);
    const req = http.expectOne((r) => r.url === '/api/dashboard');
    expect(req.request.params.get('tz')).toBe('America/Los_Angeles');
    expect(req.request.params.get('period')).toBe('7d');
    req.flush(snapshotPayload({ period: '7d', periodDays: 7 }));
    await fixture.whenStable();
    expect(el.querySelector('[data-testid="period-7"]')?.getAttribute('aria-pressed')).toBe('true');
    expect(el.textContent).toContain('Last 7 days');
  });

  it('renders the team, device, shadow-AI and inactive panels, and dashes when a server omits them', async () => {
    const { fixture, store, el } = render('Admin');
    store.applySnapshot(normalizeSnapshot(snapshotPayload()));
    await fixture.whenStable();
    for (const id of ['team-table', 'device-table', 'shadow-table', 'inactive-table']) {
      expect(el.querySelector(`[data-testid="${id}"] tbody`)?.textContent?.trim()).toBe('\u2014');
    }
    store.applySnapshot(
      normalizeSnapshot(
        snapshotPayload({
          people: [{ userId: 'u1', email: 'ann.lee@demo.local', team: 'Sales', aiSeconds: 4000, engaged: true }],
          inactivePeople: [{ userId: 'u5', email: 'bo@demo.local', team: null, lastActivity: null }],
          byTeam: [{ team: null, people: 2, activePeople: 0, aiSeconds: 0, sessionSeconds: 0 }, { team: 'Sales', people: 3, activePeople: 2, aiSeconds: 4000, sessionSeconds: 6000 }],
          byDevice: [{ deviceId: 'd1', userId: 'u1', name: "Ann's laptop", aiSeconds: 4000, sessions: 3, lastSeen: null }],
          shadowAi: { tools: [{ tool: 'Manus', people: 1, detections: 2, aiSeconds: 60, newThisWeek: true }, { tool: 'DeepSeek', people: 2, newThisWeek: false }], newThisWeek: ['Manus'] },
        }),
      ),
    );
    await fixture.whenStable();
    expect([...el.querySelectorAll('[data-testid="team-row"]')].map((r) => r.querySelector('td')?.textContent?.trim())).toEqual(['Unassigned', 'Sales']);
    expect(el.querySelector('[data-testid="device-row"]')?.textContent).toContain('Ann Lee');
    const shadow = [...el.querySelectorAll('[data-testid="shadow-row"]')];
    expect(shadow.map((r) => r.getAttribute('data-item'))).toEqual(['Manus', 'DeepSeek']);
    expect(shadow[0].querySelector('[data-testid="shadow-new"]')).not.toBeNull();
    expect(shadow[1].querySelector('[data-testid="shadow-new"]')).toBeNull();
    expect(el.querySelector('[data-testid="inactive-row"]')?.textContent).toContain('never');
    expect(el.querySelector('[data-testid="users-table"]')?.textContent).toContain('engaged');
  });

  it('states the adoption denominator and the engagement threshold', () => {
    const m = {
      ...emptyMetrics(),
      adoptionRate: 0.6,
      adoptionNumerator: 12,
      monitoredPeople: 20,
      monitoredBasis: 'enrolledDevices',
      engagedUsers: 8,
      casualUsers: 4,
      engagedMinSeconds: 3600,
      engagedMinDays: 3,
      aiSecondsPerActiveUser: 5400,
      aiUsersPeriod: 12,
      periodDays: 30,
    };
    const tiles = Object.fromEntries(kpiTiles(m, 30).map((t) => [t.id, t]));
    expect(tiles['adoption']).toMatchObject({ value: '60%', hint: '12 of 20 monitored people (enrolled devices) used AI, 30 days' });
    expect(tiles['engaged']).toMatchObject({ value: '8', hint: '4 casual, 30 days · engaged = 1h 00m+ on 3+ days' });
    expect(tiles['ai-per-user']).toMatchObject({ value: '1h 30m', hint: '12 people used AI, 30 days' });
    expect(kpiTiles(emptyMetrics(), 7).find((t) => t.id === 'session-time-today')?.value).toBe('\u2014');
  });
});
