// Stateful reconnect with the official client (docs/spec/stateful-reconnect.md §5): the
// WebSocket is cut without a close frame and the client must resume the same connection (same id, no new
// handshake), replaying what was not acknowledged while the server drops duplicates.
//
//   node stateful.mjs <hub-url> <json|messagepack>
//
// Prints {"steps": {name: {ok, value|error}}} like client.mjs. The server must allow stateful
// reconnects (run_test_server.py --stateful).

import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";

const STEP_TIMEOUT_MS = 10_000;
const [url, protocolName] = process.argv.slice(2);

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), STEP_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const steps = {};
async function step(name, fn) {
  try {
    steps[name] = { ok: true, value: await withTimeout(Promise.resolve().then(fn), name) };
  } catch (err) {
    steps[name] = { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

const builder = new signalR.HubConnectionBuilder()
  .withUrl(url, { transport: signalR.HttpTransportType.WebSockets })
  .withStatefulReconnect()
  .configureLogging(signalR.LogLevel.Warning);
if (protocolName === "messagepack") builder.withHubProtocol(new MessagePackHubProtocol());
const connection = builder.build();

const messages = [];
connection.on("Welcome", () => {});
connection.on("Message", (m) => {
  messages.push(m); // a handler's return value would be taken as a client result
});
let closed = false;
connection.onclose(() => {
  closed = true;
});

const waitForMessage = async (text) => {
  while (!messages.includes(text)) await new Promise((r) => setTimeout(r, 10));
  return text;
};

await step("start", async () => {
  await connection.start();
  return connection.state;
});
const clientId = connection.connectionId;

await step("before_drop", async () => {
  const id = await connection.invoke("GetConnectionId");
  const count = await connection.invoke("Increment");
  return { sameId: id === clientId, count };
});

await step("drop_and_invoke", async () => {
  // Internal handle of the Node WebSocket ("ws" package): terminate() closes the TCP socket
  // without a close frame, which is what a network failure looks like.
  const socket = connection.connection.transport._webSocket;
  socket.terminate();
  const echoed = await connection.invoke("Echo", "after drop");
  return { echoed, state: connection.state };
});

await step("same_connection_after_drop", async () => {
  const id = await connection.invoke("GetConnectionId");
  // 2 unless the server executed a replayed duplicate of the first Increment.
  const count = await connection.invoke("Increment");
  return { sameId: id === clientId, count };
});

await step("push_after_drop", async () => {
  await connection.send("SendToCaller", "pushed after drop");
  return await waitForMessage("pushed after drop");
});

await step("stop", async () => {
  await connection.stop();
  return { closed, state: connection.state };
});

process.stdout.write(JSON.stringify({ protocol: protocolName, steps }) + "\n");
process.exit(0);
