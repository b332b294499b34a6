// Runs the functional conformance specs with the official @microsoft/signalr client.
//
//   node run.mjs --list
//       prints every case as JSON: [{spec, group, transport, protocol}, ...]
//   node run.mjs <base-url> <group>
//       group: "<WebSockets|ServerSentEvents|LongPolling>-<json|messagepack>" or "global",
//       or either prefixed "tls-" (a few of its specs, for a server at an https:// base-url);
//       runs that group's specs against the server at base-url (tests/support/functional_hub.py)
//       and prints {"group", "results": {spec: {ok, error?, log?}}} as its last stdout line.
//
// tests/integration/test_functional_conformance.py runs every group and turns each case into
// one pytest test.

import { runSpecs } from "./harness.mjs";
import { connectionSpecs } from "./connection_specs.mjs";
import { globalSpecs } from "./global_specs.mjs";
import { hubSpecs } from "./hub_specs.mjs";

// The client refuses binary over Server-Sent Events, so MessagePack never runs over it.
const MATRIX = [
  ["WebSockets", "json"],
  ["WebSockets", "messagepack"],
  ["ServerSentEvents", "json"],
  ["LongPolling", "json"],
  ["LongPolling", "messagepack"],
];

// The "tls-" groups run these against the same app served over HTTPS (wss:// for WebSockets).
const TLS_SPECS = new Set([
  "invoke_echo",
  "stream_items",
  "upload_stream",
  "complex_receive",
  "client_result_value",
  "access_token",
  "user_agent_header",
  "cookies",
  "reconnect_induced",
  "raw_echo",
  "skip_negotiation",
  "raw_websocket",
  "long_polling_delete_ends_pending_poll",
]);

function groups() {
  const plainGroups = MATRIX.map(([transport, protocol]) => {
    const ctx = { transport, protocol };
    const specs = [...hubSpecs, ...connectionSpecs].filter((spec) => spec.when(ctx));
    return { group: `${transport}-${protocol}`, ctx, specs };
  });
  plainGroups.push({ group: "global", ctx: { transport: undefined, protocol: "json" }, specs: globalSpecs });
  const tlsGroups = plainGroups.map(({ group, ctx, specs }) => ({
    group: `tls-${group}`,
    ctx,
    specs: specs.filter((spec) => TLS_SPECS.has(spec.name)),
  }));
  return [...plainGroups, ...tlsGroups];
}

// A promise a failed spec left behind must not end the process (and lose the group's results).
process.on("unhandledRejection", (reason) => console.error("unhandled rejection:", reason));

const [first, groupName] = process.argv.slice(2);
if (first === "--list") {
  const cases = groups().flatMap(({ group, ctx, specs }) =>
    specs.map((spec) => ({ spec: spec.name, group, transport: ctx.transport ?? null, protocol: ctx.protocol })),
  );
  process.stdout.write(JSON.stringify(cases) + "\n");
} else {
  const entry = groups().find((g) => g.group === groupName);
  if (!first || !entry) {
    console.error("usage: node run.mjs --list | node run.mjs <base-url> <group>");
    process.exit(2);
  }
  const results = await runSpecs(entry.specs, { ...entry.ctx, base: first.replace(/\/$/, "") });
  process.stdout.write(JSON.stringify({ group: entry.group, results }) + "\n");
  process.exit(0);
}
