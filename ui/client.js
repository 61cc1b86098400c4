// The playground's side of the API: tokens, token checks, the account pool, the streamed chat, errors and "copy as curl".
// No DOM here, and `fetch` is a parameter, so the same code runs in tests.
import { createParser } from "eventsource-parser";

/** Where the tokens are kept: this browser's localStorage, nowhere else. */
export const STORAGE_KEY = "emohaa-playground.tokens";

/** Splits pasted text into tokens (commas, spaces or new lines), without duplicates. */
export function parseTokens(text) {
  return [...new Set(String(text).split(/[\s,]+/).filter(Boolean))];
}

/** A token shortened for display: enough to tell tokens apart, not enough to use one. */
export function maskToken(token) {
  return token.length <= 12 ? `${token.slice(0, 3)}…` : `${token.slice(0, 6)}…${token.slice(-4)}`;
}

/** The Authorization header for the page's bearer: the tokens, or the gateway key of a server that holds them. */
function authorization(bearer) {
  return bearer.length ? { authorization: `Bearer ${bearer.join(",")}` } : {};
}

/**
 * Asks the server whether `token` is alive, with the page's `bearer` (what the chat sends: a server that holds the
 * tokens wants its gateway key). Resolves with `{ state }`: "live", "expired", "limited" (too many checks from this
 * address, with the server's `retryAfter` in seconds when it says), or "error" when the check itself failed.
 */
export async function checkToken(token, { fetchFn = fetch, base = "", bearer = [] } = {}) {
  try {
    const res = await fetchFn(`${base}token/check`, {
      method: "POST",
      headers: { "content-type": "application/json", ...authorization(bearer) },
      body: JSON.stringify({ token }),
    });
    if (res.status === 429) {
      await res.body?.cancel();
      return { state: "limited", retryAfter: Number(res.headers.get("retry-after")) || null };
    }
    if (!res.ok) {
      await res.body?.cancel();
      return { state: "error" };
    }
    const body = await res.json();
    return { state: body.live === true ? "live" : "expired" };
  } catch {
    return { state: "error" };
  }
}

/** The chat request body: the conversation so far, streamed, with the usage chunk. */
export function chatBody(messages, system) {
  const all = system && system.trim() ? [{ role: "system", content: system.trim() }, ...messages] : messages;
  return { model: "emohaa", stream: true, stream_options: { include_usage: true }, messages: all };
}

/** A failed chat, with what the page needs to explain it. */
export class ChatError extends Error {
  /**
   * @param {"missing"|"auth"|"rate"|"busy"|"upstream"|"timeout"|"invalid"|"network"|"server"|"stream"} kind
   * @param {string} message the server's message, shown as is
   * @param {{ status?: number, code?: string | null, retryAfter?: number }} [details]
   */
  constructor(kind, message, details = {}) {
    super(message);
    this.name = "ChatError";
    this.kind = kind;
    this.status = details.status;
    this.code = details.code ?? null;
    this.retryAfter = details.retryAfter;
  }
}

/** The kind of failure, from the HTTP status and the OpenAI error code. */
export function errorKind(status, code) {
  if (code === "account_busy") return "busy";
  if (code === "missing_token") return "missing";
  if (status === 401 || status === 403 || code === "invalid_token") return "auth";
  if (status === 429 || code === "rate_limit_exceeded") return "rate";
  if (status === 504 || code === "upstream_timeout") return "timeout";
  if (status === 502 || status === 503 || code === "upstream_error" || code === "upstream_unreachable") {
    return "upstream";
  }
  if (status && status >= 400 && status < 500) return "invalid";
  return "server";
}

/** Turns an error response into a ChatError, keeping the server's message. */
export async function errorFromResponse(res) {
  const text = await res.text().catch(() => "");
  let message = text.trim().slice(0, 500) || res.statusText || `HTTP ${res.status}`;
  let code = null;
  try {
    const body = JSON.parse(text);
    if (body && body.error && typeof body.error.message === "string") {
      message = body.error.message;
      code = body.error.code ?? null;
    }
  } catch {
    // Not JSON (a proxy's error page): show its text.
  }
  const retryAfter = Number(res.headers.get("retry-after")) || undefined;
  return new ChatError(errorKind(res.status, code), message, { status: res.status, code, retryAfter });
}

/** The JSON values of an SSE body's `data:` fields, up to `[DONE]`; comments (keep-alives) are skipped. */
export async function* sseData(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  // The events one read completed, handed out before the next read.
  const ready = [];
  const parser = createParser({ onEvent: (event) => ready.push(event.data) });
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.feed(value);
      while (ready.length) {
        const data = ready.shift();
        if (!data) continue;
        if (data === "[DONE]") return;
        yield JSON.parse(data);
      }
    }
  } finally {
    reader.releaseLock();
  }
}

/**
 * Sends a chat and reads the stream, calling `onDelta(text)` as pieces arrive.
 * Resolves with the reply and its timings; rejects with a ChatError, or an AbortError when `signal` aborts
 * (the server sees the connection close and deletes the upstream conversation).
 */
