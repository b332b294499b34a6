// Many official @microsoft/signalr clients in one Node process, driven line by line (for
// the multi-process tests: tests/integration/test_scaleout.py, test_workers.py, bench/bench_scaleout.py).
//
//   node scaleout.mjs            (commands on stdin, events on stdout; one JSON object per line)
//
// Commands (stdin):
//   {"op":"connect","name":N,"url":U,"token":T,"transport":"WebSockets|ServerSentEvents|LongPolling",
//    "protocol":"json|messagepack","skipNegotiation":bool}
//        -> {"ev":"connected","name":N,"connectionId":ID} | {"ev":"error","name":N,"op":"connect","error":E}
//   {"op":"invoke","name":N,"id":I,"method":M,"args":[...]}
//        -> {"ev":"result","id":I,"ok":true,"value":V} | {"ev":"result","id":I,"ok":false,"error":E}
//   {"op":"ping","name":N,"id":I,"org":O,"count":C,"intervalMs":D}
//        invokes BroadcastDashboardUpdate(O, {probe: I, seq: k, t0: now()}) C times, D ms apart
//        -> {"ev":"result","id":I,"ok":true,"value":{"sent":C}}
//   {"op":"close","name":N}  -> {"ev":"closed","name":N,"error":null}
//   {"op":"exit"}            stops every connection and exits
// Events (stdout), for every client method in METHODS received by any connection:
//   {"ev":"msg","name":N,"method":M,"args":[...],"t":<ms since the epoch, sub-ms precision>}
// Every connection also reports {"ev":"closed","name":N,"error":E} when it closes. The process
// exits when stdin closes (the parent died), so no client can outlive its test.

import * as readline from "node:readline";
import { performance } from "node:perf_hooks";
import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";

const METHODS = [
  "DashboardUpdate", "SessionStarted", "SessionEnded", "AIDetected", "UserJoined",
  "Alert", "ExportCompleted", "Probe",
];
const START_TIMEOUT_MS = 10_000;

/** Wall-clock milliseconds with sub-millisecond resolution (comparable across processes). */
const now = () => performance.timeOrigin + performance.now();
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const connections = new Map();

function plain(value) {
  if (value instanceof Uint8Array) return Array.from(value);
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function connect(cmd) {
  const transport = signalR.HttpTransportType[cmd.transport ?? "WebSockets"];
  const options = { transport, accessTokenFactory: () => cmd.token };
  if (cmd.skipNegotiation) options.skipNegotiation = true;
  const builder = new signalR.HubConnectionBuilder()
    .withUrl(cmd.url, options)
    .configureLogging(signalR.LogLevel.None);
  if (cmd.protocol === "messagepack") builder.withHubProtocol(new MessagePackHubProtocol());
  const connection = builder.build();
  for (const method of METHODS) {
    connection.on(method, (...args) => {
      emit({ ev: "msg", name: cmd.name, method, args: plain(args), t: now() });
    });
  }
  connection.onclose((error) => emit({ ev: "closed", name: cmd.name, error: error ? error.message : null }));
  try {
    await withTimeout(connection.start(), START_TIMEOUT_MS, "start");
    connections.set(cmd.name, connection);
    emit({ ev: "connected", name: cmd.name, connectionId: connection.connectionId });
  } catch (err) {
    emit({ ev: "error", name: cmd.name, op: "connect", error: err instanceof Error ? err.message : String(err) });
  }
}

async function invoke(cmd) {
  const connection = connections.get(cmd.name);
  try {
    if (!connection) throw new Error(`no connection ${cmd.name}`);
    const value = await withTimeout(connection.invoke(cmd.method, ...(cmd.args ?? [])), START_TIMEOUT_MS, cmd.method);
    emit({ ev: "result", id: cmd.id, ok: true, value: plain(value ?? null) });
  } catch (err) {
    emit({ ev: "result", id: cmd.id, ok: false, error: err instanceof Error ? err.message : String(err) });
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function ping(cmd) {
  const connection = connections.get(cmd.name);
  try {
    if (!connection) throw new Error(`no connection ${cmd.name}`);
    const count = Math.min(cmd.count ?? 100, 10_000);
    for (let seq = 0; seq < count; seq++) {
      await connection.invoke("BroadcastDashboardUpdate", cmd.org, { probe: cmd.id, seq, t0: now() });
      if (cmd.intervalMs) await sleep(cmd.intervalMs);
    }
    emit({ ev: "result", id: cmd.id, ok: true, value: { sent: count } });
  } catch (err) {
    emit({ ev: "result", id: cmd.id, ok: false, error: err instanceof Error ? err.message : String(err) });
  }
}

async function closeOne(name) {
  const connection = connections.get(name);
  connections.delete(name);
  if (connection) await connection.stop().catch(() => {});
}

async function exit() {
  await Promise.all([...connections.keys()].map(closeOne));
  process.exit(0);
}

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  if (!line.trim()) return;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch {
    emit({ ev: "error", op: "parse", error: `bad command: ${line.slice(0, 80)}` });
    return;
  }
  switch (cmd.op) {
    case "connect": connect(cmd); break;
    case "invoke": invoke(cmd); break;
    case "ping": ping(cmd); break;
    case "close": closeOne(cmd.name); break;
    case "exit": exit(); break;
    default: emit({ ev: "error", op: cmd.op, error: "unknown op" });
  }
});
rl.on("close", () => { exit(); });
