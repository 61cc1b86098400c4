// A lean HTTP/1.1 client shaped like fetch, for the upstream calls: keep-alive connections over an injected dialer.
//
// Why not the runtime's fetch: on the hot path fetch was the largest single cost (Bun hands every request to its
// HTTP thread and back, with Request, Headers and body-stream objects on each side). Three upstream calls per
// completion made it a third of the gateway's CPU. This client stays on the event loop, writes one request string,
// and parses the response bytes itself. It does only what the upstream client needs: GET and DELETE without a
// body, Content-Length, chunked and close-delimited bodies, no redirects (a 3xx is handed back as it is, never
// followed), no compression (it asks for none). Proxies are the runtime fetch's job: lib/start.ts uses fetch when a
// proxy is configured.

import { timedOut } from "../errors.ts";
import { type Deadline, Deadlines } from "../deadlines.ts";
import { ChunkedDecoder, concat, copyOf, EMPTY, Fields, headEnd, TOKEN } from "../framing.ts";

/** The bytes-level connection a dialer gives: write, and end (which also discards what is not yet written). */
export interface Wire {
  write(data: Uint8Array): void;
  end(): void;
}

/** What a connection tells its owner. `close` comes once, with an error when the connection failed. */
export interface WireEvents {
  data(bytes: Uint8Array): void;
  close(err?: Error): void;
}

/**
 * Opens a TCP (or TLS) connection; rejects when it cannot. Runtime-specific: see runtime/dial.ts. `signal` aborts a
 * connect still under way where the runtime can (the caller stops waiting either way, and ends a late connection).
 */
export type Dial = (
  target: { hostname: string; port: number; tls: boolean },
  events: WireEvents,
  signal?: AbortSignal,
) => Promise<Wire>;

/** What the upstream client asks of a request, beyond fetch's own fields. */
export interface FetchInit {
  method: string;
  headers: Record<string, string>;
  signal?: AbortSignal;
  /** Upstream calls never follow a redirect: a 3xx comes back as the response (fetch's "manual"). */
  redirect?: "manual";
  /**
   * A time limit on the whole exchange, connecting and the body included: past it the connection is ended and the
   * call fails with a TimeoutError ("The `what` timed out"), as withDeadline's signal would make it (lib/chat/
   * deadline.ts), without an AbortController and a listener per call. A client that keeps these says so with
   * `deadlines` (createHttp1Fetch's does).
   */
  deadline?: { ms: number; what: string };
  /**
   * Whether sending the request twice does no harm. Only such a request is sent again when a kept-alive
   * connection fails before any byte of the answer: for one that is not (a chat, a new conversation) the server may
   * have acted on it and its answer may be what the failure swallowed.
   */
  idempotent?: boolean;
}

/** What the upstream client reads of an answer: the part of a fetch Response it uses (a Response is one). */
export interface UpstreamResponse {
  readonly status: number;
  readonly statusText: string;
  readonly ok: boolean;
  readonly type: string;
  readonly headers: { get(name: string): string | null };
  readonly body: ReadableStream<Uint8Array> | null;
  text(): Promise<string>;
  arrayBuffer(): Promise<ArrayBuffer>;
}

/**
 * Where a body's bytes go as they arrive, without a stream between: `data` gets each piece (its bytes are valid only
 * during the call: the socket may reuse them), `end` comes once, with the failure when the body did not end well.
 */
export interface BodySink {
  data(bytes: Uint8Array): void;
  end(err?: unknown): void;
}

/** A body that can be taken as pushed bytes (this client's answers): `cancel` stops it, as a stream's cancel does. */
export interface PushBody {
  subscribe(sink: BodySink): { cancel(): void };
}

/** The pushed form of an answer's body, when it has one (an answer of this client with a body still to come). */
export function pushBodyOf(res: UpstreamResponse): PushBody | undefined {
  return res instanceof Http1Response && res.streaming ? res : undefined;
}

/** The part of fetch the upstream client uses; `deadlines` when it keeps FetchInit's `deadline` itself. */
export type FetchLike = ((url: string, init: FetchInit) => Promise<UpstreamResponse>) & { deadlines?: boolean };

export interface Http1Options {
  /** An idle connection older than this is not reused (servers close idle keep-alive connections; default 4 s). */
  idleMs?: number;
  /** Idle connections kept per origin (default 256). */
  maxIdle?: number;
  /** Largest response head accepted (default 64 KiB). */
  maxHeadBytes?: number;
  /** How long a new connection may take to open, TLS included (default 10 s). */
  connectTimeoutMs?: number;
}

