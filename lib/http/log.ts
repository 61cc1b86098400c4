// Request logging: one line per request, never a token and never message content.
import { createHash } from "node:crypto";

/** The log levels, quietest first (LOG_LEVEL's schema in lib/config.ts is built from this list). */
export const LOG_LEVELS = ["silent", "error", "info", "debug"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
const RANK: Record<LogLevel, number> = { silent: 0, error: 1, info: 2, debug: 3 };

/** Fields of a request line; deliberately no place for headers, bodies or tokens. */
export interface RequestLine {
  method: string;
  path: string;
  status: number;
  ms: number;
  attempts?: number;
  id: string;
  code?: string | null;
  /** The gateway key's name (never its secret): a managed key's, or `env…3fa2` for one of API_KEYS. */
  key?: string;
}

export interface Logger {
  request(line: RequestLine): void;
  /** Operational messages (start-up, shutdown); callers pass no user data. */
  info(message: string): void;
  error(message: string): void;
  debug(message: string): void;
}

/**
 * Characters that would let a client forge or colour log lines: C0 and C1 controls (newline, carriage return, ESC
 * for ANSI sequences), DEL and the Unicode line and paragraph separators.
 */
// deno-lint-ignore no-control-regex -- control characters are what this pattern is about
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/** Escapes control characters as `\xNN` (`\u2028`), so that one call writes exactly one visible line. */
export function escapeControl(text: string): string {
  return text.replace(CONTROL, (ch) => {
    const code = ch.charCodeAt(0);
    return code > 0xff ? `\\u${code.toString(16)}` : `\\x${code.toString(16).padStart(2, "0")}`;
  });
}

/**
 * A request path as the access log shows it: spaces and control characters percent-encoded again (the router
 * hands the path decoded), so a path can neither start a new line nor pose as the line's other fields.
 */
export function logPath(path: string): string {
  // deno-lint-ignore no-control-regex -- control characters are what this pattern is about
  return path.replace(/[\u0000-\u0020\u007f-\u009f\u2028\u2029]/g, (ch) => encodeURIComponent(ch));
}

/** Route parameters that can continue or end a conversation: a response id, a conversation handle. */
const MASKED_PARAMS = /^:(response_id|handle)$/;

/**
 * An id that can continue or end a conversation, as logs show it: its kind (`resp_`, `conv-`) and the last 4 hex
 * digits of its SHA-256, enough to tell lines of one id apart from another's and useless to anyone reading them.
 */
export function maskId(id: string): string {
  const kind = /^(resp_|conv-)/.exec(id)?.[1] ?? "";
  return `${kind}…${createHash("sha256").update(id).digest("hex").slice(-4)}`;
}

/** A request path with the segments `route` (its pattern, e.g. `/v1/responses/:response_id`) names masked. */
export function maskedPath(path: string, route: string): string {
  if (!route.includes(":")) return path;
  const pattern = route.split("/");
  if (!pattern.some((p) => MASKED_PARAMS.test(p))) return path;
  return path.split("/").map((seg, i) => (MASKED_PARAMS.test(pattern[i] ?? "") ? maskId(seg) : seg)).join("/");
}

/** A URL fit to print: no user name or password and no query string or fragment (either may hold a secret). */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    u.search = "";
    u.hash = "";
    return escapeControl(u.href);
  } catch {
    return "(not a valid URL)";
  }
}

/**
 * A logger writing to `write` (stdout in production, an array in tests). Every line goes through
 * `escapeControl`: what a client controls (the path, a method, an error's name) cannot add a line.
 */
export function createLogger(level: LogLevel, write: (line: string) => void = (l) => console.log(l)): Logger {
  const on = (l: LogLevel) => RANK[level] >= RANK[l];
  const stamp = () => new Date().toISOString();
  const out = (line: string) => write(escapeControl(line));
  return {
    request(r) {
      const l: LogLevel = r.status >= 500 ? "error" : "info";
      if (!on(l)) return;
      const extra = (r.attempts ? ` attempts=${r.attempts}` : "") + (r.code ? ` code=${r.code}` : "") +
        (r.key ? ` key=${r.key}` : "");
      out(`${stamp()} ${r.method} ${logPath(r.path)} ${r.status} ${r.ms}ms${extra} id=${r.id}`);
    },
    info: (m) => on("info") && out(`${stamp()} ${m}`),
    error: (m) => on("error") && out(`${stamp()} ERROR ${m}`),
    debug: (m) => on("debug") && out(`${stamp()} DEBUG ${m}`),
  };
}

/** Lines waiting for a slow or stalled reader, and what was dropped meanwhile. */
export interface LineBuffer {
  /** Queues one line (without its newline); drops it when the buffer is full. */
  write(line: string): void;
  /** Writes everything pending; resolves once written (or failed). */
  flush(): Promise<void>;
  /** Lines dropped since start because the buffer was full or a write failed. */
  readonly dropped: number;
}

export interface LineBufferOptions {
  /** How long the first line of a batch waits for company (default 20 ms). */
  flushMs?: number;
  /** Most characters held, in flight or pending (default 1 MiB); lines beyond are dropped and counted. */
  maxChars?: number;
  /** Called once per stall, after the first write that succeeds following drops, with how many were dropped. */
  onDropped?: (count: number) => void;
}

/**
 * Collects lines and writes them together, at most `flushMs` after the first one: at thousands of requests a
 * second one write per access-log line was a system call per request. `write` may return a promise (an
 * asynchronous write to a pipe nobody reads may take minutes): one write is outstanding at a time, lines arriving
 * meanwhile wait in a bounded buffer, and past its bound they are dropped and counted. Logging never makes a
 * request wait.
 */
export function batchedLines(
  write: (text: string) => void | Promise<void>,
  options: LineBufferOptions = {},
): LineBuffer {
  const { flushMs = 20, maxChars = 1024 * 1024, onDropped } = options;
  let pending: string[] = [];
  let pendingChars = 0;
  let inFlight: Promise<void> | undefined;
  let inFlightChars = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let dropped = 0;
  let unreported = 0;
  let reporting = false;
  const start = () => {
    clearTimeout(timer);
    timer = undefined;
    if (inFlight || !pending.length) return;
    const lines = pending;
    inFlightChars = pendingChars;
    pending = [];
    pendingChars = 0;
    let written: void | Promise<void>;
    try {
      written = write(lines.join("\n") + "\n");
    } catch (err) {
      written = Promise.reject(err);
    }
    inFlight = Promise.resolve(written).then(
      () => {
        inFlight = undefined;
        inFlightChars = 0;
        if (unreported && onDropped) {
          const n = unreported;
          unreported = 0;
          // The buffer is likely still full: the report itself gets past the bound.
          reporting = true;
          try {
            onDropped(n);
          } finally {
            reporting = false;
          }
        }
        start();
      },
      () => {
        // Nowhere to report it: the log itself failed. The lines count as dropped.
        inFlight = undefined;
        inFlightChars = 0;
        dropped += lines.length;
        unreported += lines.length;
        start();
      },
    );
  };
  return {
    write(line) {
      const chars = line.length + 1;
      if (!reporting && pendingChars + inFlightChars + chars > maxChars) {
        dropped++;
        unreported++;
        return;
      }
      pending.push(line);
      pendingChars += chars;
      if (!inFlight) timer ??= setTimeout(start, flushMs);
    },
    async flush() {
      start();
      while (inFlight) {
        await inFlight;
        start();
      }
    },
    get dropped() {
      return dropped;
    },
  };
}
