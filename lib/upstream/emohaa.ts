// The Emohaa web upstream ("echo-prod"): signed requests to create, chat, delete and list conversations.
import { createHash } from "node:crypto";
import { formEncode, formQuery } from "../form.ts";
import { type FetchLike, pushBodyOf, type UpstreamResponse } from "./http1.ts";
import { type PieceReader, pieceReader } from "./events.ts";
import { asProblem, maybeJson, type Problem, UpstreamError, upstreamFailure } from "./errors.ts";

export interface EmohaaClientOptions {
  baseUrl: string;
  /**
   * lib/upstream/http1.ts's lean client, or the runtime's fetch through runtime/dial.ts's `runtimeFetch` (lib/start.ts
   * chooses). It must follow no redirect and send no request marked not idempotent twice.
   */
  fetch?: FetchLike;
  /** Milliseconds since the epoch; injected for tests. */
  now?: () => number;
  /** The random X-Xss-Id; injected for tests. */
  randomId?: () => string;
  /** MD5 in hex for the signature (default node:crypto's; runtime/parts.ts gives Bun's own, a third of its cost). */
  md5?: (text: string) => string;
  /** Bounds on what a hostile or broken upstream can make us hold in memory (UPSTREAM_LIMITS in lib/config.ts). */
  limits: { maxEventChars: number; maxReplyChars: number };
}

/** The browser the upstream expects to talk to. */
const ORIGIN = "https://echo.turing-world.com";
const USER_AGENT =
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

/** MD5 of a text's UTF-8, in lowercase hex: node:crypto's (every runtime has it). */
export const md5Hex = (text: string): string => createHash("md5").update(text).digest("hex");

/** The anti-bot signature: X-Xss-Real is md5(`${ts}-_-${id}`). `md5` may be a runtime's faster one. */
export function sign(
  ts: number,
  id: string,
  md5: (text: string) => string = md5Hex,
): { id: string; ts: string; real: string } {
  const t = String(ts);
  return { id, ts: t, real: md5(`${t}-_-${id}`) };
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

/** A 3xx, or the opaque answer a browser-like fetch gives for one under `redirect: "manual"`. */
const isRedirect = (res: UpstreamResponse) => res.type === "opaqueredirect" || (res.status >= 300 && res.status < 400);

/** How much of an error answer is read: problem bodies are small, and only their first characters are shown. */
const ERROR_BODY_MAX_BYTES = 16 * 1024;

/**
 * Reads a body as text within `maxBytes`. Beyond it the rest is cancelled, and the answer is either refused
 * (`strict`: an upstream_reply_too_large error) or cut there.
 */
export async function boundedText(res: UpstreamResponse, maxBytes: number, strict = true): Promise<string> {
  const length = Number(res.headers.get("content-length") ?? NaN);
  if (length >= 0 && length <= maxBytes) return res.text();
  const body = res.body;
  if (!body) return res.text();
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return text + decoder.decode();
    size += value.length;
    if (size > maxBytes) {
      reader.cancel().catch(() => {});
      if (strict) {
        throw new UpstreamError("protocol", 502, `Emohaa's answer exceeded ${maxBytes} bytes`, {
          code: "upstream_reply_too_large",
        });
      }
      return text + decoder.decode(value.subarray(0, value.length - (size - maxBytes)));
    }
    text += decoder.decode(value, { stream: true });
  }
}

/**
 * The status rule: an answer that failed says so with its HTTP status, or, sent with a 200, with its problem
 * body's own status; otherwise `orElse` (0: no failure).
 */
function failureOf(
  res: UpstreamResponse,
  problem: Problem | null,
  what: string,
  token: string,
  orElse: number,
): UpstreamError | undefined {
  const status = !res.ok ? res.status : problem?.status && problem.status >= 400 ? problem.status : orElse;
  return status
    ? upstreamFailure(status, what, problem, { retryAfter: res.headers.get("retry-after"), token })
    : undefined;
}

/**
 * What a failed exchange with Emohaa is to the caller: its own abort or its deadline's TimeoutError (`timed`: the
 * transport kept a deadline), or "cannot reach Emohaa" (502).
 */
function unreachable(what: string, err: unknown, signal?: AbortSignal, timed = false): unknown {
  if (signal?.aborted || (timed && err instanceof DOMException && err.name === "TimeoutError")) return err;
  return new UpstreamError("network", 502, `Cannot reach Emohaa to ${what}`, {
    code: "upstream_unreachable",
    cause: err,
  });
}

/**
 * The upstream client; every call takes the account token and an abort signal. Creating and deleting also take a
 * time limit, which a client that `timesOut` keeps itself (its transport ends the exchange, no signal needed); for
 * one that does not, the caller bounds the call (lib/chat/deadline.ts, `within`).
 */
export interface EmohaaClient {
  readonly timesOut?: boolean;
  createConversation(token: string, signal?: AbortSignal, timeoutMs?: number): Promise<string>;
  /**
   * Opens the chat; resolves once the upstream answered with an event stream. The hot path: pieces come in
   * batches, one per upstream read, with no stream stage per piece.
   */
  openChat(token: string, cid: string, prompt: string, signal?: AbortSignal): Promise<PieceReader>;
  deleteConversation(token: string, cid: string, signal?: AbortSignal, timeoutMs?: number): Promise<void>;
  listConversations(token: string, signal?: AbortSignal): Promise<unknown[]>;
}

