// A response's wire form (RFC 9112): the status line and fields of a handler's Response or direct answer, the server's
// own short answers, chunk framing. lib/http/server.ts writes them; what goes out when is its business.
import type { TextSink } from "../chat/respond.ts";
import { concat, CR, EMPTY, LF } from "../framing.ts";

const encoder = new TextEncoder();

/** Statuses that never carry a body. */
export const NO_BODY_STATUS = new Set([101, 204, 205, 304]);
export const REASONS: Record<number, string> = {
  200: "OK",
  201: "Created",
  204: "No Content",
  206: "Partial Content",
  301: "Moved Permanently",
  302: "Found",
  304: "Not Modified",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Content Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  417: "Expectation Failed",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  499: "Client Closed Request",
  500: "Internal Server Error",
  501: "Not Implemented",
  505: "HTTP Version Not Supported",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/** A simple response the server writes itself (errors before a request reaches the handler). */
export function plain(status: number, extra = ""): Uint8Array {
  const body = REASONS[status] ?? "Error";
  return encoder.encode(
    `HTTP/1.1 ${status} ${body}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n${extra}\r\n${body}`,
  );
}
export const CONTINUE = encoder.encode("HTTP/1.1 100 Continue\r\n\r\n");
export const LAST_CHUNK = encoder.encode("0\r\n\r\n");
export const REFUSED = plain(503, "Retry-After: 1\r\n");

/** Bytes of a head string: UTF-8 is the same as Latin-1 for ASCII, the common case; header values may be Latin-1. */
export function headBytes(text: string): Uint8Array {
  // deno-lint-ignore no-control-regex -- any byte above 0x7f means the text is not plain ASCII
  if (!/[^\x00-\x7f]/.test(text)) return encoder.encode(text);
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i) & 0xff;
  return out;
}

/**
 * The status line and fields of `res` as text, `date` added unless it has one; framing fields (Content-Length,
 * Transfer-Encoding, Connection, Keep-Alive) are the server's to write: the handler's Content-Length is returned
 * (a HEAD answer keeps it), the others dropped.
 */
export function responseHead(res: Response, date: string): { text: string; appLength: string | null } {
  let text = `HTTP/1.1 ${res.status} ${res.statusText || REASONS[res.status] || ""}\r\n`;
  let appLength: string | null = null;
  for (const [name, value] of res.headers) {
    const framing = framingField(name);
    if (framing === "content-length") appLength = value;
    else if (!framing) text += `${name}: ${value}\r\n`;
  }
  if (!res.headers.has("date")) text += `Date: ${date}\r\n`;
  return { text, appLength };
}

/**
 * The framing field `name` is, lower-cased (Content-Length, Transfer-Encoding, Connection, Keep-Alive: the server's to
 * write), or "" for any other. Only names of these lengths can be one: no lower-casing for the others.
 */
function framingField(name: string): string {
  if (name.length !== 14 && name.length !== 17 && name.length !== 10) return "";
  const lower = name.toLowerCase();
  return lower === "content-length" || lower === "transfer-encoding" || lower === "connection" ||
      lower === "keep-alive"
    ? lower
    : "";
}

/** A head and a body known whole: one write, with its Content-Length. */
function wholeAnswer(head: string, connection: string, body: Uint8Array): Uint8Array {
  const h = headBytes(`${head}Content-Length: ${body.length}\r\n${connection}\r\n`);
  return body.length ? concat(h, body) : h;
}

/** A head whose body follows chunked. */
const chunkedHead = (head: string, connection: string): Uint8Array =>
  headBytes(`${head}Transfer-Encoding: chunked\r\n${connection}\r\n`);

/** A Date header source: formatted at most once a second. */
export function dateHeaders(): (t: number) => string {
  let date = "";
  let dateAt = 0;
  return (t) => {
    if (t - dateAt >= 1000 || !date) {
      dateAt = t - (t % 1000);
      date = new Date(t).toUTCString();
    }
    return date;
  };
}

/** One chunk of a chunked body: its size in hex, CRLF, the bytes, CRLF. */
export function chunkBytes(data: Uint8Array): Uint8Array {
  const size = data.length.toString(16);
  const out = new Uint8Array(size.length + 4 + data.length);
  for (let i = 0; i < size.length; i++) out[i] = size.charCodeAt(i);
  out[size.length] = CR;
  out[size.length + 1] = LF;
  out.set(data, size.length + 2);
  out[out.length - 2] = CR;
  out[out.length - 1] = LF;
  return out;
}

const NOT_YET = Symbol("not yet");
/**
 * Settles a few microtask turns from now: a read of a stream that already ended settles before it (Bun's takes one
 * turn), a read that waits for more data does not. No timer: a stream's first piece is never held back.
 */
const soon = (): Promise<typeof NOT_YET> =>
  Promise.resolve().then(() => undefined).then(() => undefined).then(() => NOT_YET);

