import { ChangeDetectionStrategy, Component, computed, effect, inject, untracked } from '@angular/core';
import { FormsModule } from '@angular/forms';
import { NavigationEnd, Router, RouterLink, RouterLinkActive, RouterOutlet } from '@angular/router';
import { filter, map } from 'rxjs';
import { toSignal } from '@angular/core/rxjs-interop';
import { AuthService } from './core/auth.service';
import { DashboardStore } from './core/dashboard.store';
import { RealtimeService } from './core/realtime.service';
import { ConnectionBadgeComponent } from './shared/connection-badge.component';
import { ReloginDialogComponent } from './shared/relogin-dialog.component';
import { ToastsComponent } from './shared/toasts.component';

/** Shell: top bar (brand, navigation, org switcher, connection badge, user), page, toasts. */
@Component({
  selector: 'app-root',
  imports: [RouterOutlet, RouterLink, RouterLinkActive, FormsModule, ConnectionBadgeComponent, ToastsComponent, ReloginDialogComponent],
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    @if (showChrome()) {
      <header class="topbar">
        <div class="topbar__inner">
          <a class="brand" routerLink="/"><span class="brand__mark">◆</span> AI Usage</a>
          <nav class="nav">
            <a routerLink="/" routerLinkActive="nav--active" [routerLinkActiveOptions]="{ exact: true }" data-testid="nav-overview">Overview</a>
            <a routerLink="/alerts" routerLinkActive="nav--active" data-testid="nav-alerts">
              Alerts
              @if (store.unacknowledgedAlerts() > 0) {
                <span class="count" data-testid="alerts-count">{{ store.unacknowledgedAlerts() }}</span>
              }
            </a>
            @if (auth.canExport()) {
              <a routerLink="/exports" routerLinkActive="nav--active" data-testid="nav-exports">Exports</a>
            }
          </nav>
          <div class="topbar__right">
            @if (auth.isSuperAdmin()) {
              <form class="org-switch" (ngSubmit)="switchOrg()" data-testid="org-switcher">
                <label for="org-input" class="visually-hidden">Organization</label>
                <input id="org-input" name="org" [(ngModel)]="orgInput" placeholder="organization id" data-testid="org-input" />
                <button type="submit" class="btn btn--small" data-testid="org-switch">View</button>
              </form>
            } @else {
              <span class="org muted" data-testid="org-name">{{ auth.organizationId() }}</span>
            }
            <app-connection-badge />
            <span class="user" data-testid="user-email" [title]="auth.role() ?? ''">{{ auth.user()?.email }}<span class="role">{{ auth.role() }}</span></span>
            <button type="button" class="btn btn--ghost btn--small" (click)="logout()" data-testid="logout">Sign out</button>
          </div>
        </div>
      </header>
    }
    @if (showChrome() && rt.state() === 'offline') {
      <div class="banner" data-testid="connection-banner" role="status">
        Live updates are unavailable{{ rt.lastError() ? ': ' + rt.lastError() : '' }}. Retrying automatically; numbers below may be stale.
      </div>
    }
    <div class="page" [class.page--bare]="!showChrome()">
      <router-outlet />
    </div>
    <app-toasts />
    <app-relogin-dialog />
  `,
})
export class App {
  readonly auth = inject(AuthService);
  readonly store = inject(DashboardStore);
  readonly rt = inject(RealtimeService);
  private readonly router = inject(Router);
  orgInput = this.auth.organizationId() ?? '';

  private readonly url = toSignal(
    this.router.events.pipe(
      filter((e): e is NavigationEnd => e instanceof NavigationEnd),
      map((e) => e.urlAfterRedirects),
    ),
    { initialValue: this.router.url },
  );
  readonly showChrome = computed(() => this.auth.isLoggedIn() && !this.url().startsWith('/login'));

  constructor() {
    // One hub connection per signed-in session; none on the login page.
    // untracked: only the login state drives this effect, not the signals connect() reads.
    effect(() => {
      const loggedIn = this.auth.isLoggedIn();
      untracked(() => (loggedIn ? this.rt.connect() : this.rt.disconnect()));
    });
  }

  switchOrg(): void {
    this.rt.switchOrganization(this.orgInput);
  }

  logout(): void {
    this.rt.disconnect();
    this.store.reset();
    this.auth.logout();
    void this.router.navigateByUrl('/login');
  }
}
