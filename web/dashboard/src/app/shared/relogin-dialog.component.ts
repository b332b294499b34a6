import { ChangeDetectionStrategy, Component, computed, inject, signal } from '@angular/core';
import { FormsModule } from '@angular/forms';
import { Router } from '@angular/router';
import { AuthService } from '../core/auth.service';
import { DashboardStore } from '../core/dashboard.store';
import { RealtimeService } from '../core/realtime.service';

/**
 * Modal shown over the current page when the token expires (or the server says 401).
 * Logging in again here keeps every piece of page state; the hub then resumes with the new token.
 */
@Component({
  selector: 'app-relogin-dialog',
  imports: [FormsModule],
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    @if (reason()) {
      <div class="modal-backdrop">
        <form class="modal card" data-testid="relogin-dialog" (ngSubmit)="submit()" role="dialog" aria-modal="true" aria-labelledby="relogin-title">
          <h2 id="relogin-title">Session {{ reason() === 'expired' ? 'expiring' : 'expired' }}</h2>
          <p class="muted">
            Enter your password to stay signed in as <strong>{{ email() }}</strong>. The dashboard keeps running behind this dialog.
          </p>
          <label class="field">
            <span>Password</span>
            <input type="password" name="password" [(ngModel)]="password" autocomplete="current-password" required data-testid="relogin-password" />
          </label>
          @if (error()) {
            <p class="form-error" data-testid="relogin-error">{{ error() }}</p>
          }
          <div class="modal__actions">
            <button type="button" class="btn btn--ghost" (click)="signOut()">Sign out</button>
            <button type="submit" class="btn btn--primary" [disabled]="busy()" data-testid="relogin-submit">Sign in</button>
          </div>
        </form>
      </div>
    }
  `,
})
export class ReloginDialogComponent {
  private readonly auth = inject(AuthService);
  private readonly rt = inject(RealtimeService);
  private readonly store = inject(DashboardStore);
  private readonly router = inject(Router);
  readonly reason = this.auth.reloginRequired;
  readonly email = computed(() => this.auth.user()?.email ?? '');
  readonly busy = signal(false);
  readonly error = signal<string | null>(null);
  password = '';

  async submit(): Promise<void> {
    this.busy.set(true);
    this.error.set(null);
    try {
      await this.auth.login(this.email(), this.password);
      this.password = '';
      this.rt.onRelogin();
    } catch {
      this.error.set('Sign-in failed. Check your password.');
    } finally {
      this.busy.set(false);
    }
  }

  signOut(): void {
    this.rt.disconnect();
    this.store.reset();
    this.auth.logout();
    void this.router.navigateByUrl('/login');
  }
}