/** Builds the upstream client around an injected `fetch`. */
export function createEmohaaClient(options: EmohaaClientOptions): EmohaaClient {
  const base = options.baseUrl.replace(/\/+$/, "");
  const doFetch = options.fetch ?? fetch;
  const now = options.now ?? Date.now;
  const randomId = options.randomId ?? (() => Math.random().toString());
  const md5 = options.md5 ?? md5Hex;
  const { maxEventChars, maxReplyChars } = options.limits;
  /** Whether the transport keeps a call's deadline itself (lib/upstream/http1.ts does). */
  const timesOut = (doFetch as FetchLike).deadlines === true;
  const keptDeadline = (ms: number | undefined, what: string) => (timesOut && ms ? { ms, what } : undefined);

  /**
   * Sends one signed request and hands back its answer. A failure to send is a 502 (an abort stays the caller's).
   * Redirects are refused, never followed: the headers carry the token and the browser's identity, and a
   * redirect could take them to any host. Only deleting and listing may be sent twice by the transport: a chat
   * or a new conversation sent twice happens twice.
   */
  async function send(
    token: string,
    method: string,
    path: string,
    query: Record<string, string>,
    what: string,
    signal?: AbortSignal,
    accept?: string,
    deadline?: { ms: number; what: string },
  ): Promise<UpstreamResponse> {
    const s = sign(now(), randomId(), md5);
    // One serialisation of the query (the prompt may be kilobytes): the same bytes URL.searchParams would give.
    let q = formQuery(query);
    if (path === "/chat") q += `&xts=${formEncode(s.ts)}&xid=${formEncode(s.id)}&xreal=${s.real}`;
    let res: UpstreamResponse;
    try {
      res = await doFetch(`${base}${path}?${q}`, {
        method,
        signal,
        deadline,
        redirect: "manual",
        idempotent: path === "/conv" || path === "/convs",
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
    } catch (err) {
      throw unreachable(what, err, signal, deadline !== undefined);
    }
    if (isRedirect(res)) {
      res.body?.cancel().catch(() => {});
      throw upstreamFailure(res.status || 302, what, null);
    }
    return res;
  }

  /** Sends a JSON-answering call; throws UpstreamError for HTTP errors and problem bodies. */
  async function call(
    token: string,
    method: string,
    path: string,
    query: Record<string, string>,
    what: string,
    signal?: AbortSignal,
    deadline?: { ms: number; what: string },
  ): Promise<string> {
    const res = await send(token, method, path, query, what, signal, undefined, deadline);
    let text: string;
    try {
      text = await boundedText(res, maxReplyChars);
    } catch (err) {
      throw err instanceof UpstreamError ? err : unreachable(what, err, signal, deadline !== undefined);
    }
    const failed = failureOf(res, asProblem(maybeJson(text)), what, token, 0);
    if (failed) throw failed;
    return text;
  }

  async function openChat(token: string, cid: string, prompt: string, signal?: AbortSignal): Promise<PieceReader> {
    const what = "answer";
    const res = await send(
      token,
      "GET",
      "/chat",
      { token, cid, prompt, role: "echo" },
      what,
      signal,
      "text/event-stream",
    );
    const type = res.headers.get("content-type") ?? "";
    // A pushed body is read as it is (looking at `body` would make it a stream: lib/upstream/http1.ts makes one lazily).
    const pushed = pushBodyOf(res);
    if (!res.ok || !type.includes("text/event-stream") || !(pushed ?? res.body)) {
      // An error body is read only as far as a problem body can reach: a hostile upstream cannot make us hold more.
      const problem = asProblem(maybeJson(await boundedText(res, ERROR_BODY_MAX_BYTES, false).catch(() => "")));
      // Not an event stream, and no status said why: a 502, as from an upstream that failed.
      throw failureOf(res, problem, what, token, 502)!;
    }
    return pieceReader(pushed ?? res.body!, maxEventChars, maxReplyChars, token);
  }

  return {
    timesOut,

    async createConversation(token, signal, timeoutMs) {
      const body = await call(
        token,
        "GET",
        "/generate/id",
        { create: "true" },
        "create a conversation",
        signal,
        keptDeadline(timeoutMs, "create request"),
      );
      const id = parseConversationId(body);
      if (!id) {
        throw new UpstreamError("protocol", 502, "Emohaa answered with no conversation id", {
          code: "upstream_protocol_error",
        });
      }
      return id;
    },

    openChat,

    async deleteConversation(token, cid, signal, timeoutMs) {
      await call(
        token,
        "DELETE",
        "/conv",
        { cid },
        "delete a conversation",
        signal,
        keptDeadline(timeoutMs, "delete request"),
      );
    },

    async listConversations(token, signal) {
      const text = await call(token, "GET", "/convs", { role: "echo" }, "list conversations", signal);
      const list = JSON.parse(text);
      if (!Array.isArray(list)) {
        throw new UpstreamError("auth", 401, "Emohaa did not accept the token", { code: "invalid_token" });
      }
      return list;
    },
  };
}
