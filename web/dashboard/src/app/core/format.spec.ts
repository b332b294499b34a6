import { DASH, displayName, fmtBucket, fmtDuration, fmtMinutes, fmtPercent, fmtType } from './format';

/** Run `fn` with the process in time zone `tz` (Node re-reads TZ when it changes). */
function inZone<T>(tz: string, fn: () => T): T {
  const env = (globalThis as unknown as { process: { env: Record<string, string | undefined> } }).process.env;
  const before = env['TZ'];
  env['TZ'] = tz;
  try {
    return fn();
  } finally {
    if (before === undefined) delete env['TZ'];
    else env['TZ'] = before;
  }
}

describe('format', () => {
  it('formats durations, percentages and alert types, with a dash for unknown', () => {
    expect(fmtDuration(5400)).toBe('1h 30m');
    expect(fmtDuration(65)).toBe('1m 05s');
    expect(fmtDuration(null)).toBe(DASH);
    expect(fmtPercent(0.6)).toBe('60%');
    expect(fmtPercent(0.055)).toBe('5.5%');
    expect(fmtType('UnapprovedTool')).toBe('Unapproved tool');
    expect(fmtType('agent_silent')).toBe('Agent silent');
  });

  it('labels a daily point with the date it names, also west of UTC', () => {
    const labels = inZone('America/Los_Angeles', () => {
      // The zone really is in effect: UTC midnight is the evening before there.
      expect(new Date('2026-11-26T00:00:00Z').getDate()).toBe(25);
      return [fmtBucket('2026-11-26', 'day'), fmtBucket('2026-11-26T00:00:00.000Z', 'day'), fmtBucket('2026-03-01', 'day')];
    });
    expect(labels).toEqual(['Nov 26', 'Nov 26', 'Mar 1']);
    expect(inZone('Pacific/Kiritimati', () => fmtBucket('2026-11-26', 'day'))).toBe('Nov 26');
  });

  it('labels an hourly point in the viewer zone', () => {
    expect(inZone('America/New_York', () => fmtBucket('2026-11-26T15:00:00Z', 'hour'))).toBe('10:00');
    expect(inZone('Asia/Kolkata', () => fmtBucket('2026-11-26T15:00:00Z', 'hour'))).toBe('20:30');
  });

  it('says durations and names as a sentence would', () => {
    expect(fmtMinutes(2520)).toBe('42 min');
    expect(fmtMinutes(20)).toBe('20 s');
    expect(fmtMinutes(3900)).toBe('1 h 05 min');
    expect(fmtMinutes(null)).toBe(DASH);
    expect(displayName('ann.lee@demo.local', 'u1')).toBe('Ann Lee');
    expect(displayName(null, 'sim-user-001')).toBe('sim-user-001');
    expect(displayName(null, null)).toBe('Someone');
  });
});
