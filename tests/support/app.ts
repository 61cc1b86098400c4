// Test support: the app wired to an in-process simulator, driven through app.request().
import { createApp } from "../../lib/app.ts";
import { Conversations, type ChatTimeouts } from "../../lib/chat.ts";
import { createEmohaaClient } from "../../lib/emohaa.ts";
import { createLogger } from "../../lib/log.ts";
import { createSimulator, type Simulator } from "../../lib/sim.ts";
import { TokenPicker } from "../../lib/tokens.ts";
import { loadTokenizer } from "../../lib/usage.ts";
import { simFetch } from "./sim.ts";

export interface TestApp {
  app: ReturnType<typeof createApp>;
  sim: Simulator;
  conversations: Conversations;
  logs: string[];
  /** POSTs JSON to the chat route with the given tokens. */
  chat(body: unknown, tokens?: string, headers?: Record<string, string>): Promise<Response>;
}

export function testApp(opts: { timeouts?: Partial<ChatTimeouts>; promptMaxBytes?: number; keepAliveMs?: number; maxAttempts?: number } = {}): TestApp {
  const sim = createSimulator();
  const client = createEmohaaClient({ baseUrl: "http://sim/echo-prod", fetch: simFetch(sim) });
  const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
  const conversations = new Conversations(client, sleep, [5, 10, 20]);
  const logs: string[] = [];
  const timeouts = { createMs: 2000, firstPieceMs: 2000, idleMs: 2000, totalMs: 10_000, ...opts.timeouts };
  let n = 0;
  const app = createApp({
    chat: { client, picker: new TokenPicker(), conversations, timeouts, maxAttempts: opts.maxAttempts ?? 3, sleep },
    client,
    logger: createLogger("debug", (l) => logs.push(l)),
    tokenizer: loadTokenizer,
    promptMaxBytes: opts.promptMaxBytes ?? 6000,
    keepAliveMs: opts.keepAliveMs ?? 15_000,
    corsOrigin: "*",
    now: Date.now,
    id: () => `t${++n}`,
  });
  return {
    app,
    sim,
    conversations,
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
