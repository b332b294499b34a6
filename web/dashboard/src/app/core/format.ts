/** Display helpers: unknown values (null) render as an em dash, never as a made-up zero. */

export const DASH = '\u2014';

export function fmtInt(v: number | null): string {
  return v === null ? DASH : Math.round(v).toLocaleString('en-US');
}

export function fmtPercent(ratio: number | null): string {
  return ratio === null ? DASH : `${(ratio * 100).toFixed(ratio < 0.1 ? 1 : 0)}%`;
}

/** Seconds -> "2h 05m", "14m 09s", "42s". */
export function fmtDuration(seconds: number | null): string {
  if (seconds === null) return DASH;
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  if (h > 0) return `${h}h ${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m ${String(r).padStart(2, '0')}s`;
  return `${r}s`;
}

export function fmtTime(epochMs: number | null): string {
  if (epochMs === null) return DASH;
  return new Date(epochMs).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function fmtDateTime(iso: string | null): string {
  if (iso === null) return DASH;
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  return new Date(t).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' });
}

// A day as "YYYY-MM-DD", or as UTC midnight of that date (a MessagePack timestamp).
const CALENDAR_DAY = /^(\d{4})-(\d{2})-(\d{2})(?:T00:00:00(?:\.0+)?Z)?$/;

/**
 * Label for a trend bucket: "14:00" for hourly points (an instant, shown in the viewer's
 * zone), "Nov 26" for daily ones. A day is a calendar date ("YYYY-MM-DD", already in the
 * snapshot's zone), not an instant: parsing it would give UTC midnight, which is the day
 * before anywhere west of UTC, so it is formatted as the date it names.
 */
export function fmtBucket(t: string, kind: 'hour' | 'day'): string {
  const day = CALENDAR_DAY.exec(t);
  if (kind === 'day' && day) {
    const noonUtc = Date.UTC(Number(day[1]), Number(day[2]) - 1, Number(day[3]), 12);
    return new Date(noonUtc).toLocaleDateString('en-US', { month: 'short', day: 'numeric', timeZone: 'UTC' });
  }
  const ms = Date.parse(t);
  if (Number.isNaN(ms)) return t;
  const d = new Date(ms);
  return kind === 'hour'
    ? d.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleDateString('en-US', { month: 'short', day: 'numeric' });
}

/** Seconds as people say them in a sentence: "42 min", "1 h 05 min", "20 s". */
export function fmtMinutes(seconds: number | null): string {
  if (seconds === null) return DASH;
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const minutes = Math.round(s / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}

/** "ann.lee@demo.local" -> "Ann Lee"; no e-mail -> the user id; nothing -> "Someone". */
export function displayName(email: string | null, userId: string | null): string {
  const local = email?.split('@')[0]?.trim();
  if (local) {
    return local
      .split(/[._-]+/)
      .filter((w) => w !== '')
      .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
      .join(' ');
  }
  return userId ?? 'Someone';
}

/** An ISO instant as a short date ("Nov 26"), or an em dash. */
export function fmtDate(iso: string | null): string {
  if (iso === null) return DASH;
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  return new Date(t).toLocaleDateString('en-US', { month: 'short', day: 'numeric' });
}

/** "UnapprovedTool" / "usage_spike" -> "Unapproved tool" / "Usage spike". */
export function fmtType(t: string): string {
  const words = t
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/[_-]+/g, ' ')
    .trim()
    .toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}
