// The upstream simulator: the Emohaa "echo-prod" protocol with its failure modes, for tests and the demo.
import { setImmediate } from "node:timers";
import { isExpired } from "../lib/chat/expiry.ts";
import { sign } from "../lib/upstream/emohaa.ts";

/**
 * Token prefixes choose the behaviour of an account (the rest of the token is free):
 * - `live`      healthy
 * - `expired`   401 problem+json on every call; `expired200` the same problem body with HTTP 200
 * - `create500` creating a conversation fails with 500
 * - `chat500`   the chat call fails with 500
 * - `ratelimit` every call answers 429 with `retry-after: 7`
 * - `cut`       the stream ends after a few pieces without `[DONE]`
 * - `silent`    the stream opens and sends nothing
 * - `slow`      250 ms between pieces
 * - `malformed` junk lines, comments, CRLF line ends and empty events around the real pieces
 * - `delfail`   deleting fails with 500 twice per conversation, then succeeds
 * - `hang`      creating a conversation never answers
 * - `leaky…`    a hostile upstream whose errors quote the token (plain, URL-encoded, after `Bearer`, in a URL and as
 *               `token=`): `leakycreate` creating fails with 500, `leakychat` the chat call fails with 500,
 *               `leakyevent` the stream sends one piece and then an `event: error`, `leakydel` deleting always
 *               fails with 500, `leakylist` listing conversations fails with 500
 * A JWT (Emohaa's real token form) is healthy until its payload's `exp` passes, then refused like `expired`.
 * Any account has one stream at a time: a second concurrent chat gets 429 "another request is in progress".
 *
 * Directives in the prompt shape the reply: `[[pieces:N]]` N pieces, `[[delay:MS]]` a gap before each piece,
 * `[[flush]]` each piece in its own write with no gap (a stream as fast as the simulator can send it, where
 * without it an instant reply leaves in one burst), `[[reply:TEXT]]` exactly TEXT, `[[split]]` send each
 * piece's bytes in two writes cut inside a character,
 * `[[echo]]` reply with the prompt itself, `[[recall]]` reply with everything this conversation was told, its
 * prompts in order joined by newlines (a conversation remembers what its `cid` was told until it is deleted), `[[multiline]]` pieces holding newlines, `[[huge:N]]` one event of
 * N characters before the reply, sent in 64 KiB writes (a hostile upstream), `[[hugeone:N]]` the same event
 * complete in a single write, `[[repeat:TEXT:N]]` TEXT N times over (a reply too long for the prompt to carry;
 * with `[[pieces:N]]` it comes in N pieces, e.g. 3 x 50,000 `b`).
 */
export interface SimState {
  created: number;
  deleted: number;
  /** Conversations created and not deleted. */
  open: number;
  /** Deletes of a conversation already deleted or unknown. */
  badDeletes: number;
  /** The conversations deleted, in order (tests tell whose they were by `promptOf`). */
  deletedIds: string[];
  /** The last prompt each conversation was asked (kept only in memory, for tests). */
  promptOf: Record<string, string>;
  /** Every prompt each conversation was told, in order (kept after deletion too: the tests' record). */
  promptsOf: Record<string, string[]>;
  chats: number;
  openStreams: number;
  maxOpenStreams: number;
  /** Streams the client closed before the end. */
  aborted: number;
  badSignatures: number;
  /** Prompts received (kept only in memory, for tests). */
  prompts: string[];
  /** Upstream calls per account token (the simulator's own test accounts). */
  callsByToken: Record<string, number>;
  /** Chats refused with 429 "another request is in progress": a second stream on a busy account. */
  busy: number;
  /** The most chats asked for at once on each account, refused ones included (one account, one stream: 1). */
  maxOpenByToken: Record<string, number>;
  /** Every request: method and path, and whether its headers were browser-like. */
  requests: { method: string; path: string; browserLike: boolean }[];
}

export interface Simulator {
  fetch(req: Request): Promise<Response>;
  state(): SimState;
  reset(): void;
}

export const DEFAULT_REPLY = "你好啊！我是Emohaa，想和我聊点什么吗？😊 今天心情如何？";