const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");
const NO_BODY_STATUS = new Set([101, 204, 205, 304]);
/** A body cancelled by its reader is read to its end when that is this close, so the connection is kept. */
const DUMP_MAX_BYTES = 64 * 1024;
const DUMP_MAX_MS = 1000;

/** A failure of the connection itself; fetch reports these as TypeError too. */
function networkError(message: string, cause?: unknown): TypeError {
  return new TypeError(message, cause === undefined ? undefined : { cause });
}

interface Exchange {
  method: string;
  resolve(res: Http1Response): void;
  reject(err: unknown): void;
  signal?: AbortSignal;
  onAbort?: () => void;
  /** FetchInit's `deadline`, on the client's deadline queues (lib/deadlines.ts). */
  deadline?: Deadline;
  /** The answer whose body is still arriving, once the head came (unset when its reader cancelled). */
  body?: Http1Response;
  /** Whether any byte of the response arrived (a reused connection closed before that may be retried). */
  answered: boolean;
}

type State = "head" | "length" | "chunked" | "close";

/** One keep-alive connection: one exchange at a time, a response state machine over its bytes. */
class Connection {
  wire?: Wire;
  dead = false;
  idleSince = 0;
  private state: State = "head";
  private buf: Uint8Array = EMPTY;
  private left = 0;
  /** The chunked decoder of the response being read (lib/framing.ts). */
  private chunked?: ChunkedDecoder;
  private keepAlive = true;
  private ex?: Exchange;
  /** After the reader cancelled: bytes still allowed to be read and dropped, and the limit on the wait. */
  private dumpLeft = 0;
  private dumpTimer?: ReturnType<typeof setTimeout>;

  constructor(
    private readonly release: (c: Connection) => void,
    private readonly maxHeadBytes: number,
  ) {}

  start(request: Uint8Array, ex: Exchange): void {
    this.ex = ex;
    this.state = "head";
    this.buf = EMPTY;
    this.keepAlive = true;
    this.wire!.write(request);
  }

  /** Ends the connection and fails what it carries. */
  destroy(err: unknown): void {
    clearTimeout(this.dumpTimer);
    if (!this.dead) {
      this.dead = true;
      this.wire?.end();
    }
    const ex = this.ex;
    this.ex = undefined;
    if (!ex) return;
    ex.deadline?.cancel();
    ex.signal?.removeEventListener("abort", ex.onAbort!);
    if (ex.body) ex.body.fail(err);
    else ex.reject(err);
  }

  /** The peer closed (or the connection failed). */
  closed(err?: Error): void {
    if (this.dead && !this.ex) return;
    const ex = this.ex;
    if (ex && this.state === "close" && ex.body && !err) {
      // A close-delimited body ends with the connection.
      this.dead = true;
      this.finish(false);
      return;
    }
    this.dead = true;
    if (ex) {
      this.destroy(
        err
          ? networkError("The connection to the upstream failed", err)
          : networkError("The upstream closed the connection mid-response"),
      );
    }
  }

  private finish(reusable: boolean): void {
    const ex = this.ex!;
    this.ex = undefined;
    clearTimeout(this.dumpTimer);
    ex.deadline?.cancel();
    ex.signal?.removeEventListener("abort", ex.onAbort!);
    if (!reusable || !this.keepAlive) {
      this.dead = true;
      this.wire?.end();
    }
    ex.body?.end();
    if (!this.dead) this.release(this);
  }

  private deliver(bytes: Uint8Array): void {
    const body = this.ex!.body;
    if (body) body.push(bytes);
    else if ((this.dumpLeft -= bytes.length) < 0) this.destroy(undefined);
  }

