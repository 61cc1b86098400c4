// lib/http/server.ts without sockets: the server driven through a fake wire (the head parser: head.test.ts).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHttpServer, type ServerWire } from "../../lib/http/server.ts";
import { DirectAnswer } from "../../lib/http/response.ts";
import type { TextSink } from "../../lib/chat/respond.ts";

/** A wire that records what the server writes. */
function fakeWire() {
  let out = "";
  let ended = false;
  const wire: ServerWire = {
    write: (b) => ((out += new TextDecoder("latin1").decode(b)), true),
    end: () => void (ended = true),
    pause() {},
    resume() {},
  };
  return { wire, out: () => out, ended: () => ended };
}
const bytes = (s: string) => new TextEncoder().encode(s);
const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
};
const limits = { headerTimeoutMs: 10_000, bodyTimeoutMs: 10_000, idleTimeoutMs: 10_000, defaultHost: "h" };

describe("createHttpServer", () => {
  it("writes a direct answer (info.direct): whole with a Content-Length when it ends at once, else chunked as it comes", async () => {
    let sink: TextSink | undefined;
    let directSeen: unknown;
    const server = createHttpServer((req, info) => {
      directSeen = info.direct;
      const path = new URL(req.url).pathname;
      return new DirectAnswer(
        200,
        { "content-type": "text/event-stream", "x-a": "1", "content-length": "99" },
        (out) => {
          if (path === "/whole") {
            out.write("data: a\n\n");
            queueMicrotask(() => (out.write("data: [DONE]\n\n"), out.end()));
          } else sink = out;
          return { cancel() {} };
        },
      );
    }, { ...limits, maxConnections: 10 });
    const w = fakeWire();
    const events = server.accept(w.wire);
    events.data(bytes("GET /whole HTTP/1.1\r\nHost: x\r\n\r\n"));
    await until(() => w.out().includes("[DONE]"));
    assert.equal(directSeen, true);
    assert.match(
      w.out(),
      /^HTTP\/1\.1 200 OK\r\ncontent-type: text\/event-stream\r\nx-a: 1\r\nDate: [^\r]+\r\nContent-Length: 23\r\n\r\ndata: a\n\ndata: \[DONE\]\n\n$/,
    );
    const before = w.out().length;
    events.data(bytes("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
    await until(() => sink !== undefined);
    sink!.write("data: 1\n\n");
    await until(() => w.out().length > before);
    await new Promise((r) => setTimeout(r, 10));
    sink!.write("data: 2\n\n");
    sink!.end();
    await until(() => w.out().endsWith("0\r\n\r\n"));
    const second = w.out().slice(before);
    assert.match(second, /Transfer-Encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n0\r\n\r\n$/);
    assert.doesNotMatch(second, /Content-Length/);
    // The connection is kept for the next request.
    assert.equal(w.ended(), false);
    await server.stop(true);
  });

  it("cancels a direct answer when the client goes away mid-body, and one the client left before it began", async () => {
    const cancelled: string[] = [];
    const server = createHttpServer((req) => {
      const path = new URL(req.url).pathname;
      const answer = new DirectAnswer(200, {}, (out) => {
        out.write("data: 1\n\n");
        return { cancel: () => void cancelled.push(path) };
      });
      return path === "/late" ? new Promise((r) => setTimeout(() => r(answer), 20)) : answer;
    }, { ...limits, maxConnections: 10 });
    const w = fakeWire();
    const events = server.accept(w.wire);
    events.data(bytes("GET /mid HTTP/1.1\r\nHost: x\r\n\r\n"));
    await until(() => w.out().includes("data: 1"));
    events.close();
    assert.deepEqual(cancelled, ["/mid"]);
    const w2 = fakeWire();
    const events2 = server.accept(w2.wire);
    events2.data(bytes("GET /late HTTP/1.1\r\nHost: x\r\n\r\n"));
    events2.close();
    await until(() => cancelled.length === 2);
    assert.deepEqual(cancelled, ["/mid", "/late"]);
    assert.equal(w2.out(), "");
    await server.stop(true);
  });

  it("answers pipelined requests in order, reads chunked bodies, builds the URL from Host", async () => {
    const server = createHttpServer(
      async (req) => new Response(`${req.method} ${req.url} ${req.body ? await req.text() : "-"}`),
      { ...limits, maxConnections: 10 },
    );
    const w = fakeWire();
    const events = server.accept(w.wire);
    events.data(
      bytes(
        "GET /a HTTP/1.1\r\nHost: x.test\r\n\r\nPOST /b HTTP/1.1\r\nHost: x.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
      ),
    );
    events.data(bytes("2\r\nde\r\n0\r\n\r\nGET /c HTTP/1.1\r\nHost: x.test\r\nConnection: close\r\n\r\n"));
    await until(w.ended);
    const bodies = w.out().split(/HTTP\/1\.1 200 OK\r\n[\s\S]*?\r\n\r\n/).filter(Boolean);
    assert.deepEqual(bodies, ["GET http://x.test/a -", "POST http://x.test/b abcde", "GET http://x.test/c -"]);
    await server.stop(true);
  });

  it("aborts the request's signal when the client goes away", async () => {
    let signal: AbortSignal | undefined;
    const server = createHttpServer((req) => {
      signal = req.signal;
      return new Promise<Response>(() => {});
    }, { ...limits, maxConnections: 10 });
    const events = server.accept(fakeWire().wire);
    events.data(bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert.equal(signal?.aborted, false);
    events.close();
    assert.equal(signal?.aborted, true);
    await server.stop(true);
  });

  it("at the cap evicts an idle connection first, and never one serving a request", async () => {
    const server = createHttpServer(
      (req) => (new URL(req.url).pathname === "/hold" ? new Promise<Response>(() => {}) : new Response("ok")),
      { ...limits, maxConnections: 2, lingerMs: 0 },
    );
    const busy = fakeWire();
    server.accept(busy.wire).data(bytes("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n"));
    const idle = fakeWire();
    server.accept(idle.wire).data(bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    await until(() => idle.out().includes("ok"));
    const third = fakeWire();
    assert.equal(idle.ended(), false);
    const events3 = server.accept(third.wire);
    assert.equal(idle.ended(), true);
    assert.equal(busy.ended(), false);
    // Every connection serving a request: the next one is refused with a 503, and both keep going.
    events3.data(bytes("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n"));
    const refused = fakeWire();
    server.accept(refused.wire);
    assert.match(refused.out(), /^HTTP\/1\.1 503 /);
    assert.equal(refused.ended(), true);
    assert.equal(busy.ended(), false);
    await server.stop(true);
  });

  it("at the cap evicts a silent connection before an older one that sent part of its head", () => {
    let t = 0;
    const server = createHttpServer(() => new Response("ok"), {
      ...limits,
      maxConnections: 2,
      lingerMs: 0,
      evictGraceMs: 20,
      now: () => t,
    });
    const partial = fakeWire();
    server.accept(partial.wire).data(bytes("GET / HTTP/1.1\r\nHo"));
    t = 10;
    const silent = fakeWire();
    server.accept(silent.wire);
    t = 100;
    const third = fakeWire();
    const events3 = server.accept(third.wire);
    assert.equal(silent.ended(), true, "the silent connection goes first");
    assert.equal(partial.ended(), false);
    // With no silent one left, the one trickling its head longest is next.
    events3.data(bytes("GET / HTTP/1.1\r\n"));
    t = 200;
    server.accept(fakeWire().wire);
    assert.equal(partial.ended(), true);
    assert.equal(third.ended(), false);
    void server.stop(true);
  });

  it("answers a request line that cannot be valid as soon as it shows, not at the head timeout", () => {
    const server = createHttpServer(() => new Response("ok"), { ...limits, maxConnections: 10 });
    const cases: [string, number][] = [
      ["\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400], // a TLS ClientHello
      ["GET /\r\n", 400], // HTTP/0.9
      ["GET / \r\n", 400], // no version
      ["GET / HTTP/1\r\n", 400],
      [`${"A".repeat(40)}`, 400], // a method longer than any, before its end
      ["get / HTTP/1.1\r\n", 501],
      ["TRACE / HTTP/1.1\r\n", 501],
      ["GET / HTTP/2.0\r\n", 505],
    ];
    for (const [start, code] of cases) {
      const w = fakeWire();
      server.accept(w.wire).data(new Uint8Array([...start].map((c) => c.charCodeAt(0))));
      assert.match(w.out(), new RegExp(`^HTTP/1\\.1 ${code} `), JSON.stringify(start));
    }
    // A line still arriving, valid so far, waits.
    const w = fakeWire();
    server.accept(w.wire).data(bytes("POST /v1/chat/comp"));
    assert.equal(w.out(), "");
    void server.stop(true);
  });

  it("chunk extensions follow RFC 9112's grammar; anything else ends the body with an error", async () => {
    const sizes = async (line: string) => {
      let read: string | undefined;
      const server = createHttpServer(async (req) => {
        read = await req.text().catch(() => "error");
        return new Response("ok");
      }, { ...limits, maxConnections: 10 });
      const w = fakeWire();
      server.accept(w.wire).data(
        bytes(`POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${line}\r\nhello\r\n0\r\n\r\n`),
      );
      await until(() => read !== undefined);
      await server.stop(true);
      return read;
    };
    for (const ok of ["5", "5;a", "5;a=b", '5;a="q \\" x"', "5 ; a = b ;c", "5;a=b;c=d", "00005"]) {
      assert.equal(await sizes(ok), "hello", ok);
    }
    for (const bad of ["5;", "5;bad[=x", "5;\0ext", "5;a=", "5;a=b c", '5;a="open', "5;=b", "5 x", "x5"]) {
      assert.equal(await sizes(bad), "error", bad);
    }
  });

  it("after an early answer, half-closes and reads what the client still sends before closing (lingering)", async () => {
    let t = 0;
    const server = createHttpServer(async (req) => {
      await req.body?.cancel();
      return new Response("too large", { status: 413 });
    }, { ...limits, maxConnections: 10, lingerCloseMs: 5000, lingerIdleMs: 2000, now: () => t });
    let halfClosed = false;
    const w = fakeWire();
    const events = server.accept({ ...w.wire, closeWrite: () => void (halfClosed = true) });
    events.data(bytes(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${64 * 1024 * 1024}\r\n\r\n`));
    await until(() => halfClosed);
    assert.match(w.out(), /^HTTP\/1\.1 413 [\s\S]*Connection: close\r\n/);
    assert.equal(w.ended(), false, "still reading after the answer");
    // Bytes the client still sends are read and dropped, and each pushes the close back, up to the whole bound.
    for (t = 0; t < 4000; t += 1000) events.data(new Uint8Array(1024 * 1024));
    assert.equal(w.ended(), false);
    t = 5000;
    events.data(new Uint8Array(1024));
    // The sweep closes it once the bound is past.
    await until(w.ended);
    assert.equal(w.ended(), true);
    await server.stop(true);
  });
});
