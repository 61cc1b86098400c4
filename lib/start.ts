// The one start-up path: environment -> config (parsed once) -> parts -> app. Every entry calls `start`; what
// happens after the wiring (recovery, the clean stop) is lib/lifecycle.ts.
import type { ChatDeps } from "./chat/reply.ts";
import { type Clock, systemClock } from "./chat/clock.ts";
import { type ExpiryWatch, watchExpiry } from "./chat/expiry-watch.ts";
import { ServerTokens } from "./chat/server-tokens.ts";
import { Conversations } from "./chat/conversations.ts";
import { journalFor, type JournalStore } from "./chat/journal.ts";
import { type Pool, TokenPool } from "./chat/pool.ts";
import { type SharedJournal, sharedJournal } from "./chat/shared-journal.ts";
import { SharedPool } from "./chat/shared-pool.ts";
import { Threads } from "./chat/threads.ts";
import { fileKeyList, GatewayKeys, storeKeyList } from "./chat/keys.ts";
import { KeyLimiter } from "./chat/key-limits.ts";
import { type Config, ConfigError, loadConfig } from "./config.ts";
import { createApp } from "./http/app.ts";
import { keptThreads } from "./http/responses.ts";
import { isUsableToken } from "./http/bearer.ts";
import { createAuth } from "./http/auth.ts";
import { batchedLines, createLogger, displayUrl, type Logger } from "./http/log.ts";
import { Metrics } from "./http/metrics.ts";
import { loadTokenizer } from "./openai/tokenizer.ts";
import type { Tokenizer } from "./openai/translate.ts";
import { lifecycle } from "./lifecycle.ts";
import { createEmohaaClient } from "./upstream/emohaa.ts";
import { createHttp1Fetch, type Dial, type FetchLike } from "./upstream/http1.ts";
import { type StateStore, StoreError } from "./state/store.ts";
import { redactUrls } from "./redact.ts";

/**
 * What differs per runtime, handed in by the entry (runtime/parts.ts gives the usual ones): lib/ reads no
 * environment and touches no runtime itself.
 */
export interface RuntimeParts {
  /** The sockets lib/upstream/http1.ts dials (`UPSTREAM_CLIENT=http1`). */
  dial: Dial;
  /** The runtime's fetch (`UPSTREAM_CLIENT=fetch`; a test's simulator). */
  fetch: FetchLike;
  /** Opens the crash journal the config names; asked only with server-side tokens and `JOURNAL` other than off. */
  openJournal(config: Config): Promise<JournalStore>;
  /** Opens the state store `config.state` names (STATE); rejects when it cannot be reached. */
  openState(config: Config): Promise<StateStore>;
  /** Reads `EMOHAA_TOKENS_FILE`, at start and on each reload. */
  readFile(path: string): string;
  /** Replaces a file atomically, mode 0600 (the admin API's changes to `EMOHAA_TOKENS_FILE`); absent: none kept. */
  writeFile?(path: string, text: string): void;
  /** Calls `onChange` on changes to a file, renamed-into-place ones too; returns the stop. Absent: no watch. */
  watchFile?(path: string, onChange: () => void, onError: (message: string) => void): () => void;
  /** Writes a batch of log lines (newline-terminated); may return a promise, one write is outstanding at a time. */
  writeLog(text: string): void | Promise<void>;
  sleep(ms: number): Promise<void>;
  /** Milliseconds since the epoch. */
  now(): number;
  /** The clock of the token expiry warnings (default: the system's); a test's fake one moves time at will. */
  clock?: Clock;
  /** A fresh random id (request and completion ids). */
  id(): string;
  /** MD5 in hex (the upstream's request signature), where the runtime has a faster one than node:crypto's. */
  md5?(text: string): string;
  /**
   * The tokenizer's rank table (gpt-tokenizer's o200k_base module) as text, read from the package on disk without
   * blocking; rejects where there is none (a bundle, a binary: lib/ then uses the copy compiled in). Absent: that copy.
   */
  tokenizerRanks?(): Promise<string>;
}

