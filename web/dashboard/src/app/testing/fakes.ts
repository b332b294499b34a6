import { HubLike, HubConnectionSpec } from '../core/realtime.service';

/** In-memory Storage for tests (one per test, so nothing leaks between them). */
export class MemoryStorage implements Storage {
  private readonly m = new Map<string, string>();
  get length(): number {
    return this.m.size;
  }
  clear(): void {
    this.m.clear();
  }
  getItem(key: string): string | null {
    return this.m.get(key) ?? null;
  }
  key(i: number): string | null {
    return [...this.m.keys()][i] ?? null;
  }
  removeItem(key: string): void {
    this.m.delete(key);
  }
  setItem(key: string, value: string): void {
    this.m.set(key, String(value));
  }
}

type Handler = (...args: any[]) => void;

/**
 * Fake of `@microsoft/signalr`'s HubConnection: records calls and lets a test play the
 * server (push events, fail start, drop and restore the link).
 */
export class FakeHub implements HubLike {
  readonly handlers = new Map<string, Handler[]>();
  private readonly reconnecting: Handler[] = [];
  private readonly reconnected: Handler[] = [];
  private readonly closed: Handler[] = [];
  /** Results for successive start() calls; when empty, start() succeeds. */
  readonly startPlan: Array<Error | 'ok'> = [];
  startCalls = 0;
  stopCalls = 0;
  readonly invocations: Array<{ method: string; args: unknown[] }> = [];
  /** What invoke(method) answers; a function may throw to simulate a hub error. */
  readonly invokeResults = new Map<string, unknown | ((...args: unknown[]) => unknown)>();

  constructor(readonly spec: HubConnectionSpec) {}

  on(name: string, handler: Handler): void {
    const list = this.handlers.get(name.toLowerCase()) ?? [];
    list.push(handler);
    this.handlers.set(name.toLowerCase(), list);
  }
  onreconnecting(cb: Handler): void {
    this.reconnecting.push(cb);
  }
  onreconnected(cb: Handler): void {
    this.reconnected.push(cb);
  }
  onclose(cb: Handler): void {
    this.closed.push(cb);
  }
  async start(): Promise<void> {
    this.startCalls++;
    const next = this.startPlan.shift() ?? 'ok';
    if (next !== 'ok') throw next;
  }
  async stop(): Promise<void> {
    this.stopCalls++;
  }
  async invoke<T>(method: string, ...args: unknown[]): Promise<T> {
    this.invocations.push({ method, args });
    const r = this.invokeResults.get(method);
    if (typeof r === 'function') return (await (r as (...a: unknown[]) => unknown)(...args)) as T;
    if (r === undefined) throw new Error(`Unknown hub method '${method}'`);
    return r as T;
  }

  /** Server push of `name` with `payload`. */
  emit(name: string, ...payload: unknown[]): void {
    for (const h of this.handlers.get(name.toLowerCase()) ?? []) h(...payload);
  }
  dropLink(err = new Error('WebSocket closed with status code: 1006')): void {
    for (const h of this.reconnecting) h(err);
  }
  restoreLink(): void {
    for (const h of this.reconnected) h('new-connection-id');
  }
  close(err?: Error): void {
    for (const h of this.closed) h(err);
  }
}

/** Records every connection the service builds. */
export class FakeHubFactory {
  readonly hubs: FakeHub[] = [];
  /** Applied to each new hub before it is returned (e.g. to plan start() failures). */
  prepare: (hub: FakeHub) => void = () => {};
  readonly create = (spec: HubConnectionSpec): HubLike => {
    const hub = new FakeHub(spec);
    this.prepare(hub);
    this.hubs.push(hub);
    return hub;
  };
  get last(): FakeHub {
    const h = this.hubs.at(-1);
    if (!h) throw new Error('no hub connection was created');
    return h;
  }
}

/** Let pending promise callbacks run (the service chains a few awaits). */
export async function flush(times = 10): Promise<void> {
  for (let i = 0; i < times; i++) await Promise.resolve();
}

/** A snapshot in the documented shape (docs/metrics.md). */
export function snapshotPayload(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    metrics: {
      activeSessions: 3,
      sessionsToday: 12,
      aiUsageTimeToday: 5400,
      activeUsersToday: 4,
      activeUsers7d: 9,
      activeUsers30d: 15,
      adoptionRate: 0.6,
      totalUsers: 25,
      usageByTool: [
        { tool: 'ChatGPT', sessions: 5, aiUsageTime: 3000, approved: true },
        { tool: 'Claude', sessions: 3, aiUsageTime: 2400, approved: false },
      ],
      usageByUser: [{ userId: 'u1', email: 'a@example.com', sessions: 2, aiUsageTime: 1200 }],
      ...overrides,
    },
    trends: {
      hourly: [{ hour: '2026-11-26T10:00:00Z', sessions: 2, aiUsageTime: 600 }],
      daily: [{ date: '2026-11-26', sessions: 12, activeUsers: 4, aiUsageTime: 5400 }],
    },
  };
}
