// The request the routes served before the router read (chat completions, Responses): a Request has every part of
// it, and so has lib/http/server.ts's own ServerRequest, which makes no Request, Headers or second signal unless a
// handler asks for one (`toRequest`, for Hono's routes).

import { Fields } from "../framing.ts";

/** What the POST routes and the edge read of a request (lib/http/completions.ts, responses.ts, edge.ts, body.ts). */
export interface IncomingRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: { get(name: string): string | null; has(name: string): boolean };
  readonly signal: AbortSignal;
  readonly body: ReadableStream<Uint8Array> | null;
  arrayBuffer(): Promise<ArrayBuffer>;
}

/**
 * A request of lib/http/server.ts for a handler that takes one (`lean`): its head as parsed, its body as the bytes
 * that came with the head or as the stream of those still arriving, and the connection's signal.
 */
export class ServerRequest implements IncomingRequest {
  readonly headers: Fields;
  private used = false;
  private request?: Request;

  constructor(
    readonly method: string,
    readonly url: string,
    private readonly fields: [string, string][],
    /** The whole body when it came with the head, the stream of one still arriving, or null: none. */
    body: Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array> | null,
    readonly signal: AbortSignal,
  ) {
    this.headers = new Fields(fields);
    if (body instanceof ReadableStream) this.stream = body;
    else this.bytes = body;
  }

  /** The whole body, when it came with the head (null: none). */
  private readonly bytes: Uint8Array<ArrayBuffer> | null = null;
  /** The body still arriving; undefined when `bytes` has it. */
  private readonly stream?: ReadableStream<Uint8Array>;

  private made?: ReadableStream<Uint8Array> | null;

  /** The body as a stream: the one still arriving, or one made now of the bytes that came whole. */
  get body(): ReadableStream<Uint8Array> | null {
    if (this.stream) return this.stream;
    if (this.made !== undefined) return this.made;
    const bytes = this.bytes;
    return (this.made = bytes && new ReadableStream({
      start(c) {
        c.enqueue(bytes);
        c.close();
      },
    }));
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    if (this.used || this.request) throw new TypeError("Body already used");
    this.used = true;
    if (!this.stream) {
      const b = this.bytes;
      if (!b) return new ArrayBuffer(0);
      // Its own buffer, or a copy of the view (`new Uint8Array`: a Buffer's `slice` would be a view again).
      return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b.buffer : new Uint8Array(b).buffer;
    }
    return await new Response(this.stream).arrayBuffer();
  }

  /** The same request as a Request (made once): for handlers that need one, such as Hono's router. */
  toRequest(): Request {
    if (this.request) return this.request;
    if (this.used) throw new TypeError("Body already used");
    return (this.request = new Request(this.url, {
      method: this.method,
      headers: this.fields,
      body: this.stream ?? this.bytes,
      signal: this.signal,
      duplex: "half",
    } as RequestInit));
  }
}

/** A Request as it is, or the server's own request made a Request. */
export const asRequest = (
  req: Request | ServerRequest,
): Request => (req instanceof ServerRequest ? req.toRequest() : req);
