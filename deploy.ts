// Deno Deploy entry: `deno serve deploy.ts` (what Deno Deploy runs) serves this module's default export.
import { ConfigError } from "./lib/config.ts";
import { type Gateway, start } from "./lib/start.ts";
import { consoleWriter, platformDefaults, runtimeParts } from "./runtime/parts.ts";
import { onSignal, readEnv } from "./runtime/serve.ts";

const env = readEnv();
let gateway: Gateway;
try {
  // Deno Deploy is not reachable from where this is tested: its upstream calls use the platform's fetch. Its many
  // isolates share the state in the platform's Deno KV with no setting needed (STATE defaults to kv where KV can be
  // opened; locally STATE=kv:/path/file.sqlite3 names a file), and the crash journal lives there too.
  gateway = await start({ ...platformDefaults(env), ...env }, {
    ...runtimeParts(),
    writeLog: consoleWriter,
  });
} catch (err) {
  // Same message as server.ts; the platform shows it in the deployment's logs.
  if (err instanceof ConfigError) console.error(`emohaa-free-api: ${err.message}`);
  throw err;
}
const { app, config, recover } = gateway;
// Where a signal comes (`deno serve` run by hand or by a service manager; Deno Deploy sends none), the same clean
// shutdown as server.ts: conversations in flight and kept between turns deleted, the journal ended, the token watch
// and the store's connection closed. `deno serve` then ends once nothing is pending.
onSignal("SIGTERM", () => void gateway.stop(config.shutdownGraceMs));
onSignal("SIGINT", () => void gateway.stop(config.shutdownGraceMs));
// What a dead isolate left when it was killed mid-stream (an isolate gets no signal to clean up before): at start
// and, with the state in KV, periodically while this one lives; never what a live isolate is streaming.
void recover();

/** The `deno serve` contract: a fetch handler, plus a listen hook that prints the usual start-up line. */
export default {
  // `deno serve` tells the peer's address like Deno.serve does (the /token/check limit counts per address).
  fetch: (req: Request, info?: { remoteAddr?: { hostname?: string } }) =>
    app.fetch(req, { remoteAddress: info?.remoteAddr?.hostname }),
  onListen(addr: { hostname?: string; port?: number }) {
    gateway.listening(addr.hostname, addr.port ?? 0);
  },
};
