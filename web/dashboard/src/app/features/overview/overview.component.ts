import { ChangeDetectionStrategy, Component, computed, inject } from '@angular/core';
import { AuthService } from '../../core/auth.service';
import { DashboardStore } from '../../core/dashboard.store';
import { DASH, fmtBucket, fmtDuration, fmtInt, fmtPercent, fmtTime } from '../../core/format';
import { FeedItem } from '../../core/models';
import { KpiTileComponent } from './kpi-tile.component';
import { ChartSeries, TrendChartComponent } from './trend-chart.component';

@Component({
  selector: 'app-overview',
  imports: [KpiTileComponent, TrendChartComponent],
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    <section class="kpis" data-testid="kpis" [class.kpis--loading]="!store.hasSnapshot()">
      @for (k of kpis(); track k.id) {
        <app-kpi-tile [id]="k.id" [label]="k.label" [value]="k.value" [hint]="k.hint" />
      }
    </section>

    <section class="grid">
      <div class="card card--wide">
        <header class="card__head"><h2>Today, by hour</h2><span class="muted">sessions · AI minutes</span></header>
        <app-trend-chart ariaLabel="Hourly trend, last 24 hours" [labels]="hourly().labels" [series]="hourly().series" />
      </div>

      <div class="card card--feed">
        <header class="card__head"><h2>Live activity</h2><span class="muted">{{ feed().length }} events</span></header>
        <ol class="feed" data-testid="feed">
          @for (f of feed(); track f.key) {
            <li class="feed__item feed__item--{{ f.kind }}" data-testid="feed-item" [attr.data-kind]="f.kind">
              <span class="feed__icon" aria-hidden="true">{{ icon(f) }}</span>
              <span class="feed__text">{{ describe(f) }}</span>
              <time class="feed__time">{{ time(f.at) }}</time>
            </li>
          } @empty {
            <li class="empty" data-testid="feed-empty">Waiting for activity…</li>
          }
        </ol>
      </div>

      <div class="card card--wide">
        <header class="card__head"><h2>Last 30 days</h2><span class="muted">active users · sessions</span></header>
        <app-trend-chart ariaLabel="Daily trend, last 30 days" [labels]="daily().labels" [series]="daily().series" />
      </div>

      <div class="card">
        <header class="card__head"><h2>Usage by tool</h2><span class="muted">AI time, 30 days</span></header>
        <ul class="bars" data-testid="tools">
          @for (t of tools(); track t.tool) {
            <li class="bars__row" data-testid="tool-row" [attr.data-tool]="t.tool">
              <span class="bars__label">
                {{ t.tool }}
                @if (t.approved === false) {
                  <span class="tag tag--warn" title="Not on the organization's approved list">unapproved</span>
                }
              </span>
              <span class="bars__track"><span class="bars__fill" [style.width.%]="t.pct"></span></span>
              <span class="bars__value">{{ t.display }}</span>
            </li>
          } @empty {
            <li class="empty">No tool usage yet.</li>
          }
        </ul>
      </div>
    </section>

    <section class="card">
      <header class="card__head"><h2>People</h2><span class="muted">top {{ users().length }} by AI time, 30 days</span></header>
      <div class="table-wrap">
        <table class="table" data-testid="users-table">
          <thead>
            <tr>
              <th>User</th>
              @if (showEmails()) {
                <th>Email</th>
              }
              <th class="num">Sessions</th>
              <th class="num">AI time</th>
              <th class="num">AI detections</th>
            </tr>
          </thead>
          <tbody>
            @for (u of users(); track u.userId) {
              <tr data-testid="user-row">
                <td class="mono">{{ u.userId }}</td>
                @if (showEmails()) {
                  <td>{{ u.email ?? dash }}</td>
                }
                <td class="num">{{ int(u.sessions) }}</td>
                <td class="num">{{ dur(u.usageSeconds) }}</td>
                <td class="num">{{ int(u.detections) }}</td>
              </tr>
            } @empty {
              <tr><td class="empty" [attr.colspan]="showEmails() ? 5 : 4">No per-user data yet.</td></tr>
            }
          </tbody>
        </table>
      </div>
    </section>
  `,
})
export class OverviewComponent {
  readonly store = inject(DashboardStore);
  private readonly auth = inject(AuthService);
  readonly feed = this.store.feed;
  readonly dash = DASH;
  /** Managers see aggregates only (no emails); the API redacts them as well. */
  readonly showEmails = computed(() => this.auth.canSeeUserEmails() && this.users().some((u) => u.email !== null));

  readonly kpis = computed(() => {
    const m = this.store.metrics();
    return [
      { id: 'active-sessions', label: 'Active sessions', value: fmtInt(m.activeSessions), hint: 'right now' },
      { id: 'sessions-today', label: 'Sessions today', value: fmtInt(m.sessionsToday), hint: null },
      { id: 'ai-time-today', label: 'AI usage today', value: fmtDuration(m.aiUsageTimeToday), hint: null },
      {
        id: 'active-users',
        label: 'Active users',
        value: fmtInt(m.activeUsersToday),
        hint: `7d ${fmtInt(m.activeUsers7d)} · 30d ${fmtInt(m.activeUsers30d)}`,
      },
      {
        id: 'adoption',
        label: 'Adoption',
        value: fmtPercent(m.adoptionRate),
        hint: m.totalUsers === null ? '30-day active / all users' : `of ${fmtInt(m.totalUsers)} users`,
      },
      {
        id: 'unapproved',
        label: 'Unapproved tool hits',
        value: fmtInt(m.unapprovedDetectionsToday),
        hint: m.detectionsToday === null ? 'today' : `of ${fmtInt(m.detectionsToday)} detections today`,
      },
    ];
  });

  readonly hourly = computed(() => {
    const pts = this.store.trends().hourly;
    const series: ChartSeries[] = [
      { label: 'Sessions', data: pts.map((p) => p.sessions), color: '#4f46e5', kind: 'bar' },
      {
        label: 'AI minutes',
        data: pts.map((p) => (p.usageSeconds === null ? null : Math.round(p.usageSeconds / 60))),
        color: '#0ea5e9',
        kind: 'line',
        secondary: true,
      },
    ];
    return { labels: pts.map((p) => fmtBucket(p.t, 'hour')), series };
  });

  readonly daily = computed(() => {
    const pts = this.store.trends().daily;
    const series: ChartSeries[] = [
      { label: 'Active users', data: pts.map((p) => p.activeUsers), color: '#10b981', kind: 'line' },
      { label: 'Sessions', data: pts.map((p) => p.sessions), color: '#a5b4fc', kind: 'bar', secondary: true },
    ];
    return { labels: pts.map((p) => fmtBucket(p.t, 'day')), series };
  });

  readonly tools = computed(() => {
    const rows = this.store.metrics().usageByTool;
    const value = (t: (typeof rows)[number]) => t.usageSeconds ?? t.sessions ?? t.detections ?? 0;
    const max = Math.max(1, ...rows.map(value));
    return rows.map((t) => ({
      ...t,
      pct: Math.round((value(t) / max) * 100),
      display:
        t.usageSeconds !== null ? fmtDuration(t.usageSeconds) : t.sessions !== null ? `${fmtInt(t.sessions)} sessions` : `${fmtInt(t.detections)} hits`,
    }));
  });

  readonly users = computed(() => this.store.metrics().usageByUser);

  int = fmtInt;
  dur = fmtDuration;
  time = fmtTime;

  icon(f: FeedItem): string {
    return f.kind === 'SessionStarted' ? '▶' : f.kind === 'SessionEnded' ? '■' : f.kind === 'AIDetected' ? '✦' : '＋';
  }

  describe(f: FeedItem): string {
    const who = f.email ?? f.userId ?? 'someone';
    switch (f.kind) {
      case 'SessionStarted':
        return `${who} started a session`;
      case 'SessionEnded':
        return `Session ${f.sessionId ?? ''} ended after ${fmtDuration(f.duration)} (${fmtDuration(f.aiUsageTime)} with AI)`;
      case 'AIDetected':
        return `${who} used ${f.tool ?? 'an AI tool'}${f.duration !== null ? ` for ${fmtDuration(f.duration)}` : ''}`;
      case 'UserJoined':
        return `${who} joined the organization`;
    }
  }
}
