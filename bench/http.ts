// The load generator's HTTP/1.1 client: keep-alive connections over Bun.connect, responses parsed as bytes.
//
// Lighter than fetch (no Request/Response/Headers objects, no body stream, no thread hop), so the generator
// spends little CPU per request and the processes it measures get the machine. Only what the benchmark needs:
// one request at a time per connection, Content-Length or chunked bodies, no redirects, no compression.
import type { Socket } from "bun";

/** What a request sees of its response. */
export interface Handlers {
  /** The status and the raw header block (lower-cased). */
  head?(status: number, headers: string): void;
  /** Each piece of the body, de-chunked. The bytes are only valid during the call. */
  data?(chunk: Uint8Array): void;
}

const CRLF2 = new Uint8Array([13, 10, 13, 10]);

function indexOf(hay: Uint8Array, needle: Uint8Array, from = 0): number {
  const first = needle[0]!;
  for (let i = hay.indexOf(first, from); i >= 0 && i <= hay.length - needle.length; i = hay.indexOf(first, i + 1)) {
    let j = 1;
    while (j < needle.length && hay[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}

const latin1 = new TextDecoder("latin1");

type State = "head" | "length" | "size" | "chunk" | "chunk-end" | "trailer" | "close";

/** One keep-alive connection; one exchange at a time. */
class Conn {
  socket?: Socket<undefined>;
  private state: State = "head";
  private buf = new Uint8Array(0);
  private left = 0;
  private handlers: Handlers = {};
  private done?: { resolve(): void; reject(e: Error): void };
  private pendingWrite?: string;
  reusable = true;
  closed = false;

  exchange(request: string, handlers: Handlers): Promise<void> {
    this.handlers = handlers;
    this.state = "head";
    this.buf = new Uint8Array(0);
    return new Promise<void>((resolve, reject) => {
      this.done = { resolve, reject };
      this.write(request);
    });
  }

  private write(s: string): void {
    const n = this.socket!.write(s);
    // A short write keeps the rest for the drain callback (rare: requests are small).
    if (n < s.length) this.pendingWrite = s.slice(Math.max(0, n));
  }

  drain(): void {
    if (!this.pendingWrite) return;
    const s = this.pendingWrite;
    this.pendingWrite = undefined;
    this.write(s);
  }

  fail(err: Error): void {
    this.closed = true;
    this.reusable = false;
    const d = this.done;
    this.done = undefined;
    d?.reject(err);
  }

  private finish(): void {
    const d = this.done;
    this.done = undefined;
    d?.resolve();
  }

  /** Feeds bytes from the socket through the response state machine. */
  feed(bytes: Uint8Array): void {
    let data = bytes;
    while (data.length && this.done) {
      switch (this.state) {
        case "head": {
          const joined = this.buf.length ? concat(this.buf, data) : data;
          const end = indexOf(joined, CRLF2);
          if (end < 0) {
            this.buf = joined.slice();
            return;
          }
          this.buf = new Uint8Array(0);
          const head = latin1.decode(joined.subarray(0, end)).toLowerCase();
          const status = Number(head.slice(9, 12));
          this.handlers.head?.(status, head);
          if (/\r\nconnection: *close/.test(head)) this.reusable = false;
          data = joined.subarray(end + 4);
          const len = /\r\ncontent-length: *(\d+)/.exec(head);
          if (/\r\ntransfer-encoding: *chunked/.test(head)) this.state = "size";
          else if (len) {
            this.left = Number(len[1]);
            this.state = "length";
            if (this.left === 0) return this.finish();
          } else {
            this.state = "close";
            this.reusable = false;
          }
          break;
        }
        case "length": {
          const n = Math.min(this.left, data.length);
          this.handlers.data?.(data.subarray(0, n));
          this.left -= n;
          data = data.subarray(n);
          if (this.left === 0) return this.finish();
          break;
        }
        case "close":
          this.handlers.data?.(data);
          return;
        case "size": {
          const joined = this.buf.length ? concat(this.buf, data) : data;
          const nl = joined.indexOf(10);
          if (nl < 0) {
            this.buf = joined.slice();
            return;
          }
          this.buf = new Uint8Array(0);
          this.left = parseInt(latin1.decode(joined.subarray(0, nl)), 16);
          data = joined.subarray(nl + 1);
          this.state = this.left === 0 ? "trailer" : "chunk";
          break;
        }
        case "chunk": {
          const n = Math.min(this.left, data.length);
          this.handlers.data?.(data.subarray(0, n));
          this.left -= n;
          data = data.subarray(n);
          if (this.left === 0) {
            this.state = "chunk-end";
            this.left = 2;
          }
          break;
        }
        case "chunk-end": {
          const n = Math.min(this.left, data.length);
          this.left -= n;
          data = data.subarray(n);
          if (this.left === 0) this.state = "size";
          break;
        }
        case "trailer": {
          // No trailers are sent to us: the last chunk is followed by one CRLF.
          const joined = this.buf.length ? concat(this.buf, data) : data;
          if (joined.length < 2) {
            this.buf = joined.slice();
            return;
          }
          this.buf = new Uint8Array(0);
          return this.finish();
        }
      }
    }
  }

  /** The peer closed: a body read to the close ends well, anything else fails. */
  ended(): void {
    this.closed = true;
    this.reusable = false;
    if (this.state === "close") this.finish();
    else this.fail(new Error("connection closed mid-response"));
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Keep-alive connections to one origin. */
export class Pool {
  private readonly idle: Conn[] = [];
  readonly hostHeader: string;

  constructor(
    private readonly hostname: string,
    private readonly port: number,
  ) {
    this.hostHeader = `${hostname}:${port}`;
  }

  private async connect(): Promise<Conn> {
    const conn = new Conn();
    conn.socket = await Bun.connect<undefined>({
      hostname: this.hostname,
      port: this.port,
      socket: {
        data: (_s, bytes) => conn.feed(bytes),
        drain: () => conn.drain(),
        close: () => conn.ended(),
        error: (_s, err) => conn.fail(err),
      },
    });
    conn.socket.setNoDelay?.(true);
    return conn;
  }

  /** Sends one request (`head` is the full request head without the final CRLF; `body` optional). */
  async request(
    method: string,
    path: string,
    headers: string,
    body: string | undefined,
    handlers: Handlers,
  ): Promise<void> {
    let conn = this.idle.pop();
    while (conn && conn.closed) conn = this.idle.pop();
    conn ??= await this.connect();
    const len = body === undefined ? "" : `content-length: ${Buffer.byteLength(body)}\r\n`;
    await conn.exchange(
      `${method} ${path} HTTP/1.1\r\nhost: ${this.hostHeader}\r\n${headers}${len}\r\n${body ?? ""}`,
      handlers,
    );
    if (conn.reusable && !conn.closed) this.idle.push(conn);
    else conn.socket?.end();
  }

  close(): void {
    for (const c of this.idle) c.socket?.end();
    this.idle.length = 0;
  }
}
