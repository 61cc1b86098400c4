// The Emohaa web upstream ("echo-prod"): signed requests to create, chat, delete and list conversations.
import { createHash } from "node:crypto";
import { EventSourceParserStream } from "eventsource-parser/stream";
import { ApiError } from "./errors.ts";

/** What went wrong upstream, for failover and token health decisions. */
export type UpstreamKind = "auth" | "busy" | "rate" | "server" | "network" | "timeout" | "protocol";

/** An upstream failure: an ApiError carrying the kind of failure (the client sees status and message). */
export class UpstreamError extends ApiError {
  constructor(readonly kind: UpstreamKind, status: number, message: string, opts: { code: string; retryAfter?: number; cause?: unknown }) {
    super(status, message, opts);
  }
}

export interface EmohaaClientOptions {
  baseUrl: string;
  fetch?: typeof fetch;
  /** Milliseconds since the epoch; injected for tests. */
  now?: () => number;
  /** The random X-Xss-Id; injected for tests. */
  randomId?: () => string;
  /** Bounds on what a hostile or broken upstream can make us hold in memory. */
  limits?: { maxEventChars?: number; maxReplyChars?: number };
}

/** The browser the upstream expects to talk to. */
const ORIGIN = "https://echo.turing-world.com";
const USER_AGENT =
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

/** The anti-bot signature: X-Xss-Real is md5(`${ts}-_-${id}`). */
export function sign(ts: number, id: string): { id: string; ts: string; real: string } {
  const t = String(ts);
  return { id, ts: t, real: createHash("md5").update(`${t}-_-${id}`).digest("hex") };
}

/** Reads a conversation id from any of the body forms the upstream used: `"id"`, `id`, `{"id": ...}`. */
export function parseConversationId(body: string): string | null {
  const text = body.trim();
  if (!text) return null;
  let value: unknown = text;
  try {
    value = JSON.parse(text);
  } catch {
    // plain-text id
  }
  if (value && typeof value === "object") {
    const o = value as Record<string, unknown>;
    value = o.id ?? o.cid ?? (o.data && typeof o.data === "object" ? (o.data as Record<string, unknown>).id : o.data);
  }
  if (typeof value === "number") value = String(value);
  if (typeof value !== "string" || !/^[\w.:-]{1,128}$/.test(value)) return null;
  return value;
}

interface Problem {
  status?: number;
  title?: string;
  detail?: string;
}

function asProblem(v: unknown): Problem | null {
  if (!v || typeof v !== "object" || Array.isArray(v)) return null;
  const p = v as Record<string, unknown>;
  if (typeof p.status !== "number" && typeof p.title !== "string") return null;
  return { status: typeof p.status === "number" ? p.status : undefined, title: String(p.title ?? ""), detail: String(p.detail ?? "") };
}

/** Maps an upstream status (HTTP or problem+json) to the error the client sees. Never echoes the token. */
export function upstreamFailure(status: number, what: string, problem: Problem | null, retryAfterHeader?: string | null): UpstreamError {
  const said = problem?.title || problem?.detail ? `: ${[problem.title, problem.detail].filter(Boolean).join(" - ").slice(0, 200)}` : "";
  if (status === 401 || status === 403) {
    return new UpstreamError("auth", 401, `Emohaa rejected the token (expired or invalid) while trying to ${what}`, { code: "invalid_token" });
  }
  if (status === 429) {
    const retryAfter = Number(retryAfterHeader) > 0 ? Number(retryAfterHeader) : 5;
    const busy = /progress|stream|busy|正在/i.test(said);
    return new UpstreamError(busy ? "busy" : "rate", 429, busy
      ? "Emohaa is still answering another request on this account; try again shortly"
      : `Emohaa rate limit reached while trying to ${what}`, { code: busy ? "account_busy" : "rate_limit_exceeded", retryAfter });
  }
  if (status >= 500) return new UpstreamError("server", 502, `Emohaa failed to ${what} (upstream status ${status})${said}`, { code: "upstream_error" });
  return new UpstreamError("protocol", 502, `Emohaa refused to ${what} (upstream status ${status})${said}`, { code: "upstream_error" });
}

function networkFailure(what: string, err: unknown): UpstreamError {
  return new UpstreamError("network", 502, `Cannot reach Emohaa to ${what}`, { code: "upstream_unreachable", cause: err });
}

/** The upstream client; every call takes the account token and an abort signal. */
export interface EmohaaClient {
  createConversation(token: string, signal?: AbortSignal): Promise<string>;
  /** Opens the chat stream; resolves once the upstream answered with an event stream. */
  chat(token: string, cid: string, prompt: string, signal?: AbortSignal): Promise<ReadableStream<string>>;
  deleteConversation(token: string, cid: string, signal?: AbortSignal): Promise<void>;
  listConversations(token: string, signal?: AbortSignal): Promise<unknown[]>;
}

