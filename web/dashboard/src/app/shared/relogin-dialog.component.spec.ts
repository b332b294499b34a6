import { provideHttpClient } from '@angular/common/http';
import { HttpTestingController, provideHttpClientTesting } from '@angular/common/http/testing';
import { TestBed } from '@angular/core/testing';
import { provideRouter } from '@angular/router';
import { AuthService } from '../core/auth.service';
import { SESSION_STORAGE } from '../core/clock';
import { DashboardStore } from '../core/dashboard.store';
import { RealtimeService } from '../core/realtime.service';
import { MemoryStorage } from '../testing/fakes';
import { ReloginDialogComponent } from './relogin-dialog.component';

describe('ReloginDialogComponent', () => {
  afterEach(() => TestBed.resetTestingModule());

  it('appears on 401, signs the same user in again, keeps the page state and resumes the hub', async () => {
    const storage = new MemoryStorage();
    storage.setItem(
      'aiusage.session',
      JSON.stringify({ token: 'old', expiresAt: Date.now() + 3_600_000, user: { id: 'u', email: 'admin@example.com', role: 'Admin', organizationId: 'o' } }),
    );
    TestBed.configureTestingModule({
      imports: [ReloginDialogComponent],
      providers: [provideHttpClient(), provideHttpClientTesting(), provideRouter([]), { provide: SESSION_STORAGE, useValue: storage }],
    });
    const fixture = TestBed.createComponent(ReloginDialogComponent);
    const el = fixture.nativeElement as HTMLElement;
    const auth = TestBed.inject(AuthService);
    const store = TestBed.inject(DashboardStore);
    const resume = vi.spyOn(TestBed.inject(RealtimeService), 'onRelogin').mockImplementation(() => {});
    store.onSessionStarted({ sessionId: 's1', userId: 'alice' });
    await fixture.whenStable();
    expect(el.querySelector('[data-testid="relogin-dialog"]')).toBeNull();

    auth.markUnauthorized();
    await fixture.whenStable();
    expect(el.querySelector('[data-testid="relogin-dialog"]')?.textContent).toContain('admin@example.com');

    const pw = el.querySelector('[data-testid="relogin-password"]') as HTMLInputElement;
    pw.value = 'secret';
    pw.dispatchEvent(new Event('input'));
    (el.querySelector('[data-testid="relogin-dialog"]') as HTMLFormElement).dispatchEvent(new Event('submit'));
    const req = TestBed.inject(HttpTestingController).expectOne('/api/auth/login');
    expect(req.request.body).toEqual({ email: 'admin@example.com', password: 'secret' });
    req.flush({ token: 'new', expiresAt: new Date(Date.now() + 3_600_000).toISOString(), user: { id: 'u', email: 'admin@example.com', role: 'Admin', organizationId: 'o' } });
    await fixture.whenStable();

    expect(auth.token()).toBe('new');
    expect(resume).toHaveBeenCalledOnce();
    expect(el.querySelector('[data-testid="relogin-dialog"]')).toBeNull();
    expect(store.feed()).toHaveLength(1);
  });
});
