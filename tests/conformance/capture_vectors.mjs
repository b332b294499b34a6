// Captures the exact bytes the official @microsoft/signalr client sends, without a server.
//
//   node capture_vectors.mjs <json|messagepack>
//
// A fake HttpClient answers negotiate and a fake ITransport records every send() and plays
// the server side (handshake response, one Completion, two client-result Invocations). The
// scripted calls are awaited one by one so the order is deterministic. Prints one JSON object:
// {"protocol", "frames": [{"text": str} | {"hex": str}, ...]} in send order. Compared with
// tests/support/golden by tests/integration/test_official_clients.py.

import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";

const protocolName = process.argv[2] ?? "json";
const binary = protocolName === "messagepack";
const protocol = binary ? new MessagePackHubProtocol() : new signalR.JsonHubProtocol();

class NegotiateOnlyHttpClient extends signalR.HttpClient {
  async send() {
    const body = JSON.stringify({
      negotiateVersion: 1,
      connectionId: "capture",
      connectionToken: "capture-token",
      availableTransports: [],
    });
    return new signalR.HttpResponse(200, "OK", body);
  }
}

const frames = [];
let handshakeDone = false;

class CaptureTransport {
  constructor() {
    this.onreceive = null;
    this.onclose = null;
  }
  async connect() {}
  async send(data) {
    frames.push(typeof data === "string" ? { text: data } : { hex: Buffer.from(data).toString("hex") });
    if (!handshakeDone) {
      handshakeDone = true;
      const response = "{}\u001e";
      setTimeout(() => this.onreceive(binary ? new TextEncoder().encode(response).buffer : response), 0);
    }
  }
  async stop() {
    if (this.onclose) this.onclose();
  }
  /** Deliver a hub message from the "server". */
  deliver(message) {
    const data = protocol.writeMessage(message);
    this.onreceive(data);
  }
}

const transport = new CaptureTransport();
const connection = new signalR.HubConnectionBuilder()
  .withUrl("http://capture.invalid/hub", { transport, httpClient: new NegotiateOnlyHttpClient() })
  .withHubProtocol(protocol)
  .configureLogging(signalR.LogLevel.None)
  .build();

connection.on("GetNumber", () => 42);
connection.on("NoResult", () => undefined);

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

await connection.start(); // handshake request, then a Ping
await settle();

const echo = connection.invoke("Echo", "hi"); // invocation id 0
await settle();
transport.deliver({ type: signalR.MessageType.Completion, invocationId: "0", result: "hi" });
await echo;

await connection.send("Send", "x", 1); // non-blocking: no invocation id

const stream = connection.stream("Stream", 3); // stream invocation id 1
const subscription = stream.subscribe({ next() {}, complete() {}, error() {} });
await settle();
subscription.dispose(); // CancelInvocation 1
await settle();

const upload = new signalR.Subject();
const concat = connection.invoke("StreamingConcat", upload); // stream id 2, invocation id 3
upload.next("a");
upload.complete();
await settle();
transport.deliver({ type: signalR.MessageType.Completion, invocationId: "3", result: "a" });
await concat;

const failing = new signalR.Subject();
await connection.send("UploadNoResult", failing); // stream id 4, non-blocking
failing.error(new Error("Something bad"));
await settle();

transport.deliver({ type: signalR.MessageType.Invocation, invocationId: "abc", target: "GetNumber", arguments: [] });
await settle();
transport.deliver({ type: signalR.MessageType.Invocation, invocationId: "def", target: "NoResult", arguments: [] });
await settle();

await connection.stop(); // Close

process.stdout.write(JSON.stringify({ protocol: protocolName, frames }) + "\n");
process.exit(0);
