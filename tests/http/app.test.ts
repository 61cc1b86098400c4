import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { eventually } from "../support/sim.ts";
import { sseEvents, testApp, user } from "../support/app.ts";
import { inSeconds, makeJwt } from "../support/jwt.ts";

const json = (r: Response) => r.json() as Promise<any>;

describe("POST /v1/chat/completions (non-stream)", () => {
  it("answers a chat.completion with estimated usage and deletes the conversation", async () => {
    const t = await testApp();
    const res = await t.chat({ model: "gpt-4o-mini", ...user("你好") });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, /^application\/json/);
    const body = await json(res);
    assert.equal(body.object, "chat.completion");
    assert.equal(body.model, "emohaa");
    assert.equal(body.choices[0].message.role, "assistant");
    assert.equal(body.choices[0].message.content, "你好啊！我是Emohaa，想和我聊点什么吗？😊 今天心情如何？");
    assert.equal(body.choices[0].finish_reason, "stop");
    assert.equal(typeof body.created, "number");
    assert.ok(body.usage.completion_tokens > 5 && body.usage.prompt_tokens > 0);
    assert.equal(body.usage.total_tokens, body.usage.prompt_tokens + body.usage.completion_tokens);
    await eventually(() => t.sim.state().open === 0, 2000, "deletion");
    assert.equal(t.sim.state().deleted, 1);
    assert.equal(t.sim.state().badDeletes, 0);
  });

  it("accepts unknown OpenAI fields and any model", async () => {
    const t = await testApp();
    const res = await t.chat({
      model: "whatever",
      temperature: 0.7,
      top_p: 1,
      presence_penalty: 0,
      frequency_penalty: 0,
      user: "u",
      metadata: { a: 1 },
      tools: [{ type: "function", function: { name: "f" } }],
      parallel_tool_calls: false,
      stream_options: { include_usage: true },
      stream: false,
      n: 1,
      ...user("hi"),
    });
    assert.equal(res.status, 200);
  });

  it("Dify's credential check: max_tokens 5 on 'ping' returns a completion cut at 5 tokens", async () => {
    const t = await testApp();
    const res = await t.chat({ max_tokens: 5, messages: [{ role: "user", content: "ping" }] });
    const body = await json(res);
    assert.equal(res.status, 200);
    assert.equal(body.object, "chat.completion");
    assert.equal(body.choices[0].finish_reason, "length");
    assert.equal(body.usage.completion_tokens, 5);
    await eventually(() => t.sim.state().open === 0);
  });

  it("flattens the history into labelled lines", async () => {
    const t = await testApp();
    await t.chat({
      messages: [
        { role: "system", content: "be gentle" },
        {
          role: "user",
          content: [{ type: "text", text: "I feel" }, { type: "image_url", image_url: { url: "data:x" } }, {
            type: "text",
            text: "tired",
          }],
        },
        { role: "assistant", content: "I hear you, assistant here" },
        { role: "user", content: "thanks" },
      ],
    });
    assert.equal(
      t.sim.state().prompts[0],
      "system:be gentle\nuser:I feel\ntired\nemohaa:I hear you, assistant here\nuser:thanks",
    );
  });

  it("cuts at a stop sequence split across pieces", async () => {
    const t = await testApp();
    const body = await json(await t.chat({ stop: ["心情"], ...user("hi") }));
    assert.equal(body.choices[0].message.content, "你好啊！我是Emohaa，想和我聊点什么吗？😊 今天");
    assert.equal(body.choices[0].finish_reason, "stop");
    await eventually(() => t.sim.state().open === 0);
  });
});

