// A strict HTTP/1.1 server over raw connections: parsing, timeouts and the connection cap, with no runtime in it.
//
// Why not the runtime's server: Bun.serve, Deno.serve and node:http give no control over connections that the
// open Internet needs. None has a head timeout that trickled bytes cannot reset together with streams that may stay
// silent for minutes, none caps open connections with a choice of whom to drop, and Deno's exits when accept()
// runs out of descriptors. Here a connection is always in one state, each state has its own deadline (or, while a
// response is written, none), and at the cap a new connection evicts one that is not serving a request.
// The listeners (Bun.listen, Deno.listen, node:net) are in runtime/listen.ts; they only move bytes.

import { ChunkedDecoder, concat, copyOf, EMPTY, headEnd } from "../framing.ts";
import { Eviction } from "./eviction.ts";
import { HeadError, invalidStart, parseHead, type RequestHead, requestUrl } from "./head.ts";
import { ServerRequest } from "./request.ts";
import {
  CONTINUE,
  dateHeaders,
  DirectAnswer,
  directHead,
  headBytes,
  NO_BODY_STATUS,
  plain,
  REFUSED,
  responseHead,
  sendDirect,
  sendWithBody,
} from "./response.ts";

/** The bytes-level connection a listener gives. */
export interface ServerWire {
  /** Writes bytes; false when the kernel did not take them all (a `drain` event follows). */
  write(data: Uint8Array): boolean;
  /** Closes the connection (what was written still goes out where the runtime can). */
  end(): void;
  /**
   * Half-closes: what was written goes out, then a FIN; bytes still arrive (`data`) until the peer closes. Where a
   * listener has none, the server waits and reads before `end` instead.
   */
  closeWrite?(): void;
  /** Stops reading (backpressure on a request body, or pipelined requests piling up). */
  pause(): void;
  resume(): void;
  /** The peer's address, where the listener knows it (rate limits per client). */
  readonly remoteAddress?: string;
}

/** What a listener tells the server about one connection. `close` comes once, also for a peer's FIN. */
export interface ConnectionEvents {
  data(bytes: Uint8Array): void;
  drain(): void;
  close(): void;
}

/** What the server tells a handler about the connection. */
export interface ClientInfo {
  remoteAddress?: string;
  /** This server also takes a DirectAnswer (lib/http/response.ts): a body pushed as text, no Response or stream. */
  direct?: true;
}

type Answer = Response | DirectAnswer | Promise<Response | DirectAnswer>;

/** A request's handler, given a Request. */
export type Handler = (req: Request, info: ClientInfo) => Answer;

/**
 * A handler that says `lean`: given the server's own ServerRequest (lib/http/request.ts), with no Request, Headers
 * or second signal made unless it asks for one.
 */
export type LeanHandler = ((req: ServerRequest, info: ClientInfo) => Answer) & { readonly lean: true };

const isLean = (h: Handler | LeanHandler): h is LeanHandler => (h as { lean?: unknown }).lean === true;

export interface HttpServerOptions {
  /** A request head must arrive whole within this, from its first byte (or from the connection's opening). */
  headerTimeoutMs: number;
  /** A request body must arrive whole within this, from the end of its head. */
  bodyTimeoutMs: number;
  /** A keep-alive connection with no request is closed after this. */
  idleTimeoutMs: number;
  /** Open connections at most; nearing it, one not serving a request is evicted (or, if all are, the new one refused). */
  maxConnections: number;
  /** Largest request head (431 beyond; default 32 KiB). */
  maxHeadBytes?: number;
  /** Longest request target (414 beyond; default 8 KiB). */
  maxUrlBytes?: number;
  /** A connection reading its head is not evicted before it is this old (it has had no chance to send; default 20 ms). */
  evictGraceMs?: number;
  /** A connection reading a body is not evicted before its head is this old (default 1 s). */
  bodyGraceMs?: number;
  /**
   * How long an evicted or refused socket stays open, paused, before it is closed (default 250 ms; 0: at once,
   * for a listener that stops accepting by itself when descriptors run short).
   */
  lingerMs?: number;
  /**
   * After an early final answer (413, 431, 414, 408, a 400 on a body): how long at most the server keeps reading and
   * dropping what the client still sends before it closes, and how long without a byte ends that sooner (defaults
   * 5 s and 2 s). Closed with unread bytes, the kernel would reset the connection and the client lose the answer.
   */
  lingerCloseMs?: number;
  lingerIdleMs?: number;
  /** The host used for HTTP/1.0 requests without a Host header. */
  defaultHost: string;
  /** Logs a server-side failure (never client data). */
  onError?(message: string): void;
  now?(): number;
}

