import { InjectionToken } from '@angular/core';

/** Wall clock in epoch milliseconds; injected so tests control time. */
export type Clock = () => number;

export const CLOCK = new InjectionToken<Clock>('CLOCK', { providedIn: 'root', factory: () => () => Date.now() });

/** Browser storage used for the session; injected so tests get a clean one. */
export const SESSION_STORAGE = new InjectionToken<Storage>('SESSION_STORAGE', {
  providedIn: 'root',
  factory: () => globalThis.sessionStorage,
});

/** The viewer's IANA time zone ("today" and the days of the dashboard follow it); injected so
 * tests pick one. */
export const VIEWER_TIME_ZONE = new InjectionToken<string>('VIEWER_TIME_ZONE', {
  providedIn: 'root',
  factory: () => Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC',
});