describe("POST /v1/chat/completions (stream)", () => {
  it("streams role chunk, content chunks, one finish chunk, usage, [DONE] with SSE headers", async () => {
    const t = await testApp();
    const res = await t.chat(
      { stream: true, stream_options: { include_usage: true }, ...user("hi [[split]]") },
      "live-1",
      { accept: "application/json", "accept-encoding": "gzip, br" },
    );
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, /^text\/event-stream/);
    assert.equal(res.headers.get("cache-control"), "no-cache");
    assert.equal(res.headers.get("x-accel-buffering"), "no");
    assert.equal(res.headers.get("content-encoding"), null);
    const events = await sseEvents(res);
    assert.equal(events.at(-1), "[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    assert.deepEqual(chunks[0].choices[0].delta, { role: "assistant", content: "" });
    const ids = new Set(chunks.map((c) => c.id));
    assert.equal(ids.size, 1);
    assert.ok(
      chunks.every((c) => c.object === "chat.completion.chunk" && c.model === "emohaa" && Array.isArray(c.choices)),
    );
    const finishes = chunks.filter((c) => c.choices[0]?.finish_reason);
    assert.equal(finishes.length, 1);
    assert.equal(finishes[0].choices[0].finish_reason, "stop");
    const usage = chunks.at(-1);
    assert.deepEqual(usage.choices, []);
    assert.ok(usage.usage.completion_tokens > 0);
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
    assert.equal(text, "你好啊！我是Emohaa，想和我聊点什么吗？😊 今天心情如何？");
    await eventually(() => t.sim.state().open === 0);
  });

  it("never sends an empty-choices chunk without include_usage", async () => {
    const t = await testApp();
    const events = await sseEvents(await t.chat({ stream: true, ...user("hi") }));
    // A stream of only an error frame would pass the loop below: it must be a whole reply.
    assert.equal(events.at(-1), "[DONE]");
    assert.ok(events.length >= 4, `role, content, finish and [DONE] expected, got ${events.length} events`);
    for (const e of events.slice(0, -1)) assert.equal(JSON.parse(e).choices.length, 1);
  });

  it("keeps multi-line pieces intact", async () => {
    const t = await testApp();
    const events = await sseEvents(await t.chat({ stream: true, ...user("[[reply:ab\ncd]] [[pieces:1]]") }));
    const text = events.slice(0, -1).map((e) => JSON.parse(e).choices[0]?.delta?.content ?? "").join("");
    assert.equal(text, "ab\ncd");
  });

  it("max_tokens cuts the stream with finish_reason length and stops the upstream", async () => {
    const t = await testApp();
    const events = await sseEvents(
      await t.chat({ stream: true, max_completion_tokens: 3, ...user("[[pieces:500]] [[delay:2]]") }),
    );
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    assert.equal(chunks.at(-1).choices[0].finish_reason, "length");
    await eventually(() => t.sim.state().open === 0 && t.sim.state().openStreams === 0);
    assert.equal(t.sim.state().aborted, 1);
  });

  it("sends `: ping` keep-alives while the upstream is silent", async () => {
    const t = await testApp({ keepAliveMs: 100 });
    const events = await sseEvents(await t.chat({ stream: true, ...user("[[pieces:2]] [[delay:450]]") }));
    assert.ok(events.filter((e) => e === ": ping").length >= 2, events.join("|"));
    assert.equal(events.at(-1), "[DONE]");
  });

  it("reports a failure after streaming began as an error frame, never [DONE]", async () => {
    const t = await testApp({ keepAliveMs: 50 });
    const events = await sseEvents(await t.chat({ stream: true, ...user("[[pieces:10]] [[delay:100]]") }, "cut-1"));
    assert.notEqual(events.at(-1), "[DONE]");
    const last = JSON.parse(events.at(-1)!);
    assert.equal(last.error.code, "upstream_stream_cut");
    assert.ok(!events.some((e) => e.startsWith("{") && JSON.parse(e).choices?.[0]?.finish_reason));
    await eventually(() => t.sim.state().open === 0);
  });
});

