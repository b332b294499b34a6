// Raw connection specs: the client's HttpConnection (no hub protocol) against the echo
// endpoint of tests/support/functional_hub.py, once per transport (text transfer format).

import * as signalR from "@microsoft/signalr";
import { createRequire } from "node:module";
import { CapturingLogger, PromiseSource, check, eq, withTimeout } from "./harness.mjs";

const require = createRequire(import.meta.url);
// The client's HttpConnection is not exported from the package index; its own module is.
const { HttpConnection } = require("@microsoft/signalr/dist/cjs/HttpConnection.js");

const TEXT = "Hello World!";

// Connects to /echo, sends TEXT, stops once it comes back; resolves with the onclose error.
export async function echoOnce(ctx, options) {
  const connection = new HttpConnection(`${ctx.base}/echo`, options);
  const closedWith = new PromiseSource();
  const echoed = new PromiseSource();
  connection.onreceive = (data) => {
    if (data === TEXT) echoed.resolve();
  };
  connection.onclose = (error) => closedWith.resolve(error);
  await withTimeout(connection.start(signalR.TransferFormat.Text), "raw connection start");
  await connection.send(TEXT);
  await withTimeout(echoed.promise, "the echo");
  await connection.stop();
  return withTimeout(closedWith.promise, "onclose");
}

const onTransport = (ctx) => ({ transport: signalR.HttpTransportType[ctx.transport] });

export const connectionSpecs = [
  {
    name: "raw_echo",
    when: (ctx) => ctx.protocol === "json",
    async run(ctx) {
      const error = await echoOnce(ctx, { ...onTransport(ctx), logger: ctx.logger, logMessageContent: true });
      eq(error, undefined, "onclose error");
    },
  },
  {
    name: "raw_echo_message_logging",
    when: (ctx) => ctx.protocol === "json",
    async run(ctx) {
      // Message content reaches the log only with logMessageContent: once sent, once received.
      const quiet = new CapturingLogger();
      await echoOnce(ctx, { ...onTransport(ctx), logger: quiet });
      check(quiet.lines.length > 0, "the client logged");
      eq(quiet.lines.filter(([, m]) => m.includes(TEXT)).length, 0, "lines with content, default options");
      const verbose = new CapturingLogger();
      await echoOnce(ctx, { ...onTransport(ctx), logger: verbose, logMessageContent: true });
      eq(verbose.lines.filter(([, m]) => m.includes(TEXT)).length, 2, "lines with content, logMessageContent");
    },
  },
];
