import { InjectionToken } from '@angular/core';

/** Wall clock in epoch milliseconds; injected so tests control time. */
export type Clock = () => number;

export const CLOCK = new InjectionToken<Clock>('CLOCK', { providedIn: 'root', factory: () => () => Date.now() });

/** Browser storage used for the session; injected so tests get a clean one. */
export const SESSION_STORAGE = new InjectionToken<Storage>('SESSION_STORAGE', {
  providedIn: 'root',
  factory: () => globalThis.sessionStorage,
});
