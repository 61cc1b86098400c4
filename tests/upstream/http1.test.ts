import assert from "node:assert/strict";
import { UPSTREAM_LIMITS } from "../../lib/config.ts";
import { readFileSync } from "node:fs";
import type { Socket } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import { after, describe, it } from "node:test";
import { createEmohaaClient } from "../../lib/upstream/emohaa.ts";
import { UpstreamError } from "../../lib/upstream/errors.ts";
import { createHttp1Fetch, type Dial, pushBodyOf, type Wire } from "../../lib/upstream/http1.ts";
import { dial, dialer } from "../../runtime/dial.ts";
import { rawServer } from "../support/raw-server.ts";
import { eventually, startSim } from "../support/sim.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const stops: (() => Promise<void>)[] = [];
after(async () => {
  for (const s of stops) await s();
});

async function serverFor(respond: Parameters<typeof rawServer>[0]) {
  const s = await rawServer(respond);
  stops.push(() => s.stop());
  return s;
}

const client = () => {
  const f = createHttp1Fetch(dial);
  stops.push(async () => f.close());
  return f;
};
const get = (f: ReturnType<typeof client>, url: string, signal?: AbortSignal) =>
  f(url, { method: "GET", headers: { Accept: "*/*" }, signal });

describe("createHttp1Fetch", () => {
  it("talks to the simulator as the upstream client's fetch: create, chat, list, delete, one kept-alive connection", async () => {
    const sim = await startSim();
    stops.push(() => sim.stop());
    const api = createEmohaaClient({ limits: UPSTREAM_LIMITS, baseUrl: sim.baseUrl, fetch: client() });
    const ids = [await api.createConversation("live-h1"), await api.createConversation("live-h1")];
    const reader = await api.openChat("live-h1", ids[0]!, "user:[[pieces:50]] [[flush]]");
    let text = "";
    for (let p = await reader.read(); p; p = await reader.read()) text += p.join("");
    assert.equal(text, Array.from({ length: 50 }, (_, i) => `片${i % 10}`).join(""));
    assert.equal((await api.listConversations("live-h1")).length, 2);
    for (const id of ids) await api.deleteConversation("live-h1", id);
    assert.equal(sim.sim.state().open, 0);
    assert.equal(sim.sim.state().badSignatures, 0);
    await assert.rejects(
      api.listConversations("expired-h1"),
      (e: unknown) => e instanceof UpstreamError && e.status === 401,
    );
  });

  it("reuses one connection for Content-Length bodies that arrive in pieces", async () => {
    const s = await serverFor(async (sock, _req, n) => {
      const body = `answer ${n}`;
      sock.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Len`);
      await sleep(5);
      sock.write(`gth: ${body.length}\r\n\r\n${body.slice(0, 3)}`);
      await sleep(5);
      sock.write(body.slice(3));
    });
    const f = client();
    for (let i = 1; i <= 3; i++) {
      const res = await get(f, `${s.url}/x?i=${i}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "text/plain");
      assert.equal(await res.text(), `answer ${i}`);
    }
    assert.equal(s.connections, 1);
    assert.match(s.requests[0]!, /^GET \/x\?i=1 HTTP\/1\.1\r\nHost: 127\.0\.0\.1:\d+\r\nAccept: \*\/\*$/);
  });

  it("decodes chunked bodies split anywhere, with extensions and trailers, then reuses the connection", async () => {
    const wire = "5;ext=1\r\nhello\r\n1\r\n \r\nA\r\nworld, 世\r\n0\r\nX-Trailer: yes\r\n\r\n";
    const s = await serverFor(async (sock) => {
      sock.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
      // Byte by byte: every state of the parser meets a boundary.
      for (const b of Buffer.from(wire)) {
        sock.write(Buffer.from([b]));
        await sleep(0);
      }
    });
    const f = client();
    assert.equal(await (await get(f, `${s.url}/a`)).text(), "hello world, 世");
    assert.equal(await (await get(f, `${s.url}/b`)).text(), "hello world, 世");
    assert.equal(s.connections, 1);
  });

  it("reads a close-delimited body to the close, and an informational head before the real one", async () => {
    const s = await serverFor((sock) => {
      sock.write("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end");
      setTimeout(() => sock.end(), 10);
    });
    const f = client();
    assert.equal(await (await get(f, `${s.url}/`)).text(), "until the end");
    assert.equal(await (await get(f, `${s.url}/`)).text(), "until the end");
    assert.equal(s.connections, 2);
  });

  it("answers 204 without a body and keeps the connection", async () => {
    const s = await serverFor((sock) => void sock.write("HTTP/1.1 204 No Content\r\n\r\n"));
    const f = client();
    const res = await f(`${s.url}/c`, { method: "DELETE", headers: {} });
    assert.equal(res.status, 204);
    assert.equal(res.body, null);
    assert.equal((await f(`${s.url}/c`, { method: "DELETE", headers: {} })).status, 204);
    assert.equal(s.connections, 1);
  });

  it("retries once on a fresh connection when a kept-alive one was closed as the request went out", async () => {
    const served = new WeakMap<Socket, number>();
    const s = await serverFor((sock) => {
      const n = (served.get(sock) ?? 0) + 1;
      served.set(sock, n);
      // The race every keep-alive client meets: the server drops an idle connection just as a request arrives.
      if (n > 1) sock.destroy();
      else sock.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    });
    const f = client();
    const idempotentGet = (url: string) => f(url, { method: "GET", headers: {}, idempotent: true });
    for (let i = 0; i < 3; i++) assert.equal(await (await idempotentGet(`${s.url}/`)).text(), "ok");
    assert.equal(s.connections, 3);
    assert.equal(s.requests.length, 5); // two requests met a dying connection and went again
    // A request not marked idempotent is never sent twice: the failure is the caller's to handle.
    await assert.rejects(get(f, `${s.url}/`), TypeError);
    assert.equal(s.requests.length, 6);
  });

  for (const written of [true, false]) {
    const when = written
      ? "after writing its head and first piece"
      : "before anything arrived (what it wrote is lost with the reset)";
    it(`sends a chat once when the upstream resets the connection ${when}`, async () => {
      // The upstream creates conversations normally; a chat gets a reset: after its head and first piece, or with
      // nothing before it, which is what a client sees when the reset overtakes the bytes written before it.
      const s = await serverFor((sock, request) => {
        if (request.startsWith("GET /chat")) {
          if (written) {
            sock.write(
              "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n9\r\ndata: a\n\n\r\n",
            );
          }
          sock.resetAndDestroy();
        } else sock.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nconv-1");
      });
      const api = createEmohaaClient({ limits: UPSTREAM_LIMITS, baseUrl: s.url, fetch: client() });
      for (let i = 0; i < 3; i++) {
        const cid = await api.createConversation("live-h1");
        await assert.rejects(
          api.openChat("live-h1", cid, "hello").then(async (r) => {
            for (let p = await r.read(); p; p = await r.read());
          }),
          // Before the head (an UpstreamError) or in the body (the transport's TypeError): a failure either way.
          (e: unknown) => e instanceof UpstreamError || e instanceof TypeError,
        );
      }
      assert.equal(s.requests.filter((r) => r.startsWith("GET /chat")).length, 3);
      assert.equal(s.requests.filter((r) => r.startsWith("GET /generate/id")).length, 3);
    });
  }

  it("gives up a connect that never completes: at once when aborted, after the connect timeout otherwise", async () => {
    const late: { resolve(w: Wire): void; signal?: AbortSignal }[] = [];
    const hanging: Dial = (_target, _events, signal) =>
      new Promise<Wire>((resolve) => void late.push({ resolve, signal }));
    const f = createHttp1Fetch(hanging, { connectTimeoutMs: 300 });
    const ac = new AbortController();
    const aborted = f("http://127.0.0.1:9/chat", { method: "GET", headers: {}, signal: ac.signal });
    await eventually(() => late.length === 1);
    ac.abort();
    await assert.rejects(aborted, (e: unknown) => e instanceof Error && e.name === "AbortError");
    // The dialer was told, and a connection that opens after all is ended at once.
    assert.equal(late[0]!.signal?.aborted, true);
    let ended = 0;
    late[0]!.resolve({ write() {}, end: () => void ended++ });
    await eventually(() => ended === 1);
    const t0 = Date.now();
    await assert.rejects(
      f("http://127.0.0.1:9/generate/id", { method: "GET", headers: {} }),
      (e: unknown) => e instanceof TypeError && /within 300 ms/.test(e.message),
    );
    assert.ok(Date.now() - t0 >= 250);
    assert.equal(late[1]!.signal?.aborted, true);
  });

  it("keeps a call's deadline itself: the connect, the head and the body within it, a TimeoutError past it", async () => {
    let n = 0;
    const s = await serverFor(async (sock) => {
      n++;
      if (n === 1) return void sock.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
      if (n === 2) return; // never answers
      sock.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\npart"); // never ends its body
    });
    const f = client();
    assert.equal(f.deadlines, true);
    const within = (path: string) =>
      f(`${s.url}${path}`, { method: "GET", headers: {}, deadline: { ms: 150, what: "test request" } });
    // In time: the answer, and later nothing fires on the connection kept for the next call.
    assert.equal(await (await within("/1")).text(), "ok");
    await sleep(200);
    const t0 = Date.now();
    await assert.rejects(within("/2"), (e: unknown) =>
      e instanceof DOMException && e.name === "TimeoutError" &&
      e.message === "The test request timed out");
    assert.ok(Date.now() - t0 >= 140);
    const res = await within("/3");
    await assert.rejects(res.text(), (e: unknown) => e instanceof DOMException && e.name === "TimeoutError");
    await eventually(() => s.closed === 2);
    // Connecting counts too.
    const hanging: Dial = () => new Promise<Wire>(() => {});
    const g = createHttp1Fetch(hanging);
    await assert.rejects(
      g("http://127.0.0.1:9/x", { method: "GET", headers: {}, deadline: { ms: 100, what: "connect test" } }),
      (e: unknown) => e instanceof DOMException && e.name === "TimeoutError",
    );
  });

  it("aborting before the head rejects with the signal's reason and ends the connection", async () => {
    const s = await serverFor(() => {});
    const f = client();
    const ac = new AbortController();
    const res = get(f, `${s.url}/slow`, ac.signal);
    await eventually(() => s.requests.length === 1);
    ac.abort();
    await assert.rejects(res, (e: unknown) => e instanceof Error && e.name === "AbortError");
    await eventually(() => s.closed === 1);
  });

  it("aborting mid-body errors the body and ends the connection at once (the upstream stops)", async () => {
    const s = await serverFor((sock) => {
      sock.write(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n6\r\ndata: \r\n",
      );
    });
    const f = client();
    const ac = new AbortController();
    const res = await get(f, `${s.url}/chat`, ac.signal);
    const reader = res.body!.getReader();
    assert.equal(new TextDecoder().decode((await reader.read()).value), "data: ");
    const pending = reader.read();
    ac.abort();
    await assert.rejects(pending, (e: unknown) => e instanceof Error && e.name === "AbortError");
    await eventually(() => s.closed === 1);
  });

  it("hands a body still arriving over as pushed bytes: what came before first, then each read, then its end", async () => {
    let release!: () => void;
    const more = new Promise<void>((r) => (release = r));
    const s = await serverFor(async (sock, _req, n) => {
      if (n === 2) return void sock.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
      sock.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n");
      await more;
      sock.write("3\r\ntwo\r\n0\r\n\r\n");
    });
    const f = client();
    const res = await get(f, `${s.url}/1`);
    const body = pushBodyOf(res)!;
    assert.ok(body);
    await sleep(20);
    const got: string[] = [];
    const ended = new Promise<unknown>((resolve) =>
      body.subscribe({ data: (b) => void got.push(new TextDecoder().decode(b)), end: resolve })
    );
    assert.deepEqual(got, ["one"]);
    release();
    assert.equal(await ended, undefined);
    assert.deepEqual(got, ["one", "two"]);
    assert.throws(() => body.subscribe({ data() {}, end() {} }), TypeError);
    await eventually(() => f.idleConnections() === 1);
    // A body that came whole with its head is not pushed: it is there already.
    assert.equal(pushBodyOf(await get(f, `${s.url}/2`)), undefined);
    assert.equal(s.connections, 1);
  });

  it("a pushed body ends with the abort's reason when the request is aborted mid-body", async () => {
    const s = await serverFor((sock) =>
      void sock.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n")
    );
    const f = client();
    const ac = new AbortController();
    const res = await get(f, `${s.url}/`, ac.signal);
    const ended = new Promise<unknown>((resolve) => pushBodyOf(res)!.subscribe({ data() {}, end: resolve }));
    ac.abort();
    assert.equal(((await ended) as Error).name, "AbortError");
    await eventually(() => s.closed === 1);
  });

  it("reads a response head's fields as Headers does, with CRLF or bare LF line ends", async () => {
    const heads = [
      "HTTP/1.1 201 Made It\r\nX-Tag: a\r\nx-tag:  b \r\nNo colon here\r\n:empty name\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 201 Made It\nX-Tag: a\nx-tag:  b \nNo colon here\n:empty name\nContent-Length: 2\n\nok",
    ];
    const s = await serverFor((sock, _req, n) => void sock.write(heads[n - 1]!));
    const f = client();
    for (let i = 0; i < heads.length; i++) {
      const res = await get(f, `${s.url}/${i}`);
      assert.equal(res.status, 201);
      assert.equal(res.statusText, "Made It");
      assert.equal(res.headers.get("X-TAG"), "a, b");
      assert.equal(res.headers.get("no colon here"), null);
      assert.equal(res.headers.get("content-length"), "2");
      assert.equal(await res.text(), "ok");
    }
  });

  it("a body cancelled near its end is read out and the connection kept; one cancelled early is closed", async () => {
    let big = false;
    const s = await serverFor(async (sock) => {
      sock.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nDONE\r\n");
      await sleep(10);
      if (big) sock.write(`20000\r\n${"x".repeat(0x20000)}\r\n0\r\n\r\n`);
      else sock.write("0\r\n\r\n");
    });
    const f = client();
    const first = await get(f, `${s.url}/1`);
    const r1 = first.body!.getReader();
    await r1.read();
    await r1.cancel();
    // The rest arrives and is dropped; the connection goes back to the pool.
    await eventually(() => f.idleConnections() === 1, 5000, "the connection back in the pool");
    assert.equal(await (await get(f, `${s.url}/2`)).text(), "DONE");
    assert.equal(s.connections, 1);
    big = true;
    const third = await get(f, `${s.url}/3`);
    const r3 = third.body!.getReader();
    await r3.read();
    await r3.cancel();
    await eventually(() => s.closed === 1);
  });

  it("reports a connection cut mid-body, a garbage answer and a refused connection as TypeErrors", async () => {
    const cut = await serverFor((sock) => {
      sock.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
      setTimeout(() => sock.destroy(), 10);
    });
    const f = client();
    const res = await get(f, `${cut.url}/`);
    await assert.rejects(res.text(), TypeError);
    const junk = await serverFor((sock) => void sock.end("SSH-2.0-OpenSSH\r\n\r\n"));
    await assert.rejects(get(f, `${junk.url}/`), TypeError);
    const closedPort = await serverFor(() => {});
    const url = closedPort.url;
    await closedPort.stop();
    await assert.rejects(get(f, `${url}/`), TypeError);
  });

  it("refuses header values that would write headers of their own, before sending anything", async () => {
    const s = await serverFor((sock) => void sock.write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    const f = client();
    await assert.rejects(
      f(`${s.url}/`, { method: "GET", headers: { Authorization: "Bearer x\r\nX-Evil: 1" } }),
      TypeError,
    );
    await sleep(20);
    assert.equal(s.requests.length, 0);
  });

  it("sends the request target as URL would: a plain one as given, anything else percent-encoded, never a fragment", async () => {
    const s = await serverFor((sock) => void sock.write("HTTP/1.1 204 No Content\r\n\r\n"));
    const f = client();
    const port = new URL(s.url).port;
    for (
      const [url, target] of [
        [`${s.url}/chat?token=a&prompt=%E4%BD%A0+hi`, "/chat?token=a&prompt=%E4%BD%A0+hi"],
        [`${s.url}/路 径?q=a b#frag`, "/%E8%B7%AF%20%E5%BE%84?q=a%20b"],
        [`${s.url}/x#frag`, "/x"],
        [`${s.url}?only=query`, "/?only=query"],
        [s.url, "/"],
        [`http://LOCALHOST:${port}/a/../b`, "/b"],
      ] as const
    ) {
      await (await f(url, { method: "GET", headers: {} })).arrayBuffer();
      const [line, host] = s.requests.at(-1)!.split("\r\n");
      assert.equal(line, `GET ${target} HTTP/1.1`, url);
      assert.equal(host!.toLowerCase(), `host: ${new URL(url).host}`, url);
    }
    await assert.rejects(f("ftp://127.0.0.1/x", { method: "GET", headers: {} }), TypeError);
  });

  it("speaks TLS with the certificate verified: one from a trusted CA works, the same untrusted is refused", async () => {
    // A test CA and a certificate it signed for localhost and 127.0.0.1 (valid until 2036): trusted only where a
    // test says so.
    const fixture = (name: string) => readFileSync(new URL(`../fixtures/${name}`, import.meta.url), "utf8");
    const cert = fixture("localhost-cert.pem");
    const ca = fixture("ca-cert.pem");
    const open = new Set<Socket>();
    const server = createTlsServer({ key: fixture("localhost-key.pem"), cert }, (sock) => {
      sock.on("data", () => sock.write("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret"));
    });
    server.on("connection", (sock: Socket) => {
      open.add(sock);
      sock.on("close", () => open.delete(sock));
      sock.on("error", () => {});
    });
    server.on("tlsClientError", () => {});
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    stops.push(async () => {
      for (const sock of open) sock.destroy();
      await new Promise((r) => server.close(() => r(undefined)));
    });
    const port = (server.address() as { port: number }).port;
    const trusting = createHttp1Fetch(dialer({ ca }));
    stops.push(async () => trusting.close());
    for (const host of ["localhost", "127.0.0.1"]) {
      const res = await trusting(`https://${host}:${port}/`, { method: "GET", headers: {} });
      assert.equal(await res.text(), "secret", host);
    }
    await assert.rejects(get(client(), `https://127.0.0.1:${port}/`), TypeError);
  });
});