interface Conv {
  token: string;
  /** What this conversation was told, in order: its context, forgotten when it is deleted. */
  memory: string[];
  deleted: boolean;
  deleteFailures: number;
}

const problem = (status: number, title: string, detail = "", http = status, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify({ status, title, detail }), {
    status: http,
    headers: { "content-type": "application/problem+json", ...headers },
  });

/** The error a `leaky…` account gets: every way an upstream might quote the request's token back. */
const leakyProblem = (token: string) =>
  JSON.stringify({
    status: 500,
    title: `Internal error for Bearer ${token}`,
    detail: `GET https://upstream.invalid/chat?token=${
      encodeURIComponent(token)
    } failed: token=${token} (${token}) is not allowed`,
  });
const leaky = (token: string, call: "create" | "chat" | "event" | "del" | "list") =>
  token.startsWith(`leaky${call}`)
    ? new Response(leakyProblem(token), { status: 500, headers: { "content-type": "application/problem+json" } })
    : undefined;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
  });

/** Splits text into `n` pieces (by code point, so no piece splits a character). */
export function splitPieces(text: string, n: number): string[] {
  const chars = [...text];
  const size = Math.max(1, Math.ceil(chars.length / n));
  const out: string[] = [];
  for (let i = 0; i < chars.length; i += size) out.push(chars.slice(i, i + size).join(""));
  return out;
}

function directive(prompt: string, name: string): string | undefined {
  const m = new RegExp(`\\[\\[${name}(?::([^\\]]*))?\\]\\]`).exec(prompt);
  return m ? (m[1] ?? "") : undefined;
}

