// End to end: the Responses API on kept conversations (previous_response_id, store, DELETE by id) with the openai
// SDK and the AI SDK, against the server process and the simulator's per-cid memory.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, type ModelMessage, streamText } from "ai";
import { eventually, type RunningSim, startSim } from "../support/sim.ts";
import { sdkClient } from "../support/sdk.ts";
import { type RunningServer, signalsApply, startServer } from "../support/server.ts";
import { assertSpec } from "../support/openai-spec.ts";

let sim: RunningSim;
let server: RunningServer;
before(async () => {
  sim = await startSim();
  server = await startServer({ EMOHAA_BASE_URL: sim.baseUrl, CONTINUE_CONVERSATIONS: "true" });
});
after(async () => {
  await server?.kill();
  await sim?.stop();
});

const sdk = (token: string, url = server.url) => sdkClient(url, token);

/** The conversations created since `since` (the simulator numbers them `conv-N-...`). */
const cidsSince = (since: number) =>
  Object.keys(sim.sim.state().promptsOf).filter((c) => Number(c.split("-")[1]) > since);

interface Said {
  id: string;
  /** The id of its message item (what an `item_reference` names). */
  messageId: string;
  text: string;
  store: boolean;
  previous: string | null;
  handle: string | null;
  continuation: string | null;
}

/** One response with the openai SDK, whole or streamed; its id, text and the multi-turn headers. */
async function say(
  client: OpenAI,
  body: Omit<OpenAI.Responses.ResponseCreateParamsNonStreaming, "model">,
  stream = false,
): Promise<Said> {
  const of = (r: OpenAI.Responses.Response, res: Response): Said => ({
    id: r.id,
    messageId: r.output[0]?.id ?? "",
    text: r.output_text,
    store: (r as unknown as { store: boolean }).store,
    previous: r.previous_response_id ?? null,
    handle: res.headers.get("x-emohaa-conversation"),
    continuation: res.headers.get("x-emohaa-continuation"),
  });
  if (!stream) {
    const { data, response } = await client.responses.create({ model: "emohaa", ...body }).withResponse();
    assertSpec("Response", data);
    return of(data, response);
  }
  const { data, response } = await client.responses.create({ model: "emohaa", ...body, stream: true }).withResponse();
  let done: OpenAI.Responses.Response | undefined;
  let text = "";
  for await (const event of data) {
    if (event.type === "response.output_text.delta") text += event.delta;
    if (event.type === "response.completed") done = event.response;
  }
  assert.ok(done, "a completed response");
  return { ...of(done, response), text };
}

/** The AI SDK's default OpenAI provider (the Responses API, `store: true`), recording the bodies it sends. */
function recording(token: string) {
  const bodies: any[] = [];
  const model = createOpenAI({
    baseURL: `${server.url}/v1`,
    apiKey: token,
    fetch: ((url: string, init?: RequestInit) => {
      if (typeof init?.body === "string") bodies.push(JSON.parse(init.body));
      return fetch(url, init);
    }) as typeof fetch,
  })("emohaa");
  return { model, bodies };
}

/** The 404 OpenAI answers for a previous_response_id it does not know, as the openai SDK types it. */
const previousNotFound = (e: any) =>
  e instanceof OpenAI.NotFoundError && e.param === "previous_response_id" && e.type === "invalid_request_error";

