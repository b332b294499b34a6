import { HttpClient } from '@angular/common/http';
import { computed, inject, Injectable, OnDestroy, signal } from '@angular/core';
import { firstValueFrom } from 'rxjs';
import { CLOCK, SESSION_STORAGE } from './clock';
import { LoginResponse, User } from './models';

interface StoredSession {
  token: string;
  /** epoch ms */
  expiresAt: number;
  user: User;
}

const SESSION_KEY = 'aiusage.session';
const ORG_KEY = 'aiusage.org';
/** Ask for a fresh login this long before the token expires, so the hub never drops. */
export const RELOGIN_LEAD_MS = 60_000;

/**
 * Holds the dashboard user's session: the JWT from POST /api/auth/login, its expiry,
 * the user, and (SuperAdmin only) the organization currently being viewed.
 *
 * The token lives in sessionStorage (per tab, gone when the tab closes), never in
 * localStorage. When the token is about to expire, or the server answers 401, the
 * service raises `reloginRequired` instead of navigating away: the re-login dialog
 * renders over the current page so no state is lost.
 */
@Injectable({ providedIn: 'root' })
export class AuthService implements OnDestroy {
  private readonly http = inject(HttpClient);
  private readonly clock = inject(CLOCK);
  private readonly storage = inject(SESSION_STORAGE);

  private readonly session = signal<StoredSession | null>(this.restore());
  private readonly orgOverride = signal<string | null>(this.storage?.getItem(ORG_KEY) ?? null);
  private expiryTimer: ReturnType<typeof setTimeout> | null = null;

  /** Why the user must log in again, or null when the session is fine. */
  readonly reloginRequired = signal<'expired' | 'unauthorized' | null>(null);

  readonly user = computed(() => this.session()?.user ?? null);
  readonly isLoggedIn = computed(() => this.session() !== null);
  readonly role = computed(() => this.session()?.user.role ?? null);
  readonly isSuperAdmin = computed(() => this.role() === 'SuperAdmin');
  /** Managers see aggregate numbers and alerts only; the API enforces the same rule. */
  readonly canExport = computed(() => this.role() === 'Admin' || this.role() === 'SuperAdmin');
  readonly canSeeUserEmails = this.canExport;
  /** Organization the dashboard shows: the SuperAdmin's choice, else the user's own. */
  readonly organizationId = computed(() => {
    const own = this.session()?.user.organizationId ?? null;
    return this.isSuperAdmin() ? (this.orgOverride() ?? own) : own;
  });
  readonly expiresAt = computed(() => this.session()?.expiresAt ?? null);

  constructor() {
    const s = this.session();
    if (s) this.scheduleExpiryWarning(s.expiresAt);
  }

  /** The current bearer token (used by the hub's accessTokenFactory and the HTTP interceptor). */
  token(): string | null {
    return this.session()?.token ?? null;
  }

  isExpired(): boolean {
    const s = this.session();
    return s === null || s.expiresAt <= this.clock();
  }

  async login(email: string, password: string): Promise<User> {
    const res = await firstValueFrom(this.http.post<LoginResponse>('/api/auth/login', { email, password }));
    const expiresAt = parseExpiry(res.expiresAt, this.clock());
    const s: StoredSession = { token: res.token, expiresAt, user: res.user };
    this.storage?.setItem(SESSION_KEY, JSON.stringify(s));
    this.session.set(s);
    this.reloginRequired.set(null);
    this.scheduleExpiryWarning(expiresAt);
    return res.user;
  }

  logout(): void {
    this.clearTimer();
    this.storage?.removeItem(SESSION_KEY);
    this.storage?.removeItem(ORG_KEY);
    this.session.set(null);
    this.orgOverride.set(null);
    this.reloginRequired.set(null);
  }

  /** Called on any 401 (REST or hub): keep the page, ask for the password again. */
  markUnauthorized(): void {
    if (this.session() !== null && this.reloginRequired() === null) this.reloginRequired.set('unauthorized');
  }

  /** SuperAdmin only: view another organization. Ignored for other roles. */
  selectOrganization(orgId: string): void {
    if (!this.isSuperAdmin()) return;
    const id = orgId.trim();
    if (id === '') return;
    this.storage?.setItem(ORG_KEY, id);
    this.orgOverride.set(id);
  }

  ngOnDestroy(): void {
    this.clearTimer();
  }

  private scheduleExpiryWarning(expiresAt: number): void {
    this.clearTimer();
    const delay = expiresAt - RELOGIN_LEAD_MS - this.clock();
    if (delay <= 0) {
      this.reloginRequired.set('expired');
      return;
    }
    // setTimeout clamps delays above 2^31-1 ms to 1 ms; cap and re-arm instead.
    const capped = Math.min(delay, 2_000_000_000);
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = null;
      if (expiresAt - RELOGIN_LEAD_MS - this.clock() <= 0) this.reloginRequired.set('expired');
      else this.scheduleExpiryWarning(expiresAt);
    }, capped);
  }

  private clearTimer(): void {
    if (this.expiryTimer !== null) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
  }

  private restore(): StoredSession | null {
    try {
      const raw = this.storage?.getItem(SESSION_KEY);
      if (!raw) return null;
      const s = JSON.parse(raw) as StoredSession;
      if (typeof s.token !== 'string' || typeof s.expiresAt !== 'number' || !s.user) return null;
      return s;
    } catch {
      return null;
    }
  }
}

/** expiresAt may be ISO-8601 or epoch seconds/ms; unknown -> assume one hour. */
export function parseExpiry(v: unknown, now: number): number {
  if (typeof v === 'number' && Number.isFinite(v)) return v < 1e12 ? v * 1000 : v;
  if (typeof v === 'string') {
    const t = Date.parse(v);
    if (!Number.isNaN(t)) return t;
  }
  return now + 3_600_000;
}
