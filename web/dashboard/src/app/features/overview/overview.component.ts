import { ChangeDetectionStrategy, Component, computed, inject } from '@angular/core';
import { AuthService } from '../../core/auth.service';
import { DashboardStore, PeriodDays, PERIODS } from '../../core/dashboard.store';
import { DASH, displayName, fmtBucket, fmtDate, fmtDateTime, fmtDuration, fmtInt, fmtMinutes, fmtPercent, fmtTime } from '../../core/format';
import { FeedItem, Metrics } from '../../core/models';
import { RealtimeService } from '../../core/realtime.service';
import { Cell, Column, DataTableComponent, Row } from './data-table.component';
import { KpiTileComponent } from './kpi-tile.component';
import { ChartSeries, TrendChartComponent } from './trend-chart.component';

/** What "monitored people" are counted from (docs/metrics.md, adoption). */
const BASIS: Record<string, string> = {
  seats: 'seats',
  enrolledDevices: 'enrolled devices',
  reportingPeople: 'people whose agents reported',
};

@Component({
  selector: 'app-overview',
  imports: [DataTableComponent, KpiTileComponent, TrendChartComponent],
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    <section class="viewbar">
      <span class="muted" data-testid="view-zone">Times in {{ zone() }} · "today" starts at midnight there</span>
      <span class="periods" role="group" aria-label="Period">
        @for (d of periods; track d) {
          <button type="button" [attr.data-testid]="'period-' + d" [attr.aria-pressed]="store.periodDays() === d" (click)="setPeriod(d)">{{ d }} days</button>
        }
      </span>
    </section>

    <section class="kpis" data-testid="kpis" [class.kpis--loading]="!store.hasSnapshot()">
      @for (k of kpis(); track k.id) {
        <app-kpi-tile [id]="k.id" [label]="k.label" [value]="k.value" [hint]="k.hint" />
      }
    </section>

    <section class="grid">
      <div class="card card--wide">
        <header class="card__head"><h2>Last 24 h</h2><span class="muted">sessions started · AI and session minutes, by hour</span></header>
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
        <header class="card__head"><h2>Last {{ periodDays() }} days</h2><span class="muted">active users · AI hours, by day</span></header>
        <app-trend-chart [ariaLabel]="'Daily trend, last ' + periodDays() + ' days'" [labels]="daily().labels" [series]="daily().series" />
      </div>
    </section>

    <section class="grid grid--halves">
      <div class="card">
        <header class="card__head">
          <h2>Usage by tool</h2>
          <span class="muted" data-testid="tools-caption">time with each tool; tools used together count in each · {{ periodDays() }} days</span>
        </header>
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

      <div class="card">
        <header class="card__head">
          <h2>Shadow AI</h2>
          <span class="muted">unapproved tools, all history{{ newTools() }}</span>
        </header>
        <app-data-table testid="shadow-table" [columns]="shadowColumns" [rows]="shadowRows()" empty="No unapproved tool seen." />
      </div>
    </section>

    <section class="grid grid--halves">
      <div class="card">
        <header class="card__head"><h2>By team</h2><span class="muted">{{ periodDays() }} days</span></header>
        <app-data-table testid="team-table" [columns]="teamColumns" [rows]="teamRows()" empty="No teams yet." />
      </div>

      <div class="card">
        <header class="card__head"><h2>By device</h2><span class="muted">top devices by AI time, {{ periodDays() }} days</span></header>
        <app-data-table testid="device-table" [columns]="deviceColumns" [rows]="deviceRows()" empty="No device reported yet." />
      </div>
    </section>

    <section class="card">
      <header class="card__head">
        <h2>People</h2>
        <span class="muted">{{ peopleCaption() }}</span>
      </header>
      <app-data-table testid="users-table" [columns]="peopleColumns()" [rows]="peopleRows()" empty="No per-user data yet." />
    </section>

    <section class="card">
      <header class="card__head"><h2>Inactive people</h2><span class="muted">monitored, no activity in the last 7 days</span></header>
      <app-data-table testid="inactive-table" [columns]="inactiveColumns()" [rows]="inactiveRows()" empty="Everyone was active this week." />
    </section>
  `,
})
export class OverviewComponent {
  readonly store = inject(DashboardStore);
  private readonly auth = inject(AuthService);
  private readonly realtime = inject(RealtimeService);
  readonly feed = this.store.feed;
  readonly periods = PERIODS;
  readonly periodDays = this.store.periodDays;

  /** The zone the numbers are in: as the server computed them, else as requested. */
  readonly zone = computed(() => this.store.metrics().timezone ?? this.store.timeZone);

  /** Every person row: the full list when the server sends it, else the top list. */
  readonly users = computed(() => this.store.metrics().people ?? this.store.metrics().usageByUser);
  /** Managers see aggregates only (no emails); the API redacts them as well. */
  readonly showEmails = computed(() => this.auth.canSeeUserEmails() && this.users().some((u) => u.email !== null));
  private readonly shadow = computed(() => this.store.metrics().shadowAi);

  readonly shadowColumns: Column[] = [
    { label: 'Tool' },
    { label: 'People', num: true },
    { label: 'Detections', num: true },
    { label: 'AI time', num: true },
    { label: 'First seen' },
    { label: 'Last seen' },
  ];
  readonly shadowRows = computed((): Row[] | null => {
    const s = this.shadow();
    if (s === null) return null;
    return s.tools.map((t) => ({
      key: t.tool,
      testid: 'shadow-row',
      data: t.tool,
      cells: [
        { text: t.tool, tag: t.newThisWeek ? { text: 'NEW', kind: 'new', title: 'First seen in the last 7 days', testid: 'shadow-new' } : undefined },
        { text: fmtInt(t.people) },
        { text: fmtInt(t.detections) },
        { text: fmtDuration(t.aiSeconds) },
        { text: fmtDate(t.firstSeen) },
        { text: fmtDate(t.lastSeen) },
      ],
    }));
  });

  readonly teamColumns: Column[] = [
    { label: 'Team' },
    { label: 'People', num: true },
    { label: 'Active', num: true },
    { label: 'AI time', num: true },
    { label: 'Session time', num: true },
  ];
  readonly teamRows = computed((): Row[] | null =>
    mapRows(this.store.metrics().byTeam, (t) => ({
      key: t.team ?? '',
      testid: 'team-row',
      cells: [
        { text: t.team ?? 'Unassigned' },
        { text: fmtInt(t.people) },
        { text: fmtInt(t.activePeople) },
        { text: fmtDuration(t.aiSeconds) },
        { text: fmtDuration(t.sessionSeconds) },
      ],
    })),
  );

  readonly deviceColumns: Column[] = [
    { label: 'Device' },
    { label: 'Person' },
    { label: 'AI time', num: true },
    { label: 'Sessions', num: true },
    { label: 'Last seen' },
  ];
  readonly deviceRows = computed((): Row[] | null =>
    mapRows(this.store.metrics().byDevice, (d) => ({
      key: d.deviceId,
      testid: 'device-row',
      cells: [
        { text: d.name ?? d.deviceId },
        { text: this.who(d.userId) },
        { text: fmtDuration(d.aiSeconds) },
        { text: fmtInt(d.sessions) },
        { text: fmtDateTime(d.lastSeen) },
      ],
    })),
  );

  /** The person column: the e-mail for those allowed to see it, else the user id. */
  private readonly personColumn = computed((): Column => ({ label: this.showEmails() ? 'Email' : 'User' }));
  private person(userId: string, email: string | null): Cell {
    return this.showEmails() && email ? { text: email } : { text: userId, mono: true };
  }

  readonly peopleColumns = computed((): Column[] => [
    this.personColumn(),
    { label: 'Team' },
    { label: 'AI time', num: true },
    { label: 'Session time', num: true },
    { label: 'Sessions', num: true },
    { label: 'Last activity' },
    { label: 'Engagement' },
  ]);
  readonly peopleRows = computed((): Row[] =>
    this.users().map((u) => ({
      key: u.userId,
      testid: 'user-row',
      cells: [
        this.person(u.userId, u.email),
        { text: u.team ?? DASH },
        { text: fmtDuration(u.usageSeconds) },
        { text: fmtDuration(u.sessionSeconds) },
        { text: fmtInt(u.sessions) },
        { text: fmtDateTime(u.lastSeen) },
        engagementCell(u.engaged, u.usageSeconds),
      ],
    })),
  );

  readonly inactiveColumns = computed((): Column[] => [this.personColumn(), { label: 'Team' }, { label: 'Last activity' }]);
  readonly inactiveRows = computed((): Row[] | null =>
    mapRows(this.store.metrics().inactivePeople, (p) => ({
      key: p.userId,
      testid: 'inactive-row',
      cells: [this.person(p.userId, p.email), { text: p.team ?? DASH }, { text: p.lastActivity === null ? 'never' : fmtDateTime(p.lastActivity) }],
    })),
  );

  /** userId -> e-mail of everyone the snapshot names (for readable feed lines). */
  private readonly emails = computed(() => {
    const m = this.store.metrics();
    const map = new Map<string, string>();
    if (!this.auth.canSeeUserEmails()) return map;
    for (const u of [...m.usageByUser, ...(m.people ?? []), ...(m.inactivePeople ?? [])]) {
      if (u.email) map.set(u.userId, u.email);
    }
    return map;
  });

  readonly peopleCaption = computed(() => {
    const m = this.store.metrics();
    if (m.people === null) return `top ${this.users().length} by AI time, ${this.periodDays()} days`;
    const engaged = m.engagedMinSeconds !== null && m.engagedMinDays !== null ? ` · engaged = AI ${fmtDuration(m.engagedMinSeconds)}+ on ${m.engagedMinDays}+ days` : '';
    return `${m.people.length} people by AI time, ${this.periodDays()} days${engaged}`;
  });

  readonly newTools = computed(() => {
    const fresh = this.shadow()?.newThisWeek ?? [];
    return fresh.length ? ` · new this week: ${fresh.join(', ')}` : '';
  });

  readonly kpis = computed(() => kpiTiles(this.store.metrics(), this.periodDays()));

  readonly hourly = computed(() => {
    const pts = this.store.trends().hourly;
    const minutes = (v: number | null) => (v === null ? null : Math.round(v / 60));
    const series: ChartSeries[] = [
      { label: 'Sessions started', data: pts.map((p) => p.sessions), color: '#4f46e5', kind: 'bar' },
      { label: 'AI minutes', data: pts.map((p) => minutes(p.usageSeconds)), color: '#0ea5e9', kind: 'line', secondary: true },
      { label: 'Session minutes', data: pts.map((p) => minutes(p.sessionSeconds)), color: '#94a3b8', kind: 'line', secondary: true },
    ];
    return { labels: pts.map((p) => fmtBucket(p.t, 'hour')), series };
  });

  readonly daily = computed(() => {
    const pts = this.store.trends().daily;
    const series: ChartSeries[] = [
      { label: 'Active users', data: pts.map((p) => p.activeUsers), color: '#10b981', kind: 'line' },
      {
        label: 'AI hours',
        data: pts.map((p) => (p.usageSeconds === null ? null : Math.round(p.usageSeconds / 360) / 10)),
        color: '#a5b4fc',
        kind: 'bar',
        secondary: true,
      },
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

  time = fmtTime;

  setPeriod(days: PeriodDays): void {
    this.realtime.changePeriod(days);
  }

  /** A person as the feed and tables name them: their name from the e-mail, else the id. */
  who(userId: string | null): string {
    if (userId === null) return DASH;
    return displayName(this.emails().get(userId) ?? null, userId);
  }

  icon(f: FeedItem): string {
    return f.kind === 'SessionStarted' ? '▶' : f.kind === 'SessionEnded' ? '■' : f.kind === 'AIDetected' ? '✦' : '＋';
  }

  describe(f: FeedItem): string {
    const email = f.email ?? (f.userId === null ? null : (this.emails().get(f.userId) ?? null));
    const who = displayName(email, f.userId);
    switch (f.kind) {
      case 'SessionStarted':
        return f.tool ? `${who} started using ${f.tool}` : `${who} started a session`;
      case 'SessionEnded': {
        const whose = f.userId === null && email === null ? 'A' : `${who}'s`;
        if (f.duration === null) return `${whose} session ended`;
        const ai = f.aiUsageTime === null ? '' : `, ${fmtMinutes(f.aiUsageTime)} with AI`;
        return `${whose} session ended: ${fmtMinutes(f.duration)}${ai}`;
      }
      case 'AIDetected':
        return `${who} used ${f.tool ?? 'an AI tool'}${f.duration !== null ? ` for ${fmtMinutes(f.duration)}` : ''}`;
      case 'UserJoined':
        return `${who} joined the organization`;
    }
  }
}

