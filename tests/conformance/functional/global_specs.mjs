// Specs that pick their transport themselves (negotiation, transport restriction,
// skipNegotiation, raw WebSocket, long-polling DELETE at the HTTP level): run once.

import { createRequire } from "node:module";
import { PromiseSource, check, eq, rejection, withTimeout } from "./harness.mjs";
import { echoOnce } from "./connection_specs.mjs";
import { MESSAGE, builder, redirectUrl } from "./hub_specs.mjs";

const require = createRequire(import.meta.url);
// The WebSocket implementation the client itself uses in Node (a dependency of the client).
const WebSocket = require(require.resolve("ws", { paths: [require.resolve("@microsoft/signalr")] }));

const RS = "\u001e";
const ANY = () => true;

async function http(method, url, body) {
  const response = await withTimeout(fetch(url, { method, body }), `${method} ${url}`);
  return { status: response.status, text: await response.text() };
}

export const globalSpecs = [
  {
    name: "redirect_reconnect",
    when: ANY,
    async run(ctx, t) {
      // Every reconnection negotiates again through the redirect (a higher counter).
      const c = t.track(builder(ctx, redirectUrl(ctx)).withAutomaticReconnect().build());
      const reconnected = new PromiseSource();
      c.onreconnected((id) => reconnected.resolve(id));
      await c.start();
      const before = await c.invoke("GetNumRedirects");
      const first = c.connectionId;
      eq(await c.invoke("GetCallerConnectionId"), first, "connection id");
      c.serverTimeout();
      const id = await withTimeout(reconnected.promise, "onreconnected");
      check(id !== first, "a new connection id");
      eq(await c.invoke("GetCallerConnectionId"), id, "connection id after reconnect");
      check((await c.invoke("GetNumRedirects")) > before, "negotiated through the redirect again");
    },
  },
  {
    name: "skip_negotiation",
    when: ANY,
    async run(ctx, t) {
      const c = t.track(
        builder({ ...ctx, transport: "WebSockets" }, "/testhub", { skipNegotiation: true })
          .withAutomaticReconnect()
          .build(),
      );
      const reconnected = new PromiseSource();
      c.onreconnected((id) => reconnected.resolve(id));
      await c.start();
      eq(c.connectionId, null, "connectionId without negotiate");
      eq(await c.invoke("Echo", MESSAGE), MESSAGE, "Echo");
      c.serverTimeout();
      eq(await withTimeout(reconnected.promise, "onreconnected"), undefined, "reconnected id");
      eq(await c.invoke("Echo", "test"), "test", "Echo after reconnect");
      await c.stop();
      eq(c.connectionId, null, "connectionId after stop");
    },
  },
  {
    name: "restricted_transports_json_picks_sse",
    when: ANY,
    async run(ctx, t) {
      const c = t.track(builder({ ...ctx, transport: undefined }, "/testhub-nowebsockets").build());
      await c.start();
      eq(await c.invoke("GetActiveTransportName"), "ServerSentEvents", "transport");
    },
  },
  {
    name: "restricted_transports_messagepack_picks_long_polling",
    when: ANY,
    async run(ctx, t) {
      const c = t.track(
        builder({ ...ctx, transport: undefined, protocol: "messagepack" }, "/testhub-nowebsockets").build(),
      );
      await c.start();
      eq(await c.invoke("GetActiveTransportName"), "LongPolling", "transport");
    },
  },
  {
    name: "restricted_transports_negotiate_omits_websockets",
    when: ANY,
    async run(ctx) {
      const { status, text } = await http("POST", `${ctx.base}/testhub-nowebsockets/negotiate?negotiateVersion=1`);
      eq(status, 200, "negotiate status");
      eq(
        JSON.parse(text).availableTransports.map((a) => a.transport),
        ["ServerSentEvents", "LongPolling"],
        "availableTransports",
      );
    },
  },
  {
    name: "restricted_transports_websockets_refused",
    when: ANY,
    async run(ctx, t) {
      // Only WebSockets allowed by the client, not offered by the server: start fails.
      const c = t.track(builder({ ...ctx, transport: "WebSockets" }, "/testhub-nowebsockets").build());
      const error = await rejection(c.start(), "start over a disabled transport");
      eq(
        error.message,
        "Unable to connect to the server with any of the available transports. " +
          "ServerSentEvents failed: Error: 'ServerSentEvents' is disabled by the client. " +
          "LongPolling failed: Error: 'LongPolling' is disabled by the client.",
        "start error",
      );
      // Without negotiation the server itself must refuse the upgrade.
      const skip = t.track(
        builder({ ...ctx, transport: "WebSockets" }, "/testhub-nowebsockets", { skipNegotiation: true }).build(),
      );
      await rejection(skip.start(), "skipNegotiation over a disabled transport");
      const refused = await http("GET", `${ctx.base}/testhub-nowebsockets?id=x`, undefined);
      check(refused.status !== 101, "no upgrade");
    },
  },
  {
    name: "raw_echo_default_transport",
    when: ANY,
    async run(ctx) {
      eq(await echoOnce(ctx, { logger: ctx.logger }), undefined, "onclose error");
    },
  },
  {
    name: "raw_websocket",
    when: ANY,
    async run(ctx) {
      // A plain WebSocket, no negotiate: the echo endpoint accepts it as a new connection.
      const socket = new WebSocket(`${ctx.base.replace(/^http/, "ws")}/echo`);
      const echoed = new PromiseSource();
      const closedWith = new PromiseSource();
      socket.on("open", () => socket.send("message"));
      socket.on("message", (data) => {
        // ws 7 hands text frames over as strings, binary ones as Buffers.
        echoed.resolve({ text: data.toString(), textFrame: typeof data === "string" });
        socket.close(1000);
      });
      socket.on("close", (code) => closedWith.resolve(code));
      socket.on("error", (error) => echoed.reject(error));
      eq(await withTimeout(echoed.promise, "echo"), { text: "message", textFrame: true }, "echo");
      eq(await withTimeout(closedWith.promise, "close"), 1000, "close code");
    },
  },
  {
    name: "long_polling_delete_ends_pending_poll",
    when: ANY,
    async run(ctx) {
      // At the HTTP level: a poll waiting for data is answered 204 once DELETE ends the
      // connection (docs/spec/transports.md §2.4).
      const hub = `${ctx.base}/testhub`;
      const negotiate = JSON.parse((await http("POST", `${hub}/negotiate?negotiateVersion=1`)).text);
      const url = `${hub}?id=${encodeURIComponent(negotiate.connectionToken)}`;
      eq((await http("GET", url)).status, 200, "first poll");
      eq((await http("POST", url, `{"protocol":"json","version":1}${RS}`)).status, 200, "handshake POST");
      eq(await http("GET", url), { status: 200, text: `{}${RS}` }, "handshake response poll");
      const pending = http("GET", url);
      await new Promise((resolve) => setTimeout(resolve, 200));
      eq((await http("DELETE", url)).status, 202, "DELETE");
      eq((await pending).status, 204, "pending poll after DELETE");
      eq((await http("GET", url)).status, 404, "poll after the connection ended");
    },
  },
];
