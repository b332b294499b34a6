import { deviceUsage, inactivePeople, normalizeAlertList, normalizeExportJob, normalizeSnapshot, shadowAi, teamUsage } from './models';

describe('normalizeSnapshot', () => {
  it('reads the documented {metrics, trends} envelope', () => {
    const s = normalizeSnapshot({
      metrics: { activeSessions: 2, sessionsToday: 5, aiUsageTimeToday: 60, adoptionRate: 0.25, usageByTool: [{ tool: 'A', aiUsageTime: 5 }] },
      trends: { hourly: [{ hour: '2026-11-26T01:00:00Z', sessions: 1 }], daily: [] },
    });
    expect(s.metrics).toMatchObject({ activeSessions: 2, sessionsToday: 5, aiUsageTimeToday: 60, adoptionRate: 0.25 });
    expect(s.metrics.usageByTool[0]).toMatchObject({ tool: 'A', usageSeconds: 5 });
    expect(s.trends.hourly[0]).toMatchObject({ t: '2026-11-26T01:00:00Z', sessions: 1 });
  });

  it('renders missing fields as unknown (null), not zero, and survives garbage', () => {
    expect(normalizeSnapshot({ metrics: {} }).metrics.activeSessions).toBeNull();
    expect(normalizeSnapshot(null).metrics.usageByTool).toEqual([]);
    expect(normalizeSnapshot('nope').trends.hourly).toEqual([]);
  });

  it('accepts a bare metrics object, a percentage adoption, nested active users and a tool map', () => {
    const s = normalizeSnapshot({ activeSessions: 1, adoptionRate: 40, activeUsers: { today: 3, d7: 4, d30: 5 }, usageByTool: { ChatGPT: 120 } });
    expect(s.metrics.activeSessions).toBe(1);
    expect(s.metrics.adoptionRate).toBeCloseTo(0.4);
    expect([s.metrics.activeUsersToday, s.metrics.activeUsers7d, s.metrics.activeUsers30d]).toEqual([3, 4, 5]);
    expect(s.metrics.usageByTool[0]).toMatchObject({ tool: 'ChatGPT', usageSeconds: 120 });
  });

  it('turns MessagePack Date timestamps into ISO strings', () => {
    const s = normalizeSnapshot({ trends: { daily: [{ date: new Date('2026-11-20T00:00:00Z'), sessions: 3 }] } });
    expect(s.trends.daily[0].t).toBe('2026-11-20T00:00:00.000Z');
  });
});

describe('alerts and exports', () => {
  it('maps severities and reads both list shapes', () => {
    const list = normalizeAlertList({ items: [{ id: 1, type: 'x', message: 'm', severity: 'HIGH', acknowledgedAt: '2026-01-01' }] });
    expect(list[0]).toMatchObject({ id: '1', severity: 'critical', acknowledged: true });
    expect(normalizeAlertList([{ type: 'y', message: 'n' }])[0]).toMatchObject({ severity: 'info', acknowledged: false });
  });

  it('reads an export job by id or jobId', () => {
    expect(normalizeExportJob({ id: 'j', status: 'running' })).toMatchObject({ jobId: 'j', status: 'running' });
    expect(normalizeExportJob({ jobId: 'k' }, { format: 'csv' })).toMatchObject({ jobId: 'k', status: 'pending', format: 'csv' });
  });
});

