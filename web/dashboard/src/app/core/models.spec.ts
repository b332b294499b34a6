import { normalizeAlertList, normalizeExportJob, normalizeSnapshot } from './models';

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
