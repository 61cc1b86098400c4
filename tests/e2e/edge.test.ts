// End to end: the HTTP edge against hostile clients over raw TCP — Host headers, bodies cut short, asset names from
// the prototype chain, the /token/check oracle, /metrics, CORS caching, and dead server-side accounts.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { eventually, type RunningSim, startSim } from "../support/sim.ts";
import { type RunningServer, startServer } from "../support/server.ts";

let sim: RunningSim;
before(async () => {
  sim = await startSim();
});
after(async () => {
  await sim?.stop();
});

/** Writes `head` (and `body`) on a fresh TCP connection; resolves with everything read until the server closes. */
function raw(
  url: string,
  head: string,
  body = "",
  opts: { leaveAfterMs?: number; localAddress?: string } = {},
): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    let out = "";
    const socket = connect({ port: Number(port), host: hostname, localAddress: opts.localAddress }, () => {
      socket.write(head + body);
      if (opts.leaveAfterMs !== undefined) setTimeout(() => socket.destroy(), opts.leaveAfterMs);
    });
    socket.on("data", (d) => (out += d.toString("latin1")));
    socket.on("close", () => resolve(out));
    socket.on("error", () => resolve(out));
    // A server that keeps the connection open after answering is not what is tested here.
    setTimeout(() => socket.destroy(), 5000);
  });
}

const statusOf = (response: string) => Number(/^HTTP\/1\.[01] (\d{3})/.exec(response)?.[1] ?? 0);
const check = (url: string, token: string, headers: Record<string, string> = {}) =>
  fetch(`${url}/token/check`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ token }),
  });