export interface HttpServer {
  /** A new connection from a listener: returns where its events go. */
  accept(wire: ServerWire): ConnectionEvents;
  /** Open connections. */
  readonly size: number;
  /**
   * Closes one connection that is not serving a request, at once: for a listener whose accept failed for want of
   * descriptors. False when there was none.
   */
  shed(): boolean;
  /** Graceful: idle connections close, requests in flight finish, then their connections close. Force: all close now. */
  stop(force?: boolean): Promise<void>;
}

const latin1 = new TextDecoder("latin1");
/** A body cancelled by the handler is still read and dropped up to this much, so the connection can be kept. */
const DISCARD_MAX_BYTES = 256 * 1024;
/** What a lingering close reads and drops at most before it closes anyway. */
const LINGER_MAX_BYTES = 64 * 1024 * 1024;
/** Queued request-body bytes before the socket is paused. */
const BODY_STRATEGY: QueuingStrategy<Uint8Array> = { highWaterMark: 64 * 1024, size: (c) => c!.byteLength };
type State =
  /** Waiting for the first byte of a request (a fresh connection, or a kept-alive one after a response). */
  | "idle"
  /** Reading a request head. */
  | "head"
  /** A request is being handled (its body may still be arriving). */
  | "busy"
  /** Answered early and half-closed: what the client still sends is read and dropped until it closes (or a bound). */
  | "lingering"
  | "closed";

type BodyState = "none" | "length" | "chunked" | "done";

