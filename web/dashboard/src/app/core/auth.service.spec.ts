import { HttpClient, provideHttpClient, withInterceptors } from '@angular/common/http';
import { HttpTestingController, provideHttpClientTesting } from '@angular/common/http/testing';
import { TestBed } from '@angular/core/testing';
import { firstValueFrom } from 'rxjs';
import { MemoryStorage } from '../testing/fakes';
import { authInterceptor } from './auth.interceptor';
import { AuthService, parseExpiry, RELOGIN_LEAD_MS } from './auth.service';
import { CLOCK, SESSION_STORAGE } from './clock';

const NOW = Date.parse('2026-11-26T12:00:00Z');

function setup(storage = new MemoryStorage()) {
  let now = NOW;
  TestBed.configureTestingModule({
    providers: [
      provideHttpClient(withInterceptors([authInterceptor])),
      provideHttpClientTesting(),
      { provide: SESSION_STORAGE, useValue: storage },
      { provide: CLOCK, useValue: () => now },
    ],
  });
  return {
    auth: TestBed.inject(AuthService),
    http: TestBed.inject(HttpTestingController),
    client: TestBed.inject(HttpClient),
    storage,
    advance: (ms: number) => {
      now += ms;
      vi.advanceTimersByTime(ms);
    },
  };
}

async function login(auth: AuthService, http: HttpTestingController, role = 'Admin', ttlMs = 3_600_000) {
  const p = auth.login('admin@example.com', 'pw');
  const req = http.expectOne('/api/auth/login');
  expect(req.request.method).toBe('POST');
  expect(req.request.body).toEqual({ email: 'admin@example.com', password: 'pw' });
  expect(req.request.headers.has('Authorization')).toBe(false);
  req.flush({
    token: 'jwt-1',
    expiresAt: new Date(NOW + ttlMs).toISOString(),
    user: { id: 'u1', email: 'admin@example.com', role, organizationId: 'org-a' },
  });
  return p;
}

describe('AuthService', () => {
  beforeEach(() => vi.useFakeTimers({ now: NOW }));
  afterEach(() => {
    TestBed.resetTestingModule();
    vi.useRealTimers();
  });

  it('logs in, keeps the token in sessionStorage and exposes the user', async () => {
    const { auth, http, storage } = setup();
    const user = await login(auth, http);
    expect(user.email).toBe('admin@example.com');
    expect(auth.token()).toBe('jwt-1');
    expect(auth.organizationId()).toBe('org-a');
    expect(JSON.parse(storage.getItem('aiusage.session') ?? '{}').token).toBe('jwt-1');
  });

  it('restores the session from sessionStorage after a reload', async () => {
    const storage = new MemoryStorage();
    const first = setup(storage);
    await login(first.auth, first.http);
    TestBed.resetTestingModule();
    const second = setup(storage);
    expect(second.auth.isLoggedIn()).toBe(true);
    expect(second.auth.token()).toBe('jwt-1');
  });

  it('propagates a failed login and stays logged out', async () => {
    const { auth, http } = setup();
    const p = auth.login('x@example.com', 'bad');
    http.expectOne('/api/auth/login').flush({ detail: 'invalid' }, { status: 401, statusText: 'Unauthorized' });
    await expect(p).rejects.toBeTruthy();
    expect(auth.isLoggedIn()).toBe(false);
    // A failed login is not a session expiry: no re-login dialog.
    expect(auth.reloginRequired()).toBeNull();
  });

  it('logout clears the session and storage', async () => {
    const { auth, http, storage } = setup();
    await login(auth, http);
    auth.logout();
    expect(auth.isLoggedIn()).toBe(false);
    expect(storage.getItem('aiusage.session')).toBeNull();
  });

  it('asks for a re-login shortly before the token expires, and a new login clears it', async () => {
    const { auth, http, advance } = setup();
    await login(auth, http, 'Admin', 10 * 60_000);
    advance(10 * 60_000 - RELOGIN_LEAD_MS - 1000);
    expect(auth.reloginRequired()).toBeNull();
    advance(2000);
    expect(auth.reloginRequired()).toBe('expired');
    await login(auth, http);
    expect(auth.reloginRequired()).toBeNull();
  });

  it('adds bearer and organization headers to API calls and flags 401 for re-login', async () => {
    const { auth, http, client } = setup();
    await login(auth, http);
    const p = firstValueFrom(client.get('/api/dashboard'));
    const req = http.expectOne('/api/dashboard');
    expect(req.request.headers.get('Authorization')).toBe('Bearer jwt-1');
    expect(req.request.headers.get('X-Organization-Id')).toBe('org-a');
    req.flush({}, { status: 401, statusText: 'Unauthorized' });
    await expect(p).rejects.toBeTruthy();
    expect(auth.reloginRequired()).toBe('unauthorized');
    expect(auth.isLoggedIn()).toBe(true);
  });

  it('lets only a SuperAdmin select another organization', async () => {
    const admin = setup();
    await login(admin.auth, admin.http, 'Admin');
    admin.auth.selectOrganization('org-b');
    expect(admin.auth.organizationId()).toBe('org-a');
    expect(admin.auth.canExport()).toBe(true);
    TestBed.resetTestingModule();

    const sa = setup();
    await login(sa.auth, sa.http, 'SuperAdmin');
    sa.auth.selectOrganization('org-b');
    expect(sa.auth.organizationId()).toBe('org-b');
    TestBed.resetTestingModule();

    const mgr = setup();
    await login(mgr.auth, mgr.http, 'Manager');
    expect(mgr.auth.canExport()).toBe(false);
    expect(mgr.auth.canSeeUserEmails()).toBe(false);
  });
});

describe('parseExpiry', () => {
  it('accepts ISO strings, epoch seconds and epoch milliseconds', () => {
    expect(parseExpiry('2026-11-26T13:00:00Z', NOW)).toBe(NOW + 3_600_000);
    expect(parseExpiry(1_800_000_000, NOW)).toBe(1_800_000_000_000);
    expect(parseExpiry(1_800_000_000_000, NOW)).toBe(1_800_000_000_000);
    expect(parseExpiry(undefined, NOW)).toBe(NOW + 3_600_000);
  });
});
