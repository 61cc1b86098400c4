// Test support: the app wired to an in-process simulator by lib/start.ts, driven through app.request().
import type { ChatTimeouts } from "../../lib/chat/reply.ts";
import type { PoolOptions } from "../../lib/chat/pool.ts";
import type { Tokenizer } from "../../lib/openai/translate.ts";
import { type Gateway, start } from "../../lib/start.ts";
import { runtimeParts } from "../../runtime/parts.ts";
import { createSimulator, type Simulator } from "../../sim/simulator.ts";
import { simFetch } from "./sim.ts";

export interface TestApp {
  app: Gateway["app"];
  /** Every part, as lib/start.ts built them. */
  gateway: Gateway;
  sim: Simulator;
  conversations: Gateway["conversations"];
  pool: Gateway["pool"];
  metrics: Gateway["metrics"];
  logs: string[];
  /** POSTs JSON to the chat route with the given tokens. */
  chat(body: unknown, tokens?: string, headers?: Record<string, string>): Promise<Response>;
}

export interface TestAppOptions {
  timeouts?: Partial<ChatTimeouts>;
  promptMaxBytes?: number;
  keepAliveMs?: number;
  maxAttempts?: number;
  pool?: Partial<PoolOptions>;
  serverTokens?: string[];
  apiKeys?: string[];
  tokenCheckLimit?: { perMinute: number; burst: number };
  /** The tokenizer loader (default: the real one). */
  tokenizer?: () => Promise<Tokenizer>;
  /** Keep conversations between turns (CONTINUE_CONVERSATIONS; default false here: most tests count deletions). */
  continueConversations?: boolean;
  /** CONVERSATION_IDLE_MS (under the environment's bound of 1 s when a test wants it). */
  conversationIdleMs?: number;
}

/**
 * The gateway as every entry starts it (lib/start.ts), with the simulator's fetch as the transport, every log
 * line kept at debug level, ids `t1`, `t2`, ..., and waits short enough for tests.
 */
export async function testApp(opts: TestAppOptions = {}): Promise<TestApp> {
  const sim = createSimulator();
  const logs: string[] = [];
  let n = 0;
  // Conversations are deleted after each reply unless a test asks to keep them (native multi-turn).
  const env = {
    EMOHAA_BASE_URL: "http://sim/echo-prod",
    UPSTREAM_CLIENT: "fetch",
    LOG_LEVEL: "debug",
    JOURNAL: "off",
    CONTINUE_CONVERSATIONS: String(opts.continueConversations ?? false),
  };
  const g = await start(env, { ...runtimeParts(), fetch: simFetch(sim), id: () => `t${++n}` }, {
    config: (c) => ({
      ...c,
      timeouts: { createMs: 2000, firstPieceMs: 2000, idleMs: 2000, totalMs: 10_000, ...opts.timeouts },
      promptMaxBytes: opts.promptMaxBytes ?? c.promptMaxBytes,
      keepAliveMs: opts.keepAliveMs ?? c.keepAliveMs,
      maxAttempts: opts.maxAttempts ?? c.maxAttempts,
      pool: { ...c.pool, queueTimeoutMs: 5000, queueMax: 100, ...opts.pool },
      serverTokens: opts.serverTokens ? { inline: opts.serverTokens } : undefined,
      apiKeys: opts.apiKeys ?? [],
      tokenCheckLimit: opts.tokenCheckLimit ?? c.tokenCheckLimit,
      upstreamLimits: { ...c.upstreamLimits, maxReplyChars: 64 * 1024 },
      continuation: { ...c.continuation, idleMs: opts.conversationIdleMs ?? c.continuation.idleMs },
    }),
    deleteRetryDelaysMs: [5, 10, 20],
    tokenizer: opts.tokenizer,
    logLine: (l) => logs.push(l),
  });
  const { app, conversations, pool, metrics } = g;
  return {
    app,
    gateway: g,
    sim,
    conversations,
    pool,
    metrics,
    logs,
    chat: (body, tokens = "live-1", headers = {}) =>
      Promise.resolve(
        app.request("/v1/chat/completions", {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${tokens}`, ...headers },
          body: typeof body === "string" || body instanceof Uint8Array ? (body as BodyInit) : JSON.stringify(body),
        }),
      ),
  };
}

/** Parses an SSE body into its `data:` payloads (and comment lines as `:comment`). */
export async function sseEvents(res: Response): Promise<string[]> {
  const text = await res.text();
  return text
    .split("\n\n")
    .filter((f) => f.length)
    .map((f) => (f.startsWith("data: ") ? f.slice(6) : f));
}

export const user = (content: string) => ({ messages: [{ role: "user", content }] });