describe("errors", () => {
  it("expired token: 401 OpenAI error, fast, no conversation left", async () => {
    const t = await testApp();
    const started = Date.now();
    const res = await t.chat(user("hi"), "expired-1");
    assert.equal(res.status, 401);
    assert.ok(Date.now() - started < 2000);
    const body = await json(res);
    assert.deepEqual(Object.keys(body.error).sort(), ["code", "message", "param", "type"]);
    assert.equal(body.error.type, "authentication_error");
    assert.ok(!JSON.stringify(body).includes("expired-1"));
    assert.equal(t.sim.state().open, 0);
  });

  it("expired token answered with HTTP 200 and a problem body is still a 401", async () => {
    const t = await testApp();
    assert.equal((await t.chat(user("hi"), "expired200-x")).status, 401);
  });

  it("fails over to the next token at once, deleting what the failed attempt created", async () => {
    const t = await testApp();
    for (const bad of ["expired-a", "create500-a", "chat500-a", "ratelimit-a"]) {
      const res = await t.chat(user("hi"), `${bad},live-b`);
      assert.equal(res.status, 200, bad);
    }
    await eventually(() => t.sim.state().open === 0);
    assert.equal(t.sim.state().badDeletes, 0);
  });

  it("retries a failed deletion with backoff until it succeeds, exactly once", async () => {
    const t = await testApp();
    assert.equal((await t.chat(user("hi"), "delfail-1")).status, 200);
    await eventually(() => t.sim.state().open === 0, 2000, "deletion after retries");
    assert.equal(t.sim.state().deleted, 1);
    assert.equal(t.conversations.deleteFailures, 0);
  });

  it("gives up after 3 attempts", async () => {
    const t = await testApp();
    const res = await t.chat(user("hi"), "chat500-a,chat500-b,chat500-c,chat500-d");
    assert.equal(res.status, 502);
    assert.equal(t.sim.state().chats, 3);
    await eventually(() => t.sim.state().open === 0);
  });

  it("upstream 429 is a 429 with retry-after", async () => {
    const t = await testApp();
    const res = await t.chat(user("hi"), "ratelimit-1");
    assert.equal(res.status, 429);
    assert.equal(res.headers.get("retry-after"), "7");
    assert.equal((await json(res)).error.type, "rate_limit_error");
  });

  it("upstream 5xx is a 502, create timeout a 504, silent stream a 504", async () => {
    assert.equal((await (await testApp()).chat(user("hi"), "create500-1")).status, 502);
    const t = await testApp({ timeouts: { createMs: 100 } });
    assert.equal((await t.chat(user("hi"), "hang-1")).status, 504);
    const s = await testApp({ timeouts: { firstPieceMs: 100 } });
    const res = await s.chat(user("hi"), "silent-1");
    assert.equal(res.status, 504);
    await eventually(() => s.sim.state().open === 0 && s.sim.state().openStreams === 0);
  });

  it("non-stream request whose upstream fails mid-way gets a 5xx, not a partial 200", async () => {
    const t = await testApp();
    const res = await t.chat(user("hi"), "cut-1");
    assert.equal(res.status, 502);
    await eventually(() => t.sim.state().open === 0);
  });

  it("validation failures are 400 with param", async () => {
    const t = await testApp();
    const cases: [unknown, string | null][] = [
      [{ messages: [] }, "messages"],
      [{ messages: [{ role: "wizard", content: "x" }] }, "messages.0.role"],
      [{ ...user("x"), n: 2 }, "n"],
      [{ ...user("x"), stop: ["a", "b", "c", "d", "e"] }, "stop"],
      [{ ...user("x"), stream: "yes" }, "stream"],
    ];
    for (const [body, param] of cases) {
      const res = await t.chat(body);
      assert.equal(res.status, 400, JSON.stringify(body));
      const e = (await json(res)).error;
      assert.equal(e.type, "invalid_request_error");
      assert.equal(e.param, param);
    }
    const bad = await t.chat("{not json");
    assert.equal(bad.status, 400);
    assert.equal((await json(bad)).error.type, "invalid_request_error");
    assert.equal(t.sim.state().created, 0);
  });

  it("a last message too long for the URL is 400 context_length_exceeded", async () => {
    const t = await testApp({ promptMaxBytes: 500 });
    const res = await t.chat(user("长".repeat(200)));
    assert.equal(res.status, 400);
    assert.equal((await json(res)).error.code, "context_length_exceeded");
  });

  it("server-side tokens: authentication comes before validation; a wrong key never reaches the upstream", async () => {
    const t = await testApp({ serverTokens: ["live-server"], apiKeys: ["right-key"] });
    const bad = await t.chat({ messages: [] }, "wrong-key");
    assert.equal(bad.status, 401);
    assert.equal(((await bad.json()) as any).error.code, "invalid_api_key");
    assert.equal((await t.chat(user("hi"), "right-key")).status, 200);
    assert.deepEqual(Object.keys(t.sim.state().callsByToken), ["live-server"]);
  });

  it("server-side tokens all rejected by Emohaa: a right key gets 503 accounts_unavailable, not a 401", async () => {
    const t = await testApp({ serverTokens: ["expired-s1", "expired-s2"], apiKeys: ["right-key"] });
    const res = await t.chat(user("hi"), "right-key");
    assert.equal(res.status, 503);
    // SDKs retry a 503 unless told not to; accounts Emohaa rejected will not come back within their retries.
    assert.equal(res.headers.get("x-should-retry"), "false");
    assert.equal(((await res.json()) as any).error.code, "accounts_unavailable");
    // A client's own dead token is the client's problem: still a 401.
    assert.equal((await (await testApp()).chat(user("hi"), "expired-c1")).status, 401);
  });

  it("the access log names the error code of a failed request", async () => {
    const t = await testApp();
    await t.chat(user("x"), "expired-code");
    await eventually(
      () => t.logs.some((l) => / 401 \d+ms attempts=1 code=invalid_token id=/.test(l)),
      1000,
      "log line with code",
    );
  });

  it("missing bearer is 401", async () => {
    const t = await testApp();
    const res = await t.app.request("/v1/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(user("x")),
    });
    assert.equal(res.status, 401);
  });

  it("unknown routes are 404 OpenAI errors", async () => {
    const res = await (await testApp()).app.request("/v1/nothing");
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as any).error.type, "not_found_error");
  });
});

