import { ChangeDetectionStrategy, Component, computed, inject, OnInit, signal } from '@angular/core';
import { ApiService } from '../../core/api.service';
import { DashboardStore } from '../../core/dashboard.store';
import { fmtDateTime, fmtType } from '../../core/format';
import { AlertItem } from '../../core/models';

@Component({
  selector: 'app-alerts',
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    <section class="card">
      <header class="card__head">
        <h2>Alerts</h2>
        <label class="check"><input type="checkbox" [checked]="showAcked()" (change)="showAcked.set(!showAcked())" /> show acknowledged</label>
      </header>
      @if (error()) {
        <p class="form-error" data-testid="alerts-error">{{ error() }}</p>
      }
      <ul class="alerts" data-testid="alerts-list">
        @for (a of visible(); track $index) {
          <li class="alert alert--{{ a.severity }}" [class.alert--acked]="a.acknowledged" data-testid="alert-item" [attr.data-alert-id]="a.id">
            <span class="alert__sev">{{ a.severity }}</span>
            <div class="alert__body">
              <strong>{{ type(a.type) }}</strong>
              <span>{{ a.message }}</span>
              <time class="muted">{{ when(a.createdAt) }}</time>
            </div>
            @if (!a.acknowledged && a.id) {
              <button type="button" class="btn btn--small" (click)="ack(a)" [disabled]="busy() === a.id" data-testid="alert-ack">Acknowledge</button>
            } @else if (a.acknowledged) {
              <span class="muted">acknowledged</span>
            }
          </li>
        } @empty {
          <li class="empty" data-testid="alerts-empty">No alerts. All quiet.</li>
        }
      </ul>
    </section>
  `,
})
export class AlertsComponent implements OnInit {
  private readonly api = inject(ApiService);
  private readonly store = inject(DashboardStore);
  readonly showAcked = signal(false);
  readonly busy = signal<string | null>(null);
  readonly error = signal<string | null>(null);
  readonly visible = computed(() => this.store.alerts().filter((a) => this.showAcked() || !a.acknowledged));
  when = fmtDateTime;
  type = fmtType;

  async ngOnInit(): Promise<void> {
    try {
      this.store.setAlerts(await this.api.alerts());
    } catch {
      this.error.set('Could not load alerts.');
    }
  }

  async ack(a: AlertItem): Promise<void> {
    if (!a.id) return;
    this.busy.set(a.id);
    this.error.set(null);
    try {
      await this.api.acknowledgeAlert(a.id);
      this.store.markAcknowledged(a.id);
    } catch {
      this.error.set('Could not acknowledge the alert.');
    } finally {
      this.busy.set(null);
    }
  }
}