describe("previous_response_id on kept conversations", () => {
  it("a three-turn chain stays on one upstream conversation, each turn sending only its new input", async () => {
    const client = sdk("live-pr-chain");
    const since = sim.sim.state().created;
    const r1 = await say(client, { input: "P1 我最近睡不好", instructions: "Be kind." });
    assert.deepEqual([r1.store, r1.continuation], [true, "new"]);
    assert.match(r1.handle ?? "", /^conv-/);
    const r2 = await say(client, { input: "P2 还是很焦虑", previous_response_id: r1.id }, true);
    assert.deepEqual([r2.previous, r2.continuation, r2.handle], [r1.id, "continued", r1.handle]);
    const r3 = await say(client, { input: [{ role: "user", content: "P3 [[recall]]" }], previous_response_id: r2.id });
    assert.deepEqual([r3.continuation, r3.handle], ["continued", r1.handle]);
    const cids = cidsSince(since);
    assert.equal(cids.length, 1, "one upstream conversation");
    assert.deepEqual(sim.sim.state().promptsOf[cids[0]!], [
      "system:Be kind.\nuser:P1 我最近睡不好",
      "user:P2 还是很焦虑",
      "user:P3 [[recall]]",
    ]);
    // The conversation remembers the first turn: the simulator's recall says everything it was told.
    assert.ok(r3.text.startsWith("system:Be kind.\nuser:P1 我最近睡不好\nuser:P2"), r3.text);
    assert.equal(sim.sim.state().open, 1, "kept between turns");

    // An older response would branch the conversation: not found, and nothing reaches the upstream.
    const { created, prompts } = sim.sim.state();
    for (const older of [r1.id, r2.id]) {
      await assert.rejects(
        client.responses.create({ model: "emohaa", input: "P-branch", previous_response_id: older }),
        previousNotFound,
      );
    }
    assert.deepEqual([sim.sim.state().created, sim.sim.state().prompts.length], [created, prompts.length]);
    // The latest still continues after those refusals.
    const r4 = await say(client, { input: "P4", previous_response_id: r3.id });
    assert.equal(r4.continuation, "continued");
    assert.deepEqual(sim.sim.state().promptsOf[cids[0]!]!.at(-1), "user:P4");

    // DELETE by id ends the conversation at once; its id then continues nothing.
    const del = await fetch(`${server.url}/v1/responses/${r4.id}`, {
      method: "DELETE",
      headers: { authorization: "Bearer live-pr-chain" },
    });
    assert.equal(del.status, 200);
    assert.deepEqual(await del.json(), { id: r4.id, object: "response", deleted: true });
    await eventually(() => sim.sim.state().open === 0, 5000, "deleted");
    await assert.rejects(
      client.responses.create({ model: "emohaa", input: "P5", previous_response_id: r4.id }),
      previousNotFound,
    );
    await assert.rejects(client.responses.delete(r4.id), OpenAI.NotFoundError);
    // No text is stored: a kept or ended response cannot be retrieved.
    await assert.rejects(
      client.responses.retrieve(r4.id),
      (e: any) => e instanceof OpenAI.NotFoundError && /stores no responses/.test(e.message),
    );
    assert.equal(sim.sim.state().open, 0);
  });

  it("unknown ids, another caller's and another end user's are OpenAI's not-found, with no upstream call", async () => {
    const mine = sdk("live-pr-mine");
    const r1 = await say(mine, { input: "Q1", user: "alice" });
    const { created, prompts } = sim.sim.state();
    await assert.rejects(
      mine.responses.create({ model: "emohaa", input: "Q-x", previous_response_id: "resp_unknown" }),
      previousNotFound,
    );
    await assert.rejects(
      sdk("live-pr-other").responses.create({ model: "emohaa", input: "Q-x", previous_response_id: r1.id }),
      previousNotFound,
    );
    await assert.rejects(
      mine.responses.create({ model: "emohaa", input: "Q-x", user: "bob", previous_response_id: r1.id }),
      previousNotFound,
    );
    const raw = await fetch(`${server.url}/v1/responses`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer live-pr-mine" },
      body: JSON.stringify({ model: "emohaa", input: "Q-x", previous_response_id: "resp_unknown" }),
    });
    assert.equal(raw.status, 404);
    const body = await raw.json();
    assertSpec("ErrorResponse", body);
    assert.deepEqual([body.error.type, body.error.param], ["invalid_request_error", "previous_response_id"]);
    assert.deepEqual([sim.sim.state().created, sim.sim.state().prompts.length], [created, prompts.length]);
    // Another caller cannot end it either; its own caller still continues it.
    assert.equal(
      (await fetch(`${server.url}/v1/responses/${r1.id}`, {
        method: "DELETE",
        headers: { authorization: "Bearer live-pr-other" },
      }))
        .status,
      404,
    );
    assert.equal(
      (await say(mine, { input: "Q2", user: "alice", previous_response_id: r1.id })).continuation,
      "continued",
    );
  });

  it("store: false keeps nothing, and a conversation it continues ends with it", async () => {
    const client = sdk("live-pr-nostore");
    const open = sim.sim.state().open;
    const r1 = await say(client, { input: "S1", store: false });
    assert.deepEqual([r1.store, r1.continuation, r1.handle], [false, "off", null]);
    await eventually(() => sim.sim.state().open === open, 5000, "deleted after its reply");
    await assert.rejects(
      client.responses.create({ model: "emohaa", input: "S2", previous_response_id: r1.id }),
      previousNotFound,
    );

    const kept = await say(client, { input: "S3" });
    assert.equal(sim.sim.state().open, open + 1);
    const r4 = await say(client, { input: "S4", store: false, previous_response_id: kept.id }, true);
    assert.deepEqual([r4.store, r4.continuation, r4.previous], [false, "continued", kept.id]);
    await eventually(() => sim.sim.state().open === open, 5000, "the continued conversation deleted");
    await assert.rejects(
      client.responses.create({ model: "emohaa", input: "S5", previous_response_id: kept.id }),
      previousNotFound,
    );
    await assert.rejects(
      client.responses.create({ model: "emohaa", input: "S5", previous_response_id: r4.id }),
      previousNotFound,
    );
  });

  it("without previous_response_id, an input that is a kept transcript plus new messages continues it, as chat does", async () => {
    const client = sdk("live-pr-history");
    const since = sim.sim.state().created;
    const r1 = await say(client, { input: "H1" });
    const r2 = await say(client, {
      input: [
        { role: "user", content: "H1" },
        { role: "assistant", content: [{ type: "output_text", text: r1.text, annotations: [] }] } as any,
        { role: "user", content: "H2" },
      ],
    });
    assert.deepEqual([r2.continuation, r2.handle], ["continued", r1.handle]);
    assert.deepEqual(sim.sim.state().promptsOf[cidsSince(since)[0]!], ["user:H1", "user:H2"]);
    // Its id continues it too; the x-emohaa-new-conversation header starts afresh.
    assert.equal((await say(client, { input: "H3", previous_response_id: r2.id })).continuation, "continued");
    const { data: fresh, response } = await client.responses
      .create({ model: "emohaa", input: [{ role: "user", content: "H1" }] }, {
        headers: { "x-emohaa-new-conversation": "1" },
      })
      .withResponse();
    assert.equal(response.headers.get("x-emohaa-continuation"), "new");
    assert.notEqual(response.headers.get("x-emohaa-conversation"), r1.handle);
    assert.ok(fresh.id);
  });

  it("a turn cut by max_output_tokens or by the client leaving is not kept: its conversation is deleted", async () => {
    const client = sdk("live-pr-cut");
    // Conversations by their ids: other tests' may still be on their way out meanwhile.
    const deleted = (cid: string) => () => sim.sim.state().deletedIds.includes(cid);
    const since = sim.sim.state().created;
    const r1 = await say(client, { input: "C1" });
    const [first] = cidsSince(since);
    const cut = await client.responses.create({
      model: "emohaa",
      input: "C2 [[pieces:20]]",
      previous_response_id: r1.id,
      max_output_tokens: 2,
    });
    assert.equal(cut.status, "incomplete");
    await eventually(deleted(first!), 5000, "the cut conversation deleted");
    await assert.rejects(
      client.responses.create({ model: "emohaa", input: "C3", previous_response_id: cut.id }),
      previousNotFound,
    );
    await assert.rejects(
      client.responses.create({ model: "emohaa", input: "C3", previous_response_id: r1.id }),
      previousNotFound,
    );

    const since2 = sim.sim.state().created;
    const r2 = await say(client, { input: "C4" });
    const [second] = cidsSince(since2);
    const aborted = sim.sim.state().aborted;
    const stream = await client.responses.create({
      model: "emohaa",
      input: "C5 [[pieces:100]] [[delay:20]]",
      previous_response_id: r2.id,
      stream: true,
    });
    let n = 0;
    for await (const event of stream) {
      if (event.type === "response.output_text.delta" && ++n === 2) stream.controller.abort();
    }
    await eventually(() => sim.sim.state().aborted > aborted, 10_000, "upstream aborted");
    await eventually(deleted(second!), 5000, "the continued conversation deleted");
    await assert.rejects(
      client.responses.create({ model: "emohaa", input: "C6", previous_response_id: r2.id }),
      previousNotFound,
    );
  });

  it("the AI SDK continues with providerOptions.openai.previousResponseId", async () => {
    const model = createOpenAI({ baseURL: `${server.url}/v1`, apiKey: "live-pr-ai" })("emohaa");
    const since = sim.sim.state().created;
    const first = await generateText({ model, prompt: "A1 你好" });
    const second = await generateText({
      model,
      prompt: "A2 [[recall]]",
      providerOptions: { openai: { previousResponseId: first.response.id } },
    });
    const cids = cidsSince(since);
    assert.equal(cids.length, 1);
    assert.deepEqual(sim.sim.state().promptsOf[cids[0]!], ["user:A1 你好", "user:A2 [[recall]]"]);
    assert.equal(second.text, "user:A1 你好\nuser:A2 [[recall]]");
  });

  it("the AI SDK's default (store: true): item references to the latest reply continue the conversation (generateText)", async () => {
    const { model, bodies } = recording("live-ir-gen");
    const since = sim.sim.state().created;
    const messages: ModelMessage[] = [{ role: "user", content: "R1 我最近睡不好" }];
    const continuations: (string | undefined)[] = [];
    let text = "";
    for (const next of ["R2 还是很焦虑", "R3 [[recall]]", undefined]) {
      const result = await generateText({ model, system: "Be kind.", messages });
      continuations.push(result.response.headers?.["x-emohaa-continuation"]);
      text = result.text;
      if (next) messages.push(...result.response.messages, { role: "user", content: next });
    }
    assert.deepEqual(continuations, ["new", "continued", "continued"]);
    // The AI SDK sent the earlier replies as references, not as text.
    for (const body of bodies.slice(1)) {
      assert.ok(body.input.some((i: any) => i.type === "item_reference" && /^msg_/.test(i.id)), JSON.stringify(body));
      assert.ok(!body.input.some((i: any) => i.role === "assistant"), JSON.stringify(body));
    }
    const cids = cidsSince(since);
    assert.equal(cids.length, 1, "one upstream conversation");
    assert.deepEqual(sim.sim.state().promptsOf[cids[0]!], [
      "system:Be kind.\nuser:R1 我最近睡不好",
      "user:R2 还是很焦虑",
      "user:R3 [[recall]]",
    ]);
    assert.ok(text.startsWith("system:Be kind.\nuser:R1 我最近睡不好\nuser:R2"), text);
  });

  it("the AI SDK's default (store: true): item references continue the conversation (streamText)", async () => {
    const { model, bodies } = recording("live-ir-stream");
    const since = sim.sim.state().created;
    const messages: ModelMessage[] = [{ role: "user", content: "T1 考试前睡不着" }];
    const continuations: (string | undefined)[] = [];
    let text = "";
    for (const next of ["T2 心跳很快", "T3 [[recall]]", undefined]) {
      const result = streamText({ model, messages });
      text = await result.text;
      const response = await result.response;
      continuations.push(response.headers?.["x-emohaa-continuation"]);
      if (next) messages.push(...response.messages, { role: "user", content: next });
    }
    assert.deepEqual(continuations, ["new", "continued", "continued"]);
    assert.ok(bodies.slice(1).every((b) => b.input.some((i: any) => i.type === "item_reference")));
    const cids = cidsSince(since);
    assert.equal(cids.length, 1, "one upstream conversation");
    assert.deepEqual(sim.sim.state().promptsOf[cids[0]!], [
      "user:T1 考试前睡不着",
      "user:T2 心跳很快",
      "user:T3 [[recall]]",
    ]);
    assert.equal(text, "user:T1 考试前睡不着\nuser:T2 心跳很快\nuser:T3 [[recall]]");
  });

  it("a reference that is not the latest reply of the caller's kept conversation: the merged input on a fresh one", async () => {
    const client = sdk("live-ir-stale");
    const start = sim.sim.state().created;
    const r1 = await say(client, { input: "U1" });
    const msg1 = r1.messageId;
    assert.match(msg1, /^msg_/);
    const r2 = await say(client, {
      input: [{ role: "user", content: "U1" }, { type: "item_reference", id: msg1 }, { role: "user", content: "U2" }],
    });
    assert.equal(r2.continuation, "continued");
    const kept = r2.handle;
    // msg1 is older now (continuing from it would branch); an unknown id; another caller's, another end user's.
    const cases: [string, string | undefined, string][] = [
      ["live-ir-stale", undefined, msg1],
      ["live-ir-stale", undefined, "msg_unknown"],
      ["live-ir-other", undefined, msg1],
      ["live-ir-stale", "bob", msg1],
    ];
    for (const [token, user, id] of cases) {
      const since = sim.sim.state().created;
      const r = await say(sdk(token), {
        input: [{ role: "user", content: "U1" }, { type: "item_reference", id }, { role: "user", content: "U-x" }],
        user,
      });
      assert.equal(r.continuation, "new", `${token} ${user} ${id}`);
      assert.notEqual(r.handle, kept);
      const cids = cidsSince(since);
      assert.equal(cids.length, 1);
      assert.deepEqual(sim.sim.state().promptsOf[cids[0]!], ["user:U1\nuser:U-x"], "the references left out");
    }
    // The latest reply's reference still continues, with only the messages after it; previous_response_id wins
    // over a reference.
    const r3 = await say(client, {
      input: [
        { role: "user", content: "U1" },
        { type: "item_reference", id: msg1 },
        { role: "user", content: "U2" },
        { type: "item_reference", id: r2.messageId },
        { role: "developer", content: "Be brief." },
        { role: "user", content: "U3" },
      ],
    });
    assert.deepEqual([r3.continuation, r3.handle], ["continued", kept]);
    assert.deepEqual(sim.sim.state().promptsOf[cidsSince(start)[0]!], [
      "user:U1",
      "user:U2",
      "system:Be brief.\nuser:U3",
    ]);
    const raw = await fetch(`${server.url}/v1/responses`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer live-ir-stale" },
      body: JSON.stringify({
        model: "emohaa",
        previous_response_id: "resp_unknown",
        input: [{ type: "item_reference", id: msg1 }, { role: "user", content: "U4" }],
      }),
    });
    assert.equal(raw.status, 404);
    assert.equal((await raw.json()).error.param, "previous_response_id");
    // A message id is no response id: neither previous_response_id nor DELETE take it, and the talk goes on.
    await assert.rejects(
      client.responses.create({ model: "emohaa", input: "U5", previous_response_id: r3.messageId }),
      previousNotFound,
    );
    await assert.rejects(client.responses.delete(r3.messageId), OpenAI.NotFoundError);
    const r6 = await say(client, { input: "U6", previous_response_id: r3.id });
    assert.deepEqual([r6.continuation, r6.handle], ["continued", kept]);
  });

  it("the AI SDK with store: false sends earlier replies as text and keeps nothing, as before", async () => {
    const { model, bodies } = recording("live-ir-nostore");
    const since = sim.sim.state().created;
    const open = sim.sim.state().open;
    const store = { openai: { store: false } };
    const first = await generateText({ model, prompt: "N1", providerOptions: store });
    const messages: ModelMessage[] = [
      { role: "user", content: "N1" },
      ...first.response.messages,
      { role: "user", content: "N2" },
    ];
    const second = await generateText({ model, messages, providerOptions: store });
    assert.equal(second.response.headers?.["x-emohaa-continuation"], "off");
    assert.ok(!bodies[1].input.some((i: any) => i.type === "item_reference"));
    const cids = cidsSince(since);
    assert.equal(cids.length, 2);
    assert.deepEqual(sim.sim.state().promptsOf[cids[1]!], [`user:N1\nemohaa:${first.text}\nuser:N2`]);
    await eventually(() => sim.sim.state().open === open, 5000, "nothing kept");
  });

  it("logs no message, token or id that continues a conversation: response ids and handles are masked", async () => {
    const client = sdk("live-pr-log");
    const r1 = await say(client, { input: "L1" });
    const r2 = await say(client, { input: "L2", previous_response_id: r1.id });
    const auth = { authorization: "Bearer live-pr-log" };
    assert.equal((await fetch(`${server.url}/v1/responses/${r1.id}`, { headers: auth })).status, 404);
    assert.equal((await fetch(`${server.url}/v1/responses/${r2.id}`, { method: "DELETE", headers: auth })).status, 200);
    const other = await say(client, { input: "L3" });
    assert.equal(
      (await fetch(`${server.url}/v1/conversations/${other.handle}`, { method: "DELETE", headers: auth })).status,
      200,
    );
    await eventually(() => /DELETE \/v1\/conversations\//.test(server.output()), 5000, "logged");
    server.assertPrivate();
    const out = server.output();
    for (const id of [r1.id, r2.id, r1.handle!, other.id, other.handle!]) assert.ok(!out.includes(id), `${id} logged`);
    assert.match(out, /GET \/v1\/responses\/resp_…[0-9a-f]{4} 404 /);
    assert.match(out, /DELETE \/v1\/responses\/resp_…[0-9a-f]{4} 200 /);
    assert.match(out, /DELETE \/v1\/conversations\/conv-…[0-9a-f]{4} 200 /);
  });
});

