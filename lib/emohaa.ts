// The Emohaa web upstream ("echo-prod"): signed requests to create, chat, delete and list conversations.
import { createHash } from "node:crypto";
import { createParser } from "eventsource-parser";
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

/**
 * JSON.parse for a body that may not be JSON: undefined instead of a SyntaxError. Text that cannot start a
 * JSON value is not even tried: a thrown error costs more than the whole parse (plain-text ids, every request).
 */
function maybeJson(text: string): unknown {
  const c = text.trimStart().charCodeAt(0);
  // { [ " - 0-9 t f n
  if (!(c === 123 || c === 91 || c === 34 || c === 45 || (c >= 48 && c <= 57) || c === 116 || c === 102 || c === 110)) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Reads a conversation id from any of the body forms the upstream used: `"id"`, `id`, `{"id": ...}`. */
export function parseConversationId(body: string): string | null {
  const text = body.trim();
  if (!text) return null;
  const parsed = maybeJson(text);
  // A plain-text id is the text itself.
  let value: unknown = parsed === undefined ? text : parsed;
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
  /**
   * Opens the chat; resolves once the upstream answered with an event stream. The hot path: pieces come in
   * batches, one per upstream read, with no stream stage per piece.
   */
  openChat(token: string, cid: string, prompt: string, signal?: AbortSignal): Promise<PieceReader>;
  /** The same reply as a stream of pieces. */
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
    // One serialisation of the query (the prompt may be kilobytes): the same bytes URL.searchParams would give.
    const params = new URLSearchParams(query);
    if (path === "/chat") {
      params.set("xts", s.ts);
      params.set("xid", s.id);
      params.set("xreal", s.real);
    }
    return doFetch(`${base}${path}?${params}`, {
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
    const problem = asProblem(maybeJson(text));
    // The upstream may send a problem body with HTTP 200: its own status field wins.
    const status = !res.ok ? res.status : problem?.status && problem.status >= 400 ? problem.status : 0;
    if (status) throw upstreamFailure(status, what, problem, res.headers.get("retry-after"));
    return text;
  }

  async function openChat(token: string, cid: string, prompt: string, signal?: AbortSignal): Promise<PieceReader> {
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
      const problem = asProblem(maybeJson(await res.text().catch(() => "")));
      const status = !res.ok ? res.status : problem?.status && problem.status >= 400 ? problem.status : 502;
      throw upstreamFailure(status, what, problem, res.headers.get("retry-after"));
    }
    return pieceReader(res.body, maxEventChars, maxReplyChars);
  }

  return {
    async createConversation(token, signal) {
      const body = await call(token, "GET", "/generate/id", { create: "true" }, "create a conversation", signal);
      const id = parseConversationId(body);
      if (!id) throw new UpstreamError("protocol", 502, "Emohaa answered with no conversation id", { code: "upstream_protocol_error" });
      return id;
    },

    openChat,

    async chat(token, cid, prompt, signal) {
      const reader = await openChat(token, cid, prompt, signal);
      return new ReadableStream<string>({
        async pull(controller) {
          const pieces = await reader.read();
          if (pieces === null) controller.close();
          else for (const p of pieces) controller.enqueue(p);
        },
        cancel: () => reader.cancel(),
      });
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

/** Where a reply stands: characters seen so far (against the size bound) and whether `[DONE]` arrived. */
interface ReplyState {
  total: number;
  done: boolean;
}

/**
 * The rules for one upstream event, shared by both readers: returns the piece it carries (or "" for none),
 * marks the end at `[DONE]`, throws for an error event or a reply over `maxReplyChars`.
 */
function pieceOf(ev: { event?: string; data: string }, state: ReplyState, maxReplyChars: number): string {
  if (state.done) return "";
  state.total += ev.data.length;
  if (state.total > maxReplyChars) {
    throw new UpstreamError("protocol", 502, `Emohaa's answer exceeded ${maxReplyChars} characters`, { code: "upstream_reply_too_large" });
  }
  if (ev.data === "[DONE]") {
    state.done = true;
    return "";
  }
  // Only an event that may be a problem body is parsed as JSON: pieces are plain text.
  const problem = ev.event === "error" || ev.data.charCodeAt(0) === 123 ? problemOf(ev.data) : null;
  if (ev.event === "error" || (problem && problem.status && problem.status >= 400)) {
    throw upstreamFailure(problem?.status ?? 500, "finish the answer", problem);
  }
  return ev.data;
}

const streamCut = () => new UpstreamError("network", 502, "Emohaa's stream ended before the answer was complete", { code: "upstream_stream_cut" });

/**
 * Turns parsed SSE events into reply pieces; ends the stream at `[DONE]`.
 * A stream that closes without `[DONE]` was cut: that is an error, never a normal end.
 */
export function eventsToPieces(maxReplyChars = Infinity): TransformStream<{ event?: string; data: string }, string> {
  const state: ReplyState = { total: 0, done: false };
  return new TransformStream({
    transform(ev, controller) {
      const piece = pieceOf(ev, state, maxReplyChars);
      if (piece) controller.enqueue(piece);
      else if (state.done) controller.terminate();
    },
    flush() {
      if (!state.done) throw streamCut();
    },
  });
}

/** A reply being read: the pieces of each upstream read, in order. */
export interface PieceReader {
  /** The pieces of the next upstream read that held any (never an empty batch), or null after `[DONE]`. */
  read(): Promise<string[] | null>;
  /** What `read` would give without waiting for the network: pieces, null at the end, or undefined. */
  readNow(): string[] | null | undefined;
  /** Stops reading and releases the body. */
  cancel(): void;
}

/** Bytes read per upstream read when the body lets us bring our own buffer. */
const READ_BUFFER_BYTES = 16 * 1024;

/**
 * Reads an event stream body straight into pieces: one reader, one decoder and one SSE parser
 * (eventsource-parser's, with its `maxBufferSize` bound on one event), instead of a chain of stream stages with
 * a promise hand-off per event. Everything a network read holds is parsed at once and handed over as one batch.
 */
export function pieceReader(body: ReadableStream<Uint8Array>, maxEventChars: number, maxReplyChars = Infinity): PieceReader {
  // Where the body is a byte stream (Deno, Node) every read fills the same buffer: a default reader there gets a
  // fresh 64 KiB buffer per read, which at a thousand slow streams is hundreds of megabytes of garbage.
  // Bun's fetch body is not a byte stream: its default reader hands over the bytes it received.
  let byob: ReadableStreamBYOBReader | undefined;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  try {
    byob = body.getReader({ mode: "byob" });
  } catch {
    reader = body.getReader();
  }
  let buffer: Uint8Array<ArrayBuffer> | undefined = byob ? new Uint8Array(READ_BUFFER_BYTES) : undefined;
  const decoder = new TextDecoder();
  const state: ReplyState = { total: 0, done: false };
  let batch: string[] = [];
  let failure: unknown;
  let ended = false;
  const parser = createParser({
    onEvent(ev) {
      if (failure !== undefined) return;
      try {
        const piece = pieceOf(ev, state, maxReplyChars);
        if (piece) batch.push(piece);
      } catch (err) {
        failure = err;
      }
    },
    // Only an event over the bound is fatal; junk lines are skipped, as EventSourceParserStream does.
    onError(err) {
      if (err.type === "max-buffer-size-exceeded") failure ??= err;
    },
    maxBufferSize: maxEventChars,
  });
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    (byob ?? reader)!.cancel().catch(() => {});
  };
  const readNow = (): string[] | null | undefined => {
    // Pieces parsed before a failure or the end still go out first, as they would from a stream.
    if (batch.length) {
      const out = batch;
      batch = [];
      return out;
    }
    if (failure !== undefined) {
      release();
      throw failure;
    }
    if (state.done) {
      release();
      return null;
    }
    if (ended) throw streamCut();
    return undefined;
  };
  return {
    readNow,
    async read() {
      for (;;) {
        const now = readNow();
        if (now !== undefined) return now;
        const r = byob ? await byob.read(buffer!) : await reader!.read();
        if (r.done || !r.value) {
          ended = true;
          parser.feed(decoder.decode());
        } else {
          parser.feed(decoder.decode(r.value, { stream: true }));
          // The read handed the buffer back (transferred): the next read fills it again.
          if (byob) buffer = new Uint8Array(r.value.buffer as ArrayBuffer);
        }
      }
    },
    cancel: release,
  };
}

function problemOf(data: string): Problem | null {
  return asProblem(maybeJson(data));
}