  feed(bytes: Uint8Array): void {
    const ex = this.ex;
    if (!ex) {
      // Bytes nobody asked for (after a response ended): the connection is out of step, never reuse it.
      this.dead = true;
      this.wire?.end();
      return;
    }
    ex.answered = true;
    let data = bytes;
    while (this.ex) {
      switch (this.state) {
        case "head": {
          const joined = concat(this.buf, data);
          const end = headEnd(joined, Math.max(0, this.buf.length - 3));
          if (end < 0) {
            if (joined.length > this.maxHeadBytes) {
              return this.destroy(networkError("The upstream sent a response head that is too large"));
            }
            this.buf = joined === data ? copyOf(data) : joined;
            return;
          }
          this.buf = EMPTY;
          data = joined.subarray(end);
          const taken = this.head(latin1.decode(joined.subarray(0, end)), data);
          if (taken < 0) return;
          data = data.subarray(taken);
          break;
        }
        case "length": {
          const n = Math.min(this.left, data.length);
          if (n) this.deliver(data.subarray(0, n));
          this.left -= n;
          data = data.subarray(n);
          // Bytes past the body mean the connection is out of step: it is not reused.
          if (this.left === 0) return this.finish(data.length === 0);
          if (!data.length) return;
          break;
        }
        case "close":
          this.deliver(data);
          return;
        case "chunked": {
          const r = this.chunked!.feed(data, (b) => {
            this.deliver(b);
            return this.ex === ex;
          });
          if (this.ex !== ex) return;
          if (r.state === "more") return;
          if (r.state === "done") return this.finish(r.rest.length === 0);
          return this.destroy(
            networkError(
              r.reason === "size"
                ? "The upstream sent a malformed chunk size"
                : r.reason === "chunk"
                ? "The upstream sent a malformed chunk"
                : "The upstream sent trailers that are too large",
            ),
          );
        }
      }
    }
  }

  /**
   * Parses a response head and sets up its body: -1 when the exchange failed here, else how many bytes of
   * `rest` (what followed the head) it took as a whole body already received.
   */
  private head(text: string, rest: Uint8Array): number {
    const ex = this.ex!;
    // Line by line with indexOf (CRLF, or a bare LF as some servers send): no array of lines, no string per line.
    const lineEnd = (from: number) => {
      const lf = text.indexOf("\n", from);
      return lf < 0 ? text.length : lf;
    };
    const trimCr = (from: number, end: number) => (end > from && text.charCodeAt(end - 1) === 13 ? end - 1 : end);
    let end = lineEnd(0);
    const m = STATUS_LINE.exec(text.slice(0, trimCr(0, end)));
    if (!m) {
      this.destroy(networkError("The upstream did not answer with HTTP/1.x"));
      return -1;
    }
    const status = Number(m[2]);
    // Informational heads (100 Continue, 103 Early Hints) precede the real one.
    if (status >= 100 && status < 200 && status !== 101) return 0;
    // A field with a name that is no token or a value with a CR, LF or NUL is left out (as fetch's Headers refuse it).
    const fields: [string, string][] = [];
    for (let from = end + 1; from < text.length; from = end + 1) {
      end = lineEnd(from);
      const stop = trimCr(from, end);
      const colon = text.indexOf(":", from);
      if (colon <= from || colon >= stop) continue;
      const name = text.slice(from, colon).trim();
      const value = text.slice(colon + 1, stop).trim();
      if (TOKEN.test(name) && !UNSAFE.test(value)) fields.push([name, value]);
    }
    const headers = new Fields(fields);
    const connection = headers.get("connection")?.toLowerCase() ?? "";
    this.keepAlive = m[1] === "1" ? !connection.includes("close") : connection.includes("keep-alive");
    const chunked = CHUNKED.test(headers.get("transfer-encoding") ?? "");
    const lengthHeader = headers.get("content-length");
    const length = lengthHeader === null ? NaN : Number(lengthHeader.split(",")[0]);
    if (status < 200 || status > 599 || (lengthHeader !== null && !chunked && !(length >= 0))) {
      this.destroy(networkError("The upstream sent an invalid response head"));
      return -1;
    }
    const bodyless = ex.method === "HEAD" || NO_BODY_STATUS.has(status);
    // A small answer often comes whole with its head (create and delete do): its bytes are the body, no stream.
    const whole = !bodyless && !chunked && lengthHeader !== null && rest.length >= length;
    const res = new Http1Response(
      status,
      m[3] ?? "",
      headers,
      bodyless ? null : whole ? copyOf(rest.subarray(0, length)) : undefined,
      // A reader that stops early (the reply's own end event came before the body's end): what is left is read
      // and dropped, so the connection can carry the next request, unless it is more than a little or takes
      // long. Aborting the signal instead ends the connection at once (that is how a request is stopped).
      () => {
        if (this.ex !== ex || ex.body !== res) return;
        ex.body = undefined;
        this.dumpLeft = DUMP_MAX_BYTES;
        this.dumpTimer = setTimeout(() => this.ex === ex && this.destroy(undefined), DUMP_MAX_MS);
      },
    );
    if (res.streaming) ex.body = res;
    ex.resolve(res);
    if (whole || bodyless || (lengthHeader !== null && !chunked)) {
      this.left = whole || bodyless ? 0 : length;
      this.state = "length";
    } else if (chunked) {
      this.state = "chunked";
      this.chunked = new ChunkedDecoder({ strict: false, maxTrailerBytes: this.maxHeadBytes });
    } else {
      this.state = "close";
      this.keepAlive = false;
    }
    return whole ? length : 0;
  }
}

