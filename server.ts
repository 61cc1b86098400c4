// The server's entry: read the environment once, start (lib/start.ts), serve, handle signals, shut down cleanly.
import { ConfigError, loadConfig } from "./lib/config.ts";
import { type Gateway, start } from "./lib/start.ts";
import { runtimeParts } from "./runtime/parts.ts";
import { exit, onSignal, readArgs, readEnv, serve } from "./runtime/serve.ts";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function main() {
  let gateway: Gateway;
  try {
    const env = readEnv();
    gateway = await start(env, runtimeParts());
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`emohaa-free-api: ${err.message}`);
      exit(1);
    }
    throw err;
  }
  const {
    app,
    config,
    logger,
    flushLogs,
    reloadTokens,
    pool,
    recover,
  } = gateway;
  if (reloadTokens && config.serverTokens?.file) {
    onSignal("SIGHUP", () => {
      try {
        logger.info(`reloaded ${reloadTokens()} server-side tokens from EMOHAA_TOKENS_FILE`);
      } catch (err) {
        logger.error(
          `${err instanceof Error ? err.message : "cannot reload EMOHAA_TOKENS_FILE"}; keeping the old tokens`,
        );
      }
    });
  }
  const served = await serve(app.fetch, {
    port: config.port,
    hostname: config.host,
    limits: config.http,
    onError: (m) => logger.error(m),
  });
  gateway.listening(config.host, served.port);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info(
      `${signal}: no new connections; ${pool.active} requests in flight get ${config.shutdownGraceMs} ms to finish`,
    );
    // Resolves once every connection closed: idle ones at once, busy ones after their answer's last bytes.
    const closed = served.stop(false).catch(() => {});
    await gateway.stop(config.shutdownGraceMs);
    // The answers the stop ended (their error frames) are written out before the exit; a client that stopped
    // reading gets a moment, not a hang. So does a reader of the log.
    await Promise.race([closed, sleep(2000)]);
    await Promise.race([flushLogs(), sleep(2000)]);
    exit(0);
  };
  onSignal("SIGTERM", () => void stop("SIGTERM"));
  onSignal("SIGINT", () => void stop("SIGINT"));
  void recover();
}

/**
 * `--healthcheck`: exits 0 when the server this environment configures answers `/ping` with `pong`, else 1.
 * The Docker image's HEALTHCHECK runs it, so the image needs no shell or curl.
 */
async function healthcheck(): Promise<number> {
  const config = loadConfig(readEnv());
  const host = config.host === "0.0.0.0" ? "127.0.0.1" : config.host === "::" ? "::1" : config.host;
  try {
    const res = await fetch(`http://${host.includes(":") ? `[${host}]` : host}:${config.port}/ping`, {
      signal: AbortSignal.timeout(3000),
    });
    return res.status === 200 && (await res.text()) === "pong" ? 0 : 1;
  } catch {
    return 1;
  }
}

// Always, however the file is loaded: run directly, or required by a supervisor (PM2's fork mode loads the Node bundle
// from its own container, where a bundled `import.meta.main` is false). Nothing imports this file.
if (readArgs().includes("--healthcheck")) exit(await healthcheck());
else await main();