describe("other routes", () => {
  it("GET /v1/models lists emohaa", async () => {
    const res = await (await testApp()).app.request("/v1/models");
    assert.match(res.headers.get("content-type")!, /application\/json/);
    const body = (await res.json()) as any;
    assert.equal(body.object, "list");
    assert.deepEqual(body.data.map((m: any) => [m.id, m.object]), [["emohaa", "model"]]);
  });

  it("GET /v1/models/{model} answers the model object for emohaa, else a 404 in OpenAI's shape", async () => {
    const t = await testApp();
    const res = await t.app.request("/v1/models/emohaa");
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {
      id: "emohaa",
      object: "model",
      created: 1710000000,
      owned_by: "emohaa-free-api",
    });
    const missing = await t.app.request("/v1/models/gpt-4o");
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), {
      error: {
        message: "The model 'gpt-4o' does not exist",
        type: "not_found_error",
        param: "model",
        code: "model_not_found",
      },
    });
    const doc = (await (await t.app.request("/openapi.json")).json()) as any;
    assert.equal(doc.paths["/v1/models/{model}"].get.operationId, "retrieveModel");
  });

  it("GET /ping answers pong", async () => {
    assert.equal(await (await (await testApp()).app.request("/ping")).text(), "pong");
  });

  it("POST /token/check: live, expired, garbage token and bad body", async () => {
    const t = await testApp();
    const check = (body: unknown) =>
      t.app.request("/token/check", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    assert.deepEqual(await (await check({ token: "live-1" })).json(), { live: true, expiresAt: null });
    assert.deepEqual(await (await check({ token: "expired-1" })).json(), { live: false, expiresAt: null });
    assert.deepEqual(await (await check({ token: "a b\u00e9" })).json(), { live: false, expiresAt: null });
    // `hang` accounts hang only when creating: listing answers, so the token is live.
    assert.deepEqual(await (await check({ token: "hang-1" })).json(), { live: true, expiresAt: null });
    const bad = await check({ nope: 1 });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as any).error.param, "token");
  });

  it("POST /token/check is limited per client address; without one (app.request) every caller shares one budget", async () => {
    const t = await testApp({ tokenCheckLimit: { perMinute: 1, burst: 2 } });
    const check = (remoteAddress?: string) =>
      t.app.request("/token/check", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ token: "live-1" }),
      }, remoteAddress ? { remoteAddress } : undefined);
    assert.deepEqual([
      (await check("192.0.2.1")).status,
      (await check("192.0.2.1")).status,
      (await check("192.0.2.1")).status,
    ], [200, 200, 429]);
    assert.equal((await check("192.0.2.2")).status, 200);
    assert.deepEqual([(await check()).status, (await check()).status, (await check()).status], [200, 200, 429]);
    // Refused checks never reach the upstream.
    assert.equal(t.sim.state().callsByToken["live-1"], 5);
  });

  it("CORS: preflight without auth reflects requested headers; errors carry the origin header", async () => {
    const t = await testApp();
    const pre = await t.app.request("/v1/chat/completions", {
      method: "OPTIONS",
      headers: {
        origin: "https://chat.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type,x-stainless-os",
      },
    });
    assert.ok(pre.status === 204 || pre.status === 200);
    assert.equal(pre.headers.get("access-control-allow-origin"), "*");
    assert.match(pre.headers.get("access-control-allow-headers")!, /x-stainless-os/);
    const err = await t.chat(user("x"), "expired-1", { origin: "https://chat.example" });
    assert.equal(err.headers.get("access-control-allow-origin"), "*");
    assert.match(err.headers.get("access-control-expose-headers")!, /x-request-id/);
    assert.ok(err.headers.get("x-request-id"));
    const stream = await t.chat({ stream: true, ...user("x") }, "live-1", { origin: "https://chat.example" });
    assert.equal(stream.headers.get("access-control-allow-origin"), "*");
    assert.ok(stream.headers.get("x-request-id"));
    await stream.text();
  });

  it("CORS headers reach a routed answer whose headers are immutable (Response.redirect) too", async () => {
    const t = await testApp();
    t.app.get("/test-redirect", () => Response.redirect("https://example.com/", 302));
    const res = await t.app.request("/test-redirect", { headers: { origin: "https://chat.example" } });
    assert.equal(res.status, 302);
    assert.equal(res.headers.get("location"), "https://example.com/");
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    assert.ok(res.headers.get("x-request-id"));
  });

  it("logs one line per request with no token and no message text", async () => {
    const t = await testApp();
    await t.chat(user("my secret feelings"), "live-secret-token");
    await t.chat(user("my secret feelings"), "expired-secret-token");
    await eventually(() => t.logs.length >= 2);
    const all = t.logs.join("\n");
    assert.ok(!all.includes("secret"), all);
    assert.match(t.logs[0]!, /POST \/v1\/chat\/completions 200 \d+ms attempts=1 id=req_/);
  });
});