describe("kept responses end", () => {
  it("after the idle time: its id then continues nothing", async () => {
    const idle = await startServer({
      EMOHAA_BASE_URL: sim.baseUrl,
      CONTINUE_CONVERSATIONS: "true",
      CONVERSATION_IDLE_MS: "1000",
    });
    try {
      const client = sdk("live-pr-idle", idle.url);
      // This conversation by its prompt: other tests' conversations may still be on their way out meanwhile.
      const input = `I1-${crypto.randomUUID().slice(0, 8)}`;
      const r1 = await say(client, { input });
      const s = sim.sim.state();
      const cid = Object.keys(s.promptOf).find((id) => s.promptOf[id]!.includes(input));
      assert.ok(cid && !s.deletedIds.includes(cid), "kept after its turn");
      await eventually(() => sim.sim.state().deletedIds.includes(cid), 5000, "deleted when idle");
      await assert.rejects(
        client.responses.create({ model: "emohaa", input: "I2", previous_response_id: r1.id }),
        previousNotFound,
      );
    } finally {
      await idle.kill();
    }
  });

  it("at graceful shutdown", { skip: !signalsApply && "no process signals where this runs" }, async () => {
    const stopping = await startServer({ EMOHAA_BASE_URL: sim.baseUrl, CONTINUE_CONVERSATIONS: "true" });
    const open = sim.sim.state().open;
    const client = sdk("live-pr-stop", stopping.url);
    const r1 = await say(client, { input: "T1" });
    await say(client, { input: "T2", previous_response_id: r1.id }, true);
    await say(client, { input: "T3" });
    assert.equal(sim.sim.state().open, open + 2);
    assert.equal(await stopping.kill("SIGTERM"), 0);
    assert.equal(sim.sim.state().open, open, "deleted before the process exited");
  });
});

