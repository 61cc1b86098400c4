// End to end: a hostile raw-TCP client against the real server process: timeouts, malformed heads, the connection
// cap, pipelining and chunked uploads. The cap at the descriptor limit, under a flood, is fd-limit.test.ts.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rawClient } from "../support/raw-client.ts";
import { eventually, type RunningSim, startSim } from "../support/sim.ts";
import { ownServer, type RunningServer, startServer } from "../support/server.ts";

let sim: RunningSim;
let server: RunningServer;
let port: number;
const LIMITS = { HTTP_HEADER_TIMEOUT_MS: "1000", HTTP_BODY_TIMEOUT_MS: "1500", HTTP_IDLE_TIMEOUT_MS: "700" };

before(async () => {
  sim = await startSim();
  server = await startServer({ EMOHAA_BASE_URL: sim.baseUrl, KEEPALIVE_INTERVAL_MS: "300", ...LIMITS });
  port = Number(new URL(server.url).port);
});
after(async () => {
  await server?.kill();
  await sim?.stop();
});

/** A raw connection to the server (or to port `p`). */
const raw = (p = port) => rawClient(p);

/** One request on a fresh connection; the whole answer (the server closes after it). */
async function exchange(request: string): Promise<string> {
  const c = raw();
  c.send(request);
  await c.closed;
  return c.received();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const platformServes = !ownServer && "the platform's HTTP server serves here, not lib/http/server.ts";

describe("connection handling", { skip: platformServes }, () => {
  it("a silent connection is closed within the head timeout", async () => {
    const c = raw();
    const at = await c.closed;
    assert.ok(at >= 800 && at < 3000, `closed after ${at} ms`);
  });

  it("a slowloris trickling its head byte by byte is closed with 408 within the head timeout", async () => {
    const c = raw();
    await c.connected;
    const head = "GET /ping HTTP/1.1\r\nHost: x\r\nX-Slow: " + "a".repeat(200);
    let i = 0;
    const timer = setInterval(() => c.closedAt() === undefined && i < head.length && c.send(head[i++]!), 50);
    const at = await c.closed;
    clearInterval(timer);
    assert.ok(at < 3000, `closed after ${at} ms`);
    assert.match(c.received(), /^HTTP\/1\.1 408 /);
  });

  it("a slow body is closed within the body timeout", async () => {
    const c = raw();
    c.send(
      "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
    );
    const timer = setInterval(() => c.closedAt() === undefined && c.send(" "), 100);
    const at = await c.closed;
    clearInterval(timer);
    assert.ok(at >= 1200 && at < 4000, `closed after ${at} ms`);
  });

  it("an idle keep-alive connection is closed within the idle timeout", async () => {
    const c = raw();
    c.send("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
    await eventually(() => c.received().endsWith("pong"), 5000, "pong");
    const answered = Date.now();
    await c.closed;
    const idle = Date.now() - answered;
    assert.ok(idle >= 500 && idle < 2500, `idle for ${idle} ms`);
  });

  it("a stream silent for longer than every timeout survives on its keep-alive comments", async () => {
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer live-conn" },
      body: JSON.stringify({ stream: true, messages: [{ role: "user", content: "[[pieces:2]] [[delay:2500]]" }] }),
    });
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.ok(text.endsWith("data: [DONE]\n\n"), text.slice(-200));
    assert.match(text, /^: ping/m);
  });

  it("malformed heads get 400, 414 or 431 and the connection closes", async () => {
    const cases: [string, number][] = [
      ["GET /ping HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400],
      ["GET /ping HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", 400],
      ["GET /ping HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n", 400],
      ["GET /ping HTTP/1.1\nHost: x\n\n", 400],
      ["GET /ping HTTP/1.1\r\n\r\n", 400],
      ["GET /ping HTTP/1.1\r\nHost: x/metrics?\r\n\r\n", 400],
      ["GET /ping HTTP/1.1\r\nHost: a@b\r\n\r\n", 400],
      ["GET /ping HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400],
      ["POST /ping HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400],
      ["POST /ping HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400],
      ["POST /ping HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\n", 400],
      ["POST /ping HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400],
      ["GET /ping#x HTTP/1.1\r\nHost: x\r\n\r\n", 400],
      [`GET /${"a".repeat(9000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 414],
      [`GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(40_000)}\r\n\r\n`, 431],
    ];
    for (const [request, status] of cases) {
      const answer = await exchange(request);
      assert.match(answer, new RegExp(`^HTTP/1\\.1 ${status} `), JSON.stringify(request.slice(0, 60)));
    }
  });

  it("pipelined requests are answered in order on one connection", async () => {
    const c = raw();
    c.send(
      "GET /ping HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/models HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    await c.closed;
    const statuses = [...c.received().matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
    assert.deepEqual(statuses, ["200", "200", "404"]);
    assert.ok(c.received().indexOf("pong") < c.received().indexOf('"emohaa"'));
  });

  it("a chunked upload with Expect: 100-continue gets 100 Continue, then its answer", async () => {
    const body = JSON.stringify({ messages: [{ role: "user", content: "[[pieces:2]]" }] });
    const c = raw();
    c.send(
      "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer live-chunked\r\nContent-Type: application/json\r\n" +
        "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
    );
    await eventually(() => c.received().startsWith("HTTP/1.1 100 Continue\r\n\r\n"), 5000, "100 Continue");
    const half = Math.floor(body.length / 2);
    c.send(`${half.toString(16)}\r\n${body.slice(0, half)}\r\n`);
    await sleep(50);
    c.send(`${(body.length - half).toString(16)};ext=1\r\n${body.slice(half)}\r\n0\r\n\r\n`);
    await c.closed;
    assert.match(c.received(), /HTTP\/1\.1 200 OK\r\n[\s\S]*"chat\.completion"/);
  });

  it("an HTTP/1.0 request without Host is answered and closed", async () => {
    const answer = await exchange("GET /ping HTTP/1.0\r\n\r\n");
    assert.match(answer, /^HTTP\/1\.1 200 [\s\S]*Connection: close\r\n\r\npong$/);
  });

  it("HEAD gets the head only", async () => {
    const answer = await exchange("HEAD /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert.match(answer, /^HTTP\/1\.1 200 /);
    assert.ok(answer.endsWith("\r\n\r\n"), answer);
  });
});
