// Composition root: environment -> config -> upstream client, token pool -> createApp -> serve.
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { createApp } from "./lib/http/app.ts";
import { Conversations } from "./lib/chat/conversations.ts";
import { ConfigError, loadConfig } from "./lib/config.ts";
import { createEmohaaClient } from "./lib/upstream/emohaa.ts";
import { batchedLines, createLogger, displayUrl } from "./lib/http/log.ts";
import { Metrics } from "./lib/http/metrics.ts";
import { createAuth } from "./lib/http/auth.ts";
import { journalFor, type JournalStore, resolveEntries } from "./lib/chat/journal.ts";
import { parseTokenList, TokenPool } from "./lib/chat/pool.ts";
import { loadTokenizer } from "./lib/openai/tokenizer.ts";
import { createHttp1Fetch } from "./lib/upstream/http1.ts";
import { dial, runtimeFetch } from "./runtime/dial.ts";
import { fileJournal, journalDirectory, JournalFileError, journalName, kvJournal } from "./runtime/journal.ts";
import { exit, onSignal, readArgs, readEnv, runtimeName, serve } from "./runtime/serve.ts";
import { stdoutWriter } from "./runtime/stdout.ts";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Opens the crash journal the configuration asks for. Only a server holding the tokens keeps one: the journal
 * names tokens by pool position, and a client's own token is never written anywhere. The file is `JOURNAL_FILE`,
 * else one in a private state directory (runtime/journal.ts); one that is not this user's own regular file
 * stops the start.
 */
export async function openJournal(config: ReturnType<typeof loadConfig>, env: Record<string, string | undefined> = {}): Promise<JournalStore | undefined> {
  if (!config.serverTokens || config.journal.kind === "off") return undefined;
  if (config.journal.kind === "kv") {
    return kvJournal().catch((err) => {
      throw new ConfigError(`Invalid JOURNAL=kv: ${err instanceof Error ? err.message : "Deno KV cannot be opened"} (run with --unstable-kv, or use JOURNAL=file)`);
    });
  }
  let path = config.journal.file;
  try {
    if (path) return fileJournal(path);
    const { name, perProcess } = journalName(config.port);
    path = join(journalDirectory(env, homedir()), name);
    return fileJournal(path, { perProcess });
  } catch (err) {
    if (!(err instanceof JournalFileError)) throw err;
    const what = config.journal.file ? `Invalid JOURNAL_FILE=${JSON.stringify(path)}` : `Cannot use the crash journal ${path ?? "directory"}`;
    throw new ConfigError(`${what}: ${err.message}; it must be a regular file of this user that no one else may write (set JOURNAL_FILE, or JOURNAL=off)`);
  }
}

/**
 * Builds the app from an environment map; exported for entry points other than this file (Deno Deploy).
 * `writeLog` receives batches of log lines; the platforms' entries keep console.log, main() writes stdout without
 * blocking (runtime/stdout.ts).
 */
export function buildApp(
  env: Record<string, string | undefined>,
  journalStore?: JournalStore,
  writeLog: (text: string) => void | Promise<void> = (text) => console.log(text.slice(0, -1)),
) {
  const config = loadConfig(env, runtimeName());
  const lines = batchedLines(writeLog, {
    onDropped: (n) => logger.error(`${n} log lines dropped: the log output was not being read`),
  });
  const logger = createLogger(config.logLevel, lines.write);
  const upstreamFetch = config.upstreamClient === "http1" ? createHttp1Fetch(dial, { connectTimeoutMs: config.upstreamConnectTimeoutMs }) : runtimeFetch();
  const client = createEmohaaClient({ baseUrl: config.baseUrl, limits: config.upstreamLimits, fetch: upstreamFetch });
  let journalFailed = false;
  const journal = journalStore
    ? journalFor(journalStore, () => serverTokens, (err) => {
        if (!journalFailed) logger.error(`crash journal write failed (${err instanceof Error ? err.name : "error"}); conversations are still deleted`);
        journalFailed = true;
      })
    : undefined;
  const conversations = new Conversations(client, sleep, undefined, journal);
  const pool = new TokenPool(config.pool);
  const shutdown = new AbortController();
  const metrics = new Metrics({ logLinesDropped: () => lines.dropped });
  // Server-side tokens: the inline list plus the file's, re-read on SIGHUP (see main).
  let serverTokens: string[] = [];
  const reloadTokens = () => {
    const st = config.serverTokens!;
    const fromFile = st.file ? parseTokenList(readFileSync(st.file, "utf8")) : [];
    serverTokens = [...new Set([...st.inline, ...fromFile])];
    return serverTokens.length;
  };
  if (config.serverTokens) {
    try {
      reloadTokens();
    } catch {
      throw new ConfigError(`Invalid EMOHAA_TOKENS_FILE=${JSON.stringify(config.serverTokens.file)}: cannot read the file`);
    }
  }
  const auth = createAuth({ serverTokens: config.serverTokens ? () => serverTokens : undefined, apiKeys: config.apiKeys, metricsKey: config.metricsKey });
  const app = createApp({
    chat: { client, pool, conversations, timeouts: config.timeouts, maxAttempts: config.maxAttempts, sleep, shutdown: shutdown.signal, onFirstPiece: (s) => metrics.firstPiece(s) },
    auth,
    pool,
    client,
    logger,
    tokenizer: loadTokenizer,
    promptMaxBytes: config.promptMaxBytes,
    keepAliveMs: config.keepAliveMs,
    corsOrigin: config.corsOrigin,
    maxBodyBytes: config.maxBodyBytes,
    metrics,
    tokenCheckLimit: config.tokenCheckLimit,
    trustProxy: config.trustProxy,
    now: Date.now,
    id: () => crypto.randomUUID().replaceAll("-", ""),
  });
  /** Deletes what the journal lists: conversations an earlier process left when it crashed. */
  const recover = async () => {
    if (!journalStore) return 0;
    const { found, orphaned } = resolveEntries(await journalStore.load(), serverTokens);
    for (const e of orphaned) await journalStore.remove(e.cid);
    await Promise.all(found.map((f) => conversations.deleteLeftover(f.token, f.cid)));
    return found.length;
  };
  return { app, config, logger, printLine: lines.write, flushLogs: lines.flush, conversations, pool, shutdown, recover, reloadTokens: config.serverTokens ? reloadTokens : undefined };
}