/** Where a response goes: a write that may ask to wait until the client read enough, and whether it is gone. */
export interface ResponseSink {
  write(bytes: Uint8Array): Promise<void> | undefined;
  isClosed(): boolean;
}

/**
 * Writes a response with a body: `head` (its status line and fields, without framing) and what `reader` gives. A
 * body whole after its first read (every non-stream answer) goes out in one write with its Content-Length; anything
 * longer is chunked, a chunk per read, as it comes. `connection` gives the Connection field (decided as late as
 * possible). False when the client went away before the end.
 */
export async function sendWithBody(
  out: ResponseSink,
  reader: ReadableStreamDefaultReader<Uint8Array>,
  head: string,
  connection: () => string,
): Promise<boolean> {
  const first = await reader.read();
  if (out.isClosed()) return false;
  const secondRead = first.done ? undefined : reader.read();
  const second = secondRead ? await Promise.race([secondRead, soon()]) : first;
  if (out.isClosed()) return false;
  if (second !== NOT_YET && second.done) {
    await out.write(wholeAnswer(head, connection(), first.done ? EMPTY : first.value));
    return true;
  }
  const w = out.write(chunkedHead(head, connection()));
  if (w) await w;
  let chunk = first;
  let next = secondRead!;
  for (;;) {
    if (!chunk.done && chunk.value.length) {
      const w = out.write(chunkBytes(chunk.value));
      if (w) await w;
    }
    if (out.isClosed()) return false;
    chunk = await next;
    if (chunk.done) break;
    next = reader.read();
  }
  if (out.isClosed()) return false;
  await out.write(LAST_CHUNK);
  return true;
}

/**
 * An answer without a Response: status and fields as a record, and a body pushed as text as it is made, with no
 * Headers, no stream and no read between the frames and the socket (the streamed replies, on the hot path).
 * lib/http/server.ts takes it where its handler's `info.direct` says so; every other server gets a Response.
 */
export class DirectAnswer {
  private started = false;
  private run?: { cancel(): void };

  constructor(
    readonly status: number,
    readonly headers: Record<string, string>,
    private readonly body: (out: TextSink) => { cancel(): void },
  ) {}

  /** Starts the body into `out` (once). */
  start(out: TextSink): void {
    if (this.started) return;
    this.started = true;
    this.run = this.body(out);
  }

  /** The client left (or never got the answer): the body stops, and whatever it holds is released. */
  cancel(): void {
    if (!this.started) this.start({ write() {}, end() {} });
    this.run?.cancel();
  }
}

/** The status line and fields of a direct answer (see responseHead: framing fields are the server's). */
export function directHead(answer: DirectAnswer, date: string): string {
  let text = `HTTP/1.1 ${answer.status} ${REASONS[answer.status] ?? ""}\r\n`;
  let dated = false;
  for (const name in answer.headers) {
    if (framingField(name)) continue;
    if (name.length === 4 && name.toLowerCase() === "date") dated = true;
    text += `${name}: ${answer.headers[name]}\r\n`;
  }
  return dated ? text : `${text}Date: ${date}\r\n`;
}

/**
 * Writes a direct answer's body: like sendWithBody, a body that ends within a few microtask turns of its first text
 * goes out whole with its Content-Length, in one write; a longer one is chunked, a chunk per text as it comes.
 * Resolves true at its end, false when the client went away first (`out.isClosed`).
 */
export function sendDirect(
  out: ResponseSink & { onClose(f: () => void): void },
  answer: DirectAnswer,
  head: string,
  connection: () => string,
): Promise<boolean> {
  return new Promise((resolve) => {
    let pending = "";
    let chunked = false;
    /** The body ended (its last bytes written or waiting to be). */
    let ended = false;
    let done = false;
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      resolve(ok);
    };
    out.onClose(() => {
      answer.cancel();
      finish(false);
    });
    const decide = () => {
      if (chunked || ended || done) return;
      chunked = true;
      const h = chunkedHead(head, connection());
      out.write(pending ? concat(h, chunkBytes(encoder.encode(pending))) : h);
      pending = "";
    };
    answer.start({
      write(text) {
        if (ended || done || out.isClosed()) return;
        if (!chunked) pending += text;
        else if (text) out.write(chunkBytes(encoder.encode(text)));
      },
      end() {
        if (ended || done || out.isClosed()) return;
        ended = true;
        if (chunked) {
          const w = out.write(LAST_CHUNK);
          if (w) w.then(() => finish(!out.isClosed()));
          else finish(true);
          return;
        }
        const w = out.write(wholeAnswer(head, connection(), encoder.encode(pending)));
        if (w) w.then(() => finish(!out.isClosed()));
        else finish(true);
      },
    });
    if (!done) soon().then(decide);
  });
}