describe("bounds and timeouts", () => {
  it("a body over the limit is a 413 OpenAI error", async () => {
    const t = await testApp();
    const res = await t.chat(user("x".repeat(1024 * 1024 + 10)));
    assert.equal(res.status, 413);
    assert.equal(((await res.json()) as any).error.code, "request_too_large");
    assert.equal(t.sim.state().created, 0);
  });

  it("the body's media type and syntax: 415 for anything but JSON, 400 for malformed JSON; a streamed body is measured as it comes", async () => {
    const t = await testApp();
    const post = (headers: Record<string, string>, body?: BodyInit) =>
      t.app.request("/v1/chat/completions", {
        method: "POST",
        headers: { authorization: "Bearer live-1", ...headers },
        body,
      });
    const code = async (res: Response) => [res.status, ((await res.json()) as any).error.message];
    assert.deepEqual(await code(await post({ "content-type": "text/plain" }, JSON.stringify(user("x")))), [
      415,
      "Unsupported Media Type",
    ]);
    assert.deepEqual(await code(await post({}, JSON.stringify(user("x")))), [415, "Unsupported Media Type"]);
    assert.deepEqual(await code(await post({ "content-type": "application/json" }, "{not json")), [
      400,
      "Malformed JSON in request body",
    ]);
    const ok = await post({ "content-type": "application/json; charset=utf-8" }, JSON.stringify(user("x")));
    assert.equal(ok.status, 200);
    // Without a Content-Length (a chunked upload) the limit is counted while reading.
    const streamed = (text: string) =>
      new ReadableStream<Uint8Array>({
        start(c) {
          const bytes = new TextEncoder().encode(text);
          for (let i = 0; i < bytes.length; i += 64 * 1024) c.enqueue(bytes.slice(i, i + 64 * 1024));
          c.close();
        },
      });
    const small = new Request(
      "http://x/v1/chat/completions",
      {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer live-2" },
        body: streamed(JSON.stringify(user("ok"))),
        duplex: "half",
      } as RequestInit,
    );
    assert.equal(small.headers.get("content-length"), null);
    assert.equal((await t.app.fetch(small)).status, 200);
    const big = new Request(
      "http://x/v1/chat/completions",
      {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer live-3" },
        body: streamed(JSON.stringify(user("x".repeat(2 * 1024 * 1024)))),
        duplex: "half",
      } as RequestInit,
    );
    assert.equal((await t.app.fetch(big)).status, 413);
    await eventually(() => t.sim.state().open === 0);
  });

  it("a hostile upstream event larger than the bound ends the request with 502 and deletes the conversation", async () => {
    const t = await testApp();
    const res = await t.chat(user("[[huge:2000000]]"));
    assert.equal(res.status, 502);
    assert.equal(((await res.json()) as any).error.code, "upstream_event_too_large");
    await eventually(() => t.sim.state().open === 0 && t.sim.state().openStreams === 0);
  });

  it("a reply larger than the bound is cut with an error, not held in memory", async () => {
    const t = await testApp();
    const res = await t.chat({ stream: true, ...user("[[pieces:40000]]") });
    const events = await sseEvents(res);
    assert.equal(JSON.parse(events.at(-1)!).error.code, "upstream_reply_too_large");
    await eventually(() => t.sim.state().open === 0 && t.sim.state().openStreams === 0);
  });

  it("a gap between pieces longer than the idle timeout is an error frame after streaming began", async () => {
    const t = await testApp({ timeouts: { idleMs: 150 }, keepAliveMs: 50 });
    const events = await sseEvents(await t.chat({ stream: true, ...user("[[pieces:3]] [[delay:400]]") }));
    assert.equal(JSON.parse(events.at(-1)!).error.type, "timeout_error");
    await eventually(() => t.sim.state().open === 0 && t.sim.state().openStreams === 0);
  });

  it("the total cap ends a reply that keeps going", async () => {
    const t = await testApp({ timeouts: { totalMs: 300 } });
    const res = await t.chat(user("[[pieces:100]] [[delay:20]]"));
    assert.equal(res.status, 504);
    assert.match(((await res.json()) as any).error.message, /longer than 300 ms/);
    await eventually(() => t.sim.state().open === 0 && t.sim.state().openStreams === 0);
  });

  it("a malformed event stream (comments, CRLF, junk lines, empty events) still gives the right text", async () => {
    const t = await testApp();
    const body = (await (await t.chat(user("hi"), "malformed-1")).json()) as any;
    assert.equal(body.choices[0].message.content, "你好啊！我是Emohaa，想和我聊点什么吗？😊 今天心情如何？");
  });
});

