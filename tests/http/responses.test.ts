// POST /v1/responses and GET/DELETE /v1/responses/{id} through the app: validation, errors, ignored fields, the
// held status, server-side accounts, the log, and the ResponseThreads seam a conversation store plugs into.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { openTurn } from "../../lib/chat/turn.ts";
import { createApp } from "../../lib/http/app.ts";
import { createAuth } from "../../lib/http/auth.ts";
import { previousNotFound, type ResponseThreads, type ThreadRequest } from "../../lib/http/responses.ts";
import { loadTokenizer } from "../../lib/openai/tokenizer.ts";
import { start } from "../../lib/start.ts";
import { runtimeParts } from "../../runtime/parts.ts";
import { createSimulator } from "../../sim/simulator.ts";
import { testApp } from "../support/app.ts";
import { eventually, simFetch } from "../support/sim.ts";

type App = { request(path: string, init?: RequestInit): Response | Promise<Response> };

const post = (app: App, body: unknown, token = "live-1", headers: Record<string, string> = {}) =>
  Promise.resolve(app.request("/v1/responses", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}`, ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  }));

async function errorOf(res: Response) {
  const body = await res.json();
  return { status: res.status, ...body.error };
}

describe("POST /v1/responses", () => {
  it("ignores every field Emohaa cannot honour, and repeats metadata", async () => {
    const t = await testApp();
    const res = await post(t.app, {
      model: "gpt-4.1",
      input: "hi",
      tools: [{ type: "web_search" }, { type: "function", name: "f", parameters: {} }],
      tool_choice: "required",
      parallel_tool_calls: false,
      reasoning: { effort: "high", summary: "auto" },
      text: { format: { type: "json_schema", name: "x", schema: {} }, verbosity: "low" },
      temperature: 1.5,
      top_p: 0.1,
      truncation: "auto",
      include: ["reasoning.encrypted_content"],
      store: true,
      background: false,
      service_tier: "flex",
      prompt_cache_key: "k",
      safety_identifier: "s",
      user: "u",
      metadata: { a: "b" },
      stream_options: { include_obfuscation: false },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/json");
    const body = await res.json();
    assert.equal(body.status, "completed");
    assert.deepEqual(body.metadata, { a: "b" });
    assert.equal(body.model, "emohaa");
    await eventually(() => t.sim.state().open === 0, 3000, "conversation deleted");
  });

  it("refuses what it cannot read with a 400 naming the parameter, before any upstream call", async () => {
    const t = await testApp({ promptMaxBytes: 200 });
    const cases: [unknown, string][] = [
      [{ input: 42 }, "input"],
      [{}, "input"],
      [{ input: [{ role: "user", content: [{ type: "input_file", file_id: "f" }] }] }, "input"],
      [{ input: [{ role: "robot", content: "hi" }] }, "input"],
      [{ input: "hi", max_output_tokens: -1 }, "max_output_tokens"],
      [{ input: "hi", metadata: { n: 1 } }, "metadata.n"],
      [{ input: "hi", stream: "yes" }, "stream"],
      [{ input: "x".repeat(500) }, "input"],
    ];
    for (const [body, param] of cases) {
      const e = await errorOf(await post(t.app, body));
      assert.equal(e.status, 400, JSON.stringify(body));
      assert.equal(e.param, param, JSON.stringify(body));
      assert.equal(e.type, "invalid_request_error");
    }
    assert.equal((await errorOf(await post(t.app, { input: "x".repeat(500) }))).code, "context_length_exceeded");
    assert.equal((await post(t.app, "{nope")).status, 400);
    assert.equal((await post(t.app, "x", "live-1", { "content-type": "text/plain" })).status, 415);
    // No bearer: a 401 before the body is read.
    const anonymous = await t.app.request("/v1/responses", { method: "POST", body: "{not json" });
    assert.equal(anonymous.status, 401);
    assert.equal(t.sim.state().created, 0);
  });

  it("streams hold their status for the first piece: a dead token is a 401, a failover is invisible", async () => {
    const t = await testApp();
    const dead = await post(t.app, { input: "hi", stream: true }, "expired-1");
    assert.equal(dead.status, 401);
    assert.equal(dead.headers.get("x-should-retry"), "false");
    assert.match(dead.headers.get("content-type")!, /json/);

    const res = await post(t.app, { input: "hi", stream: true }, "expired-2,live-2");
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(text, /event: response\.completed\n/);
    assert.match(t.logs.at(-1)!, /POST \/v1\/responses 200 .*attempts=2/);
    await eventually(() => t.sim.state().open === 0, 3000, "conversations deleted");
  });

  it("a silent upstream releases the status with the opening events, then keep-alive comments, then the reply", async () => {
    const t = await testApp({ keepAliveMs: 40 });
    const res = await post(t.app, { input: "[[pieces:2]] [[delay:300]]", stream: true });
    assert.equal(res.status, 200);
    const frames = (await res.text()).split("\n\n").filter(Boolean);
    const pings = frames.map((f, i) => (f === ": ping" ? i : -1)).filter((i) => i >= 0);
    assert.ok(pings.length >= 2, frames.join("|"));
    // The opening events left before the first keep-alive; the reply ends normally.
    assert.ok(frames.findIndex((f) => f.startsWith("event: response.content_part.added")) < pings[0]!);
    assert.match(frames.at(-1)!, /^event: response\.completed\n/);
    const seqs = frames.filter((f) => f !== ": ping").map((f) => JSON.parse(f.split("\ndata: ")[1]!).sequence_number);
    assert.deepEqual(seqs, seqs.map((_, i) => i));
    await eventually(() => t.sim.state().open === 0, 3000, "conversation deleted");
  });

  it("with server-side tokens Emohaa rejecting them is a 503 accounts_unavailable, not the caller's 401", async () => {
    const t = await testApp({ serverTokens: ["expired-s1"], apiKeys: ["gk-right"] });
    assert.equal((await post(t.app, { input: "hi" }, "gk-wrong")).status, 401);
    const e = await errorOf(await post(t.app, { input: "hi" }, "gk-right"));
    assert.equal(e.status, 503);
    assert.equal(e.code, "accounts_unavailable");
  });

  it("logs one line per request with route, status and code only, and counts it in /metrics", async () => {
    const t = await testApp();
    await (await post(t.app, { input: "private-feelings", instructions: "secret" }, "live-logs")).text();
    await (await post(t.app, { input: "hi", previous_response_id: "resp_secret" }, "live-logs")).text();
    const lines = t.logs.filter((l) => l.includes("/v1/responses"));
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, /POST \/v1\/responses 200 \d+ms attempts=1 id=req_\w+$/);
    assert.match(lines[1]!, /POST \/v1\/responses 404 \d+ms code=previous_response_not_found id=req_\w+$/);
    assert.ok(!t.logs.join("\n").match(/private-feelings|secret|live-logs/));
    const metrics = t.metrics.render({
      conversationsOpen: 0,
      deletionsFailed: 0,
      pool: { healthy: 0, cooling: 0, busy: 0, waiting: 0 },
      tokenExpiry: [],
    } as any);
    assert.match(metrics, /emohaa_http_requests_total\{route="\/v1\/responses",status="200"\} 1/);
  });

  it("the default threads know no response: previous_response_id is a 404 and opens nothing; GET and DELETE are 404s", async () => {
    const t = await testApp();
    const e = await errorOf(await post(t.app, { input: "more", previous_response_id: "resp_t1" }));
    assert.deepEqual([e.status, e.type, e.param], [404, "invalid_request_error", "previous_response_id"]);
    assert.equal(t.sim.state().created, 0);
    const auth = { authorization: "Bearer live-1" };
    const got = await errorOf(await t.app.request("/v1/responses/resp_t1", { headers: auth }));
    assert.deepEqual([got.status, got.type, got.param], [404, "invalid_request_error", "response_id"]);
    assert.match(got.message, /stores no responses/);
    const deleted = await errorOf(await t.app.request("/v1/responses/resp_t1", { method: "DELETE", headers: auth }));
    assert.equal(deleted.status, 404);
    assert.equal((await t.app.request("/v1/responses/resp_t1")).status, 401);
    assert.equal((await t.app.request("/v1/responses/resp_t1", { method: "DELETE" })).status, 401);
  });
});

describe("ResponseThreads", () => {
  it("is what the route opens replies with: the response id, the previous id, the new input; DELETE ends by id", async () => {
    const sim = createSimulator();
    const env = {
      EMOHAA_BASE_URL: "http://sim/echo-prod",
      UPSTREAM_CLIENT: "fetch",
      LOG_LEVEL: "error",
      JOURNAL: "off",
    };
    let n = 0;
    const g = await start(env, { ...runtimeParts(), fetch: simFetch(sim), id: () => `s${++n}` });
    // A store that remembers which responses it opened (a stand-in for one that keeps their conversations).
    const known = new Set<string>();
    const calls: ThreadRequest[] = [];
    const ended: string[] = [];
    const threads: ResponseThreads = {
      keeps: true,
      open(r) {
        calls.push(r);
        if (r.previousId !== null && !known.has(r.previousId)) throw previousNotFound(r.previousId);
        known.add(r.responseId);
        const { tokens, scope, model, messages, fresh, promptMaxBytes, signal, holdMs } = r;
        return openTurn(g.chat, undefined, { tokens, scope, model, messages, fresh, promptMaxBytes, signal, holdMs });
      },
      async end(id, tokens) {
        ended.push(`${id} ${tokens.join()}`);
        return known.delete(id);
      },
    };
    const app = createApp({
      chat: g.chat,
      auth: createAuth({ allowAnonymous: false, now: Date.now }),
      pool: g.pool,
      client: g.chat.client,
      logger: g.logger,
      tokenizer: loadTokenizer,
      promptMaxBytes: 8000,
      keepAliveMs: 15_000,
      corsOrigin: "*",
      maxBodyBytes: g.config.maxBodyBytes,
      tokenCheckLimit: g.config.tokenCheckLimit,
      now: Date.now,
      id: () => `a${++n}`,
      responseThreads: threads,
    });

    const first = await (await post(app, { input: "hello", instructions: "Be kind." }, "live-t")).json();
    assert.equal(calls[0]!.responseId, first.id);
    assert.equal(calls[0]!.previousId, null);
    assert.deepEqual(calls[0]!.tokens, ["live-t"]);
    assert.deepEqual(calls[0]!.messages, [{ role: "system", content: "Be kind." }, { role: "user", content: "hello" }]);
    assert.equal(calls[0]!.store, true);
    assert.equal(first.store, true, "the Response says it is kept when the threads keep it");

    const res = await post(app, { input: "again", previous_response_id: first.id, stream: true }, "live-t");
    assert.equal(res.status, 200);
    const last = (await res.text()).trim().split("\n").at(-1)!;
    const second = JSON.parse(last.slice(6)).response;
    assert.equal(second.previous_response_id, first.id);
    assert.equal(calls[1]!.previousId, first.id);
    assert.equal(calls[1]!.responseId, second.id);
    assert.deepEqual(calls[1]!.messages, [{ role: "user", content: "again" }]);
    assert.match(calls[1]!.messageId, /^msg_/);
    assert.notEqual(calls[1]!.messageId, calls[0]!.messageId);
    assert.equal(calls[1]!.reference, undefined);
    assert.equal(calls[1]!.holdMs, 15_000);
    assert.equal(calls[0]!.messageId, first.output[0].id, "the message item's id reaches the threads");

    // An input referencing an earlier item: the merged messages, and the last reference with the turn after it.
    const input = [{ role: "user", content: "hello" }, { type: "item_reference", id: first.output[0].id }, {
      role: "user",
      content: "more",
    }];
    assert.equal((await post(app, { input, instructions: "Be kind." }, "live-t")).status, 200);
    assert.deepEqual(calls[2]!.messages, [
      { role: "system", content: "Be kind." },
      { role: "user", content: "hello" },
      { role: "user", content: "more" },
    ]);
    assert.deepEqual(calls[2]!.reference, {
      id: first.output[0].id,
      messages: [{ role: "system", content: "Be kind." }, { role: "user", content: "more" }],
    });

    const del = await app.request(`/v1/responses/${first.id}`, {
      method: "DELETE",
      headers: { authorization: "Bearer live-t" },
    });
    assert.equal(del.status, 200);
    assert.deepEqual(await del.json(), { id: first.id, object: "response", deleted: true });
    assert.deepEqual(ended, [`${first.id} live-t`]);
    const again = await app.request(`/v1/responses/${first.id}`, {
      method: "DELETE",
      headers: { authorization: "Bearer live-t" },
    });
    assert.equal(again.status, 404);
    const gone = await errorOf(await post(app, { input: "x", previous_response_id: first.id }, "live-t"));
    assert.deepEqual([gone.status, gone.param], [404, "previous_response_id"]);
    await eventually(() => sim.state().open === 0, 3000, "conversations deleted");
    g.shutdown.abort();
  });
});