async function main() {
  let built: ReturnType<typeof buildApp>;
  let journal: JournalStore | undefined;
  try {
    const env = readEnv();
    journal = await openJournal(loadConfig(env, runtimeName()), env);
    built = buildApp(env, journal, stdoutWriter());
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`emohaa-free-api: ${err.message}`);
      exit(1);
    }
    throw err;
  }
  const { app, config, logger, printLine, flushLogs, reloadTokens, pool, conversations, shutdown, recover } = built;
  if (reloadTokens && config.serverTokens?.file) {
    onSignal("SIGHUP", () => {
      try {
        logger.info(`reloaded ${reloadTokens()} server-side tokens from EMOHAA_TOKENS_FILE`);
      } catch (err) {
        logger.error(`cannot reload EMOHAA_TOKENS_FILE, keeping the old tokens: ${err instanceof Error ? err.name : "error"}`);
      }
    });
  }
  const served = await serve(app.fetch, { port: config.port, hostname: config.host, limits: config.http, onError: (m) => logger.error(m) });
  const shown = config.host === "0.0.0.0" || config.host === "::" ? "localhost" : config.host;
  // Through the log's writer, at every level: a console.log to a stdout nobody reads would hold the server here.
  printLine(`emohaa-free-api listening on http://${shown}:${served.port} (upstream ${displayUrl(config.baseUrl)})`);
  const until = async (done: () => boolean, ms: number) => {
    for (const end = Date.now() + ms; !done() && Date.now() < end; ) await sleep(25);
  };
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info(`${signal}: no new connections; ${pool.active} requests in flight get ${config.shutdownGraceMs} ms to finish`);
    served.stop(false).catch(() => {});
    await until(() => pool.active === 0 && pool.waiting === 0, config.shutdownGraceMs);
    // What is still open ends with an error frame; its conversations are deleted before the process exits.
    shutdown.abort();
    await until(() => conversations.open === 0, 15_000);
    await conversations.drain();
    try {
      journal?.end?.();
    } catch (err) {
      logger.error(`cannot remove the crash journal: ${err instanceof Error ? err.name : "error"}`);
    }
    logger.info(`stopped; ${conversations.open} conversations left, ${conversations.deleteFailures} deletions failed`);
    // A reader that stopped reading gets a moment, not a hang.
    await Promise.race([flushLogs(), sleep(2000)]);
    exit(0);
  };
  onSignal("SIGTERM", () => void stop("SIGTERM"));
  onSignal("SIGINT", () => void stop("SIGINT"));
  recover().then(
    (n) => n && logger.info(`deleted ${n} conversations left behind by an earlier process`),
    (err) => logger.error(`cannot read the crash journal: ${err instanceof Error ? err.name : "error"}`),
  );
  // The tokenizer (about 50 MB) loads on the first request that counts tokens, unless asked for now.
  if (config.tokenizerPreload) loadTokenizer().catch((err) => logger.error(`tokenizer failed to load: ${err instanceof Error ? err.message : err}`));
}

/**
 * `--healthcheck`: exits 0 when the server this environment configures answers `/ping` with `pong`, else 1.
 * The Docker image's HEALTHCHECK runs it, so the image needs no shell or curl.
 */
async function healthcheck(): Promise<number> {
  const config = loadConfig(readEnv(), runtimeName());
  const host = config.host === "0.0.0.0" ? "127.0.0.1" : config.host === "::" ? "::1" : config.host;
  try {
    const res = await fetch(`http://${host.includes(":") ? `[${host}]` : host}:${config.port}/ping`, { signal: AbortSignal.timeout(3000) });
    return res.status === 200 && (await res.text()) === "pong" ? 0 : 1;
  } catch {
    return 1;
  }
}

if (import.meta.main) {
  if (readArgs().includes("--healthcheck")) exit(await healthcheck());
  else await main();
}