/** Builds the upstream client around an injected `fetch`. */
export function createEmohaaClient(options: EmohaaClientOptions): EmohaaClient {
  const base = options.baseUrl.replace(/\/+$/, "");
  const doFetch = options.fetch ?? fetch;
  const now = options.now ?? Date.now;
  const randomId = options.randomId ?? (() => Math.random().toString());
  const maxEventChars = options.limits?.maxEventChars ?? 256 * 1024;
  const maxReplyChars = options.limits?.maxReplyChars ?? 1024 * 1024;

  function request(token: string, method: string, path: string, query: Record<string, string>, signal?: AbortSignal, accept?: string) {
    const s = sign(now(), randomId());
    const url = new URL(base + path);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    const withSig = path === "/chat";
    if (withSig) {
      url.searchParams.set("xts", s.ts);
      url.searchParams.set("xid", s.id);
      url.searchParams.set("xreal", s.real);
    }
    return doFetch(url, {
      method,
      signal,
      headers: {
        Authorization: `Bearer ${token}`,
        Accept: accept ?? "application/json, text/plain, */*",
        "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8",
        Origin: ORIGIN,
        Referer: ORIGIN + "/",
        "User-Agent": USER_AGENT,
        "X-Xss-Id": s.id,
        "X-Xss-Ts": s.ts,
        "X-Xss-Real": s.real,
      },
    });
  }

  /** Sends a JSON-answering call; throws UpstreamError for HTTP errors and problem bodies. */
  async function call(token: string, method: string, path: string, query: Record<string, string>, what: string, signal?: AbortSignal): Promise<string> {
    let res: Response;
    try {
      res = await request(token, method, path, query, signal);
    } catch (err) {
      if (signal?.aborted) throw err;
      throw networkFailure(what, err);
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      if (signal?.aborted) throw err;
      throw networkFailure(what, err);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    const problem = asProblem(json);
    // The upstream may send a problem body with HTTP 200: its own status field wins.
    const status = !res.ok ? res.status : problem?.status && problem.status >= 400 ? problem.status : 0;
    if (status) throw upstreamFailure(status, what, problem, res.headers.get("retry-after"));
    return text;
  }

  return {
    async createConversation(token, signal) {
      const body = await call(token, "GET", "/generate/id", { create: "true" }, "create a conversation", signal);
      const id = parseConversationId(body);
      if (!id) throw new UpstreamError("protocol", 502, "Emohaa answered with no conversation id", { code: "upstream_protocol_error" });
      return id;
    },

    async chat(token, cid, prompt, signal) {
      const what = "answer";
      let res: Response;
      try {
        res = await request(token, "GET", "/chat", { token, cid, prompt, role: "echo" }, signal, "text/event-stream");
      } catch (err) {
        if (signal?.aborted) throw err;
        throw networkFailure(what, err);
      }
      const type = res.headers.get("content-type") ?? "";
      if (!res.ok || !type.includes("text/event-stream") || !res.body) {
        const text = await res.text().catch(() => "");
        let problem: Problem | null = null;
        try {
          problem = asProblem(JSON.parse(text));
        } catch {
          // not JSON
        }
        const status = !res.ok ? res.status : problem?.status && problem.status >= 400 ? problem.status : 502;
        throw upstreamFailure(status, what, problem, res.headers.get("retry-after"));
      }
      return res.body
        .pipeThrough(new TextDecoderStream())
        .pipeThrough(new EventSourceParserStream({ maxBufferSize: maxEventChars }))
        .pipeThrough(eventsToPieces(maxReplyChars));
    },

    async deleteConversation(token, cid, signal) {
      await call(token, "DELETE", "/conv", { cid }, "delete a conversation", signal);
    },

    async listConversations(token, signal) {
      const text = await call(token, "GET", "/convs", { role: "echo" }, "list conversations", signal);
      const list = JSON.parse(text);
      if (!Array.isArray(list)) throw new UpstreamError("auth", 401, "Emohaa did not accept the token", { code: "invalid_token" });
      return list;
    },
  };
}

/**
 * Turns parsed SSE events into reply pieces; ends the stream at `[DONE]`.
 * A stream that closes without `[DONE]` was cut: that is an error, never a normal end.
 */
export function eventsToPieces(maxReplyChars = Infinity): TransformStream<{ event?: string; data: string }, string> {
  let done = false;
  let total = 0;
  return new TransformStream({
    transform(ev, controller) {
      if (done) return;
      total += ev.data.length;
      if (total > maxReplyChars) {
        throw new UpstreamError("protocol", 502, `Emohaa's answer exceeded ${maxReplyChars} characters`, { code: "upstream_reply_too_large" });
      }
      if (ev.data === "[DONE]") {
        done = true;
        controller.terminate();
        return;
      }
      const problem = ev.event === "error" || ev.data.startsWith("{") ? problemOf(ev.data) : null;
      if (ev.event === "error" || (problem && problem.status && problem.status >= 400)) {
        throw upstreamFailure(problem?.status ?? 500, "finish the answer", problem);
      }
      if (ev.data) controller.enqueue(ev.data);
    },
    flush() {
      if (!done) throw new UpstreamError("network", 502, "Emohaa's stream ended before the answer was complete", { code: "upstream_stream_cut" });
    },
  });
}

function problemOf(data: string): Problem | null {
  try {
    return asProblem(JSON.parse(data));
  } catch {
    return null;
  }
}