/** What tests change beyond the environment: settings outside its bounds, and faster or fake parts. */
export interface StartOverrides {
  /** Adjusts the parsed configuration (e.g. a 50 ms keep-alive, which the environment's bounds refuse). */
  config?(config: Config): Config;
  /** Waits between retries of a failed deletion (default: Conversations' own). */
  deleteRetryDelaysMs?: number[];
  /** The tokenizer loader (default: the real one). */
  tokenizer?(): Promise<Tokenizer>;
  /** Takes each log line at once, unbatched, instead of `writeLog` (tests read the lines right after a request). */
  logLine?(line: string): void;
}

/** A started gateway: the app to serve, and what the entry needs for signals and shutdown. */
export interface Gateway {
  app: ReturnType<typeof createApp>;
  config: Config;
  logger: Logger;
  /** Writes one line through the log's writer, at any level. */
  printLine(line: string): void;
  /**
   * The server listens: prints the start-up line every entry prints (through the log's writer, at every level: a
   * console.log to a stdout nobody reads would hold the server there), and loads the tokenizer if TOKENIZER_PRELOAD.
   */
  listening(host: string | undefined, port: number): void;
  /** Writes every log line still pending. */
  flushLogs(): Promise<void>;
  /** The chat use case's parts (bench/reference.ts drives them without the HTTP edge). */
  chat: ChatDeps;
  conversations: Conversations;
  /** Conversations kept between turns (native multi-turn); absent with CONTINUE_CONVERSATIONS=false. */
  threads?: Threads;
  /** TokenPool with STATE=memory; SharedPool over the state store with kv or redis. */
  pool: Pool;
  metrics: Metrics;
  /** Aborting it ends every open reply with an error frame (shutdown). */
  shutdown: AbortController;
  /** The crash journal, when one is kept (server-side tokens). */
  journal?: JournalStore;
  /** The state store shared with other instances (STATE; memory by default). The entry closes it at shutdown. */
  state: StateStore;
  /** This process's id in the state store: random per start, owner of its leases and journal entries. */
  instanceId: string;
  /**
   * Deletes what the journal lists: conversations an earlier process left when it crashed. Logs what it did and
   * resolves to how many; never rejects. With a shared STATE, the first call also starts this instance's heartbeat
   * and the periodic recovery of dead instances' conversations (never a live one's); later calls run one pass.
   */
  recover(): Promise<number>;
  /**
   * At a clean shutdown, after every conversation was deleted: removes a per-process journal file, or stops the
   * heartbeat and drops this instance from the shared journal (left entries stay for the others to recover).
   * May throw (a file that cannot be removed).
   */
  endJournal(): Promise<void>;
  /**
   * Re-reads EMOHAA_TOKENS_FILE (SIGHUP); how many server-side tokens there are now. Throws, keeping the old list,
   * when the file cannot be read, holds no token or something that is not one. Absent in client mode.
   */
  reloadTokens?: () => number;
  /** The server-side token list (absent in client mode); `stop` ends its file watch and store polling. */
  tokens?: ServerTokens;
  /**
   * A clean shutdown, once the entry stopped taking connections: requests in flight get `graceMs` to finish, what is
   * still open then ends with an error frame, every conversation (kept ones too) is deleted, the journal ended, the
   * token watch stopped and the state store closed. Logs what was left; never rejects. Later calls wait for the first.
   */
  stop(graceMs: number): Promise<void>;
}

/**
 * Parses `env` once (ConfigError names a bad variable), opens the crash journal it asks for, and wires the
 * upstream client, token pool, conversations, auth, logging and metrics into the app. Recovery from the journal
 * is the entry's to start (`recover`), once it is ready to serve.
 */
