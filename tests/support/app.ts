// Test support: the app wired to an in-process simulator, driven through app.request().
import { createApp } from "../../lib/http/app.ts";
import type { ChatTimeouts } from "../../lib/chat/reply.ts";
import { Conversations } from "../../lib/chat/conversations.ts";
import { createEmohaaClient } from "../../lib/upstream/emohaa.ts";
import { createLogger } from "../../lib/http/log.ts";
import { Metrics } from "../../lib/http/metrics.ts";
import { createSimulator, type Simulator } from "../../sim/simulator.ts";
import { createAuth } from "../../lib/http/auth.ts";
import { type PoolOptions, TokenPool } from "../../lib/chat/pool.ts";
import type { Tokenizer } from "../../lib/openai/translate.ts";
import { loadTokenizer } from "../../lib/openai/tokenizer.ts";
import { simFetch } from "./sim.ts";

export interface TestApp {
  app: ReturnType<typeof createApp>;
  sim: Simulator;
  conversations: Conversations;
  pool: TokenPool;
  metrics: Metrics;
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
}

export function testApp(opts: TestAppOptions = {}): TestApp {
  const sim = createSimulator();
  const client = createEmohaaClient({ baseUrl: "http://sim/echo-prod", fetch: simFetch(sim), limits: { maxEventChars: 256 * 1024, maxReplyChars: 64 * 1024 } });
  const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
  const conversations = new Conversations(client, sleep, [5, 10, 20]);
  const logs: string[] = [];
  const timeouts = { createMs: 2000, firstPieceMs: 2000, idleMs: 2000, totalMs: 10_000, ...opts.timeouts };
  let n = 0;
  const pool = new TokenPool({ perToken: 1, authCooldownMs: 600_000, failCooldownMs: 30_000, failThreshold: 2, queueTimeoutMs: 5000, queueMax: 100, ...opts.pool });
  const serverTokens = opts.serverTokens;
  const metrics = new Metrics();
  const app = createApp({
    chat: { client, pool, conversations, timeouts, maxAttempts: opts.maxAttempts ?? 3, sleep, onFirstPiece: (s) => metrics.firstPiece(s) },
    metrics,
    auth: createAuth({ serverTokens: serverTokens ? () => serverTokens : undefined, apiKeys: opts.apiKeys ?? [] }),
    pool,
    client,
    logger: createLogger("debug", (l) => logs.push(l)),
    tokenizer: opts.tokenizer ?? loadTokenizer,
    promptMaxBytes: opts.promptMaxBytes ?? 6000,
    keepAliveMs: opts.keepAliveMs ?? 15_000,
    corsOrigin: "*",
    tokenCheckLimit: opts.tokenCheckLimit,
    now: Date.now,
    id: () => `t${++n}`,
  });
  return {
    app,
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
          body: typeof body === "string" ? body : JSON.stringify(body),
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
