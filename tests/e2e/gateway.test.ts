// End to end: the real server process (under the runtime running the tests, or E2E_COMMAND) against the simulator.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { eventually, type RunningSim, startSim } from "../support/sim.ts";
import { type RunningServer, startServer } from "../support/server.ts";

let sim: RunningSim;
let server: RunningServer;
const SECRET = "my-private-feelings-4711";

before(async () => {
  sim = await startSim();
  server = await startServer({
    EMOHAA_BASE_URL: sim.baseUrl,
    LOG_LEVEL: "debug",
    KEEPALIVE_INTERVAL_MS: "300",
    UPSTREAM_FIRST_PIECE_TIMEOUT_MS: "1500",
  });
});

after(async () => {
  await server?.kill();
  await sim?.stop();
});

const chat = (body: unknown, token = "live-e2e", init: RequestInit = {}) =>
  fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
    ...init,
  });
const user = (content: string) => [{ role: "user", content }];
const settled = () =>
  eventually(() => sim.sim.state().open === 0 && sim.sim.state().openStreams === 0, 15_000, "conversations deleted");

describe("gateway process", () => {
  it("answers /ping, /v1/models and a non-stream chat", async () => {
    assert.equal(await (await fetch(`${server.url}/ping`)).text(), "pong");
    assert.equal(((await (await fetch(`${server.url}/v1/models`)).json()) as any).data[0].id, "emohaa");
    const res = await chat({ model: "gpt-4o-mini", messages: user(SECRET) });
    assert.equal(res.status, 200);
    assert.equal(
      ((await res.json()) as any).choices[0].message.content,
      "你好啊！我是Emohaa，想和我聊点什么吗？😊 今天心情如何？",
    );
    await settled();
  });

  it("streams over real HTTP with multi-byte characters split across writes", async () => {
    const res = await chat({ stream: true, messages: user(`${SECRET} [[split]]`) }, "live-e2e", {
      headers: {
        "content-type": "application/json",
        authorization: "Bearer live-e2e",
        accept: "application/json",
        "accept-encoding": "gzip, deflate, br",
      },
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, /text\/event-stream/);
    assert.equal(res.headers.get("x-accel-buffering"), "no");
    assert.equal(res.headers.get("content-encoding"), null);
    const text = await res.text();
    assert.ok(text.endsWith("data: [DONE]\n\n"));
    const content = text.split("\n\n").filter((f) => f.startsWith("data: {")).map((f) =>
      JSON.parse(f.slice(6)).choices[0]?.delta?.content ?? ""
    ).join("");
    assert.equal(content, "你好啊！我是Emohaa，想和我聊点什么吗？😊 今天心情如何？");
    await settled();
  });

  it("a client disconnect mid-stream aborts the upstream at once and deletes the conversation", async () => {
    const before = sim.sim.state();
    const ac = new AbortController();
    const res = await chat({ stream: true, messages: user("[[pieces:100]] [[delay:100]]") }, "live-e2e", {
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    await reader.read();
    const t0 = Date.now();
    ac.abort();
    await eventually(() => sim.sim.state().aborted > before.aborted, 10_000, "upstream aborted");
    assert.ok(Date.now() - t0 < 2000);
    await settled();
    assert.equal(sim.sim.state().deleted - before.deleted, 1);
  });

  it("a client disconnect while a non-stream reply is generated stops the upstream too", async () => {
    const before = sim.sim.state();
    const ac = new AbortController();
    const pending = chat({ messages: user("[[pieces:100]] [[delay:100]]") }, "live-e2e", { signal: ac.signal }).catch(
      () => "aborted",
    );
    await eventually(() => sim.sim.state().openStreams > 0, 10_000, "stream open");
    ac.abort();
    assert.equal(await pending, "aborted");
    await eventually(() => sim.sim.state().aborted > before.aborted, 10_000, "upstream aborted");
    await settled();
  });

  it("keeps the stream alive with `: ping` comments and reports a mid-stream failure as an error frame", async () => {
    const res = await chat({ stream: true, messages: user("[[pieces:6]] [[delay:700]]") }, "cut-e2e");
    const text = await res.text();
    assert.ok(text.includes(": ping\n\n"), text);
    assert.ok(!text.includes("[DONE]"));
    const frames = text.split("\n\n").filter((f) => f.startsWith("data: "));
    assert.equal(JSON.parse(frames.at(-1)!.slice(6)).error.code, "upstream_stream_cut");
    await settled();
  });

  it("expired token is a 401 within a second or two; failover hides a dead token", async () => {
    const t0 = Date.now();
    const res = await chat({ messages: user("x") }, "expired-e2e");
    assert.equal(res.status, 401);
    assert.ok(Date.now() - t0 < 2000);
    assert.equal((await chat({ messages: user("x") }, "expired-e2e, live-e2e")).status, 200);
    await settled();
  });

  it("first-piece timeout before streaming is a 504 and leaves nothing behind", async () => {
    const res = await chat({ messages: user("x") }, "silent-e2e");
    assert.equal(res.status, 504);
    assert.equal(((await res.json()) as any).error.type, "timeout_error");
    await settled();
  });

  it("CORS preflight passes without auth and reflects headers", async () => {
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: "OPTIONS",
      headers: {
        origin: "http://localhost:3210",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type, x-stainless-arch",
      },
    });
    assert.ok(res.status < 300);
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    assert.match(res.headers.get("access-control-allow-headers")!, /x-stainless-arch/);
  });

  it("never logs a token or message text, even at LOG_LEVEL=debug", async () => {
    // Its own requests, whatever ran before: a whole chat and a streamed one carrying the secret, and a refused token.
    const count = (status: number) =>
      server.output().split("\n").filter((l) => l.includes(`POST /v1/chat/completions ${status} `)).length;
    const [ok0, refused0] = [count(200), count(401)];
    const plain = await chat({ messages: user(`${SECRET} plain`) }, "live-e2e-log");
    assert.equal(plain.status, 200);
    await plain.json();
    const streamed = await chat({ stream: true, messages: user(`${SECRET} [[pieces:3]]`) }, "live-e2e-log");
    assert.equal(streamed.status, 200);
    await streamed.text();
    const refused = await chat({ messages: user(SECRET) }, "expired-e2e-log");
    assert.equal(refused.status, 401);
    await refused.text();
    await eventually(() => count(200) === ok0 + 2 && count(401) === refused0 + 1, 10_000, "the three access lines");
    const out = server.output();
    for (const secret of [SECRET, "live-e2e", "expired-e2e", "cut-e2e", "pieces:", "[[pieces"]) {
      assert.ok(!out.includes(secret), `log contains ${secret}`);
    }
    assert.match(out, /POST \/v1\/chat\/completions 200 \d+ms attempts=1 id=req_\w+/);
  });
});

describe("start-up", () => {
  it("a bad environment value stops the server with a message naming the variable", async () => {
    await assert.rejects(startServer({ PORT: "eighty" }), /PORT/);
    await assert.rejects(startServer({ EMOHAA_BASE_URL: "not a url" }), /EMOHAA_BASE_URL/);
  });
});
