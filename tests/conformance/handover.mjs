// Many official clients with stateful reconnect in one Node process, recording the sequence
// numbers of the events they receive (docs/spec/stateful-reconnect.md §5.4, §5.5).
//
//   node handover.mjs <hub-url> <clients> <json|messagepack> <method> [field]
//
// Every client connects over WebSockets with withStatefulReconnect() (and
// withAutomaticReconnect(), so a refused resume shows up as a "restart" instead of a dead
// client) and records, for each <method> invocation, its first argument (or that argument's
// <field>). The access token, if any, comes from the HANDOVER_TOKEN environment
// variable. Output, one JSON object per line:
//   {"event":"ready","ids":[...connection ids]}      once every client started
//   {"event":"result","clients":[{"id","values","restarts","closed","maxGapMs","resumeGapsMs"}]}
// after a line "report" arrives on stdin (then the process exits).

import * as readline from "node:readline";
import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";

const [url, countText, protocolName, method, field] = process.argv.slice(2);
const count = Number(countText);
const token = process.env.HANDOVER_TOKEN;

function build() {
  const options = { transport: signalR.HttpTransportType.WebSockets };
  if (token) options.accessTokenFactory = () => token;
  const builder = new signalR.HubConnectionBuilder()
    .withUrl(url, options)
    .withStatefulReconnect()
    .withAutomaticReconnect([0, 200, 500, 1000, 2000])
    .configureLogging(signalR.LogLevel.None);
  if (protocolName === "messagepack") builder.withHubProtocol(new MessagePackHubProtocol());
  return builder.build();
}

const clients = [];
for (let i = 0; i < count; i++) {
  const connection = build();
  const record = {
    connection,
    values: [],
    restarts: 0,
    closed: false,
    last: 0,
    maxGapMs: 0,
    lostAt: 0,
    resumeGapsMs: [],
  };
  connection.on(method, (arg) => {
    const now = Date.now();
    if (record.last) record.maxGapMs = Math.max(record.maxGapMs, now - record.last);
    record.last = now;
    record.values.push(field ? arg[field] : arg);
  });
  connection.onreconnecting(() => {
    record.restarts += 1;
  });
  connection.onclose(() => {
    record.closed = true;
  });
  clients.push(record);
}

// The reconnect gap of a stateful resume: from the lost socket to the replay being sent on
// the new one. HttpConnection calls features.disconnected() and features.resend() (set by
// HubConnection.start()) around that reconnect; wrapping them times it.
function timeResumes(record) {
  const features = record.connection.connection.features;
  const disconnected = features.disconnected;
  const resend = features.resend;
  features.disconnected = () => {
    record.lostAt = Date.now();
    return disconnected();
  };
  features.resend = async () => {
    const result = await resend();
    record.resumeGapsMs.push(Date.now() - record.lostAt);
    return result;
  };
}

// Start in small batches: hundreds of simultaneous negotiations only measure the CPU.
for (let i = 0; i < clients.length; i += 20) {
  const batch = clients.slice(i, i + 20);
  await Promise.all(batch.map((c) => c.connection.start()));
  batch.forEach(timeResumes);
}
console.log(JSON.stringify({ event: "ready", ids: clients.map((c) => c.connection.connectionId) }));

const input = readline.createInterface({ input: process.stdin });
for await (const line of input) {
  if (line.trim() !== "report") continue;
  const result = clients.map((c) => ({
    id: c.connection.connectionId,
    values: c.values,
    restarts: c.restarts,
    closed: c.closed,
    maxGapMs: c.maxGapMs,
    resumeGapsMs: c.resumeGapsMs,
  }));
  await Promise.all(clients.map((c) => c.connection.stop().catch(() => {})));
  // Exit only once the (large) line is flushed: process.exit() would cut a piped stdout.
  process.stdout.write(JSON.stringify({ event: "result", clients: result }) + "\n", () =>
    process.exit(0),
  );
}
