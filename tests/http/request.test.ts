// lib/http/request.ts: the server's own request, read as a Request is, and the server giving it to a lean handler.
import { Buffer } from "node:buffer";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { asRequest, ServerRequest } from "../../lib/http/request.ts";
import { createHttpServer, type ServerWire } from "../../lib/http/server.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const signal = new AbortController().signal;
const FIELDS: [string, string][] = [["Host", "h"], ["X-Tag", "a"], ["content-type", "text/plain"], ["x-tag", "b"]];

describe("ServerRequest", () => {
  it("hands a body that came whole as its bytes, once, and as a stream when asked", async () => {
    const body = enc.encode("héllo");
    const req = new ServerRequest("POST", "http://h/p", FIELDS, body, signal);
    assert.equal(dec.decode(await new Response(req.body).arrayBuffer()), "héllo");
    assert.equal(dec.decode(await req.arrayBuffer()), "héllo");
    await assert.rejects(req.arrayBuffer(), TypeError);
    const none = new ServerRequest("GET", "http://h/", FIELDS, null, signal);
    assert.equal(none.body, null);
    assert.equal((await none.arrayBuffer()).byteLength, 0);
    // A view into a larger buffer gives its own bytes only.
    const view = enc.encode("xxabcxx").subarray(2, 5) as Uint8Array<ArrayBuffer>;
    const part = new ServerRequest("POST", "http://h/", FIELDS, view, signal);
    assert.equal(dec.decode(await part.arrayBuffer()), "abc");
  });

  it("reads a body still arriving from its stream", async () => {
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(enc.encode("ab"));
        c.enqueue(enc.encode("cd"));
        c.close();
      },
    });
    const req = new ServerRequest("POST", "http://h/", FIELDS, stream, signal);
    assert.equal(req.body, stream);
    assert.equal(dec.decode(await req.arrayBuffer()), "abcd");
  });

  it("is the same request made a Request: method, URL, every field, body and signal; made once", async () => {
    const ac = new AbortController();
    const req = new ServerRequest("PUT", "http://h/x?y=1", FIELDS, enc.encode("body"), ac.signal);
    const r = asRequest(req);
    assert.ok(r instanceof Request);
    assert.equal(asRequest(req), r);
    assert.equal(r.method, "PUT");
    assert.equal(r.url, "http://h/x?y=1");
    assert.deepEqual([...r.headers], [...new Headers(FIELDS)]);
    assert.equal(await r.text(), "body");
    ac.abort();
    assert.equal(r.signal.aborted, true);
    await assert.rejects(req.arrayBuffer(), TypeError, "its body went to the Request");
    const plain = new Request("http://h/");
    assert.equal(asRequest(plain), plain);
  });
});

describe("createHttpServer with a lean handler", () => {
  it("gives a handler that says `lean` its own request, and any other handler a Request", async () => {
    const seen: string[] = [];
    const wire = (): ServerWire => ({ write: () => true, end() {}, pause() {}, resume() {} });
    const limits = { headerTimeoutMs: 10_000, bodyTimeoutMs: 10_000, idleTimeoutMs: 10_000, defaultHost: "h" };
    const lean = Object.assign(async (req: ServerRequest) => {
      // Read a turn later, after the listener reused its read buffer (below).
      await new Promise((r) => setTimeout(r, 1));
      seen.push(
        `${req.constructor.name} ${req.method} ${req.url} ${req.headers.get("x-a")} ${
          dec.decode(await req.arrayBuffer())
        }`,
      );
      return new Response("ok");
    }, { lean: true as const });
    const plain = async (req: Request) => {
      seen.push(`${req.constructor.name} ${req.method} ${req.url} ${req.headers.get("x-a")} ${await req.text()}`);
      return new Response("ok");
    };
    for (const handler of [lean, plain]) {
      const server = createHttpServer(handler as never, { ...limits, maxConnections: 10 });
      // A Buffer, as Bun's and Node's sockets hand over, whose memory is then reused: its `slice` is a view.
      const read = Buffer.from("POST /p HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 2\r\n\r\nhi");
      server.accept(wire()).data(read);
      read.fill(0);
      for (let i = 0; i < 100 && seen.length < (handler === lean ? 1 : 2); i++) {
        await new Promise((r) => setTimeout(r, 5));
      }
      await server.stop(true);
    }
    assert.deepEqual(seen, ["ServerRequest POST http://h/p 1, 2 hi", "Request POST http://h/p 1, 2 hi"]);
  });
});
