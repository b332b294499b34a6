// Hub specs run once per transport x protocol (ctx.transport, ctx.protocol), against the
// hubs of tests/support/functional_hub.py. Each checks one behaviour the official client's
// functional tests expect of a server (docs/spec/checklist.md §8.1).

import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import { createRequire } from "node:module";
import { PromiseSource, check, closed, eq, rejection, sleep, withTimeout } from "./harness.mjs";

const require = createRequire(import.meta.url);
const { getUserAgentHeader } = require("@microsoft/signalr/dist/cjs/Utils.js");

export const MESSAGE = "你好，世界！";
export const GUID = "00010203-0405-0607-0706-050403020100";
const ANY = () => true;
const NOT_LONG_POLLING = (ctx) => ctx.transport !== "LongPolling";
const ONLY_LONG_POLLING = (ctx) => ctx.transport === "LongPolling";

// A HubConnectionBuilder for ctx's transport and protocol at `path` (or an absolute URL).
export function builder(ctx, path = "/testhub", options = {}) {
  const opts = { logger: ctx.logger, logMessageContent: true, ...options };
  if (ctx.transport && !("transport" in options)) opts.transport = signalR.HttpTransportType[ctx.transport];
  const url = path.startsWith("http") ? path : ctx.base + path;
  let b = new signalR.HubConnectionBuilder().withUrl(url, opts).configureLogging(ctx.logger);
  if (ctx.protocol === "messagepack") b = b.withHubProtocol(new MessagePackHubProtocol());
  return b;
}

export async function getText(url) {
  const response = await withTimeout(fetch(url), `GET ${url}`);
  return response.text();
}

