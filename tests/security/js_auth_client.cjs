// Drives the AnalyticsHub with the official @microsoft/signalr client (Node) and prints one
// JSON line describing what happened. Used by test_real_server.py.
const path = require("path");
const signalR = require(path.resolve(__dirname, "../conformance/node_modules/@microsoft/signalr"));

const cfg = JSON.parse(process.argv[2]);

async function main() {
  const out = { started: false };
  const options = {
    accessTokenFactory: () => cfg.token,
    headers: cfg.orgHeader ? { "X-Organization-Id": cfg.orgHeader } : {},
    transport: signalR.HttpTransportType[cfg.transport || "WebSockets"],
  };
  const conn = new signalR.HubConnectionBuilder()
    .withUrl(cfg.url, options)
    .configureLogging(signalR.LogLevel.None)
    .build();
  const received = [];
  conn.on("DashboardUpdate", (m) => received.push(m));
  try {
    await conn.start();
    out.started = true;
  } catch (e) {
    out.error = String(e && e.message ? e.message : e);
    console.log(JSON.stringify(out));
    return;
  }
  try {
    out.snapshot = await conn.invoke("GetDashboardSnapshot");
  } catch (e) {
    out.snapshotError = e.message;
  }
  try {
    await conn.invoke("BroadcastDashboardUpdate", cfg.foreignOrg, { tag: "js-foreign" });
    out.crossOrg = "accepted";
  } catch (e) {
    out.crossOrg = e.message;
  }
  try {
    await conn.invoke("BroadcastDashboardUpdate", cfg.ownOrg, { tag: "js" });
  } catch (e) {
    out.ownError = e.message;
  }
  await new Promise((r) => setTimeout(r, 300));
  out.received = received;
  await conn.stop();
  console.log(JSON.stringify(out));
}

main().then(
  () => process.exit(0),
  (e) => {
    console.log(JSON.stringify({ crashed: String(e) }));
    process.exit(1);
  },
);
