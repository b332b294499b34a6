import { provideHttpClient } from '@angular/common/http';
import { provideHttpClientTesting } from '@angular/common/http/testing';
import { TestBed } from '@angular/core/testing';
import { SESSION_STORAGE } from '../../core/clock';
import { DashboardStore } from '../../core/dashboard.store';
import { normalizeSnapshot } from '../../core/models';
import { MemoryStorage, snapshotPayload } from '../../testing/fakes';
import { OverviewComponent } from './overview.component';

function render(role: string) {
  const storage = new MemoryStorage();
  storage.setItem(
    'aiusage.session',
    JSON.stringify({ token: 't', expiresAt: Date.now() + 3_600_000, user: { id: 'u', email: 'm@example.com', role, organizationId: 'org-a' } }),
  );
  // jsdom has no canvas: the chart component must degrade quietly (tables still carry the numbers).
  vi.spyOn(HTMLCanvasElement.prototype, 'getContext').mockReturnValue(null);
  TestBed.configureTestingModule({
    imports: [OverviewComponent],
    providers: [provideHttpClient(), provideHttpClientTesting(), { provide: SESSION_STORAGE, useValue: storage }],
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
});
