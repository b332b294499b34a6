// Checklist items (docs/spec/checklist.md §7) not exercised by client.mjs / stateful.mjs, run
// with the official client in Node (tests/integration/test_compliance_gaps.py).
//
//   node gaps.mjs <scenario> <hub-url> [json|messagepack]
//
// scenarios (each prints ONE JSON object on its last stdout line; bounded by timeouts):
//   numbered        withStatefulReconnect over WebSockets: a paced 10,000-item stream
//                   (ConformanceHub DelayedCounter) while the test cuts the socket through the
//                   blocking proxy (§7.27). Prints {"event":"progress"} every 1,000 items;
//                   reports the items received, in order, and whether the connection id stayed.
//   skip-negotiation  skipNegotiation + WebSockets: no negotiate, the server creates the
//                   connection on the upgrade (§7.8).
//   client-results  the server invokes the client's "Ask" handler and awaits its Completion:
//                   a value, no value, a thrown error (§7.20).
//   reconnect       withAutomaticReconnect; prints {"event":"connected", id} then waits until
//                   the test restarts the server, and prints the reconnection (§7.26).

import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";

const STEP_TIMEOUT_MS = 30_000;
const [scenario, url, protocolName = "json"] = process.argv.slice(2);
if (!scenario || !url) {
  console.error("usage: node gaps.mjs <scenario> <hub-url> [json|messagepack]");
  process.exit(2);
}

function withTimeout(promise, what, ms = STEP_TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function build(options, configure = (b) => b) {
  let builder = new signalR.HubConnectionBuilder()
    .withUrl(url, options)
    .configureLogging(signalR.LogLevel.Warning);
  if (protocolName === "messagepack") builder = builder.withHubProtocol(new MessagePackHubProtocol());
  const connection = configure(builder).build();
  connection.on("Welcome", () => {});
  return connection;
}

async function numbered() {
  // DelayedCounter paces the stream (about 1 ms per item) so that the test can cut the
  // socket in the middle of it, through tests/support/blocking_proxy.py (cut_upgraded): a
  // network failure, invisible to the app. Progress lines let the test time its cuts.
  const COUNT = 10_000;
  const connection = build({ transport: signalR.HttpTransportType.WebSockets }, (b) =>
    b.withStatefulReconnect(),
  );
  let closedEarly = null;
  connection.onclose((err) => (closedEarly = err ? err.message : "closed"));
  await withTimeout(connection.start(), "start");
  const id = connection.connectionId;
  const items = [];
  await withTimeout(
    new Promise((resolve, reject) => {
      connection.stream("DelayedCounter", COUNT, 1).subscribe({
        next: (item) => {
          items.push(item);
          if (items.length % 1_000 === 0) emit({ event: "progress", received: items.length });
        },
        complete: resolve,
        error: reject,
      });
    }),
    "stream of 10,000",
    80_000,
  );
  const sameConnection = (await connection.invoke("GetConnectionId")) === id;
  const closedBeforeStop = closedEarly;
  await connection.stop();
  let inOrder = items.length === COUNT;
  for (let i = 0; inOrder && i < COUNT; i += 1) inOrder = items[i] === i;
  const seen = new Set();
  const duplicates = [];
  items.forEach((item, index) => {
    if (seen.has(item) && duplicates.length < 10) duplicates.push({ item, index });
    seen.add(item);
  });
  const missing = COUNT - seen.size;
  return {
    count: items.length,
    distinctInOrder: [...seen].every((item, index) => item === index),
    inOrder,
    missing,
    duplicates,
    sameConnection,
    closedBeforeStop,
    state: connection.state,
  };
}

async function skipNegotiation() {
  const connection = build({ skipNegotiation: true, transport: signalR.HttpTransportType.WebSockets });
  await withTimeout(connection.start(), "start");
  const result = {
    clientConnectionId: connection.connectionId,
    serverConnectionIdIsSet: (await connection.invoke("GetConnectionId")).length > 0,
    transport: await connection.invoke("GetTransport"),
    echo: await connection.invoke("Echo", "no negotiate"),
  };
  await connection.stop();
  return { ...result, state: connection.state };
}

async function clientResults() {
  const connection = build({});
  connection.on("Ask", (question) => {
    if (question === "none") return undefined;
    if (question === "throw") throw new Error("from callback");
    return `${question}!`;
  });
  await withTimeout(connection.start(), "start");
  const outcome = async (question) => {
    try {
      return { ok: true, value: await withTimeout(connection.invoke("AskCaller", question), question) };
    } catch (err) {
      return { ok: false, error: err.message };
    }
  };
  const result = {
    value: await outcome("hello"),
    none: await outcome("none"),
    thrown: await outcome("throw"),
    stillUsable: await outcome("again"),
  };
  await connection.stop();
  return result;
}

async function reconnect() {
  const connection = build({}, (b) =>
    // Short delays keep the test short; the behaviour (re-negotiate from scratch) is the same.
    b.withAutomaticReconnect({
      nextRetryDelayInMilliseconds: (ctx) => (ctx.elapsedMilliseconds > 20_000 ? null : 250),
    }),
  );
  const events = [];
  connection.onreconnecting((err) => events.push({ event: "reconnecting", error: err ? err.message : null }));
  const reconnected = new Promise((resolve) => connection.onreconnected((id) => resolve(id)));
  let closed = null;
  connection.onclose((err) => (closed = err ? err.message : "closed"));
  await withTimeout(connection.start(), "start");
  const firstId = connection.connectionId;
  emit({ event: "connected", id: firstId, transport: await connection.invoke("GetTransport") });
  const newId = await withTimeout(reconnected, "reconnected", 40_000);
  const result = {
    firstId,
    newId,
    newIdDiffers: newId !== firstId && typeof newId === "string",
    serverSeesNewId: (await connection.invoke("GetConnectionId")) === newId,
    echo: await connection.invoke("Echo", "after restart"),
    events,
    closedBeforeStop: closed,
  };
  await connection.stop();
  return { ...result, state: connection.state };
}

const scenarios = { numbered, "skip-negotiation": skipNegotiation, "client-results": clientResults, reconnect };
let exitCode = 0;
try {
  if (!(scenario in scenarios)) throw new Error(`unknown scenario ${scenario}`);
  emit({ event: "result", scenario, result: await scenarios[scenario]() });
} catch (err) {
  emit({ event: "result", scenario, error: err instanceof Error ? err.message : String(err) });
  exitCode = 1;
}
process.exit(exitCode);