export async function start(
  env: Record<string, string | undefined>,
  runtime: RuntimeParts,
  overrides: StartOverrides = {},
): Promise<Gateway> {
  const parsed = loadConfig(env);
  const config = overrides.config ? overrides.config(parsed) : parsed;
  const lines = overrides.logLine
    ? { write: overrides.logLine, flush: async () => {}, dropped: 0 }
    : batchedLines(runtime.writeLog, {
      onDropped: (n) => logger.error(`${n} log lines dropped: the log output was not being read`),
    });
  const logger = createLogger(config.logLevel, lines.write);
  // Only a server holding the tokens keeps a journal: it names tokens by pool position, and a client's own
  // token is never written anywhere. With a shared STATE it always lives in the state store, where instances own
  // their entries (lib/chat/shared-journal.ts): JOURNAL's file and kv stores are for one instance alone, and a
  // fleet without a journal would leak every conversation of an instance that dies.
  const shared = config.state.kind !== "memory";
  const journalled = config.serverTokens !== undefined && (shared || config.journal.kind !== "off");
  const store = journalled && !shared ? await runtime.openJournal(config) : undefined;
  const ignored = config.journal.given;
  if (journalled && shared && ignored.length) {
    logger.info(
      `${ignored.join(", ")} ignored: with STATE=${config.state.kind} the crash journal lives in the state store`,
    );
  }
  const state = await openStateNamed(runtime, config);
  const instanceId = runtime.id();
  const tokens = config.serverTokens ? await serverTokensFor(config, runtime, state, logger) : undefined;
  const serverTokens = () => tokens?.list() ?? [];

  const http1 = config.upstreamClient === "http1"
    ? createHttp1Fetch(runtime.dial, { connectTimeoutMs: config.upstreamConnectTimeoutMs })
    : undefined;
  const upstreamFetch = http1 ?? runtime.fetch;
  const client = createEmohaaClient({
    baseUrl: config.baseUrl,
    limits: config.upstreamLimits,
    fetch: upstreamFetch,
    md5: runtime.md5,
  });
  let journalFailed = false;
  // Logged once; the shared store also counts its failed calls for /metrics (emohaa_state_failures_total).
  const onJournalError = (err: unknown) => {
    if (!journalFailed) {
      logger.error(
        `crash journal write failed (${err instanceof Error ? err.name : "error"}); conversations are still deleted`,
      );
    }
    journalFailed = true;
  };
  const fleet: SharedJournal | undefined = journalled && shared
    ? sharedJournal({
      store: state,
      owner: instanceId,
      tokens: serverTokens,
      deleteLeftover: (token, cid): Promise<boolean> => conversations.deleteLeftover(token, cid),
      deadAfterMs: config.journal.ownerDeadAfterMs,
      onError: onJournalError,
      onRecovered: ({ owner, deleted, left }) => {
        if (deleted) logger.info(`deleted ${deleted} conversations left behind by a dead instance`);
        if (left) logger.error(`${left} conversations of a dead instance could not be deleted; tried again later`);
        logger.debug(`recovered instance ${owner.slice(0, 8)}: ${deleted} deleted, ${left} left`);
      },
    })
    : undefined;
  const journal = fleet?.hooks ?? (store ? journalFor(store, serverTokens, onJournalError) : undefined);
  const conversations = new Conversations(
    client,
    runtime.sleep,
    overrides.deleteRetryDelaysMs,
    journal,
    (reason, attempts) =>
      logger.error(
        `could not delete a conversation after ${attempts} attempt${attempts > 1 ? "s" : ""} (${reason}); ${
          journal ? "the journal keeps it for the next start" : "it stays in its Emohaa account"
        }`,
      ),
  );
  // One process keeps its pool in memory as it always did; several share theirs through the store.
  const pool: Pool = config.state.kind === "memory" ? new TokenPool(config.pool) : new SharedPool({
    ...config.pool,
    store: state,
    owner: instanceId,
    leaseTtlMs: config.state.leaseTtlMs,
    tokens: serverTokens,
    onError: (m) => logger.error(m),
  });
  const shutdown = new AbortController();
  const metrics = new Metrics({
    logLinesDropped: () => lines.dropped,
    conversationsKept: () => threads?.kept ?? 0,
    state: () => ({
      ...state.health(),
      ...(pool instanceof SharedPool ? pool.counters : { leasesLost: 0, writeFailures: 0 }),
    }),
  });
  // The tokenizer loads once, on first use (or at start with TOKENIZER_PRELOAD), reading its table from disk if it can.
  const tokenizer = overrides.tokenizer ??
    (() => loadTokenizer(runtime.tokenizerRanks && (() => runtime.tokenizerRanks!())));
  const chat: ChatDeps = {
    client,
    pool,
    conversations,
    timeouts: config.timeouts,
    maxAttempts: config.maxAttempts,
    sleep: runtime.sleep,
    clock: systemClock,
    shutdown: shutdown.signal,
    onFirstPiece: (s) => metrics.firstPiece(s),
  };
  // Native multi-turn: conversations kept between turns, found by transcript digest in the state store.
  const threads = config.continuation.enabled
    ? new Threads({
      store: state,
      conversations,
      owner: instanceId,
      idleMs: config.continuation.idleMs,
      caps: { perAccount: config.continuation.perAccount, total: config.continuation.total },
      onEvicted: () => metrics.evicted(),
      clock: systemClock,
      id: runtime.id,
      sharedJournal: fleet !== undefined,
      // Client tokens on a shared store: nothing is journalled, so a dead holder's are swept by the token's next use.
      sweep: shared && !config.serverTokens ? { deadAfterMs: config.journal.ownerDeadAfterMs } : undefined,
      onSwept: (n) => logger.info(`deleted ${n} kept conversations whose holder died`),
      shutdown: shutdown.signal,
      onError: (err) =>
        logger.error(
          `kept conversations: state store call failed (${
            err instanceof StoreError ? `${err.op}: ${err.code}` : err instanceof Error ? err.name : "error"
          }); the next turn starts afresh`,
        ),
    })
    : undefined;
  // Gateway keys (server-side mode): API_KEYS, and managed ones in the state store, KEYS_FILE or memory.
  const keys = tokens ? await gatewayKeysFor(config, runtime, state, logger) : undefined;
  const limits = keys
    ? new KeyLimiter({
      store: state,
      owner: instanceId,
      now: runtime.now,
      tokenizer,
      events: metrics,
      leaseTtlMs: config.state.leaseTtlMs,
      log: logger,
    })
    : undefined;
  limits?.start();
  const auth = createAuth({
    serverTokens: tokens ? serverTokens : undefined,
    keys,
    allowAnonymous: config.allowAnonymous,
    metricsKey: config.metricsKey,
    now: runtime.now,
    onExpired: (name) => metrics.keyRefused(name, "expired"),
  });
  const app = createApp({
    chat,
    auth,
    pool,
    client,
    logger,
    tokenizer,
    promptMaxBytes: config.promptMaxBytes,
    keepAliveMs: config.keepAliveMs,
    corsOrigin: config.corsOrigin,
    maxBodyBytes: config.maxBodyBytes,
    metrics,
    tokenCheckLimit: config.tokenCheckLimit,
    trustProxy: config.trustProxy,
    admin: tokens ? { tokens, pool, adminKey: config.adminKey } : undefined,
    keyAdmin: keys && limits ? { keys, limits, adminKey: config.adminKey, now: runtime.now } : undefined,
    limits,
    threads,
    // Responses on kept conversations: `previous_response_id` continues one (lib/http/responses.ts).
    responseThreads: threads ? keptThreads(chat, threads) : undefined,
    now: runtime.now,
    id: runtime.id,
  });
  const life = lifecycle({
    fleet,
    store,
    serverTokens,
    conversations,
    pool,
    threads,
    tokens,
    keys,
    limits,
    shutdown,
    closeUpstream: http1 ? () => http1.close() : undefined,
    state,
    logger,
  });
  return {
    stop: life.stop,
    app,
    config,
    logger,
    printLine: lines.write,
    listening(host, port) {
      const shown = !host || host === "0.0.0.0" || host === "::" ? "localhost" : host;
      lines.write(`emohaa-free-api listening on http://${shown}:${port} (upstream ${displayUrl(config.baseUrl)})`);
      // The tokenizer (about 50 MB) loads on the first request that counts tokens, unless asked for now.
      if (config.tokenizerPreload) {
        tokenizer().catch((err) =>
          logger.error(`tokenizer failed to load: ${err instanceof Error ? err.message : err}`)
        );
      }
    },
    flushLogs: lines.flush,
    chat,
    conversations,
    threads,
    pool,
    metrics,
    shutdown,
    journal: store,
    endJournal: life.endJournal,
    state,
    instanceId,
    recover: life.recover,
    reloadTokens: tokens ? () => tokens.reloadFile() : undefined,
    tokens,
  };
}