const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/;
const CHUNKED = /(^|,)\s*chunked\s*$/i;

const utf8 = new TextDecoder();

/**
 * An answer of this client: a Response's fields without a Response, a Headers or a stream unless one is asked for.
 * Its body came whole with the head, or there is none, or it is still arriving: then it goes to one consumer, as a
 * stream (`body`), as text (`text`, `arrayBuffer`) or pushed (`subscribe`: lib/upstream/events.ts reads replies so).
 */
class Http1Response implements UpstreamResponse, PushBody {
  readonly type = "basic";
  /** Pieces that arrived before a consumer came (copies: the socket may reuse its buffer). */
  private early: Uint8Array[] = [];
  private ended = false;
  private failure: unknown;
  private sink?: BodySink;
  private used = false;
  private stream?: ReadableStream<Uint8Array> | null;

  constructor(
    readonly status: number,
    readonly statusText: string,
    readonly headers: Fields,
    /** The whole body (null: none); undefined while it is still arriving. */
    private readonly whole: Uint8Array | null | undefined,
    private readonly onCancel: () => void,
  ) {}

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  /** Whether the body is still to arrive (a whole or absent one was there with the head). */
  get streaming(): boolean {
    return this.whole === undefined;
  }

  /** From the connection: the next bytes of the body. */
  push(bytes: Uint8Array): void {
    if (this.sink) this.sink.data(bytes);
    else this.early.push(copyOf(bytes));
  }

  /** From the connection: the body ended well. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.sink?.end();
  }

  /** From the connection: the body failed. */
  fail(err: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = err ?? networkError("The upstream connection ended");
    this.sink?.end(this.failure);
  }

  subscribe(sink: BodySink): { cancel(): void } {
    if (this.used) throw new TypeError("Body already used");
    this.used = true;
    if (this.whole !== undefined) {
      if (this.whole) sink.data(this.whole);
      sink.end();
      return { cancel: () => {} };
    }
    for (const b of this.early) sink.data(b);
    this.early = [];
    if (this.ended) sink.end(this.failure);
    else this.sink = sink;
    return {
      cancel: () => {
        if (this.sink !== sink || this.ended) return;
        this.sink = undefined;
        this.ended = true;
        this.onCancel();
      },
    };
  }

  get body(): ReadableStream<Uint8Array> | null {
    if (this.stream !== undefined) return this.stream;
    if (this.whole === null) return (this.stream = null);
    let sub: { cancel(): void } | undefined;
    // Taken on the first read, not when the stream is made: like a Response's, a body only looked at is still there
    // for `text`.
    return (this.stream = new ReadableStream<Uint8Array>({
      pull: (c) => {
        sub ??= this.subscribe({
          // A stream keeps what it is given: a copy, as the socket may reuse its buffer.
          data: (b) => c.enqueue(copyOf(b)),
          end: (err) => {
            try {
              if (err === undefined) c.close();
              else c.error(err);
            } catch {
              // Cancelled by its reader already.
            }
          },
        });
      },
      cancel: () => sub?.cancel(),
    }, { highWaterMark: 0 }));
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const parts: Uint8Array[] = [];
    await new Promise<void>((resolve, reject) =>
      this.subscribe({
        data: (b) => void parts.push(copyOf(b)),
        end: (err) => (err === undefined ? resolve() : reject(err)),
      })
    );
    if (parts.length === 1) return parts[0]!.buffer as ArrayBuffer;
    let size = 0;
    for (const p of parts) size += p.length;
    const out = new Uint8Array(size);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out.buffer;
  }

  async text(): Promise<string> {
    if (this.whole !== undefined && !this.used) {
      this.used = true;
      return this.whole ? utf8.decode(this.whole) : "";
    }
    return utf8.decode(await this.arrayBuffer());
  }
}

