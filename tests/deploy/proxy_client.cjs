// The official @microsoft/signalr client (Node), driven through nginx by tests/deploy.
// Reuses the pinned package of tests/conformance (helper E1's), no copy.
//
//   node proxy_client.cjs '<json config>'
//
// config: {url, token, transport: WebSockets|ServerSentEvents|LongPolling, org,
//          cookie?: "aiusage_affinity=..." (nginx affinity key), mode: "check"|"hold",
//          seconds?: hold duration bound}
// "check": connect, GetDashboardSnapshot, BroadcastDashboardUpdate to the own organization
//          and wait for it to come back; prints ONE JSON object.
// "hold":  stay connected with automatic reconnect; prints JSON lines per event
//          (started, reconnecting, reconnected, closed, update) until stdin says "stop" or
//          `seconds` elapse, then a final {"event":"summary",...}.
// Every wait is bounded so the script always terminates.
const path = require("path");
const signalR = require(path.resolve(__dirname, "../conformance/node_modules/@microsoft/signalr"));

const cfg = JSON.parse(process.argv[2]);
const STEP_MS = 15000;

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function timeout(promise, what, ms = STEP_MS) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function build(reconnect) {
  const options = {
    accessTokenFactory: () => cfg.token,
    transport: signalR.HttpTransportType[cfg.transport],
    headers: cfg.cookie ? { Cookie: cfg.cookie } : {},
  };
  let builder = new signalR.HubConnectionBuilder()
    .withUrl(cfg.url, options)
    .configureLogging(signalR.LogLevel.None);
  if (reconnect) {
    // Retry quickly and for long enough to outlive a rolling restart (bounded: 90 s).
    builder = builder.withAutomaticReconnect({
      nextRetryDelayInMilliseconds: (ctx) => (ctx.elapsedMilliseconds > 90000 ? null : 300),
    });
  }
  return builder.build();
}

async function check() {
  const out = { started: false };
  const conn = build(false);
  let resolveUpdate;
  const update = new Promise((r) => (resolveUpdate = r));
  const probe = `probe-${process.pid}-${Date.now()}`;
  conn.on("DashboardUpdate", (m) => {
    if (m && m.probe === probe) resolveUpdate(m);
  });
  try {
    await timeout(conn.start(), "start");
    out.started = true;
    out.connectionId = conn.connectionId;
    const snapshot = await timeout(conn.invoke("GetDashboardSnapshot"), "snapshot");
    out.snapshotOrg = snapshot && snapshot.metrics ? snapshot.metrics.organizationId : null;
    await timeout(conn.invoke("BroadcastDashboardUpdate", cfg.org, { probe }), "broadcast");
    const got = await timeout(update, "DashboardUpdate");
    out.received = got.probe === probe;
  } catch (e) {
    out.error = String(e && e.message ? e.message : e);
  } finally {
    try {
      await timeout(conn.stop(), "stop", 5000);
    } catch (e) {
      out.stopError = String(e);
    }
  }
  emit(out);
}

async function hold() {
  const conn = build(true);
  const summary = { event: "summary", reconnecting: 0, reconnected: 0, closed: 0, updates: 0 };
  conn.on("DashboardUpdate", () => {
    summary.updates += 1;
  });
  conn.onreconnecting((e) => {
    summary.reconnecting += 1;
    emit({ event: "reconnecting", error: e ? String(e.message || e) : null });
  });
  conn.onreconnected((id) => {
    summary.reconnected += 1;
    emit({ event: "reconnected", connectionId: id });
  });
  let closedResolve;
  const closed = new Promise((r) => (closedResolve = r));
  conn.onclose((e) => {
    summary.closed += 1;
    emit({ event: "closed", error: e ? String(e.message || e) : null });
    closedResolve();
  });
  try {
    await timeout(conn.start(), "start");
  } catch (e) {
    emit({ event: "failed", error: String(e.message || e) });
    emit(summary);
    return;
  }
  emit({ event: "started", connectionId: conn.connectionId });
  const stop = new Promise((resolve) => {
    let buf = "";
    process.stdin.on("data", (d) => {
      buf += d;
      if (buf.includes("stop")) resolve();
    });
    process.stdin.on("end", resolve);
    setTimeout(resolve, (cfg.seconds || 60) * 1000);
  });
  await Promise.race([stop, closed]);
  summary.state = conn.state;
  summary.closedBeforeStop = summary.closed;
  try {
    await timeout(conn.stop(), "stop", 5000);
  } catch (e) {
    summary.stopError = String(e);
  }
  emit(summary);
}

(cfg.mode === "hold" ? hold() : check()).then(
  () => process.exit(0),
  (e) => {
    emit({ event: "crashed", error: String(e) });
    process.exit(1);
  },
);