/**
 * The server-side token list: the environment's and the file's tokens read now (an unreadable file stops the start
 * naming EMOHAA_TOKENS_FILE), the file watched, the admin API's changes read from the shared store and polled, and
 * warnings, once each, about tokens near or past their end.
 */
async function serverTokensFor(
  config: Config,
  runtime: RuntimeParts,
  state: StateStore,
  logger: Logger,
): Promise<ServerTokens> {
  const { inline, file } = config.serverTokens!;
  const shared = config.state.kind !== "memory";
  // Told of every change to the list; the watch starts once the list is read.
  const expiry: { watch?: ExpiryWatch } = {};
  const tokens = new ServerTokens({
    inline,
    file,
    readFile: runtime.readFile,
    writeFile: runtime.writeFile,
    store: shared ? state : undefined,
    sealKey: config.adminKey,
    isUsable: isUsableToken,
    log: logger,
    onChange: () => expiry.watch?.check(),
  });
  try {
    tokens.reloadFile(true);
  } catch {
    throw new ConfigError(`Invalid EMOHAA_TOKENS_FILE=${JSON.stringify(file)}: cannot read the file`);
  }
  await tokens.start();
  if (file && runtime.watchFile) tokens.watchFile(runtime.watchFile);
  expiry.watch = watchExpiry({
    tokens: () => tokens.list(),
    clock: runtime.clock ?? systemClock,
    warn: (m) => logger.info(m),
    alarm: (m) => logger.error(m),
  });
  return tokens;
}

