// The environment schema: every setting of the server, parsed once at start-up.
import { z } from "zod";
import type { PoolOptions } from "./chat/pool.ts";
import { LOG_LEVELS } from "./http/log.ts";
import { STORE_TIMEOUT_MS } from "./state/meter.ts";
import { LEASE_TTL_MS, OWNER_DEAD_AFTER_MS } from "./state/store.ts";
import { CONNECT_TIMEOUT_MS } from "./upstream/http1.ts";
import { commaList } from "./list.ts";
import { redactUrls } from "./redact.ts";

// Settings' defaults: those below are the values the modules are given from here (they have none of their own),
// also for tests and scripts that build them without an environment; the state store's protocol bounds and the
// upstream connect timeout are their modules' constants, which the schema below defaults to.

/** HTTP_HEADER_TIMEOUT_MS, HTTP_BODY_TIMEOUT_MS, HTTP_IDLE_TIMEOUT_MS: the server's timeouts (lib/http/server.ts). */
export const HTTP_TIMEOUTS = { headerTimeoutMs: 10_000, bodyTimeoutMs: 30_000, idleTimeoutMs: 5_000 } as const;
/** MAX_BODY_BYTES: the bound on a request body. */
export const MAX_BODY_BYTES = 1024 * 1024;
/** TOKEN_CHECK_RATE, TOKEN_CHECK_BURST: POST /token/check per client address (the original advised one check per
 * token every 10 minutes). */
export const TOKEN_CHECK_LIMIT = { perMinute: 1, burst: 10 } as const;
/** UPSTREAM_MAX_EVENT_BYTES, UPSTREAM_MAX_REPLY_BYTES: what one event and one whole reply of Emohaa may hold. */
export const UPSTREAM_LIMITS = { maxEventChars: 256 * 1024, maxReplyChars: 1024 * 1024 } as const;

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z.enum(["true", "false", "1", "0", "yes", "no"]).transform((v) => ["true", "1", "yes"].includes(v));

