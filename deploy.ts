// Deno Deploy entry: `deno serve deploy.ts` (what Deno Deploy runs) serves this module's default export.
import { ConfigError } from "./lib/config.ts";
import { displayUrl } from "./lib/http/log.ts";
import { loadTokenizer } from "./lib/openai/tokenizer.ts";
import { readEnv } from "./runtime/serve.ts";
import { buildApp } from "./server.ts";

let built: ReturnType<typeof buildApp>;
try {
  // Deno Deploy is not reachable from where this is tested: its upstream calls use the platform's fetch.
  built = buildApp({ UPSTREAM_CLIENT: "fetch", ...readEnv() });
} catch (err) {
  // Same message as server.ts; the platform shows it in the deployment's logs.
  if (err instanceof ConfigError) console.error(`emohaa-free-api: ${err.message}`);
  throw err;
}
const { app, config, logger } = built;

/** The `deno serve` contract: a fetch handler, plus a listen hook that prints the usual start-up line. */
export default {
  // `deno serve` tells the peer's address like Deno.serve does (the /token/check limit counts per address).
  fetch: (req: Request, info?: { remoteAddr?: { hostname?: string } }) => app.fetch(req, { remoteAddress: info?.remoteAddr?.hostname }),
  onListen(addr: { hostname?: string; port?: number }) {
    const host = !addr.hostname || addr.hostname === "0.0.0.0" || addr.hostname === "::" ? "localhost" : addr.hostname;
    console.log(`emohaa-free-api listening on http://${host}:${addr.port} (upstream ${displayUrl(config.baseUrl)})`);
    if (config.tokenizerPreload) loadTokenizer().catch((err) => logger.error(`tokenizer failed to load: ${err instanceof Error ? err.message : err}`));
  },
};