export async function streamChat(
  { tokens, body, signal, onDelta = () => {}, fetchFn = fetch, base = "", now = () => performance.now() },
) {
  const start = now();
  let res;
  try {
    res = await fetchFn(`${base}v1/chat/completions`, {
      method: "POST",
      // No tokens: no header, and the server says what it needs (a token, or its own API key when it holds the tokens).
      headers: { "content-type": "application/json", ...authorization(tokens) },
      body: JSON.stringify(body),
      signal,
    });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw new ChatError("network", err instanceof Error ? err.message : String(err));
  }
  if (!res.ok) throw await errorFromResponse(res);
  let content = "";
  let ttftMs = null;
  let usage = null;
  let finish = null;
  for await (const data of sseData(res.body)) {
    if (data.error) {
      const code = data.error.code ?? null;
      throw new ChatError(
        errorKind(undefined, code) === "server" ? "stream" : errorKind(undefined, code),
        data.error.message,
        { code },
      );
    }
    if (data.usage) usage = data.usage;
    const choice = data.choices?.[0];
    if (!choice) continue;
    const piece = choice.delta?.content;
    if (piece) {
      if (ttftMs === null) ttftMs = now() - start;
      content += piece;
      onDelta(piece, content);
    }
    if (choice.finish_reason) finish = choice.finish_reason;
  }
  if (!finish) throw new ChatError("stream", "The stream ended before the reply was complete");
  // Native multi-turn: the kept conversation this reply belongs to, and whether the turn continued it.
  const conversation = res.headers.get("x-emohaa-conversation");
  const continuation = res.headers.get("x-emohaa-continuation");
  return { content, finish, usage, ttftMs, totalMs: now() - start, conversation, continuation };
}

/**
 * Ends a kept conversation at once ("New chat", "Forget tokens"), with the bearer that made it. Resolves whether the
 * server ended it (false when it was gone already, or the call failed: it is deleted when idle anyway).
 */
export async function endConversation(handle, { tokens, fetchFn = fetch, base = "" }) {
  try {
    const res = await fetchFn(`${base}v1/conversations/${encodeURIComponent(handle)}`, {
      method: "DELETE",
      headers: authorization(tokens),
    });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

/** Quotes a string for a POSIX shell. */
function shellQuote(s) {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** A curl command that repeats a chat request; the tokens are left out as `$EMOHAA_TOKENS`. */
export function curlCommand(url, body) {
  return [
    `curl -N ${shellQuote(url)}`,
    `  -H 'Content-Type: application/json'`,
    `  -H "Authorization: Bearer $EMOHAA_TOKENS"`,
    `  -d ${shellQuote(JSON.stringify(body))}`,
  ].join(" \\\n");
}

/** Milliseconds for people: "850 ms", "2.4 s". */
export function formatMs(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** The account pool is polled at most this often, and only while the page is visible. */
export const POOL_POLL_MS = 15_000;

/** Whether a background refresh of the pool is due: never while the page is hidden, never sooner than `POOL_POLL_MS`. */
export function poolPollDue({ hidden, now, lastAt }) {
  return !hidden && now - lastAt >= POOL_POLL_MS;
}

/**
 * Asks `/v1/tokens/status` about the pool, with the page's bearer (the tokens, or the gateway key).
 * Resolves with `{ kind: "ok", status, tokens }` (the tokens asked about, to name the rows in client mode),
 * `{ kind: "absent" }` when the server answers 404 (an older server without the endpoint), or
 * `{ kind: "error", error }` with a ChatError carrying the server's message. Rejects only when `signal` aborts.
 */
export async function fetchPoolStatus(tokens, { fetchFn = fetch, base = "", signal } = {}) {
  let res;
  try {
    res = await fetchFn(`${base}v1/tokens/status`, {
      headers: authorization(tokens),
      cache: "no-store",
      signal,
    });
  } catch (err) {
    if (signal?.aborted) throw err;
    return { kind: "error", error: new ChatError("network", err instanceof Error ? err.message : String(err)) };
  }
  if (res.status === 404) return { kind: "absent" };
  if (!res.ok) return { kind: "error", error: await errorFromResponse(res) };
  let body = null;
  try {
    body = await res.json();
  } catch {
    // Not JSON: reported below.
  }
  if (!body || (body.mode !== "server" && body.mode !== "client") || !Array.isArray(body.tokens)) {
    return {
      kind: "error",
      error: new ChatError("server", "The server's answer is not a token pool status", { status: res.status }),
    };
  }
  return { kind: "ok", status: { mode: body.mode, waiting: Number(body.waiting) || 0, tokens: body.tokens }, tokens };
}

/**
 * The rows of the pool panel. In client mode the server lists the caller's tokens in the order sent, so each row
 * also gets the page's own mask of the pasted token (`name`), which the user can recognise; the server's label
 * (from the token's hash) is always there.
 */
export function poolRows(result) {
  const { status, tokens = [] } = result;
  const named = status.mode === "client" && status.tokens.length === tokens.length;
  // A row's key is its label; two tokens whose hashes end alike get "#2", "#3" (keys by identity, not position).
  const seen = new Map();
  return status.tokens.map((tk, i) => ({
    key: keyOnce(seen, String(tk.label)),
    name: named ? maskToken(tokens[i]) : null,
    label: String(tk.label),
    state: tk.state,
    inFlight: Number(tk.inFlight) || 0,
    coolingUntil: tk.coolingUntil ?? null,
    lastError: tk.lastError ?? null,
    expiresAt: tk.expiresAt ?? null,
  }));
}

/** `label`, or `label#n` for its n-th use in `seen`. */
function keyOnce(seen, label) {
  const n = (seen.get(label) ?? 0) + 1;
  seen.set(label, n);
  return n === 1 ? label : `${label}#${n}`;
}

/** A time of day for people, in local time: "14:03:09" ("" for a missing or invalid date). */
export function formatClock(value) {
  const d = value instanceof Date ? value : new Date(value ?? NaN);
  if (Number.isNaN(d.getTime())) return "";
  const two = (n) => String(n).padStart(2, "0");
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}