const EnvSchema = z.object({
  PORT: int(0, 65535).optional(),
  SERVER_PORT: int(0, 65535).optional(),
  HOST: z.string().min(1).optional(),
  SERVER_HOST: z.string().min(1).optional(),
  EMOHAA_BASE_URL: z.url({ protocol: /^https?$/ }).default("https://ai-role.cn/echo-prod"),
  UPSTREAM_CREATE_TIMEOUT_MS: int(100, 600_000).default(15_000),
  UPSTREAM_FIRST_PIECE_TIMEOUT_MS: int(100, 600_000).default(60_000),
  UPSTREAM_IDLE_TIMEOUT_MS: int(100, 600_000).default(60_000),
  UPSTREAM_TOTAL_TIMEOUT_MS: int(1_000, 3_600_000).default(300_000),
  PROMPT_MAX_BYTES: int(256, 1_000_000).default(6_000),
  KEEPALIVE_INTERVAL_MS: int(100, 600_000).default(15_000),
  MAX_ATTEMPTS: int(1, 10).default(3),
  LOG_LEVEL: z.enum(LOG_LEVELS).default("info"),
  CORS_ORIGIN: z.string().min(1).default("*"),
  EMOHAA_TOKENS: z.string().optional(),
  EMOHAA_TOKENS_FILE: z.string().min(1).optional(),
  API_KEYS: z.string().optional(),
  ALLOW_ANONYMOUS: bool.default(false),
  // Gateway keys (lib/chat/keys.ts): limits of the keys of API_KEYS, and where managed keys live with STATE=memory.
  KEY_DEFAULT_RPM: int(0, 1_000_000).optional(),
  KEY_DEFAULT_CONCURRENCY: int(0, 10_000).optional(),
  KEY_DEFAULT_TOKENS_PER_DAY: int(0, 1_000_000_000_000).optional(),
  KEYS_FILE: z.string().min(1).optional(),
  TOKEN_CONCURRENCY: int(1, 100).default(1),
  TOKEN_AUTH_COOLDOWN_MS: int(0, 86_400_000).default(600_000),
  TOKEN_FAIL_COOLDOWN_MS: int(0, 3_600_000).default(30_000),
  QUEUE_TIMEOUT_MS: int(0, 600_000).default(30_000),
  QUEUE_MAX: int(0, 100_000).default(1000),
  SHUTDOWN_GRACE_MS: int(0, 600_000).default(10_000),
  MAX_BODY_BYTES: int(1024, 100 * 1024 * 1024).default(MAX_BODY_BYTES),
  UPSTREAM_MAX_EVENT_BYTES: int(1024, 100 * 1024 * 1024).default(UPSTREAM_LIMITS.maxEventChars),
  UPSTREAM_MAX_REPLY_BYTES: int(1024, 100 * 1024 * 1024).default(UPSTREAM_LIMITS.maxReplyChars),
  JOURNAL: z.enum(["file", "kv", "off"]).default("file"),
  JOURNAL_FILE: z.string().min(1).optional(),
  JOURNAL_KV_PATH: z.string().min(1).optional(),
  // Where the default journal file lives (runtime/journal.ts): systemd's StateDirectory=, else the XDG state home.
  STATE_DIRECTORY: z.string().optional(),
  XDG_STATE_HOME: z.string().optional(),
  UPSTREAM_CLIENT: z.enum(["auto", "http1", "fetch"]).default("auto"),
  UPSTREAM_CONNECT_TIMEOUT_MS: int(100, 600_000).default(CONNECT_TIMEOUT_MS),
  TOKENIZER_PRELOAD: bool.default(false),
  TOKEN_CHECK_RATE: int(1, 100_000).default(TOKEN_CHECK_LIMIT.perMinute),
  TOKEN_CHECK_BURST: int(1, 100_000).default(TOKEN_CHECK_LIMIT.burst),
  TRUST_PROXY: bool.default(false),
  METRICS_KEY: z.string().min(1).optional(),
  ADMIN_KEY: z.string().min(16, "must be at least 16 characters").optional(),
  HTTP_HEADER_TIMEOUT_MS: int(100, 600_000).default(HTTP_TIMEOUTS.headerTimeoutMs),
  HTTP_BODY_TIMEOUT_MS: int(100, 3_600_000).default(HTTP_TIMEOUTS.bodyTimeoutMs),
  HTTP_IDLE_TIMEOUT_MS: int(100, 600_000).default(HTTP_TIMEOUTS.idleTimeoutMs),
  MAX_CONNECTIONS: int(1, 1_000_000).optional(),
  STATE: z
    .string()
    .regex(
      /^(memory|kv|kv:.+|rediss?:\/\/.+)$/,
      "expected memory, kv, kv:/path/to/file.sqlite, redis://... or rediss://...",
    )
    .default("memory"),
  STATE_TIMEOUT_MS: int(50, 60_000).default(STORE_TIMEOUT_MS),
  STATE_LEASE_TTL_MS: int(1_000, 300_000).default(LEASE_TTL_MS),
  STATE_OWNER_DEAD_AFTER_MS: int(1_000, 3_600_000).default(OWNER_DEAD_AFTER_MS),
  CONTINUE_CONVERSATIONS: bool.default(true),
  CONVERSATION_IDLE_MS: int(1_000, 86_400_000).default(1_800_000),
  KEPT_PER_ACCOUNT: int(1, 100_000).default(50),
  KEPT_MAX: int(1, 1_000_000).default(2_000),
});

/** Proxy variables the runtimes' fetch honours (and lib/upstream/http1.ts does not). */
export const PROXY_VARS = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"];

/** The environment as the schema reads it. */
type Env = z.infer<typeof EnvSchema>;

