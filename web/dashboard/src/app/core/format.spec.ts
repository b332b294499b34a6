import { DASH, fmtDuration, fmtPercent, fmtType } from './format';

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
});