/** Builds the server; a listener feeds it connections. */
export function createHttpServer(handler: LeanHandler, options: HttpServerOptions): HttpServer;
export function createHttpServer(handler: Handler, options: HttpServerOptions): HttpServer;
export function createHttpServer(handler: Handler | LeanHandler, options: HttpServerOptions): HttpServer {
  const lean = isLean(handler) ? handler : undefined;
  const now = options.now ?? Date.now;
  const maxHeadBytes = options.maxHeadBytes ?? 32 * 1024;
  const maxUrlBytes = options.maxUrlBytes ?? 8192;
  const lingerCloseMs = options.lingerCloseMs ?? 5000;
  const lingerIdleMs = options.lingerIdleMs ?? 2000;
  // The open connections and the cap's rule (lib/http/eviction.ts); `idle` and `reading` are the evictable ones.
  const policy = new Eviction<Conn>({
    maxConnections: options.maxConnections,
    evictGraceMs: options.evictGraceMs ?? 20,
    bodyGraceMs: options.bodyGraceMs ?? 1000,
    lingerMs: options.lingerMs ?? 250,
  });
  const { all, idle, reading } = policy;
  let stopping = false;
  let stopped: (() => void) | undefined;
  let sweeper: ReturnType<typeof setInterval> | undefined;
  const dateHeader = dateHeaders();

  /** Closes what is past its deadline; one timer for every connection instead of one per connection. */
  const sweep = () => {
    const t = now();
    for (const c of all) c.check(t);
  };

  class Conn {
    state: State = "idle";
    /** When the current state's deadline runs from (the connection's opening, the head's first byte, the body's start). */
    since: number;
    /** The deadline of the current state, or Infinity while a response is written. */
    deadline: number;
    /** While written bytes wait for the client to read them: when it must have. */
    writeDeadline = Infinity;
    buf: Uint8Array = EMPTY;
    paused = false;
    // The request being handled.
    head?: RequestHead;
    abort?: AbortController;
    bodyState: BodyState = "none";
    /** The chunked decoder of the request being read (lib/framing.ts). */
    chunked?: ChunkedDecoder;
    bodyLeft = 0;
    body?: ReadableStreamDefaultController<Uint8Array>;
    /** The handler cancelled the body: what is left is read and dropped, up to a bound. */
    discarding = 0;
    continueSent = false;
    responding = false;
    keepAlive = true;
    drainWaiters: (() => void)[] = [];
    /** The response body's reader, to cancel when the client goes away. */
    reader?: ReadableStreamDefaultReader<Uint8Array>;
    /** A direct answer being written: told when the client goes away. */
    onGone?: () => void;

    /** What the handler is told about the client besides the request. */
    readonly info: { remoteAddress?: string; direct: true };

    constructor(readonly wire: ServerWire, t: number) {
      this.info = { remoteAddress: wire.remoteAddress, direct: true };
      this.since = t;
      // A fresh connection has the head's whole time to send it: a silent one is closed like a slow head.
      this.deadline = t + options.headerTimeoutMs;
      reading.add(this);
    }

    isClosed(): boolean {
      return this.state === "closed";
    }

    /** The client went away (or the connection failed). */
    close(): void {
      this.destroy();
    }

    check(t: number): void {
      // A client that leaves written bytes unread for the body's time: a slow reader holds the connection no longer.
      if (t >= this.writeDeadline) return this.destroy();
      if (t < this.deadline) return;
      if (this.state === "head") this.fail(408);
      else this.destroy();
    }

    /** Leaves the evictable sets. */
    private unlist(): void {
      idle.delete(this);
      reading.delete(this);
    }

    /**
     * Ends the connection now: the request's signal aborts, its body stream errors, its response is cancelled.
     * `linger`: an evicted connection's socket is closed a little later (see retire).
     */
    destroy(linger = false): void {
      if (this.state === "closed") return;
      this.state = "closed";
      this.unlist();
      all.delete(this);
      if (linger) policy.retire(this.wire);
      else this.wire.end();
      this.abort?.abort(new DOMException("The client closed the connection", "AbortError"));
      try {
        this.body?.error(new TypeError("The client closed the connection"));
      } catch {
        // Closed already.
      }
      this.body = undefined;
      this.reader?.cancel().catch(() => {});
      this.gone();
      for (const w of this.drainWaiters.splice(0)) w();
      if (stopping && all.size === 0) stopped?.();
    }

    /** A direct answer's writer learns that the client is gone. */
    private gone(): void {
      const f = this.onGone;
      this.onGone = undefined;
      f?.();
    }

    /** For sendDirect: what to do when the client goes away. */
    onClose(f: () => void): void {
      this.onGone = f;
    }

    /** Answers a bad or late request head with `status` and closes, lingering (see linger). */
    fail(status: number): void {
      this.wire.write(plain(status));
      this.linger();
    }

    /**
     * Closes after an early final answer the way nginx's lingering close does: half-close (the answer, then a FIN),
     * read and drop what the client still sends until it closes, for a bounded time and byte count, then close. A
     * close with unread bytes would make the kernel reset the connection, and the client lose the answer.
     */
    linger(): void {
      if (this.state === "closed" || this.state === "lingering") return;
      if (!this.wire.closeWrite && lingerCloseMs <= 0) return this.destroy();
      this.abort?.abort(new DOMException("The request was answered early", "AbortError"));
      this.abort = undefined;
      try {
        this.body?.error(new TypeError("The request was answered early"));
      } catch {
        // Closed already.
      }
      this.body = undefined;
      this.reader?.cancel().catch(() => {});
      this.gone();
      this.state = "lingering";
      this.buf = EMPTY;
      this.discarding = LINGER_MAX_BYTES;
      const t = now();
      this.lingerUntil = t + lingerCloseMs;
      this.deadline = Math.min(this.lingerUntil, t + lingerIdleMs);
      // First out for a newcomer at the cap: it serves nothing.
      reading.delete(this);
      idle.delete(this);
      idle.add(this);
      this.wire.closeWrite?.();
      if (this.paused) {
        this.paused = false;
        this.wire.resume();
      }
      for (const w of this.drainWaiters.splice(0)) w();
    }

    /** While lingering: the end of the lingering close. */
    private lingerUntil = 0;

    write(bytes: Uint8Array): Promise<void> | undefined {
      if (this.state === "closed" || this.wire.write(bytes)) return undefined;
      if (this.writeDeadline === Infinity) this.writeDeadline = now() + options.bodyTimeoutMs;
      return new Promise((r) => this.drainWaiters.push(r));
    }

    drain(): void {
      this.writeDeadline = Infinity;
      for (const w of this.drainWaiters.splice(0)) w();
    }

    data(bytes: Uint8Array): void {
      if (this.state === "closed") return;
      if (this.state === "lingering") {
        if ((this.discarding -= bytes.length) < 0) return this.destroy();
        this.deadline = Math.min(this.lingerUntil, now() + lingerIdleMs);
        return;
      }
      if (this.state === "busy") {
        if (this.bodyState !== "done" && this.bodyState !== "none") return this.bodyBytes(bytes);
        // A pipelined request while one is handled: kept (a copy: the listener may reuse its buffer) for later.
        this.buf = concat(this.buf, copyOf(bytes));
        if (this.buf.length > maxHeadBytes && !this.paused) {
          this.paused = true;
          this.wire.pause();
        }
        return;
      }
      if (this.state === "idle") {
        this.state = "head";
        idle.delete(this);
        if (!reading.has(this)) {
          this.since = now();
          this.deadline = this.since + options.headerTimeoutMs;
          reading.add(this);
        }
      }
      this.parse(bytes, true);
    }

    /** Looks for a request head in what was kept plus `bytes`, and starts the request when it is whole. */
    private parse(bytes: Uint8Array, copy: boolean): void {
      const from = Math.max(0, this.buf.length - 3);
      const joined = concat(this.buf, bytes);
      const end = headEnd(joined, from);
      if (end < 0 || end > maxHeadBytes) {
        // A request line that cannot be valid is that, not a head too large.
        const invalid = invalidStart(joined, maxUrlBytes);
        if (invalid) return this.fail(invalid);
      }
      if (end < 0) {
        if (joined.length > maxHeadBytes) return this.fail(431);
        this.buf = joined === bytes && copy ? copyOf(bytes) : joined;
        return;
      }
      if (end > maxHeadBytes) return this.fail(431);
      let head: RequestHead;
      let url: string;
      try {
        head = parseHead(latin1.decode(joined.subarray(0, end)), options.defaultHost, maxUrlBytes);
        url = requestUrl(head);
      } catch (err) {
        if (err instanceof HeadError) return this.fail(err.status);
        throw err;
      }
      const rest = joined.subarray(end);
      this.buf = EMPTY;
      this.start(head, url, rest, copy && joined === bytes);
    }

    private start(head: RequestHead, url: string, rest: Uint8Array, restShared: boolean): void {
      this.state = "busy";
      this.head = head;
      this.keepAlive = head.keepAlive && !stopping;
      this.continueSent = false;
      this.responding = false;
      this.discarding = 0;
      const t = now();
      const abort = (this.abort = new AbortController());
      let body: BodyInit | null = null;
      const method = head.method;
      if (head.body === -1 || head.body === 0) {
        this.bodyState = "none";
        this.unlist();
        this.deadline = Infinity;
        this.leftover(rest, restShared);
      } else if (typeof head.body === "number" && rest.length >= head.body) {
        // The whole body came with its head (small JSON requests do): its bytes, no stream.
        this.bodyState = "none";
        // A copy (a Buffer's `slice` is a view into memory the socket reuses): a lean handler reads it later.
        body = copyOf(rest.subarray(0, head.body));
        this.unlist();
        this.deadline = Infinity;
        this.leftover(rest.subarray(head.body), restShared);
      } else {
        this.bodyState = head.body === "chunked" ? "chunked" : "length";
        if (head.body === "chunked") this.chunked = new ChunkedDecoder({ strict: true, maxTrailerBytes: maxHeadBytes });
        this.bodyLeft = head.body === "chunked" ? 0 : head.body;
        this.since = t;
        this.deadline = t + options.bodyTimeoutMs;
        // Still evictable past a grace: it holds a connection without having asked for anything yet.
        reading.delete(this);
        reading.add(this);
        body = new ReadableStream<Uint8Array>(
          {
            start: (c) => {
              this.body = c;
            },
            pull: () => {
              if (head.expectContinue && !this.continueSent && !this.responding) {
                this.continueSent = true;
                this.wire.write(CONTINUE);
              }
              if (this.paused) {
                this.paused = false;
                this.wire.resume();
              }
            },
            cancel: () => {
              this.body = undefined;
              this.discarding = DISCARD_MAX_BYTES;
            },
          },
          BODY_STRATEGY,
        );
        if (rest.length) this.bodyBytes(rest);
      }
      if (body !== null && (method === "GET" || method === "HEAD")) {
        // A body on GET or HEAD has no meaning (RFC 9110 9.3.1), and Deno's Request refuses one where Bun's takes
        // it: the request goes on without it on every runtime, its bytes read and dropped like an unread body.
        body = null;
        if (this.body) {
          this.body = undefined;
          this.discarding = DISCARD_MAX_BYTES;
        }
      }
      // One request either way: the server's own for a lean handler, made a Request for any other.
      const own = new ServerRequest(
        method,
        url,
        head.headers,
        body as Uint8Array<ArrayBuffer> | ReadableStream | null,
        abort.signal,
      );
      let req: ServerRequest | Request = own;
      if (!lean) {
        try {
          req = own.toRequest();
        } catch {
          return this.fail(400);
        }
      }
      let res: Answer;
      try {
        res = lean ? lean(own, this.info) : (handler as Handler)(req as Request, this.info);
      } catch (err) {
        res = Promise.reject(err);
      }
      void this.respond(res);
    }

    /** Bytes after a request without a body left to read: the next pipelined request, kept for later. */
    private leftover(rest: Uint8Array, shared: boolean): void {
      if (rest.length) this.buf = shared ? copyOf(rest) : rest;
    }

    /** Request-body bytes: Content-Length or chunked framing (lib/framing.ts), into the body stream. */
    private bodyBytes(bytes: Uint8Array): void {
      if (this.bodyState === "length") {
        const n = Math.min(this.bodyLeft, bytes.length);
        this.deliver(bytes.subarray(0, n));
        this.bodyLeft -= n;
        if (this.bodyLeft === 0 && this.state === "busy") this.bodyDone(bytes.subarray(n));
        return;
      }
      if (this.bodyState !== "chunked") return;
      const r = this.chunked!.feed(bytes, (b) => {
        this.deliver(b);
        return this.state === "busy";
      });
      if (this.state !== "busy") return;
      if (r.state === "error") return this.bodyError();
      if (r.state === "done") this.bodyDone(r.rest);
    }

    private deliver(bytes: Uint8Array): void {
      if (!bytes.length) return;
      const c = this.body;
      if (c) {
        // The listener may reuse its read buffer after this call: the stream gets its own copy.
        c.enqueue(copyOf(bytes));
        if ((c.desiredSize ?? 1) <= 0 && !this.paused) {
          this.paused = true;
          this.wire.pause();
        }
      } else if ((this.discarding -= bytes.length) < 0) {
        // Too much left of a body nobody reads: the connection closes after the answer, lingering.
        this.keepAlive = false;
        if (this.finished) return this.linger();
        // No answer yet (a 413 on its way): dropped on, within the lingering bound, until it is written.
        if (this.discarding < DISCARD_MAX_BYTES - LINGER_MAX_BYTES) this.destroy();
      }
    }

    private bodyDone(rest: Uint8Array): void {
      this.bodyState = "done";
      this.deadline = Infinity;
      reading.delete(this);
      try {
        this.body?.close();
      } catch {
        // Cancelled.
      }
      this.body = undefined;
      if (this.paused) {
        this.paused = false;
        this.wire.resume();
      }
      if (rest.length) this.buf = copyOf(rest);
      if (this.finished) this.next();
    }

    /**
     * Malformed chunked framing: the body errors, and the connection ends once the handler has answered; before it
     * has, the server answers 400 itself (the handler's answer, to a body that failed, is dropped).
     */
    private bodyError(): void {
      if (!this.responding) return this.fail(400);
      try {
        this.body?.error(new TypeError("Malformed chunked request body"));
      } catch {
        // Cancelled.
      }
      this.body = undefined;
      this.bodyState = "done";
      this.deadline = Infinity;
      reading.delete(this);
      this.keepAlive = false;
      if (!this.responding || this.finished) this.linger();
    }

    /** Set when the response has been written in full. */
    private finished = false;

    private async respond(pending: Response | DirectAnswer | Promise<Response | DirectAnswer>): Promise<void> {
      this.finished = false;
      let res: Response | DirectAnswer;
      try {
        res = await pending;
        if (!(res instanceof Response) && !(res instanceof DirectAnswer)) {
          throw new TypeError("The handler did not return a Response");
        }
      } catch {
        options.onError?.("request handler failed");
        res = new Response("Internal Server Error", { status: 500 });
      }
      if (this.isClosed() || this.state === "lingering") {
        if (res instanceof DirectAnswer) res.cancel();
        else res.body?.cancel().catch(() => {});
        return;
      }
      this.responding = true;
      const head = this.head!;
      const unread = this.bodyState !== "done" && this.bodyState !== "none";
      // A client told to wait for 100 Continue that never got it may never send its body: the connection ends.
      if (head.expectContinue && !this.continueSent && unread) this.keepAlive = false;
      // More declared than is worth reading to keep the connection (a body over the limit, answered 413 at once):
      // the answer goes out now, and the connection closes after it, lingering, whatever of the body comes.
      if (unread && this.bodyState === "length" && this.bodyLeft > DISCARD_MAX_BYTES) this.keepAlive = false;
      const status = res.status;
      const bodyless = head.method === "HEAD" || NO_BODY_STATUS.has(status) || status < 200;
      if (stopping) this.keepAlive = false;
      const connection =
        () => (this.keepAlive ? (head.minor === 0 ? "Connection: keep-alive\r\n" : "") : "Connection: close\r\n");
      if (res instanceof DirectAnswer) {
        const text = directHead(res, dateHeader(now()));
        if (bodyless) {
          res.cancel();
          await this.write(
            headBytes(
              `${text}${
                status >= 200 && !NO_BODY_STATUS.has(status) ? "Content-Length: 0\r\n" : ""
              }${connection()}\r\n`,
            ),
          );
        } else if (!(await sendDirect(this, res, text, connection))) return;
        this.onGone = undefined;
        return this.answered();
      }
      let { text, appLength } = responseHead(res, dateHeader(now()));
      try {
        if (bodyless || !res.body) {
          res.body?.cancel().catch(() => {});
          if (head.method === "HEAD" && appLength !== null) text += `Content-Length: ${appLength}\r\n`;
          else if (!NO_BODY_STATUS.has(status) && status >= 200) text += "Content-Length: 0\r\n";
          await this.write(headBytes(text + connection() + "\r\n"));
        } else {
          this.reader = res.body.getReader();
          if (!(await sendWithBody(this, this.reader, text, connection))) return;
          this.reader = undefined;
        }
      } catch {
        // The response body failed mid-way: the client sees a truncated (unterminated) chunked body.
        this.destroy();
        return;
      }
      this.answered();
    }

    /** The answer was written whole: on to the next request, or the rest of this one's body dropped first. */
    private answered(): void {
      if (this.isClosed()) return;
      this.finished = true;
      this.abort = undefined;
      if (this.bodyState === "done" || this.bodyState === "none") this.next();
      else if (!this.keepAlive) this.linger();
      else if (this.body) {
        // The handler answered without reading the whole body: the rest is dropped as it comes, within a bound
        // (bodyDone then moves on to the next request).
        const c = this.body;
        this.body = undefined;
        this.discarding = DISCARD_MAX_BYTES;
        try {
          c.error(new TypeError("The response was sent before the body was read"));
        } catch {
          // Closed.
        }
        if (this.paused) {
          this.paused = false;
          this.wire.resume();
        }
      }
    }

    /** After a response: the next request (pipelined bytes kept, or an idle wait), or the end of the connection. */
    private next(): void {
      if (!this.keepAlive || stopping) return this.destroy();
      this.state = "idle";
      this.head = undefined;
      this.responding = false;
      this.finished = false;
      this.bodyState = "none";
      const t = now();
      this.since = t;
      this.deadline = t + options.idleTimeoutMs;
      idle.add(this);
      if (this.paused) {
        this.paused = false;
        this.wire.resume();
      }
      if (this.buf.length) {
        const kept = this.buf;
        this.buf = EMPTY;
        this.state = "head";
        idle.delete(this);
        this.deadline = t + options.headerTimeoutMs;
        reading.add(this);
        this.parse(kept, false);
      }
    }
  }

  const refusedEvents: ConnectionEvents = { data() {}, drain() {}, close() {} };

  return {
    accept(wire) {
      const t = now();
      if (stopping || !policy.admit(t)) {
        wire.write(REFUSED);
        policy.retire(wire);
        return refusedEvents;
      }
      const conn = new Conn(wire, t);
      all.add(conn);
      sweeper ??= setInterval(sweep, 250);
      return conn;
    },
    get size() {
      return all.size;
    },
    shed: () => policy.shed(),
    stop(force) {
      stopping = true;
      const done = new Promise<void>((r) => (stopped = r));
      for (const c of all) if (force || c.state !== "busy") c.destroy();
      if (all.size === 0) stopped!();
      return done.finally(() => {
        clearInterval(sweeper);
        sweeper = undefined;
      });
    },
  };
}
