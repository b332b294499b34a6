// The functional suite's tiny test harness: specs, assertions, timeouts, cleanup, results.
//
// A spec is { name, when(ctx) -> bool, run(ctx, t) }. `run` throws to fail; `t.track(conn)`
// registers a connection that is stopped when the spec ends, whatever happened, so one
// failing spec cannot leak a live connection into the next.

import { isDeepStrictEqual, inspect } from "node:util";
import * as signalR from "@microsoft/signalr";

export const SPEC_TIMEOUT_MS = 20_000;

export class PromiseSource {
  constructor() {
    this.settled = false;
    this.promise = new Promise((resolve, reject) => {
      this._resolve = resolve;
      this._reject = reject;
    });
  }
  resolve(value) {
    this.settled = true;
    this._resolve(value);
  }
  reject(error) {
    this.settled = true;
    this._reject(error);
  }
}

export function withTimeout(promise, what, ms = 10_000) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function show(value) {
  return inspect(value, { depth: 6, breakLength: Infinity });
}

export function eq(actual, expected, what) {
  if (!isDeepStrictEqual(actual, expected)) {
    throw new Error(`${what}: expected ${show(expected)}, got ${show(actual)}`);
  }
}

export function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
}

// The rejection of `promise` (fails when it resolves).
export async function rejection(promise, what) {
  try {
    const value = await withTimeout(promise, what);
    throw new Error(`${what}: expected a failure, got ${show(value)}`);
  } catch (error) {
    if (error instanceof Error && error.message.startsWith(`${what}: expected a failure`)) throw error;
    return error;
  }
}

// Collects the client's log lines: the specs about message-content logging read them, and a
// failing spec reports the last warnings and errors.
export class CapturingLogger {
  constructor() {
    this.lines = [];
  }
  log(level, message) {
    this.lines.push([level, message]);
    if (this.lines.length > 2_000) this.lines.splice(0, 1_000);
  }
  problems() {
    const warnings = this.lines.filter(([level]) => level >= signalR.LogLevel.Warning);
    // Without warnings (a timeout, say) the last lines of any level tell where it stood.
    return (warnings.length ? warnings : this.lines).slice(-8).map(([, m]) => m);
  }
}

// Network failures of fetch (the client's HTTP requests in Node) with their cause, which the
// client's own "fetch failed" log line leaves out: a failing spec reports them.
const fetchFailures = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  try {
    return await realFetch(input, init);
  } catch (error) {
    const cause = error?.cause;
    fetchFailures.push(`${init?.method ?? "GET"} ${input}: ${error} (${cause?.code ?? cause?.message ?? cause})`);
    throw error;
  }
};

// A promise of the error the connection's onclose reports (undefined for a clean close).
export function closed(connection) {
  const source = new PromiseSource();
  connection.onclose((error) => source.resolve(error));
  return source.promise;
}

// Runs `specs` one after another; returns { name: {ok: true} | {ok: false, error} }.
export async function runSpecs(specs, ctx) {
  const results = {};
  for (const spec of specs) {
    const connections = [];
    const logger = new CapturingLogger();
    fetchFailures.length = 0;
    const t = {
      logger,
      track(connection) {
        connections.push(connection);
        return connection;
      },
    };
    try {
      await withTimeout(Promise.resolve().then(() => spec.run({ ...ctx, logger }, t)), spec.name, SPEC_TIMEOUT_MS);
      results[spec.name] = { ok: true };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const network = fetchFailures.splice(0).filter((line) => !line.includes("AbortError"));
      results[spec.name] = { ok: false, error: message, log: [...logger.problems(), ...network] };
    } finally {
      for (const connection of connections) {
        try {
          await withTimeout(connection.stop(), `cleanup of ${spec.name}`, 5_000);
        } catch {
          // Already stopped or failed to stop: the next spec uses its own connections.
        }
      }
    }
  }
  return results;
}
