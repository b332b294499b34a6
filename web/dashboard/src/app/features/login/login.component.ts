import { HttpErrorResponse } from '@angular/common/http';
import { ChangeDetectionStrategy, Component, inject, signal } from '@angular/core';
import { FormsModule } from '@angular/forms';
import { ActivatedRoute, Router } from '@angular/router';
import { AuthService } from '../../core/auth.service';

@Component({
  selector: 'app-login',
  imports: [FormsModule],
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    <main class="login">
      <form class="card login__card" data-testid="login-form" (ngSubmit)="submit()">
        <div class="brand brand--large"><span class="brand__mark">◆</span> AI Usage</div>
        <p class="muted">Sign in to the live AI-usage dashboard.</p>
        <label class="field">
          <span>Email</span>
          <input type="email" name="email" [(ngModel)]="email" autocomplete="username" required data-testid="login-email" />
        </label>
        <label class="field">
          <span>Password</span>
          <input type="password" name="password" [(ngModel)]="password" autocomplete="current-password" required data-testid="login-password" />
        </label>
        @if (error()) {
          <p class="form-error" data-testid="login-error" role="alert">{{ error() }}</p>
        }
        <button type="submit" class="btn btn--primary btn--block" [disabled]="busy()" data-testid="login-submit">
          {{ busy() ? 'Signing in…' : 'Sign in' }}
        </button>
      </form>
    </main>
  `,
})
export class LoginComponent {
  private readonly auth = inject(AuthService);
  private readonly router = inject(Router);
  private readonly route = inject(ActivatedRoute);
  email = '';
  password = '';
  readonly busy = signal(false);
  readonly error = signal<string | null>(null);

  async submit(): Promise<void> {
    if (!this.email || !this.password) {
      this.error.set('Enter your email and password.');
      return;
    }
    this.busy.set(true);
    this.error.set(null);
    try {
      await this.auth.login(this.email.trim(), this.password);
      const back = this.route.snapshot.queryParamMap.get('returnUrl');
      await this.router.navigateByUrl(back && back.startsWith('/') && !back.startsWith('//') ? back : '/');
    } catch (e) {
      const status = e instanceof HttpErrorResponse ? e.status : 0;
      this.error.set(
        status === 401 || status === 400 || status === 403
          ? 'Invalid email or password.'
          : status === 429
            ? 'Too many attempts. Wait a moment and try again.'
            : 'The server could not be reached.',
      );
    } finally {
      this.busy.set(false);
    }
  }
}