/** The parsed, typed configuration. */
export interface Config {
  port: number;
  host: string;
  baseUrl: string;
  timeouts: { createMs: number; firstPieceMs: number; idleMs: number; totalMs: number };
  promptMaxBytes: number;
  keepAliveMs: number;
  maxAttempts: number;
  logLevel: Env["LOG_LEVEL"];
  corsOrigin: string;
  /** Server-side tokens: inline list and/or a file re-read on SIGHUP. Absent: clients send the tokens. */
  serverTokens?: { inline: string[]; file?: string };
  /** Gateway keys clients must present when the server holds the tokens. */
  apiKeys: string[];
  allowAnonymous: boolean;
  /**
   * Gateway keys: `defaults`, the limits of each key of API_KEYS (KEY_DEFAULT_*; absent: unlimited); `file`, where
   * managed keys are kept with STATE=memory (KEYS_FILE; absent: in memory). With a shared STATE they live there.
   */
  keys: { defaults: { rpm?: number; concurrency?: number; tokensPerDay?: number }; file?: string };
  /** How long streams in flight may finish after SIGTERM/SIGINT before they are ended. */
  shutdownGraceMs: number;
  /** Request bodies larger than this are a 413. */
  maxBodyBytes: number;
  /**
   * Crash journal of open conversations (server-side tokens only): where it lives. `kvPath`: with `kind: "kv"`,
   * the Deno KV database file (a local SQLite file; absent: Deno's default database, the platform's on Deno Deploy).
   * With a shared `STATE` (kv or redis) the journal always lives in the state store instead, and these are ignored;
   * `ownerDeadAfterMs`: how long an instance's heartbeat may be silent before others delete its conversations.
   */
  journal: {
    kind: Env["JOURNAL"];
    file?: string;
    kvPath?: string;
    ownerDeadAfterMs: number;
    /** The JOURNAL settings given (ignored with a shared STATE, where the journal lives in the state store). */
    given: string[];
    /** `STATE_DIRECTORY` (its first entry) and `XDG_STATE_HOME` (when absolute): where the default file goes. */
    directories: { stateDirectory?: string; xdgStateHome?: string };
  };
  /** Bounds on one upstream event and a whole reply (characters). */
  upstreamLimits: { maxEventChars: number; maxReplyChars: number };
  /** How upstream requests go out: lib/upstream/http1.ts's keep-alive client, or the runtime's fetch (proxies). */
  upstreamClient: Exclude<Env["UPSTREAM_CLIENT"], "auto">;
  /** How long lib/upstream/http1.ts waits for a new upstream connection (TLS included). */
  upstreamConnectTimeoutMs: number;
  /** Load the tokenizer at start-up (16-23 MB of RSS) instead of on the first request that counts tokens. */
  tokenizerPreload: boolean;
  /**
   * Client connections: a whole request head, a whole request body (and unread response bytes), an idle
   * keep-alive wait; the cap on open connections (absent: from the descriptor limit, see runtime/serve.ts).
   */
  http: { headerTimeoutMs: number; bodyTimeoutMs: number; idleTimeoutMs: number; maxConnections?: number };
  /** The token pool's settings, as lib/chat/pool.ts takes them (its clock is injected elsewhere). */
  pool: Omit<PoolOptions, "now">;
  /** POST /token/check per client: checks per minute, and at once. */
  tokenCheckLimit: { perMinute: number; burst: number };
  /** Take the client's address from the last X-Forwarded-For entry (behind a reverse proxy). */
  trustProxy: boolean;
  /** The bearer /metrics wants; absent: a gateway key in server-side mode, none in client mode. */
  metricsKey?: string;
  /** The bearer of the admin API (`/admin/tokens`); absent: it answers loopback peers only (see lib/http/admin.ts). */
  adminKey?: string;
  /**
   * Where the state several instances share lives (leases, account health, wake-ups): this process's memory,
   * Deno KV (`path`: a local SQLite file; absent: the platform's KV or Deno's default), or Redis by URL.
   * `timeoutMs` bounds every store call; `leaseTtlMs` is how long a dead instance's leases outlive it.
   */
  state: StateConfig;
  /**
   * Native multi-turn (lib/chat/threads.ts): continue the upstream conversation a request's history belongs to,
   * sending only the new messages; a kept conversation is deleted after `idleMs` without a turn, or sooner, least
   * recently used first, when this instance keeps more than `perAccount` on one account or `total` in all.
   */
  continuation: { enabled: boolean; idleMs: number; perAccount: number; total: number };
}

/** The `STATE` setting, parsed. */
export type StateConfig =
  & { timeoutMs: number; leaseTtlMs: number }
  & (
    | { kind: "memory" }
    | { kind: "kv"; path?: string }
    | { kind: "redis"; url: string }
  );

