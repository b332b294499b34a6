import { provideHttpClient } from '@angular/common/http';
import { HttpTestingController, provideHttpClientTesting } from '@angular/common/http/testing';
import { TestBed } from '@angular/core/testing';
import { provideRouter, Router } from '@angular/router';
import { AuthService } from '../../core/auth.service';
import { SESSION_STORAGE } from '../../core/clock';
import { MemoryStorage } from '../../testing/fakes';
import { LoginComponent } from './login.component';

function setup() {
  TestBed.configureTestingModule({
    imports: [LoginComponent],
    providers: [provideHttpClient(), provideHttpClientTesting(), provideRouter([]), { provide: SESSION_STORAGE, useValue: new MemoryStorage() }],
  });
  const fixture = TestBed.createComponent(LoginComponent);
  const el = fixture.nativeElement as HTMLElement;
  const type = (id: string, v: string) => {
    const input = el.querySelector(`[data-testid="${id}"]`) as HTMLInputElement;
    input.value = v;
    input.dispatchEvent(new Event('input'));
  };
  const submit = () => (el.querySelector('[data-testid="login-form"]') as HTMLFormElement).dispatchEvent(new Event('submit'));
  return { fixture, el, type, submit, http: TestBed.inject(HttpTestingController) };
}

describe('LoginComponent', () => {
  afterEach(() => TestBed.resetTestingModule());

  it('signs in with the typed credentials and navigates to the overview', async () => {
    const { fixture, type, submit, http } = setup();
    const nav = vi.spyOn(TestBed.inject(Router), 'navigateByUrl').mockResolvedValue(true);
    await fixture.whenStable();
    type('login-email', 'admin@example.com');
    type('login-password', 'secret');
    submit();
    const req = http.expectOne('/api/auth/login');
    expect(req.request.body).toEqual({ email: 'admin@example.com', password: 'secret' });
    req.flush({ token: 't', expiresAt: new Date(Date.now() + 3_600_000).toISOString(), user: { id: 'u', email: 'admin@example.com', role: 'Admin', organizationId: 'o' } });
    await fixture.whenStable();
    expect(TestBed.inject(AuthService).isLoggedIn()).toBe(true);
    expect(nav).toHaveBeenCalledWith('/');
  });

  it('shows an error for wrong credentials', async () => {
    const { fixture, el, type, submit, http } = setup();
    await fixture.whenStable();
    type('login-email', 'admin@example.com');
    type('login-password', 'wrong');
    submit();
    http.expectOne('/api/auth/login').flush({ detail: 'bad' }, { status: 401, statusText: 'Unauthorized' });
    await fixture.whenStable();
    expect(el.querySelector('[data-testid="login-error"]')?.textContent).toContain('Invalid email or password');
  });
});