/**
 * The gateway keys of server-side mode: API_KEYS with KEY_DEFAULT_* limits, and the managed keys kept in the shared
 * state store (STATE kv or redis), KEYS_FILE, or this process's memory. Read before the server listens.
 */
async function gatewayKeysFor(
  config: Config,
  runtime: RuntimeParts,
  state: StateStore,
  logger: Logger,
): Promise<GatewayKeys> {
  const file = config.keys.file;
  if (file && config.state.kind !== "memory") {
    logger.info(`KEYS_FILE ignored: with STATE=${config.state.kind} the gateway keys live in the state store`);
  }
  if (file && config.state.kind === "memory" && !runtime.writeFile) {
    throw new ConfigError(`Invalid KEYS_FILE=${JSON.stringify(file)}: this runtime cannot write files`);
  }
  const list = config.state.kind !== "memory"
    ? storeKeyList(state, "state")
    : file
    ? fileKeyList(file, { readFile: runtime.readFile, writeFile: runtime.writeFile! })
    : storeKeyList(state, "memory");
  const keys = new GatewayKeys({
    list,
    envKeys: config.apiKeys,
    envLimits: config.keys.defaults,
    now: runtime.now,
    log: logger,
  });
  // A list that cannot be read is said in the log and kept empty (`GatewayKeys.poll`): the start goes on.
  await keys.start();
  return keys;
}

/** Opens the state store; a store that cannot be reached at start-up stops the server with a message naming STATE. */
async function openStateNamed(runtime: RuntimeParts, config: Config): Promise<StateStore> {
  try {
    return await runtime.openState(config);
  } catch (err) {
    const s = config.state;
    const shown = s.kind === "redis" ? redactUrls(s.url) : s.kind === "kv" ? `kv${s.path ? `:${s.path}` : ""}` : s.kind;
    const why = err instanceof Error ? redactUrls(err.message) : String(err);
    throw new ConfigError(`Invalid STATE=${JSON.stringify(shown)}: cannot open the state store (${why})`);
  }
}