const REDIS_URL = process.env.REDIS_URL;
const run = crypto.randomUUID().slice(0, 8);

describe("previous_response_id across instances (Redis)", { skip: !REDIS_URL && "REDIS_URL is not set" }, () => {
  it("a chain alternating between two instances stays on one conversation; another key cannot continue or end it", async () => {
    const env = {
      EMOHAA_BASE_URL: sim.baseUrl,
      CONTINUE_CONVERSATIONS: "true",
      STATE: REDIS_URL!,
      STATE_TIMEOUT_MS: "10000",
      EMOHAA_TOKENS: `live-prr1-${run},live-prr2-${run}`,
      API_KEYS: "key-pr-a,key-pr-b",
    };
    const servers: RunningServer[] = await Promise.all([startServer(env), startServer(env)]);
    try {
      const clients = servers.map((s) => sdk("key-pr-a", s.url));
      const since = sim.sim.state().created;
      const { open, badDeletes } = sim.sim.state();
      let previous: string | undefined;
      let handle: string | null = null;
      for (let i = 1; i <= 4; i++) {
        const r = await say(clients[i % 2]!, { input: `M${i}`, previous_response_id: previous }, i === 3);
        assert.equal(r.continuation, i === 1 ? "new" : "continued", `turn ${i}`);
        handle ??= r.handle;
        assert.equal(r.handle, handle);
        previous = r.id;
      }
      const cids = cidsSince(since);
      assert.equal(cids.length, 1);
      assert.deepEqual(sim.sim.state().promptsOf[cids[0]!], ["user:M1", "user:M2", "user:M3", "user:M4"]);
      // Same accounts, another gateway key: neither continues nor deletes it.
      const other = sdk("key-pr-b", servers[0]!.url);
      await assert.rejects(
        other.responses.create({ model: "emohaa", input: "M-x", previous_response_id: previous }),
        previousNotFound,
      );
      await assert.rejects(other.responses.delete(previous!), OpenAI.NotFoundError);
      assert.equal(sim.sim.state().open, open + 1);
      // Deleted through the instance that did not answer last.
      const del = await fetch(`${servers[1]!.url}/v1/responses/${previous}`, {
        method: "DELETE",
        headers: { authorization: "Bearer key-pr-a" },
      });
      assert.equal(del.status, 200);
      await eventually(() => sim.sim.state().open === open, 5000, "deleted");
      assert.deepEqual(await Promise.all(servers.map((s) => s.kill("SIGTERM"))), [0, 0]);
      assert.equal(sim.sim.state().open, open);
      assert.equal(sim.sim.state().badDeletes, badDeletes);
    } finally {
      await Promise.all(servers.map((s) => s.kill("SIGKILL").catch(() => null)));
    }
  });
});
