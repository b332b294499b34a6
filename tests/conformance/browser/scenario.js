// The browser scenario: window.runScenario(hubUrl, transportName, protocolName) connects the
// official browser bundle (global `signalR`) with exactly one transport, invokes, receives a
// push, stops, and resolves to a plain object of results (never rejects; errors are reported).
// Uses only what the page loaded: signalr.min.js and signalr-protocol-msgpack.min.js.
"use strict";

const STEP_TIMEOUT_MS = 10000;

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error("timeout: " + what)), STEP_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

window.runScenario = async function runScenario(hubUrl, transportName, protocolName) {
  const result = { transport: transportName, protocol: protocolName, origin: location.origin };
  const errors = [];
  const logger = {
    log(level, message) {
      if (level >= signalR.LogLevel.Error) errors.push(message);
    },
  };
  let builder = new signalR.HubConnectionBuilder()
    .withUrl(hubUrl, { transport: signalR.HttpTransportType[transportName] })
    .configureLogging(logger);
  if (protocolName === "messagepack") {
    builder = builder.withHubProtocol(new signalR.protocols.msgpack.MessagePackHubProtocol());
  }
  const connection = builder.build();
  let resolvePush;
  const pushed = new Promise((resolve) => (resolvePush = resolve));
  let resolveWelcome;
  const welcomed = new Promise((resolve) => (resolveWelcome = resolve));
  connection.on("Message", (message) => resolvePush(message));
  connection.on("Welcome", (id) => resolveWelcome(id));
  try {
    await withTimeout(connection.start(), "start");
    result.started = true;
    result.welcomeMatchesId = (await withTimeout(welcomed, "Welcome")) === connection.connectionId;
    result.serverTransport = await withTimeout(connection.invoke("GetTransport"), "GetTransport");
    result.serverProtocol = await withTimeout(connection.invoke("GetProtocol"), "GetProtocol");
    result.echo = await withTimeout(connection.invoke("Echo", "from the browser \u2713"), "Echo");
    result.sum = await withTimeout(connection.invoke("Add", 2, 3), "Add");
    await withTimeout(connection.send("SendToCaller", "pushed to the browser"), "send");
    result.push = await withTimeout(pushed, "push");
    await withTimeout(connection.stop(), "stop");
    result.state = connection.state;
  } catch (err) {
    result.error = err && err.message ? err.message : String(err);
    try {
      await connection.stop();
    } catch (_) {
      // already stopped
    }
    result.state = connection.state;
  }
  result.clientErrors = errors;
  return result;
};
