// Conformance scenario run by the official @microsoft/signalr client against our server.
//
//   node client.mjs <hub-url> <WebSockets|ServerSentEvents|LongPolling> <json|messagepack>
//
// Prints ONE JSON object on stdout: {"transport", "protocol", "steps": {name: {ok, value|error}}}.
// Client logs (warnings and errors only) go to stderr. Every step has its own timeout so the
// script always terminates; tests/integration/test_official_clients.py asserts the results
// against the hub in tests/support/conformance_hub.py (docs/spec/checklist.md §7).

import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";

const STEP_TIMEOUT_MS = 10_000;

const [url, transportName, protocolName] = process.argv.slice(2);
if (!url || !transportName || !protocolName) {
  console.error("usage: node client.mjs <hub-url> <transport> <json|messagepack>");
  process.exit(2);
}
const transport = signalR.HttpTransportType[transportName];
if (transport === undefined) {
  console.error(`unknown transport ${transportName}`);
  process.exit(2);
}

/** Make values comparable in JSON: bytes and dates keep their type visible. */
function describe(value) {
  if (value instanceof Uint8Array) return { $bytes: Array.from(value) };
  if (value instanceof Date) return { $date: value.toISOString() };
  if (Array.isArray(value)) return value.map(describe);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, describe(v)]));
  }
  return value === undefined ? { $undefined: true } : value;
}

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), STEP_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A promise resolved by the next call of client method `name` (registered up front). */
function waiter(connection, name) {
  const queue = [];
  const pending = [];
  connection.on(name, (...args) => {
    if (pending.length) pending.shift()(args);
    else queue.push(args);
  });
  return () =>
    withTimeout(
      queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => pending.push(r)),
      `client method ${name}`,
    );
}

const steps = {};
async function step(name, fn) {
  try {
    steps[name] = { ok: true, value: describe(await withTimeout(Promise.resolve().then(fn), name)) };
  } catch (err) {
    steps[name] = { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

function collectStream(streamResult) {
  return new Promise((resolve, reject) => {
    const items = [];
    streamResult.subscribe({
      next: (item) => items.push(item),
      complete: () => resolve(items),
      error: (err) => reject(Object.assign(new Error(err.message), { items })),
    });
  });
}

const builder = new signalR.HubConnectionBuilder()
  .withUrl(url, { transport })
  .configureLogging(signalR.LogLevel.Warning);
if (protocolName === "messagepack") builder.withHubProtocol(new MessagePackHubProtocol());
const connection = builder.build();

const nextWelcome = waiter(connection, "Welcome");
const nextMessage = waiter(connection, "Message");
const nextGroupMessage = waiter(connection, "GroupMessage");
const nextUploadComplete = waiter(connection, "UploadComplete");
let closedWith = null;
const closed = new Promise((resolve) => {
  connection.onclose((error) => {
    closedWith = error ? error.message : null;
    resolve();
  });
});

await step("start", async () => {
  await connection.start();
  return { connectionIdIsSet: typeof connection.connectionId === "string" && connection.connectionId.length > 0 };
});

if (steps.start.ok) {
  await step("welcome_push_after_handshake", async () => {
    const [id] = await nextWelcome();
    return { matchesConnectionId: id === connection.connectionId };
  });
  await step("transport_seen_by_server", () => connection.invoke("GetTransport"));
  await step("protocol_seen_by_server", () => connection.invoke("GetProtocol"));
  await step("invoke_with_result", () => connection.invoke("Echo", "hello ✓"));
  await step("invoke_void", () => connection.invoke("Void"));
  await step("send_then_server_push", async () => {
    await connection.send("SendToCaller", "pushed");
    return await nextMessage();
  });
  await step("group", async () => {
    await connection.invoke("JoinGroup", "g1");
    await connection.invoke("SendToGroup", "g1", "to the group");
    const received = await nextGroupMessage();
    await connection.invoke("LeaveGroup", "g1");
    return received;
  });
  await step("unknown_method", () => connection.invoke("NoSuchMethod"));
  await step("wrong_argument_count", () => connection.invoke("Echo", "a", "b"));
  await step("wrong_argument_type", () => connection.invoke("Add", "not a number", 1));
  await step("exception_in_method", () => connection.invoke("Throw", "secret detail"));
  await step("hub_error_in_method", () => connection.invoke("ThrowHubError", "visible text"));
  await step("complex_values", () => connection.invoke("GetComplex"));
  await step("stream", () => collectStream(connection.stream("Counter", 3)));
  await step("stream_error", async () => {
    try {
      await collectStream(connection.stream("StreamThrow"));
      return "no error";
    } catch (err) {
      return { items: err.items, error: err.message };
    }
  });
  await step("upload_stream", async () => {
    const subject = new signalR.Subject();
    const result = connection.invoke("UploadSum", subject);
    for (const n of [1, 2, 3]) subject.next(n);
    subject.complete();
    const [pushed] = await nextUploadComplete();
    return { result: await result, pushed };
  });
  await step("still_usable_after_errors", () => connection.invoke("Echo", "again"));
  await step("stop", async () => {
    await connection.stop();
    await closed;
    return { state: connection.state, closeError: closedWith };
  });
}

process.stdout.write(JSON.stringify({ transport: transportName, protocol: protocolName, steps }) + "\n");
// Nothing may keep the process alive (timers, sockets): exit explicitly.
process.exit(0);