/** Builds a simulator; `maxUrl` is the longest request URL it accepts (real servers stop near 8 KiB). */
export function createSimulator(options: { maxUrl?: number; sigWindowMs?: number } = {}): Simulator {
  const maxUrl = options.maxUrl ?? 8192;
  const sigWindowMs = options.sigWindowMs ?? 5 * 60_000;
  let convs = new Map<string, Conv>();
  let streaming = new Map<string, number>();
  let seq = 0;
  let s: SimState;
  const fresh = (): SimState => ({
    created: 0,
    deleted: 0,
    open: 0,
    badDeletes: 0,
    deletedIds: [],
    promptOf: {},
    promptsOf: {},
    chats: 0,
    openStreams: 0,
    maxOpenStreams: 0,
    aborted: 0,
    badSignatures: 0,
    prompts: [],
    requests: [],
    callsByToken: {},
    busy: 0,
    maxOpenByToken: {},
  });
  s = fresh();

  function checkSignature(h: Headers, q?: URLSearchParams): boolean {
    const id = h.get("x-xss-id");
    const ts = h.get("x-xss-ts");
    const real = h.get("x-xss-real");
    if (!id || !ts || !real || !/^\d+$/.test(ts)) return false;
    if (Math.abs(Date.now() - Number(ts)) > sigWindowMs) return false;
    if (sign(Number(ts), id).real !== real) return false;
    if (q && (q.get("xts") !== ts || q.get("xid") !== id || q.get("xreal") !== real)) return false;
    return true;
  }

  function reply(prompt: string, memory: readonly string[]): string[] {
    const repeat = /^(.*):(\d+)$/s.exec(directive(prompt, "repeat") ?? "");
    const text = repeat
      ? repeat[1]!.repeat(Number(repeat[2]))
      : directive(prompt, "recall") !== undefined
      ? memory.join("\n")
      : directive(prompt, "echo") !== undefined
      ? prompt
      : (directive(prompt, "reply") ?? DEFAULT_REPLY);
    const n = Number(directive(prompt, "pieces") ?? 0) || Math.max(1, Math.ceil([...text].length / 3));
    if (
      directive(prompt, "pieces") && !repeat && directive(prompt, "reply") === undefined &&
      directive(prompt, "echo") === undefined
    ) {
      return Array.from({ length: n }, (_, i) => `片${i % 10}`);
    }
    const pieces = splitPieces(text, n);
    if (directive(prompt, "multiline") !== undefined) return pieces.map((p, i) => (i % 2 ? `${p}\n第二行` : p));
    return pieces;
  }

  function chatStream(token: string, prompt: string, memory: readonly string[], signal: AbortSignal): Response {
    const enc = new TextEncoder();
    const pieces = reply(prompt, memory);
    const delay = token.startsWith("slow") ? 250 : Number(directive(prompt, "delay") ?? 0);
    const flush = directive(prompt, "flush") !== undefined;
    const split = directive(prompt, "split") !== undefined;
    const malformed = token.startsWith("malformed");
    const cut = token.startsWith("cut");
    const silent = token.startsWith("silent");
    let closed = false;
    const finish = (aborted: boolean) => {
      if (closed) return;
      closed = true;
      s.openStreams--;
      if (aborted) s.aborted++;
      const n = (streaming.get(token) ?? 1) - 1;
      if (n <= 0) streaming.delete(token);
      else streaming.set(token, n);
    };
    const body = new ReadableStream<Uint8Array>({
      async start(controller) {
        const write = (text: string) => {
          if (!closed) controller.enqueue(enc.encode(text));
        };
        try {
          if (silent) {
            await sleep(3_600_000, signal);
            return;
          }
          if (malformed) write(": comment\r\n\r\nevent: message\r\nretry: 10\r\n\r\ngarbage line without colon\n\n");
          const hugeOne = Number(directive(prompt, "hugeone") ?? 0);
          if (hugeOne) write(`data: ${"x".repeat(hugeOne)}\n\n`);
          const huge = Number(directive(prompt, "huge") ?? 0);
          if (huge) {
            // A hostile upstream: one endless event, sent in 64 KiB writes.
            for (let sent = 0; sent < huge && !closed && !signal.aborted; sent += 65536) {
              write((sent ? "" : "data: ") + "x".repeat(Math.min(65536, huge - sent)));
              await sleep(1, signal);
            }
          }
          for (let i = 0; i < pieces.length; i++) {
            if (delay) await sleep(delay, signal);
            // A turn of the event loop between pieces lets the server write each one out on its own.
            else if (flush && i) await new Promise((r) => setImmediate(r));
            if (closed || signal.aborted) return;
            if (cut && i === Math.min(2, pieces.length - 1)) {
              controller.close();
              finish(false);
              return;
            }
            const piece = pieces[i]!;
            const frame = piece.split("\n").map((l) => `data: ${l}`).join(malformed ? "\r\n" : "\n") +
              (malformed ? "\r\n\r\n" : "\n\n");
            if (split) {
              const bytes = enc.encode(frame);
              // Cut inside the first multi-byte character, so a decoder must carry bytes across reads.
              const at = bytes.findIndex((b) => b >= 0x80) + 1 || Math.floor(bytes.length / 2);
              controller.enqueue(bytes.slice(0, at));
              await sleep(5, signal);
              if (closed) return;
              controller.enqueue(bytes.slice(at));
            } else write(frame);
            if (malformed && i === 0) write("data:\n\n");
            if (i === 0 && token.startsWith("leakyevent")) {
              write(`event: error\ndata: ${leakyProblem(token)}\n\n`);
              controller.close();
              finish(false);
              return;
            }
          }
          write("data: [DONE]\n\n");
          controller.close();
          finish(false);
        } catch {
          finish(true);
        }
      },
      cancel() {
        finish(true);
      },
    });
    signal.addEventListener("abort", () => finish(true), { once: true });
    return new Response(body, {
      headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" },
    });
  }

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const path = url.pathname.replace(/^\/echo-prod/, "");
    if (path === "/__sim/state") return Response.json(s);
    if (path === "/__sim/reset" && req.method === "POST") {
      api.reset();
      return Response.json({ ok: true });
    }
    const h = req.headers;
    s.requests.push({
      method: req.method,
      path,
      browserLike: h.get("origin") === "https://echo.turing-world.com" &&
        (h.get("user-agent") ?? "").includes("Mozilla/5.0") && !!h.get("referer"),
    });
    if (req.url.length > maxUrl) return problem(414, "URI Too Long");
    const auth = /^Bearer (.+)$/.exec(h.get("authorization") ?? "");
    if (!auth) return problem(401, "Unauthorized", "missing token");
    const token = auth[1]!;
    s.callsByToken[token] = (s.callsByToken[token] ?? 0) + 1;
    if (!checkSignature(h, path === "/chat" ? url.searchParams : undefined)) {
      s.badSignatures++;
      return problem(403, "Forbidden", "bad signature");
    }
    // A real Emohaa token is a JWT: once its `exp` has passed it is refused like an `expired` account.
    if (isExpired(token, Date.now())) return problem(401, "Unauthorized", "token expired");
    if (token.startsWith("expired200")) return problem(401, "Unauthorized", "token expired", 200);
    if (token.startsWith("expired")) return problem(401, "Unauthorized", "token expired");
    if (token.startsWith("ratelimit")) {
      return problem(429, "Too Many Requests", "slow down", 429, { "retry-after": "7" });
    }

    if (path === "/generate/id" && req.method === "GET") {
      if (token.startsWith("hang")) {
        await sleep(3_600_000, req.signal);
        return problem(504, "Gateway Timeout");
      }
      if (token.startsWith("create500")) return problem(500, "Internal Server Error", "cannot create");
      const leak = leaky(token, "create");
      if (leak) return leak;
      const id = `conv-${++seq}-${Math.random().toString(36).slice(2, 8)}`;
      convs.set(id, { token, memory: [], deleted: false, deleteFailures: 0 });
      s.created++;
      s.open++;
      // The upstream's id body came in three forms: plain text, a JSON string, or an object.
      const form = seq % 3;
      const body = form === 0 ? id : form === 1 ? JSON.stringify(id) : JSON.stringify({ id });
      return new Response(body, { headers: { "content-type": form === 0 ? "text/plain" : "application/json" } });
    }
    if (path === "/chat" && req.method === "GET") {
      s.chats++;
      const q = url.searchParams;
      if (q.get("token") !== token || q.get("role") !== "echo") {
        return problem(400, "Bad Request", "token or role mismatch");
      }
      const conv = convs.get(q.get("cid") ?? "");
      if (!conv || conv.deleted || conv.token !== token) return problem(404, "Not Found", "no such conversation");
      if (token.startsWith("chat500")) return problem(500, "Internal Server Error", "model failed");
      const leak = leaky(token, "chat");
      if (leak) return leak;
      const asking = (streaming.get(token) ?? 0) + 1;
      s.maxOpenByToken[token] = Math.max(s.maxOpenByToken[token] ?? 0, asking);
      if (asking > 1) {
        s.busy++;
        return problem(429, "Too Many Requests", "another request is in progress", 429, { "retry-after": "1" });
      }
      const prompt = q.get("prompt") ?? "";
      s.prompts.push(prompt);
      s.promptOf[q.get("cid")!] = prompt;
      (s.promptsOf[q.get("cid")!] ??= []).push(prompt);
      conv.memory.push(prompt);
      streaming.set(token, 1);
      s.openStreams++;
      s.maxOpenStreams = Math.max(s.maxOpenStreams, s.openStreams);
      return chatStream(token, prompt, conv.memory, req.signal);
    }
    if (path === "/conv" && req.method === "DELETE") {
      const conv = convs.get(url.searchParams.get("cid") ?? "");
      if (!conv || conv.deleted || conv.token !== token) {
        s.badDeletes++;
        return problem(404, "Not Found", "no such conversation");
      }
      const leak = leaky(token, "del");
      if (leak) return leak;
      if (token.startsWith("delfail") && conv.deleteFailures < 2) {
        conv.deleteFailures++;
        return problem(500, "Internal Server Error", "try again");
      }
      conv.deleted = true;
      conv.memory = [];
      s.deleted++;
      s.deletedIds.push(url.searchParams.get("cid")!);
      s.open--;
      return Response.json({ status: 200, title: "OK" });
    }
    if (path === "/convs" && req.method === "GET") {
      const leak = leaky(token, "list");
      if (leak) return leak;
      return Response.json(
        [...convs.entries()].filter(([, c]) => c.token === token && !c.deleted).map(([id]) => ({ id, role: "echo" })),
      );
    }
    return problem(404, "Not Found", `no route ${req.method} ${path}`);
  }

  const api: Simulator = {
    fetch: handle,
    state: () => structuredClone(s),
    reset() {
      convs = new Map();
      streaming = new Map();
      s = fresh();
    },
  };
  return api;
}
