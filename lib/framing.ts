// HTTP/1.1 message framing shared by the server (lib/http/server.ts, request bodies) and the upstream client
// (lib/upstream/http1.ts, response bodies): where a head ends, and the chunked transfer coding. Bytes in, body bytes
// out, however the bytes were split across reads.

export const CR = 13;
export const LF = 10;
export const EMPTY = new Uint8Array(0);

/**
 * A copy of `bytes` in an array of its own. (`slice` does not always copy: a Node Buffer's is a view, and the bytes a
 * socket hands over may be a Buffer whose memory it reuses.)
 */
export const copyOf = (bytes: Uint8Array): Uint8Array<ArrayBuffer> => new Uint8Array(bytes);

/** `a` then `b` in one array (`b` itself when `a` is empty: no copy). */
export function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (!a.length) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * Where a head ends (the index after its blank line), or -1; the search starts at `from`. A bare LF ends a line too:
 * the server's parser then rejects it, the client's tolerates it.
 */
export function headEnd(bytes: Uint8Array, from: number): number {
  for (let i = bytes.indexOf(LF, from); i >= 0; i = bytes.indexOf(LF, i + 1)) {
    if (bytes[i + 1] === LF) return i + 2;
    if (bytes[i + 1] === CR && bytes[i + 2] === LF) return i + 3;
  }
  return -1;
}

/** Whether two field names are the same, `lower` being lowercase already (ASCII case folding: names are tokens). */
function sameName(name: string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if ((c >= 65 && c <= 90 ? c + 32 : c) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * A head's fields as they came, read as Headers reads them: by name in any case, a repeated field's values joined
 * with ", ". The server's requests (lib/http/request.ts) and the upstream client's responses (lib/upstream/http1.ts)
 * hold theirs so: a few fields, read a few times, need no Headers and no lowercased copies.
 */
export class Fields {
  constructor(private readonly list: readonly (readonly [string, string])[]) {}

  get(name: string): string | null {
    const lower = name.toLowerCase();
    let value: string | null = null;
    for (const [n, v] of this.list) if (sameName(n, lower)) value = value === null ? v : `${value}, ${v}`;
    return value;
  }

  has(name: string): boolean {
    const lower = name.toLowerCase();
    return this.list.some(([n]) => sameName(n, lower));
  }
}

const latin1 = new TextDecoder("latin1");
/** tchar (RFC 9110 5.6.2), as a regular expression's character class: a token is one or more of them. */
export const TCHAR_CLASS = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]";
/** A token (RFC 9110 5.6.2): a method, a field name. */
export const TOKEN = new RegExp(`^${TCHAR_CLASS}+$`);
const T = `${TCHAR_CLASS}+`;
const QUOTED = '"(?:[\\t !#-\\[\\]-~\\x80-\\xff]|\\\\[\\t -~\\x80-\\xff])*"';
/** A chunk-size line (RFC 9112 7.1.1): hex digits, then `*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted ) ] )`. */
const STRICT_SIZE = new RegExp(`^([0-9A-Fa-f]{1,8})(?:[ \\t]*;[ \\t]*${T}(?:[ \\t]*=[ \\t]*(?:${T}|${QUOTED}))?)*\\r$`);
/** What a client takes from a server: hex digits, then anything up to the line's end. */
const LENIENT_SIZE = /^([0-9A-Fa-f]{1,8})(?:[;\s][^\n]*)?$/;

/** The longest chunk-size line either side reads. */
const MAX_SIZE_LINE = 1024;

export interface ChunkedOptions {
  /**
   * Strict (a server reading requests): CRLF line ends only, chunk extensions as RFC 9112 writes them. Lenient (a
   * client reading a server): a bare LF ends a line, and whatever follows the size is ignored.
   */
  strict: boolean;
  /** Trailer lines, each, at most this long. */
  maxTrailerBytes: number;
}

/** What `feed` found: more bytes needed, the end of the body (with the bytes after it), or malformed framing. */
export type ChunkedResult =
  | { state: "more" }
  | { state: "done"; rest: Uint8Array }
  | { state: "error"; reason: "size" | "chunk" | "trailer" };

const MORE: ChunkedResult = { state: "more" };

/**
 * The chunked transfer coding, decoded incrementally: `feed` takes the bytes of each read as they come, hands the
 * body's bytes to `onData` (views of the bytes given: a caller that keeps them copies them) and says where the body
 * stands. `onData` returning false stops the decoding (the caller gave up on the body).
 */
export class ChunkedDecoder {
  private state: "size" | "chunk" | "chunk-end" | "trailer" | "done" = "size";
  private left = 0;
  /** A line still arriving (a copy). */
  private buf: Uint8Array = EMPTY;

  constructor(private readonly o: ChunkedOptions) {}

  feed(bytes: Uint8Array, onData: (bytes: Uint8Array) => boolean | void): ChunkedResult {
    let data = bytes;
    for (;;) {
      switch (this.state) {
        case "size": {
          const l = this.line(data, MAX_SIZE_LINE);
          if (l === undefined) return MORE;
          const m = l && (this.o.strict ? STRICT_SIZE : LENIENT_SIZE).exec(latin1.decode(l[0]));
          if (!m) return this.fail("size");
          this.left = parseInt(m[1]!, 16);
          this.state = this.left === 0 ? "trailer" : "chunk";
          data = l[1];
          break;
        }
        case "chunk": {
          if (!data.length) return MORE;
          const n = Math.min(this.left, data.length);
          this.left -= n;
          if (this.left === 0) this.state = "chunk-end";
          if (onData(data.subarray(0, n)) === false) return MORE;
          data = data.subarray(n);
          break;
        }
        case "chunk-end": {
          // The line end after a chunk's data: CRLF (a bare LF too, when lenient).
          const l = this.line(data, 2);
          if (l === undefined) return MORE;
          const ok = l && (l[0].length === 1 ? l[0][0] === CR : !this.o.strict && l[0].length === 0);
          if (!ok) return this.fail("chunk");
          this.state = "size";
          data = l![1];
          break;
        }
        case "trailer": {
          // Trailer lines, then an empty line.
          const l = this.line(data, this.o.maxTrailerBytes);
          if (l === undefined) return MORE;
          if (!l || (this.o.strict && l[0][l[0].length - 1] !== CR)) return this.fail("trailer");
          data = l[1];
          if (l[0].length === 0 || (l[0].length === 1 && l[0][0] === CR)) {
            this.state = "done";
            return { state: "done", rest: data };
          }
          break;
        }
        case "done":
          return { state: "done", rest: data };
      }
    }
  }

  private fail(reason: "size" | "chunk" | "trailer"): ChunkedResult {
    this.buf = EMPTY;
    return { state: "error", reason };
  }

  /**
   * The next line (without its LF) and the bytes after it. Undefined: not whole yet, kept (a copy: the caller's
   * buffer may be reused) for the next bytes. Null: longer than `max` already.
   */
  private line(data: Uint8Array, max: number): [line: Uint8Array, rest: Uint8Array] | null | undefined {
    const joined = concat(this.buf, data);
    const nl = joined.indexOf(LF);
    if (nl < 0) {
      if (joined.length > max) return null;
      this.buf = joined === data ? copyOf(data) : joined;
      return undefined;
    }
    this.buf = EMPTY;
    return [joined.subarray(0, nl), joined.subarray(nl + 1)];
  }
}