/** How long a new connection may take, TLS included (UPSTREAM_CONNECT_TIMEOUT_MS defaults to it). */
export const CONNECT_TIMEOUT_MS = 10_000;

/** A parsed origin: where to connect, what to send as Host, and the idle pool's key. */
interface Origin {
  target: { hostname: string; port: number; tls: boolean };
  host: string;
  key: string;
}

const UNSAFE = /[\r\n\0]/;
const SLASH = 47;
const ORIGIN = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i;
/** What a request target may hold as it is: printable ASCII but `#` (a fragment is never sent). */
const NOT_PLAIN = /[^\x21-\x22\x24-\x7e]/;

/** Builds a fetch-shaped function over keep-alive HTTP/1.1 connections that `dial` opens. */
export function createHttp1Fetch(
  dial: Dial,
  options: Http1Options = {},
): FetchLike & { close(): void; idleConnections(): number } {
  const idleMs = options.idleMs ?? 4000;
  const maxIdle = options.maxIdle ?? 256;
  const maxHeadBytes = options.maxHeadBytes ?? 64 * 1024;
  const connectTimeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
  const idle = new Map<string, Connection[]>();
  /** The exchanges' deadlines: one timer per length of deadline (creates' and deletes'), not one per exchange. */
  const deadlines = new Deadlines();

  function take(key: string): Connection | undefined {
    const list = idle.get(key);
    const now = Date.now();
    for (let c = list?.pop(); c; c = list!.pop()) {
      if (!c.dead && now - c.idleSince < idleMs) return c;
      c.destroy(undefined);
    }
    return undefined;
  }

  /**
   * Opens a connection. The wait ends at once when `signal` aborts or the connect timeout passes, whatever the
   * dialer does: a connect that hangs (a full backlog, a black-holed address) holds nothing but its own socket,
   * which is ended as soon as it opens.
   */
  async function open(
    key: string,
    target: { hostname: string; port: number; tls: boolean },
    signal?: AbortSignal,
  ): Promise<Connection> {
    const conn = new Connection((c) => {
      c.idleSince = Date.now();
      const list = idle.get(key) ?? idle.set(key, []).get(key)!;
      if (list.length >= maxIdle) c.destroy(undefined);
      else list.push(c);
    }, maxHeadBytes);
    const where = `${target.hostname}:${target.port}`;
    const giveUp = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onAbort: (() => void) | undefined;
    const stopped = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = networkError(`Cannot connect to ${where} within ${connectTimeoutMs} ms`);
        giveUp.abort(err);
        reject(err);
      }, connectTimeoutMs);
      onAbort = () => {
        giveUp.abort(signal!.reason);
        reject(signal!.reason ?? new DOMException("The operation was aborted", "AbortError"));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
    });
    const dialing = dial(target, { data: (b) => conn.feed(b), close: (err) => conn.closed(err) }, giveUp.signal).then(
      (wire) => {
        conn.wire = wire;
        // Opened after the wait was given up: nobody will use it.
        if (giveUp.signal.aborted) conn.destroy(undefined);
        return conn;
      },
      (err) => {
        throw giveUp.signal.aborted ? giveUp.signal.reason : networkError(`Cannot connect to ${where}`, err);
      },
    );
    try {
      return await Promise.race([dialing, stopped]);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort!);
      // The losing side of the race must not become an unhandled rejection.
      dialing.catch(() => {});
      stopped.catch(() => {});
    }
  }

  /** Sends the request on `conn`; `ex.answered` tells afterwards whether any byte of an answer came. */
  function exchange(
    conn: Connection,
    method: string,
    request: Uint8Array,
    signal: AbortSignal | undefined,
    deadline: { at: number; what: string } | undefined,
  ): { ex: Exchange; response: Promise<Http1Response> } {
    let ex!: Exchange;
    const response = new Promise<Http1Response>((resolve, reject) => {
      ex = { method, resolve, reject, signal, answered: false };
    });
    if (signal) {
      ex.onAbort = () => conn.destroy(signal.reason ?? new DOMException("The operation was aborted", "AbortError"));
      signal.addEventListener("abort", ex.onAbort, { once: true });
    }
    if (deadline) {
      ex.deadline = deadlines.add(deadline.at - Date.now(), () => conn.destroy(timedOut(deadline.what)));
    }
    conn.start(request, ex);
    return { ex, response };
  }

  /** Origins parsed once: every call of a client goes to the same one or two. */
  const origins = new Map<string, Origin>();
  let last: { prefix: string; origin: Origin } | undefined;
  const originOf = (url: string): { origin: Origin; path: string } => {
    // The origin is all before the path (the path and query are sent as they were given). The last one's prefix,
    // followed by a "/", is the same origin without a look at the rest.
    let prefix: string;
    let origin: Origin | undefined;
    if (last && url.startsWith(last.prefix) && url.charCodeAt(last.prefix.length) === SLASH) {
      prefix = last.prefix;
      origin = last.origin;
    } else {
      prefix = ORIGIN.exec(url)?.[0] ?? url;
      origin = origins.get(prefix);
      if (!origin) {
        const u = new URL(prefix);
        const tls = u.protocol === "https:";
        if (!tls && u.protocol !== "http:") throw new TypeError(`Cannot fetch ${u.protocol} URLs`);
        const hostname = u.hostname.replace(/^\[(.*)\]$/, "$1");
        const port = Number(u.port) || (tls ? 443 : 80);
        origin = { target: { hostname, port, tls }, host: u.host, key: `${tls ? "s" : ""}${hostname}:${port}` };
        if (origins.size < 16) origins.set(prefix, origin);
      }
      last = { prefix, origin };
    }
    // The path and query as given when they are plain ASCII with no dot segment (emohaa.ts's are: a form-encoded
    // query); anything else as URL would send it (percent-encoded, dot segments resolved, without its fragment).
    let path = url.slice(prefix.length) || "/";
    if (path.charCodeAt(0) !== SLASH || NOT_PLAIN.test(path) || path.includes("/.")) {
      const u = new URL(url);
      path = u.pathname + u.search;
    }
    return { origin, path };
  };

  const fetchLike = async (url: string, init: FetchInit): Promise<UpstreamResponse> => {
    const { signal } = init;
    signal?.throwIfAborted();
    const deadline = init.deadline && { at: Date.now() + init.deadline.ms, what: init.deadline.what };
    const { origin, path } = originOf(url);
    const { target, key } = origin;
    // fetch refuses these too: a CR or LF would let a value write headers (or a request) of its own. The path is
    // plain ASCII or URL's serialisation, which has neither.
    if (UNSAFE.test(init.method)) throw new TypeError("Invalid request method");
    let head = `${init.method} ${path} HTTP/1.1\r\nHost: ${origin.host}\r\n`;
    for (const name in init.headers) {
      const value = init.headers[name]!;
      if (UNSAFE.test(value) || UNSAFE.test(name)) throw new TypeError(`Invalid value for header ${name}`);
      head += `${name}: ${value}\r\n`;
    }
    const request = encoder.encode(head + "\r\n");
    const reused = take(key);
    if (reused) {
      const { ex, response } = exchange(reused, init.method, request, signal, deadline);
      try {
        return await response;
      } catch (err) {
        // A kept-alive connection the server closed just before our request: nothing was answered, so the
        // request most likely never ran; once more on a fresh connection (what undici does), but only when running
        // it twice would do no harm: "nothing answered" is also what a server that acted and then reset looks like.
        if (signal?.aborted || !(err instanceof TypeError) || ex.answered || !init.idempotent) throw err;
      }
    }
    // Connecting is within the deadline too: a signal of its own for that rare wait (a kept connection needs none).
    let connectSignal = signal;
    let connectTimer: ReturnType<typeof setTimeout> | undefined;
    if (deadline) {
      const dl = new AbortController();
      connectTimer = setTimeout(() => dl.abort(timedOut(deadline.what)), Math.max(0, deadline.at - Date.now()));
      connectSignal = signal ? AbortSignal.any([signal, dl.signal]) : dl.signal;
    }
    let conn: Connection;
    try {
      conn = await open(key, target, connectSignal);
    } finally {
      clearTimeout(connectTimer);
    }
    if (connectSignal?.aborted) {
      conn.destroy(undefined);
      connectSignal.throwIfAborted();
    }
    return exchange(conn, init.method, request, signal, deadline).response;
  };

  return Object.assign(fetchLike, {
    /** FetchInit's `deadline` is kept here. */
    deadlines: true,
    /** Ends every idle connection. */
    close() {
      for (const list of idle.values()) for (const c of list.splice(0)) c.destroy(undefined);
    },
    /** Connections waiting in the pool for a next request. */
    idleConnections(): number {
      let n = 0;
      for (const list of idle.values()) n += list.length;
      return n;
    },
  });
}