/** Raised for a bad environment; its message names the variable. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * Parses an environment map (pure: pass `process.env` or `Deno.env.toObject()`). UPSTREAM_CLIENT=auto means
 * lib/upstream/http1.ts on every runtime, and the runtime's fetch only when a proxy variable is set (only fetch honours
 * one). Not Bun's fetch by default: it runs at most 256 requests at once unless BUN_CONFIG_MAX_HTTP_REQUESTS was
 * set when the process started (set later, from the process itself, it is ignored), so 1,000 streams would queue
 * behind each other; lib/upstream/http1.ts has no such cap, never follows a redirect, and sends a chat at most once.
 * `runtime` is kept for callers and tests: the rule is the same on each.
 */
export function loadConfig(env: Record<string, string | undefined>): Config {
  // Empty strings mean "unset", as in a docker-compose file with `PORT=`.
  const clean = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = EnvSchema.safeParse(clean);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0] ?? "environment");
    // A store URL may carry a password: the message shows it masked.
    const shown = name === "STATE" ? redactUrls(clean[name] ?? "") : name === "ADMIN_KEY" ? "***" : clean[name] ?? "";
    throw new ConfigError(`Invalid ${name}=${JSON.stringify(shown)}: ${issue.message}`);
  }
  const e = parsed.data;
  const serverSide = e.EMOHAA_TOKENS !== undefined || e.EMOHAA_TOKENS_FILE !== undefined;
  const apiKeys = commaList(e.API_KEYS ?? "");
  // With ADMIN_KEY the keys may all be managed ones (POST /admin/keys): until the first exists, every request is a 401.
  if (serverSide && apiKeys.length === 0 && !e.ALLOW_ANONYMOUS && e.ADMIN_KEY === undefined) {
    throw new ConfigError(
      `Invalid ${
        e.EMOHAA_TOKENS !== undefined ? "EMOHAA_TOKENS" : "EMOHAA_TOKENS_FILE"
      } without API_KEYS: anyone reaching this port ` +
        "could use these Emohaa accounts. Set API_KEYS=key1,key2 (clients send one as their bearer), ADMIN_KEY to " +
        "create keys at runtime (POST /admin/keys), or ALLOW_ANONYMOUS=true to accept that",
    );
  }
  if (serverSide && apiKeys.length === 0 && e.ALLOW_ANONYMOUS && e.CORS_ORIGIN.trim() === "*") {
    throw new ConfigError(
      'Invalid ALLOW_ANONYMOUS=true with CORS_ORIGIN="*": any web page could spend these Emohaa accounts from its visitors\' ' +
        "browsers. Set CORS_ORIGIN to the origins of your own sites (CORS_ORIGIN=https://chat.example.com), or set API_KEYS",
    );
  }
  if (e.ADMIN_KEY !== undefined && (apiKeys.includes(e.ADMIN_KEY) || e.ADMIN_KEY === e.METRICS_KEY)) {
    throw new ConfigError(
      `Invalid ADMIN_KEY="***": it equals one of the ${
        apiKeys.includes(e.ADMIN_KEY) ? "API_KEYS" : "METRICS_KEY"
      }, so every client could change the server's tokens. Choose a key of its own`,
    );
  }
  return {
    port: e.PORT ?? e.SERVER_PORT ?? 8000,
    host: e.HOST ?? e.SERVER_HOST ?? "0.0.0.0",
    baseUrl: e.EMOHAA_BASE_URL.replace(/\/+$/, ""),
    timeouts: {
      createMs: e.UPSTREAM_CREATE_TIMEOUT_MS,
      firstPieceMs: e.UPSTREAM_FIRST_PIECE_TIMEOUT_MS,
      idleMs: e.UPSTREAM_IDLE_TIMEOUT_MS,
      totalMs: e.UPSTREAM_TOTAL_TIMEOUT_MS,
    },
    promptMaxBytes: e.PROMPT_MAX_BYTES,
    keepAliveMs: e.KEEPALIVE_INTERVAL_MS,
    maxAttempts: e.MAX_ATTEMPTS,
    logLevel: e.LOG_LEVEL,
    corsOrigin: e.CORS_ORIGIN,
    serverTokens: serverSide ? { inline: commaList(e.EMOHAA_TOKENS ?? ""), file: e.EMOHAA_TOKENS_FILE } : undefined,
    apiKeys,
    allowAnonymous: e.ALLOW_ANONYMOUS,
    keys: {
      defaults: {
        ...(e.KEY_DEFAULT_RPM !== undefined ? { rpm: e.KEY_DEFAULT_RPM } : {}),
        ...(e.KEY_DEFAULT_CONCURRENCY !== undefined ? { concurrency: e.KEY_DEFAULT_CONCURRENCY } : {}),
        ...(e.KEY_DEFAULT_TOKENS_PER_DAY !== undefined ? { tokensPerDay: e.KEY_DEFAULT_TOKENS_PER_DAY } : {}),
      },
      file: e.KEYS_FILE,
    },
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    maxBodyBytes: e.MAX_BODY_BYTES,
    journal: {
      kind: e.JOURNAL,
      file: e.JOURNAL_FILE,
      kvPath: e.JOURNAL_KV_PATH,
      ownerDeadAfterMs: e.STATE_OWNER_DEAD_AFTER_MS,
      given: (["JOURNAL", "JOURNAL_FILE", "JOURNAL_KV_PATH"] as const).filter((k) => env[k]),
      directories: {
        stateDirectory: e.STATE_DIRECTORY?.split(":")[0] || undefined,
        xdgStateHome: e.XDG_STATE_HOME?.startsWith("/") ? e.XDG_STATE_HOME : undefined,
      },
    },
    upstreamLimits: { maxEventChars: e.UPSTREAM_MAX_EVENT_BYTES, maxReplyChars: e.UPSTREAM_MAX_REPLY_BYTES },
    upstreamClient: e.UPSTREAM_CLIENT !== "auto"
      ? e.UPSTREAM_CLIENT
      : PROXY_VARS.some((v) => clean[v])
      ? "fetch"
      : "http1",
    upstreamConnectTimeoutMs: e.UPSTREAM_CONNECT_TIMEOUT_MS,
    tokenizerPreload: e.TOKENIZER_PRELOAD,
    http: {
      headerTimeoutMs: e.HTTP_HEADER_TIMEOUT_MS,
      bodyTimeoutMs: e.HTTP_BODY_TIMEOUT_MS,
      idleTimeoutMs: e.HTTP_IDLE_TIMEOUT_MS,
      maxConnections: e.MAX_CONNECTIONS,
    },
    pool: {
      perToken: e.TOKEN_CONCURRENCY,
      authCooldownMs: e.TOKEN_AUTH_COOLDOWN_MS,
      failCooldownMs: e.TOKEN_FAIL_COOLDOWN_MS,
      failThreshold: 2,
      queueTimeoutMs: e.QUEUE_TIMEOUT_MS,
      queueMax: e.QUEUE_MAX,
    },
    tokenCheckLimit: { perMinute: e.TOKEN_CHECK_RATE, burst: e.TOKEN_CHECK_BURST },
    trustProxy: e.TRUST_PROXY,
    metricsKey: e.METRICS_KEY,
    adminKey: e.ADMIN_KEY,
    state: parseState(e.STATE, e.STATE_TIMEOUT_MS, e.STATE_LEASE_TTL_MS),
    continuation: {
      enabled: e.CONTINUE_CONVERSATIONS,
      idleMs: e.CONVERSATION_IDLE_MS,
      perAccount: e.KEPT_PER_ACCOUNT,
      total: e.KEPT_MAX,
    },
  };
}

function parseState(value: string, timeoutMs: number, leaseTtlMs: number): StateConfig {
  const bounds = { timeoutMs, leaseTtlMs };
  if (value === "memory") return { kind: "memory", ...bounds };
  if (value === "kv") return { kind: "kv", ...bounds };
  if (value.startsWith("kv:")) return { kind: "kv", path: value.slice(3), ...bounds };
  return { kind: "redis", url: value, ...bounds };
}
