// Composition root: environment -> config -> upstream client, token picker -> createApp -> serve.
import { createApp } from "./lib/app.ts";
import { Conversations } from "./lib/chat.ts";
import { ConfigError, loadConfig } from "./lib/config.ts";
import { createEmohaaClient } from "./lib/emohaa.ts";
import { createLogger } from "./lib/log.ts";
import { TokenPicker } from "./lib/tokens.ts";
import { loadTokenizer } from "./lib/usage.ts";
import { readEnv, serve } from "./runtime/serve.ts";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Builds the app from an environment map; exported for entry points other than this file (Deno Deploy). */
export function buildApp(env: Record<string, string | undefined>) {
  const config = loadConfig(env);
  const logger = createLogger(config.logLevel);
  const client = createEmohaaClient({ baseUrl: config.baseUrl });
  const conversations = new Conversations(client, sleep);
  const app = createApp({
    chat: { client, picker: new TokenPicker(), conversations, timeouts: config.timeouts, maxAttempts: config.maxAttempts, sleep },
    client,
    logger,
    tokenizer: loadTokenizer,
    promptMaxBytes: config.promptMaxBytes,
    keepAliveMs: config.keepAliveMs,
    corsOrigin: config.corsOrigin,
    now: Date.now,
    id: () => crypto.randomUUID().replaceAll("-", ""),
  });
  return { app, config, logger, conversations };
}

async function main() {
  let built: ReturnType<typeof buildApp>;
  try {
    built = buildApp(readEnv());
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`emohaa-free-api: ${err.message}`);
      (globalThis as any).process?.exit?.(1);
      (globalThis as any).Deno?.exit?.(1);
    }
    throw err;
  }
  const { app, config, logger } = built;
  const served = await serve(app.fetch, { port: config.port, hostname: config.host });
  const shown = config.host === "0.0.0.0" || config.host === "::" ? "localhost" : config.host;
  console.log(`emohaa-free-api listening on http://${shown}:${served.port} (upstream ${config.baseUrl})`);
  // Warm the tokenizer after listening so start-up stays fast and the first request does not pay for it.
  loadTokenizer().catch((err) => logger.error(`tokenizer failed to load: ${err instanceof Error ? err.message : err}`));
}

if (import.meta.main) await main();