function mapRows<T>(list: T[] | null, row: (item: T) => Row): Row[] | null {
  return list === null ? null : list.map(row);
}

function engagementCell(engaged: boolean | null, aiSeconds: number | null): Cell {
  if (engaged === null) return { text: DASH };
  if (engaged) return { text: '', tag: { text: 'engaged', kind: 'ok' } };
  return (aiSeconds ?? 0) > 0 ? { text: '', tag: { text: 'casual', kind: 'plain' } } : { text: '' };
}

interface Tile {
  id: string;
  label: string;
  value: string;
  hint: string | null;
}

/** The KPI tiles of a snapshot (pure, so the wording is tested without rendering). */
export function kpiTiles(m: Metrics, periodDays: number): Tile[] {
  const period = `${m.periodDays ?? periodDays} days`;
  const basis = m.monitoredBasis === null ? null : (BASIS[m.monitoredBasis] ?? m.monitoredBasis);
  const adoptionHint =
    m.monitoredPeople !== null
      ? `${fmtInt(m.adoptionNumerator)} of ${fmtInt(m.monitoredPeople)} monitored people${basis ? ` (${basis})` : ''} used AI, ${period}`
      : m.totalUsers === null
        ? '30-day active / all users'
        : `of ${fmtInt(m.totalUsers)} users`;
  const threshold =
    m.engagedMinSeconds !== null && m.engagedMinDays !== null
      ? ` · engaged = ${fmtDuration(m.engagedMinSeconds)}+ on ${m.engagedMinDays}+ days`
      : '';
  return [
    { id: 'active-sessions', label: 'Active sessions', value: fmtInt(m.activeSessions), hint: 'right now' },
    {
      id: 'ai-time-today',
      label: 'AI time today',
      value: fmtDuration(m.aiUsageTimeToday),
      hint: m.sessionSecondsToday === null ? 'everyone, overlaps counted once' : `of ${fmtDuration(m.sessionSecondsToday)} in sessions`,
    },
    { id: 'session-time-today', label: 'Session time today', value: fmtDuration(m.sessionSecondsToday), hint: 'everyone, live sessions included' },
    { id: 'sessions-today', label: 'Sessions today', value: fmtInt(m.sessionsToday), hint: 'started today' },
    {
      id: 'active-users',
      label: 'Active users today',
      value: fmtInt(m.activeUsersToday),
      hint: `7d ${fmtInt(m.activeUsers7d)} · 30d ${fmtInt(m.activeUsers30d)}${m.activeUsers90d === null ? '' : ` · 90d ${fmtInt(m.activeUsers90d)}`}`,
    },
    {
      id: 'ai-per-user',
      label: 'AI time per active user',
      value: fmtDuration(m.aiSecondsPerActiveUser),
      hint: m.aiUsersPeriod === null ? period : `${fmtInt(m.aiUsersPeriod)} people used AI, ${period}`,
    },
    { id: 'adoption', label: 'Adoption', value: fmtPercent(m.adoptionRate), hint: adoptionHint },
    {
      id: 'engaged',
      label: 'Engaged users',
      value: fmtInt(m.engagedUsers),
      hint: `${fmtInt(m.casualUsers)} casual, ${period}${threshold}`,
    },
    {
      id: 'unapproved',
      label: 'Unapproved tool hits',
      value: fmtInt(m.unapprovedDetectionsToday),
      hint: m.detectionsToday === null ? 'today' : `of ${fmtInt(m.detectionsToday)} detections today`,
    },
  ];
}