describe('normalizeSnapshot: time model and the admin panels', () => {
  const full = {
    metrics: {
      timezone: 'America/Chicago',
      period: '7d',
      periodDays: 7,
      aiSecondsToday: 1800,
      aiUsageSecondsToday: 1800,
      sessionSecondsToday: 3600,
      aiSecondsPeriod: 36000,
      aiUsersPeriod: 12,
      aiSecondsPerActiveUser: 3000,
      monitoredPeople: 20,
      monitoredBasis: 'enrolledDevices',
      adoptionRate: 0.6,
      adoptionNumerator: 12,
      engagedUsers: 8,
      casualUsers: 4,
      engagement: { engagedMinSeconds: 3600, engagedMinDays: 3 },
      usageByTool: [{ tool: 'Claude', aiSeconds: 900, durationSeconds: 1, detections: 4, users: 2, approved: true, firstSeen: '2026-11-01T09:00:00Z', lastSeen: '2026-11-26T09:00:00Z' }],
      people: [
        { userId: 'u2', email: 'b@x.io', team: null, aiSeconds: 10, sessionSeconds: 20, sessions: 1, detections: 2, lastActivity: '2026-11-26T08:00:00Z', engaged: false },
        { userId: 'u1', email: 'a@x.io', team: 'Sales', aiSeconds: 4000, sessionSeconds: 7000, sessions: 5, detections: 9, lastActivity: '2026-11-26T09:00:00Z', engaged: true },
      ],
      inactivePeople: [{ userId: 'u3', email: null, team: 'Ops', lastActivity: null }, { nope: 1 }],
      byTeam: [{ team: null, people: 2, activePeople: 1, aiSeconds: 10, sessionSeconds: 20 }, { team: 'Sales', people: 3 }],
      byDevice: [{ deviceId: 'd1', userId: 'u1', name: "Ann's laptop", aiSeconds: 5, sessions: 1, lastSeen: '2026-11-26T09:00:00Z' }, { name: 'no id' }],
      shadowAi: {
        tools: [{ tool: 'Manus', people: 1, detections: 3, aiSeconds: 60, firstSeen: '2026-11-25T10:00:00Z', lastSeen: '2026-11-26T10:00:00Z', newThisWeek: true }],
        newThisWeek: ['Manus'],
      },
    },
    trends: { hourly: [], daily: [{ date: '2026-11-26', aiSeconds: 3600, sessionSeconds: 7200, detections: 9, activeUsers: 3, sessions: 4 }] },
  };

  it('reads the zone, the period and the union-model KPIs', () => {
    const m = normalizeSnapshot(full).metrics;
    expect(m).toMatchObject({
      timezone: 'America/Chicago',
      period: '7d',
      periodDays: 7,
      aiUsageTimeToday: 1800,
      sessionSecondsToday: 3600,
      aiSecondsPerActiveUser: 3000,
      monitoredPeople: 20,
      monitoredBasis: 'enrolledDevices',
      adoptionNumerator: 12,
      engagedUsers: 8,
      casualUsers: 4,
      engagedMinSeconds: 3600,
      engagedMinDays: 3,
    });
    expect(m.usageByTool[0]).toMatchObject({ usageSeconds: 900, firstSeen: '2026-11-01T09:00:00Z', lastSeen: '2026-11-26T09:00:00Z' });
    expect(normalizeSnapshot(full).trends.daily[0]).toMatchObject({ t: '2026-11-26', usageSeconds: 3600, sessionSeconds: 7200, detections: 9 });
  });

  it('reads people, inactive people, teams, devices and shadow AI, dropping rows without an id', () => {
    const m = normalizeSnapshot(full).metrics;
    expect(m.people?.map((p) => [p.userId, p.team, p.usageSeconds, p.sessionSeconds, p.engaged])).toEqual([
      ['u1', 'Sales', 4000, 7000, true],
      ['u2', null, 10, 20, false],
    ]);
    expect(m.inactivePeople).toEqual([{ userId: 'u3', email: null, team: 'Ops', lastActivity: null }]);
    expect(m.byTeam).toEqual([
      { team: null, people: 2, activePeople: 1, aiSeconds: 10, sessionSeconds: 20 },
      { team: 'Sales', people: 3, activePeople: null, aiSeconds: null, sessionSeconds: null },
    ]);
    expect(m.byDevice).toEqual([{ deviceId: 'd1', userId: 'u1', name: "Ann's laptop", aiSeconds: 5, sessions: 1, lastSeen: '2026-11-26T09:00:00Z' }]);
    expect(m.shadowAi?.tools[0]).toMatchObject({ tool: 'Manus', people: 1, newThisWeek: true });
    expect(m.shadowAi?.newThisWeek).toEqual(['Manus']);
  });

  it('keeps missing panels and fields unknown (null), never an invented zero or empty list', () => {
    const m = normalizeSnapshot({ metrics: { activeSessions: 1 } }).metrics;
    expect([m.people, m.inactivePeople, m.byTeam, m.byDevice, m.shadowAi]).toEqual([null, null, null, null, null]);
    expect([m.monitoredPeople, m.engagedUsers, m.sessionSecondsToday, m.timezone]).toEqual([null, null, null, null]);
    expect(inactivePeople('x')).toBeNull();
    expect(teamUsage([1, 'a'])).toEqual([]);
    expect(deviceUsage(undefined)).toBeNull();
    expect(shadowAi({ tools: 'no' })).toEqual({ tools: [], newThisWeek: [] });
    expect(shadowAi({ tools: [{ tool: 'X' }] })?.tools[0]).toMatchObject({ people: null, firstSeen: null, newThisWeek: null });
  });
});