describe("HTTP edge, client mode (CORS list, METRICS_KEY, TRUST_PROXY)", () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer({
      EMOHAA_BASE_URL: sim.baseUrl,
      CORS_ORIGIN: "https://a.example, https://b.example",
      METRICS_KEY: "key-metrics-edge",
      TRUST_PROXY: "true",
      TOKEN_CHECK_RATE: "1",
      TOKEN_CHECK_BURST: "3",
    });
  });
  after(async () => {
    await server?.kill();
  });

  it("a Host header that is not host[:port] is refused with 400 and never picks the route", async () => {
    const port = new URL(server.url).port;
    const plain = await raw(server.url, `GET /ping HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`);
    assert.equal(statusOf(plain), 200, plain);
    assert.ok(plain.endsWith("pong"));
    for (const host of ["x/metrics?", "x/metrics#", "user@x", "x y", "x\\metrics"]) {
      const res = await raw(server.url, `GET /ping HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      assert.equal(statusOf(res), 400, `${host}: ${res.slice(0, 200)}`);
      assert.ok(!res.includes("# TYPE"), `${host} reached /metrics`);
    }
  });

  it("file names from the prototype chain are a 404, not a 500", async () => {
    for (
      const path of [
        "/docs/constructor",
        "/docs/__proto__",
        "/docs/hasOwnProperty",
        "/ui/toString",
        "/ui/__proto__",
        "/ui/vendor/constructor",
        "/ui/vendor/valueOf",
      ]
    ) {
      const res = await fetch(server.url + path);
      assert.equal(res.status, 404, path);
      assert.equal(((await res.json()) as any).error.code, "not_found", path);
    }
    assert.equal((await fetch(`${server.url}/ui/app.js`)).status, 200);
  });

  it("a client that leaves mid-body is logged as 499 client_closed, on the chat route and on a routed one", async () => {
    const head = (path: string) =>
      `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer live-edge\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`;
    await raw(server.url, head("/v1/chat/completions"), '{"messages', { leaveAfterMs: 100 });
    await raw(server.url, head("/token/check"), '{"token":"', { leaveAfterMs: 100 });
    await eventually(
      () => /POST \/v1\/chat\/completions 499 .*code=client_closed/.test(server.output()),
      5000,
      "chat route 499 logged",
    );
    await eventually(
      () => /POST \/token\/check 499 .*code=client_closed/.test(server.output()),
      5000,
      "token check 499 logged",
    );
    assert.ok(!/internal_error| 500 /.test(server.output()), server.output());
  });

  it("with a list of origins every response varies on Origin, the chat route's as the routed ones'", async () => {
    for (const origin of ["https://a.example", "https://evil.example"]) {
      const chat = await fetch(`${server.url}/v1/chat/completions`, {
        method: "POST",
        headers: { origin, authorization: "Bearer live-edge", "content-type": "application/json" },
        body: JSON.stringify({ messages: [{ role: "user", content: "hi" }] }),
      });
      const models = await fetch(`${server.url}/v1/models`, { headers: { origin } });
      for (const res of [chat, models]) {
        assert.equal(res.status, 200);
        assert.match(res.headers.get("vary") ?? "", /\borigin\b/i, `${res.url} for ${origin}`);
        assert.equal(res.headers.get("access-control-allow-origin"), origin === "https://a.example" ? origin : null);
        await res.body?.cancel();
      }
    }
    await eventually(() => sim.sim.state().open === 0, 15_000, "conversations deleted");
  });

  it("/metrics needs METRICS_KEY when it is set", async () => {
    assert.equal((await fetch(`${server.url}/metrics`)).status, 401);
    assert.equal(
      (await fetch(`${server.url}/metrics`, { headers: { authorization: "Bearer key-wrong" } })).status,
      401,
    );
    const res = await fetch(`${server.url}/metrics`, { headers: { authorization: "Bearer key-metrics-edge" } });
    assert.equal(res.status, 200);
    assert.match(await res.text(), /# TYPE/);
  });

  it("/token/check needs no key in client mode but is limited per client; TRUST_PROXY takes the last X-Forwarded-For", async () => {
    const from = (addrs: string) => ({ "x-forwarded-for": addrs });
    const answers: number[] = [];
    for (let i = 0; i < 4; i++) answers.push((await check(server.url, "live-tc", from("203.0.113.7"))).status);
    assert.deepEqual(answers, [200, 200, 200, 429]);
    const limited = await check(server.url, "live-tc", from("203.0.113.7"));
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get("retry-after")) >= 1);
    const error = ((await limited.json()) as any).error;
    assert.equal(error.type, "rate_limit_error");
    assert.equal(error.code, "rate_limit_exceeded");
    // Another client has its own budget; an entry the client wrote before the proxy's does not pick the bucket.
    assert.equal((await check(server.url, "live-tc", from("198.51.100.9"))).status, 200);
    assert.equal((await check(server.url, "live-tc", from("198.51.100.10, 203.0.113.7"))).status, 429);
  });
});

describe("HTTP edge, server-side tokens (all expired)", () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer({
      EMOHAA_BASE_URL: sim.baseUrl,
      EMOHAA_TOKENS: "expired-edge1,expired-edge2",
      API_KEYS: "gk-edge",
      TOKEN_CHECK_RATE: "1",
      TOKEN_CHECK_BURST: "2",
    });
  });
  after(async () => {
    await server?.kill();
  });

  const chat = (bearer: string) =>
    fetch(`${server.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "user", content: "hi" }] }),
    });

  it("a right key while every server token is rejected is a 503 accounts_unavailable, not a 401", async () => {
    const wrong = await chat("gk-wrong");
    assert.equal(wrong.status, 401);
    assert.equal(((await wrong.json()) as any).error.code, "invalid_api_key");
    const res = await chat("gk-edge");
    assert.equal(res.status, 503);
    const error = ((await res.json()) as any).error;
    assert.equal(error.code, "accounts_unavailable");
    assert.match(error.message, /server's Emohaa accounts are unavailable/);
    assert.ok(!JSON.stringify(error).includes("expired-edge"));
    await eventually(() => sim.sim.state().open === 0, 15_000, "conversations deleted");
  });

  it("/metrics needs a gateway key", async () => {
    assert.equal((await fetch(`${server.url}/metrics`)).status, 401);
    assert.equal((await fetch(`${server.url}/metrics`, { headers: { authorization: "Bearer gk-wrong" } })).status, 401);
    assert.equal((await fetch(`${server.url}/metrics`, { headers: { authorization: "Bearer gk-edge" } })).status, 200);
  });

  it("/token/check needs a gateway key, and X-Forwarded-For is ignored without TRUST_PROXY", async () => {
    const none = await check(server.url, "live-tc2");
    assert.equal(none.status, 401);
    assert.equal(((await none.json()) as any).error.code, "invalid_api_key");
    assert.equal((await check(server.url, "live-tc2", { authorization: "Bearer gk-wrong" })).status, 401);
    const key = { authorization: "Bearer gk-edge" };
    const first = await check(server.url, "live-tc2", key);
    assert.equal(first.status, 200);
    assert.deepEqual(await first.json(), { live: true, expiresAt: null });
    assert.equal((await check(server.url, "live-tc2", key)).status, 200);
    assert.equal((await check(server.url, "live-tc2", { ...key, "x-forwarded-for": "192.0.2.1" })).status, 429);
    // The budget is the peer address's: another loopback address (Linux routes all of 127/8 locally) has its own.
    const body = JSON.stringify({ token: "live-tc2" });
    const head =
      `POST /token/check HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer gk-edge\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
    assert.equal(statusOf(await raw(server.url, head, body, { localAddress: "127.0.0.2" })), 200);
    assert.equal(statusOf(await raw(server.url, head, body, { localAddress: "127.0.0.2" })), 200);
    assert.equal(statusOf(await raw(server.url, head, body, { localAddress: "127.0.0.2" })), 429);
  });
});
