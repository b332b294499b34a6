// Server streams that fail, as seen by the official @microsoft/signalr client (the upstream
// functional test "rethrows an exception from the server when invoking a stream").
//
//   node stream_failure.mjs <hub-url> <WebSockets|ServerSentEvents|LongPolling> <json|messagepack> <target>...
//
// Prints ONE JSON object on stdout: {target: {items, error}} for every target, each streamed
// with the single argument "An error occurred.". Driven by
// tests/integration/test_official_client_stream_failure.py.

import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";

const TIMEOUT_MS = 10_000;

const [url, transportName, protocolName, ...targets] = process.argv.slice(2);
const transport = signalR.HttpTransportType[transportName];
if (!url || transport === undefined || !protocolName || targets.length === 0) {
  console.error("usage: node stream_failure.mjs <hub-url> <transport> <json|messagepack> <target>...");
  process.exit(2);
}

function outcome(streamResult) {
  return new Promise((resolve) => {
    const items = [];
    const timer = setTimeout(() => resolve({ items, error: "timeout" }), TIMEOUT_MS);
    streamResult.subscribe({
      next: (item) => items.push(item),
      complete: () => {
        clearTimeout(timer);
        resolve({ items, error: null });
      },
      error: (err) => {
        clearTimeout(timer);
        resolve({ items, error: err.message });
      },
    });
  });
}

const builder = new signalR.HubConnectionBuilder()
  .withUrl(url, { transport })
  .configureLogging(signalR.LogLevel.Warning);
if (protocolName === "messagepack") builder.withHubProtocol(new MessagePackHubProtocol());
const connection = builder.build();

await connection.start();
const results = {};
for (const target of targets) {
  results[target] = await outcome(connection.stream(target, "An error occurred."));
}
await connection.stop();
console.log(JSON.stringify(results));
