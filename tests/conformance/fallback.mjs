// Transport fallback with the official client and DEFAULT options (no `transport` option).
//
//   node fallback.mjs <hub-url>
//
// Meant to run through tests/support/blocking_proxy.py, which refuses WebSocket upgrades
// (and, in its second mode, Server-Sent Events). The client must fall back in the order of
// negotiate's availableTransports (docs/spec/transports.md §2.6) and still work on the transport
// it ends on. Prints ONE JSON object on stdout:
//   {"clientTransport", "serverTransport", "echo", "push", "state", "failedTransports"}
// where clientTransport is the class of the transport the client kept and serverTransport is
// what the hub (ConformanceHub.GetTransport) sees. Warnings/errors go to stderr.

import * as signalR from "@microsoft/signalr";

const TIMEOUT_MS = 20_000;
const [url] = process.argv.slice(2);
if (!url) {
  console.error("usage: node fallback.mjs <hub-url>");
  process.exit(2);
}

const failedTransports = [];
// A logger that forwards to stderr and remembers which transports the client gave up on
// ("Failed to start the transport 'X': ..." is logged at Error level by HttpConnection).
const logger = {
  log(level, message) {
    if (level >= signalR.LogLevel.Warning) console.error(`[${signalR.LogLevel[level]}] ${message}`);
    const failed = /Failed to start the transport '(\w+)'/.exec(message);
    if (failed) failedTransports.push(failed[1]);
  },
};

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const connection = new signalR.HubConnectionBuilder().withUrl(url).configureLogging(logger).build();
let resolvePush;
const pushed = new Promise((resolve) => (resolvePush = resolve));
connection.on("Message", (message) => resolvePush(message));
connection.on("Welcome", () => {});

const result = {};
let exitCode = 0;
try {
  await withTimeout(connection.start(), "start");
  // HubConnection keeps its HttpConnection in `connection`, which keeps the live transport.
  result.clientTransport = connection.connection?.transport?.constructor?.name ?? null;
  result.serverTransport = await withTimeout(connection.invoke("GetTransport"), "GetTransport");
  result.echo = await withTimeout(connection.invoke("Echo", "through the proxy"), "Echo");
  await withTimeout(connection.send("SendToCaller", "pushed through the proxy"), "send");
  result.push = await withTimeout(pushed, "push");
} catch (err) {
  result.error = err instanceof Error ? err.message : String(err);
  exitCode = 1;
} finally {
  try {
    await withTimeout(connection.stop(), "stop");
  } catch (err) {
    result.stopError = String(err);
  }
  result.state = connection.state;
  result.failedTransports = failedTransports;
}
process.stdout.write(JSON.stringify(result) + "\n");
process.exit(exitCode);