// Uint8Array -> {$bytes}, Date -> {$date}: one shape to compare both protocols' values with.
export function plain(value) {
  if (value instanceof Uint8Array) return { $bytes: Array.from(value) };
  if (value instanceof Date) return { $date: value.toISOString() };
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

function complexExpected(protocol) {
  return protocol === "json"
    ? { ByteArray: "AQID", DateTime: "2000-01-01T00:00:00Z", Guid: GUID, IntArray: [1, 2, 3], String: "hello world" }
    : {
        ByteArray: { $bytes: [1, 2, 3] },
        DateTime: { $date: "2000-01-01T00:00:00.000Z" },
        Guid: GUID,
        IntArray: [1, 2, 3],
        String: "hello world",
      };
}

// Waits for the first call of client method `name`.
function received(connection, name) {
  const source = new PromiseSource();
  connection.on(name, (...args) => source.resolve(args));
  const arrival = withTimeout(source.promise, `client method ${name}`);
  arrival.catch(() => {}); // a spec that failed earlier never awaits it: no unhandled rejection
  return arrival;
}

function randomCase(name) {
  // Client-side method names are case-insensitive: any casing must receive the call.
  const i = Math.floor(Math.random() * name.length);
  return name.slice(0, i) + name[i].toUpperCase() + name.slice(i + 1);
}

async function streamAll(connection, method, ...args) {
  const items = [];
  const done = new PromiseSource();
  connection.stream(method, ...args).subscribe({
    next: (item) => items.push(item),
    complete: () => done.resolve({ items }),
    error: (err) => done.resolve({ items, error: err.message }),
  });
  return withTimeout(done.promise, `stream ${method}`);
}

async function reconnectAfter(ctx, t, induce) {
  const c = t.track(builder(ctx).withAutomaticReconnect().build());
  const reconnecting = new PromiseSource();
  const reconnected = new PromiseSource();
  c.onreconnecting((error) => reconnecting.resolve(error));
  c.onreconnected((id) => reconnected.resolve(id));
  await c.start();
  const first = c.connectionId;
  await induce(c);
  await withTimeout(reconnecting.promise, "onreconnecting");
  const id = await withTimeout(reconnected.promise, "onreconnected");
  check(id && id !== first, `a new connection id after reconnecting (${first} -> ${id})`);
  eq(await c.invoke("GetCallerConnectionId"), id, "server-side connection id after reconnect");
  eq(await c.invoke("Echo", "test"), "test", "Echo after reconnect");
  await c.stop();
}

// A spec from a table row [name, hub path, arguments, expected]: connects to the path and
// compares `call(connection, arguments)` with the expectation.
const outcomeSpec = (call) => ([name, path, args, expected]) => ({
  name,
  when: ANY,
  async run(ctx, t) {
    const c = t.track(builder(ctx, path).build());
    await c.start();
    eq(await call(c, args), expected, "outcome");
  },
});

// The URL of the test app's redirecting negotiate (see tests/support/functional_hub.py).
export const redirectUrl = (ctx, extra = "") => `${ctx.base}/redirect?numRedirects=0${extra}&baseUrl=${ctx.base}`;

async function startRedirected(ctx, t, extra = "") {
  const c = t.track(builder(ctx, redirectUrl(ctx, extra)).build());
  await c.start();
  return c;
}

// A signalR HttpClient that records requests and can rewrite them (the client's extension point).
export class RecordingHttpClient extends signalR.HttpClient {
  constructor(logger, rewrite = (request) => request) {
    super();
    this.inner = new signalR.DefaultHttpClient(logger);
    this.rewrite = rewrite;
    this.exchanges = [];
  }
  send(request) {
    const sent = this.rewrite(request);
    const exchange = { method: sent.method, url: sent.url, response: null };
    this.exchanges.push(exchange);
    const promise = this.inner.send(sent);
    exchange.promise = promise.then(
      (response) => (exchange.response = response),
      (error) => (exchange.error = error),
    );
    return promise;
  }
  getCookieString(url) {
    return this.inner.getCookieString(url);
  }
}

async function negotiated(ctx, t, version) {
  const rewrite = (request) =>
    version === 0 && request.url.includes("/negotiate?")
      ? { ...request, url: request.url.replace("negotiateVersion=1", "negotiateVersion=0") }
      : request;
  const http = new RecordingHttpClient(ctx.logger, rewrite);
  const c = t.track(builder(ctx, "/testhub", { httpClient: http }).build());
  await c.start();
  const exchange = http.exchanges.find((e) => e.url.includes("/negotiate?"));
  check(exchange, "a negotiate request");
  await exchange.promise;
  const body = JSON.parse(exchange.response.content);
  eq(body.negotiateVersion, version, "negotiateVersion answered");
  eq(await c.invoke("GetCallerConnectionId"), body.connectionId, "connection id");
  eq(await c.invoke("Echo", MESSAGE), MESSAGE, "Echo");
  // Version 1 transport requests carry the token, version 0 ones the id
  // (docs/spec/negotiate.md §1.3): the request that started the transport says which.
  const address = version === 1 ? body.connectionToken : body.connectionId;
  eq(await c.invoke("GetQuery", "id"), address, "id of the transport request");
  await c.stop();
  return body;
}

export const hubSpecs = [
  {
    name: "invoke_echo",
    when: ANY,
    async run(ctx, t) {
      const c = t.track(builder(ctx).build());
      const closing = closed(c);
      eq(c.connectionId, null, "connectionId before start");
      await c.start();
      eq(await c.invoke("GetCallerConnectionId"), c.connectionId, "connectionId matches the server's");
      eq(await c.invoke("Echo", MESSAGE), MESSAGE, "Echo result");
      await c.stop();
      eq(await closing, undefined, "onclose error after stop");
      eq(c.connectionId, null, "connectionId after stop");
    },
  },
  {
    name: "send_fire_and_forget",
    when: ANY,
    async run(ctx, t) {
      const c = t.track(builder(ctx).build());
      const closing = closed(c);
      const message = received(c, "Message");
      await c.start();
      eq(await c.send("Echo", MESSAGE), undefined, "send resolves without a result");
      await c.send("InvokeWithString", MESSAGE);
      eq(await message, [MESSAGE], "the sent invocation ran");
      await c.stop();
      eq(await closing, undefined, "onclose error after stop");
    },
  },
  {
    name: "custom_object",
    when: ANY,
    async run(ctx, t) {
      const c = t.track(builder(ctx).build());
      const got = received(c, "CustomObject");
      await c.start();
      await c.send("SendCustomObject", { Name: "test", Value: 42 });
      eq(await got, [{ Name: "test", Value: 42 }], "CustomObject");
    },
  },
  {
    name: "receive_server_calls",
    when: ANY,
    async run(ctx, t) {
      const c = t.track(builder(ctx).build());
      const got = received(c, randomCase("message"));
      await c.start();
      await c.invoke("InvokeWithString", "你好 SignalR！");
      eq(await got, ["你好 SignalR！"], "Message");
    },
  },
  {
    name: "restart_keeps_handlers",
    when: ANY,
    async run(ctx, t) {
      const c = t.track(builder(ctx).build());
      let calls = 0;
      c.on(randomCase("message"), () => (calls += 1));
      for (let round = 1; round <= 2; round += 1) {
        const closing = closed(c);
        await c.start();
        eq(await c.invoke("Echo", MESSAGE), MESSAGE, `Echo in round ${round}`);
        await c.invoke("InvokeWithString", MESSAGE);
        await c.stop();
        eq(await closing, undefined, `onclose error in round ${round}`);
      }
      eq(calls, 2, "handler calls over two starts");
    },
  },
  {
    name: "stream_cancel",
    when: ANY,
    async run(ctx, t) {
      // Disposing the subscription sends CancelInvocation; the running generator must see it.
      const c = t.track(builder(ctx).build());
      const started = received(c, "StreamStarted");
      const canceled = received(c, "StreamCanceled");
      await c.start();
      let failed = null;
      const subscription = c.stream("InfiniteStream").subscribe({
        next: () => {},
        complete: () => {},
        error: (err) => (failed = err.message),
      });
      await started;
      subscription.dispose();
      await canceled;
      eq(failed, null, "no error on the disposed stream");
      eq(await c.invoke("Echo", "after"), "after", "connection usable after the cancellation");
    },
  },
  {
    name: "stream_cancel_immediate",
    when: ANY,
    async run(ctx, t) {
      // StreamInvocation and CancelInvocation back to back: the stream ends quietly and the
      // connection carries on (whether the method ran first is up to the timing).
      const c = t.track(builder(ctx).build());
      await c.start();
      let failed = null;
      c.stream("InfiniteStream").subscribe({ next: () => {}, complete: () => {}, error: (e) => (failed = e.message) })
        .dispose();
      eq(await c.invoke("Echo", "after"), "after", "connection usable after the cancellation");
      eq(failed, null, "no error on the disposed stream");
    },
  },
  // Invocations that fail: [spec, hub path, arguments, the Completion's exact error].
  ...[
    [
      "invoke_error_detailed",
      "/testhub",
      ["ThrowException", "An error occurred."],
      "An unexpected error occurred invoking 'ThrowException' on the server. InvalidOperationException: An error occurred.",
    ],
    [
      "invoke_error_plain",
      "/testhub-nodetail",
      ["ThrowException", "An error occurred."],
      "An unexpected error occurred invoking 'ThrowException' on the server.",
    ],
    [
      "invoke_streaming_method_empty",
      "/testhub",
      ["EmptyStream"],
      "The client attempted to invoke the streaming 'EmptyStream' method with a non-streaming invocation.",
    ],
    [
      "invoke_streaming_method",
      "/testhub",
      ["Stream"],
      "The client attempted to invoke the streaming 'Stream' method with a non-streaming invocation.",
    ],
    [
      "method_not_found",
      "/testhub",
      ["NoSuchMethod", 1],
      "Failed to invoke 'NoSuchMethod' due to an error on the server. HubException: Method does not exist.",
    ],
  ].map(outcomeSpec(async (c, args) => (await rejection(c.invoke(...args), `invoke ${args[0]}`)).message)),
  // Streams: [spec, hub path, arguments, the items and final error the subscriber sees].
  ...[
    ["stream_items", "/testhub", ["Stream"], { items: ["a", "b", "c"] }],
    ...[
      ["detailed", "/testhub", " InvalidOperationException: An error occurred."],
      ["plain", "/testhub-nodetail", ""],
    ].flatMap(([kind, path, detail]) => [
      [
        `stream_error_at_invocation_${kind}`,
        path,
        ["StreamThrowException", "An error occurred."],
        { items: [], error: `An unexpected error occurred invoking 'StreamThrowException' on the server.${detail}` },
      ],
      [
        `stream_error_midway_${kind}`,
        path,
        ["StreamFailMidway", "An error occurred."],
        { items: ["first"], error: `An error occurred on the server while streaming results.${detail}` },
      ],
    ]),
    [
      "stream_non_streaming_method",
      "/testhub",
      ["Echo", "42"],
      { items: [], error: "The client attempted to invoke the non-streaming 'Echo' method with a streaming invocation." },
    ],
  ].map(outcomeSpec((c, args) => streamAll(c, ...args))),
  {
    name: "complex_echo",
    when: ANY,
    async run(ctx, t) {
      const json = ctx.protocol === "json";
      const value = {
        ByteArray: json ? "aGVsbG8=" : new Uint8Array([0x68, 0x65, 0x6c, 0x6c, 0x6f]),
        DateTime: json ? "2002-04-01T10:20:15Z" : new Date(Date.UTC(2002, 3, 1, 10, 20, 15)),
        Guid: GUID,
        IntArray: [0x01, 0x02, 0x03, 0xff],
        String: "Hello, World!",
      };
      const c = t.track(builder(ctx).build());
      await c.start();
      eq(plain(await c.invoke("EchoComplexObject", value)), plain(value), "echoed object");
    },
  },
  {
    name: "complex_receive",
    when: ANY,
    async run(ctx, t) {
      const c = t.track(builder(ctx).build());
      await c.start();
      eq(plain(await c.invoke("SendComplexObject")), complexExpected(ctx.protocol), "object");
    },
  },
  {
    name: "complex_nested",
    when: ANY,
    async run(ctx, t) {
      const c = t.track(builder(ctx).build());
      await c.start();
      const inner = complexExpected(ctx.protocol);
      const json = ctx.protocol === "json";
      eq(
        plain(await c.invoke("SendNestedObject")),
        {
          Name: "outer",
          Children: [inner, { Name: "empty", Children: [] }],
          Lookup: { when: inner.DateTime, id: GUID, bytes: json ? "AP8=" : { $bytes: [0, 255] } },
        },
        "nested object",
      );
    },
  },
  // Upload streams: the client ends its Subject with complete() or error(); the outcome of
  // the invocation that carries it.
  ...[
    ["upload_stream", (subject) => subject.complete(), { value: "Hello world!" }],
    [
      "upload_stream_error",
      (subject) => subject.error(new Error("Something bad")),
      { error: "An unexpected error occurred invoking 'StreamingConcat' on the server. HubException: Something bad" },
    ],
  ].map(([name, end, expected]) => ({
    name,
    when: ANY,
    async run(ctx, t) {
      const c = t.track(builder(ctx).build());
      await c.start();
      const subject = new signalR.Subject();
      const result = c.invoke("StreamingConcat", subject);
      for (const part of ["Hello ", "world", "!"]) subject.next(part);
      end(subject);
      const outcome = await withTimeout(
        result.then((value) => ({ value }), (error) => ({ error: error.message })),
        "StreamingConcat",
      );
      eq(outcome, expected, "outcome");
    },
  })),
  ...[
    ["client_result_value", () => 10, "10"],
    [
      "client_result_throw",
      () => {
        throw new Error("from callback");
      },
      "Error: from callback",
    ],
    ["client_result_no_handler", null, "Client didn't provide a result."],
  ].map(([name, handler, expected]) => ({
    name,
    when: ANY,
    async run(ctx, t) {
      const c = t.track(builder(ctx).build());
      if (handler) c.on("Result", handler);
      await c.start();
      eq(await getText(`${ctx.base}/clientresult/${c.connectionId}`), expected, "what the server got");
    },
  })),
  {
    name: "access_token",
    when: ANY,
    async run(ctx, t) {
      const token = await getText(`${ctx.base}/token`);
      const c = t.track(builder(ctx, "/authorizedhub", { accessTokenFactory: () => token }).build());
      const closing = closed(c);
      await c.start();
      eq(await c.invoke("Echo", MESSAGE), MESSAGE, "Echo");
      eq(await c.invoke("GetUser"), "testuser", "user of the token");
      await c.stop();
      eq(await closing, undefined, "onclose error after stop");
    },
  },
  {
    name: "access_token_async",
    when: ANY,
    async run(ctx, t) {
      let calls = 0;
      const factory = async () => {
        calls += 1;
        return getText(`${ctx.base}/token`);
      };
      const c = t.track(builder(ctx, "/authorizedhub", { accessTokenFactory: factory }).build());
      await c.start();
      eq(await c.invoke("GetUser"), "testuser", "user of the token");
      check(calls >= 1, "the async factory was called");
    },
  },
  {
    name: "access_token_missing",
    when: ANY,
    async run(ctx, t) {
      const c = t.track(builder(ctx, "/authorizedhub").build());
      const error = await rejection(c.start(), "start without a token");
      eq(error.message, "Failed to complete negotiation with the server: Error: Unauthorized: Status code '401'", "error");
    },
  },
  {
    name: "user_agent_header",
    when: ANY,
    async run(ctx, t) {
      const [name, value] = getUserAgentHeader();
      const c = t.track(builder(ctx).build());
      await c.start();
      eq(await c.invoke("GetHeader", name), value, `${name} header`);
    },
  },
  {
    name: "custom_headers",
    when: ANY,
    async run(ctx, t) {
      const [name] = getUserAgentHeader();
      const headers = { [name]: "Custom Agent", "X-HEADER": "VALUE" };
      const c = t.track(builder(ctx, "/testhub", { headers }).build());
      await c.start();
      eq(await c.invoke("GetHeader", "X-HEADER"), "VALUE", "custom header");
      eq(await c.invoke("GetHeader", name), "Custom Agent", `${name} overridden`);
    },
  },
  {
    name: "cookies",
    when: ANY,
    async run(ctx, t) {
      // The redirecting negotiate sets the cookies; the client must carry them to the hub.
      const c = await startRedirected(ctx, t);
      eq(await c.invoke("GetCookie", "testCookie"), "testValue", "testCookie");
      eq(await c.invoke("GetCookie", "testCookie2"), "testValue2", "testCookie2");
      eq(await c.invoke("GetCookie", "expiredCookie"), null, "expired cookie");
    },
  },
  {
    name: "server_timeout",
    when: NOT_LONG_POLLING,
    async run(ctx, t) {
      const c = t.track(builder(ctx).build());
      const closing = closed(c);
      await c.start();
      c.serverTimeoutInMilliseconds = 1;
      await c.invoke("Echo", "");
      const error = await withTimeout(closing, "onclose");
      eq(error && error.message, "Server timeout elapsed without receiving a message from the server.", "close error");
    },
  },
  {
    name: "keep_alive",
    when: NOT_LONG_POLLING,
    async run(ctx, t) {
      // The server pings every second; a client that times out after 3 s of silence must
      // stay connected through 4.5 s of idleness.
      const c = t.track(builder(ctx).withServerTimeout(3_000).build());
      let closedWith = "open";
      c.onclose((error) => (closedWith = error ? error.message : "closed"));
      await c.start();
      await sleep(4_500);
      eq(closedWith, "open", "connection state after idling");
      eq(await c.invoke("Echo", "still here"), "still here", "Echo after idling");
    },
  },
  {
    name: "reconnect_induced",
    when: ANY,
    async run(ctx, t) {
      await reconnectAfter(ctx, t, async (c) => c.serverTimeout());
    },
  },
  {
    name: "reconnect_after_drop",
    when: ANY,
    async run(ctx, t) {
      await reconnectAfter(ctx, t, async (c) => eq(await getText(`${ctx.base}/drop/${c.connectionId}`), "dropped", "drop"));
    },
  },
  {
    name: "reconnect_after_close_allowing_it",
    when: ANY,
    async run(ctx, t) {
      await reconnectAfter(ctx, t, async (c) =>
        eq(await getText(`${ctx.base}/close/${c.connectionId}?reconnect=1`), "closed", "close"),
      );
    },
  },
  {
    name: "close_with_error",
    when: ANY,
    async run(ctx, t) {
      const text = "Connection closed with an error. Closed by the test.";
      const c = t.track(builder(ctx).withAutomaticReconnect().build());
      const closing = closed(c);
      let reconnecting = false;
      c.onreconnecting(() => (reconnecting = true));
      await c.start();
      await getText(`${ctx.base}/close/${c.connectionId}?error=${encodeURIComponent(text)}`);
      const error = await withTimeout(closing, "onclose");
      eq(error && error.message, `Server returned an error on close: ${text}`, "close error");
      eq(reconnecting, false, "no reconnect after a Close without allowReconnect");
    },
  },
  {
    name: "uncreatable_hub",
    when: ANY,
    async run(ctx, t) {
      const expected =
        "Server returned an error on close: Connection closed with an error. InvalidOperationException: Unable to create hub.";
      const c = t.track(builder(ctx, "/uncreatable").build());
      const closing = closed(c);
      // Either start fails or onclose reports the error, as with ASP.NET Core.
      let error;
      try {
        await c.start();
        error = await withTimeout(closing, "onclose");
      } catch (e) {
        error = e;
      }
      if (ctx.transport === "ServerSentEvents" && error?.message.includes("404")) {
        // Over SSE the client's first ping (a POST) can reach the server after the Close
        // disposed the connection; ASP.NET Core's own test accepts the same 404. The Close
        // error must still have reached the client.
        eq(error.message, "No Connection with that ID: Status code '404'", "start error");
        const logged = ctx.logger.lines.some(([, line]) => line.includes(expected));
        check(logged, "the Close error reached the client");
        return;
      }
      eq(error && error.message, expected, "error");
    },
  },
  {
    name: "stop_during_start",
    when: ANY,
    async run(ctx, t) {
      const c = t.track(builder(ctx).build());
      const starting = c.start();
      await c.stop();
      const error = await rejection(starting, "start stopped by stop()");
      eq(error.message, "The connection was stopped during negotiation.", "start error");
      eq(c.state, signalR.HubConnectionState.Disconnected, "state");
      await c.start();
      eq(await c.invoke("Echo", MESSAGE), MESSAGE, "Echo after a later start");
    },
  },
  {
    name: "redirect_negotiate",
    when: ANY,
    async run(ctx, t) {
      const c = await startRedirected(ctx, t);
      check((await c.invoke("GetNumRedirects")) >= 1, "the hub was reached through the redirect");
      eq(await c.invoke("GetActiveTransportName"), ctx.transport, "transport after the redirect");
      eq(await c.invoke("GetCallerConnectionId"), c.connectionId, "connection id");
    },
  },
  {
    name: "redirect_with_access_token",
    when: ANY,
    async run(ctx, t) {
      // negotiate answers {url, accessToken}: the client must use that token at the new URL.
      const c = await startRedirected(ctx, t, "&token=1");
      eq(await c.invoke("GetUser"), "testuser", "user of the redirect's token");
    },
  },
  {
    name: "negotiate_v1",
    when: ANY,
    async run(ctx, t) {
      const body = await negotiated(ctx, t, 1);
      check(body.connectionToken && body.connectionToken !== body.connectionId, "a connectionToken apart from the id");
    },
  },
  {
    name: "negotiate_v0",
    when: ANY,
    async run(ctx, t) {
      eq((await negotiated(ctx, t, 0)).connectionToken, undefined, "no connectionToken in a version 0 answer");
    },
  },
  {
    name: "long_polling_delete",
    when: ONLY_LONG_POLLING,
    async run(ctx, t) {
      const http = new RecordingHttpClient(ctx.logger);
      const c = t.track(builder(ctx, "/testhub", { httpClient: http }).build());
      await c.start();
      eq(await c.invoke("Echo", MESSAGE), MESSAGE, "Echo");
      const polls = () => http.exchanges.filter((e) => e.method === "GET");
      check(polls().length >= 2, "polls were made");
      const lastPoll = polls().at(-1);
      await c.stop();
      await withTimeout(lastPoll.promise, "the last poll");
      const deletes = http.exchanges.filter((e) => e.method === "DELETE");
      eq(deletes.length, 1, "DELETE requests on stop");
      await deletes[0].promise;
      eq(deletes[0].response && deletes[0].response.statusCode, 202, "DELETE status");
      // stop() aborts its poll before the DELETE; a poll the server answered first got 204.
      const aborted = lastPoll.error instanceof signalR.AbortError;
      check(aborted || lastPoll.response?.statusCode === 204, `the last poll was aborted or got 204: ${lastPoll.error ?? lastPoll.response?.statusCode}`);
    },
  },
];