describe("JWT expiry", () => {
  const hi = user("hi");

  it("a client's only token, expired, is a fast 401 token_expired saying when, with no upstream call", async () => {
    const t = await testApp();
    const exp = inSeconds(-120);
    const token = makeJwt({ exp });
    const res = await t.chat(hi, token);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get("x-should-retry"), "false");
    const body = (await res.json()) as any;
    assert.equal(body.error.code, "token_expired");
    assert.equal(body.error.type, "authentication_error");
    assert.match(
      body.error.message,
      new RegExp(`expired at ${new Date(exp * 1000).toISOString().replace(/\./g, "\\.")}`),
    );
    assert.equal(t.sim.state().requests.length, 0);
    for (const line of t.logs) assert.ok(!line.includes(token) && !line.includes("sub-claim"), line);
  });

  it("an expired token among others is skipped; near, far, no-exp and non-JWT tokens are used as today", async () => {
    const t = await testApp();
    const expired = makeJwt({ exp: inSeconds(-1) });
    for (
      const good of [
        makeJwt({ exp: inSeconds(30) }),
        makeJwt({ exp: inSeconds(86_400) }),
        makeJwt({ exp: null }),
        "live-plain",
      ]
    ) {
      const res = await t.chat(hi, `${expired},${good}`);
      assert.equal(res.status, 200);
      assert.ok((t.sim.state().callsByToken[good] ?? 0) > 0);
    }
    assert.equal(t.sim.state().callsByToken[expired], undefined);
    await eventually(() => t.sim.state().open === 0);
  });

  it("server-side: every server token expired is the 503 accounts_unavailable, saying when, with no upstream call", async () => {
    const exp = inSeconds(-3600);
    const t = await testApp({ serverTokens: [makeJwt({ exp: exp - 60 }), makeJwt({ exp })], apiKeys: ["gk-exp"] });
    const res = await t.chat(hi, "gk-exp");
    assert.equal(res.status, 503);
    const body = (await res.json()) as any;
    assert.equal(body.error.code, "accounts_unavailable");
    assert.match(body.error.message, /every server token has expired, the last at /);
    assert.ok(body.error.message.includes(new Date(exp * 1000).toISOString()));
    assert.equal(t.sim.state().requests.length, 0);
  });

  it("POST /token/check answers {live, expiresAt}; an expired JWT is live:false without an upstream call", async () => {
    const t = await testApp({ tokenCheckLimit: { perMinute: 60, burst: 60 } });
    const check = async (token: string) =>
      (await t.app.request("/token/check", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ token }),
      })).json();
    const farExp = inSeconds(86_400);
    const far = makeJwt({ exp: farExp });
    assert.deepEqual(await check(far), { live: true, expiresAt: new Date(farExp * 1000).toISOString() });
    const expExp = inSeconds(-60);
    const expired = makeJwt({ exp: expExp });
    assert.deepEqual(await check(expired), { live: false, expiresAt: new Date(expExp * 1000).toISOString() });
    assert.equal(t.sim.state().callsByToken[expired], undefined);
    assert.deepEqual(await check(makeJwt({ exp: null })), { live: true, expiresAt: null });
    assert.deepEqual(await check("live-plain"), { live: true, expiresAt: null });
  });

  it("GET /v1/tokens/status shows each token's expiresAt; /metrics has seconds to expiry per server-side token by label", async () => {
    const nearExp = inSeconds(1800);
    const near = makeJwt({ exp: nearExp });
    const gone = makeJwt({ exp: inSeconds(-60) });
    const t = await testApp({
      serverTokens: [near, gone, makeJwt({ exp: null }), "live-plain"],
      apiKeys: ["gk-status"],
    });
    const res = await t.app.request("/v1/tokens/status", { headers: { authorization: "Bearer gk-status" } });
    const body = (await res.json()) as any;
    assert.equal(body.mode, "server");
    assert.deepEqual(body.tokens.map((x: any) => x.expiresAt), [
      new Date(nearExp * 1000).toISOString(),
      body.tokens[1].expiresAt,
      null,
      null,
    ]);
    assert.ok(Date.parse(body.tokens[1].expiresAt) < Date.now());
    const text = await (await t.app.request("/metrics", { headers: { authorization: "Bearer gk-status" } })).text();
    const lines = text.split("\n").filter((l) => l.startsWith("emohaa_token_expiry_seconds{"));
    assert.equal(lines.length, 2);
    const [label] = [body.tokens[0].label];
    const m = new RegExp(`^emohaa_token_expiry_seconds\\{token="${label}"\\} (-?\\d+)$`).exec(lines[0]!);
    assert.ok(m, lines[0]!);
    assert.ok(Math.abs(Number(m[1]!) - 1800) <= 5, m[1]!);
    assert.match(lines[1]!, new RegExp(`token="${body.tokens[1].label}"\\} -\\d+$`));
    assert.ok(!text.includes(near) && !text.includes("sub-claim"));
  });
});
