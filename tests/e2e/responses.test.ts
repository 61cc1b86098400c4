// End to end: POST /v1/responses with the clients that use it (the AI SDK's default OpenAI provider, the openai
// SDK's responses.*), every body and event checked against OpenAI's published document, over real HTTP.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, streamText } from "ai";
import { eventually } from "../support/sim.ts";
import { sdkClient } from "../support/sdk.ts";
import { DEFAULT_REPLY } from "../../sim/simulator.ts";
import { gatewayOverSim, signalsApply, startServer } from "../support/server.ts";
import { assertSpec } from "../support/openai-spec.ts";

const f = gatewayOverSim();
const REPLY = DEFAULT_REPLY;

const sdk = (token = "live-resp") => sdkClient(f.server.url, token);
const aiModel = (token = "live-ai") => createOpenAI({ baseURL: `${f.server.url}/v1`, apiKey: token })("emohaa");
const settled = f.settled;

interface Frame {
  event: string | undefined;
  data: any;
}

/** POSTs to /v1/responses with fetch and parses the SSE answer into frames. */
async function rawStream(body: unknown, token = "live-raw"): Promise<{ res: Response; frames: Frame[] }> {
  const res = await fetch(`${f.server.url}/v1/responses`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ model: "emohaa", stream: true, ...(body as object) }),
  });
  const text = await res.text();
  const frames = text.split("\n\n").filter((f) => f && !f.startsWith(":")).map((f) => {
    const event = /^event: (.*)$/m.exec(f)?.[1];
    const data = /^data: (.*)$/m.exec(f)?.[1];
    return { event, data: data === undefined ? undefined : JSON.parse(data) };
  });
  return { res, frames };
}

/** Every event valid by the published document, named by its `event:` line, numbered 0, 1, 2, ... */
function assertEvents(frames: Frame[]): void {
  frames.forEach((f, i) => {
    assertSpec("ResponseStreamEvent", f.data);
    assert.equal(f.event, f.data.type);
    assert.equal(f.data.sequence_number, i);
  });
}

const TEXT_EVENTS = [
  "response.created",
  "response.in_progress",
  "response.output_item.added",
  "response.content_part.added",
];
const END_EVENTS = [
  "response.output_text.done",
  "response.content_part.done",
  "response.output_item.done",
];

describe("POST /v1/responses", () => {
  it("AI SDK default provider: generateText gets the reply, the stop reason and usage", async () => {
    const result = await generateText({ model: aiModel(), prompt: "你好", system: "Answer kindly." });
    assert.equal(result.text, REPLY);
    assert.equal(result.finishReason, "stop");
    assert.ok((result.usage.inputTokens ?? 0) > 0 && (result.usage.outputTokens ?? 0) > 0);
    const prompt = f.sim.sim.state().prompts.at(-1)!;
    assert.equal(prompt, "system:Answer kindly.\nuser:你好");
    await settled();
  });

  it("AI SDK default provider: streamText streams the reply; maxOutputTokens ends with finishReason length", async () => {
    const result = streamText({ model: aiModel(), prompt: "[[pieces:5]] hello" });
    let text = "";
    for await (const t of result.textStream) text += t;
    assert.equal(text, await result.text);
    assert.equal(text, "片0片1片2片3片4");
    assert.equal(await result.finishReason, "stop");
    assert.ok(((await result.usage).outputTokens ?? 0) > 0);

    const cut = streamText({ model: aiModel(), prompt: "[[pieces:40]] hello", maxOutputTokens: 4 });
    let cutText = "";
    for await (const t of cut.textStream) cutText += t;
    assert.equal(await cut.finishReason, "length");
    assert.ok(cutText.length > 0 && cutText.length < "片0".repeat(40).length, cutText);
    assert.equal((await cut.usage).outputTokens, 4);
    await settled();
  });

  it("AI SDK multi-turn: earlier turns travel as text with store: false; item references are left out", async () => {
    const first = await generateText({ model: aiModel(), prompt: "你好" });
    const messages = [...first.response.messages, { role: "user" as const, content: "还在吗" }];
    await generateText({ model: aiModel(), messages: [{ role: "user", content: "你好" }, ...messages] });
    assert.equal(f.sim.sim.state().prompts.at(-1), "user:你好\nuser:还在吗");
    await generateText({
      model: aiModel(),
      messages: [{ role: "user", content: "你好" }, ...messages],
      providerOptions: { openai: { store: false } },
    });
    assert.equal(f.sim.sim.state().prompts.at(-1), `user:你好\nemohaa:${REPLY}\nuser:还在吗`);
    await settled();
  });

  it("AI SDK: a dead token is an APICallError with status 401; an upstream cut mid-stream is an error part", async () => {
    await assert.rejects(
      generateText({ model: aiModel("expired-ai"), prompt: "hi", maxRetries: 0 }),
      (e: any) => e.statusCode === 401 && /rejected the token/.test(e.message),
    );
    const errors: unknown[] = [];
    const result = streamText({
      model: aiModel("cut-ai"),
      prompt: "[[pieces:10]]",
      maxRetries: 0,
      onError: ({ error }) => void errors.push(error),
    });
    const types: string[] = [];
    for await (const part of result.fullStream) types.push(part.type);
    assert.ok(types.includes("text-delta"), types.join());
    assert.ok(types.includes("error"), types.join());
    assert.equal(errors.length, 1);
    await settled();
  });

  it("openai SDK responses.create: a typed Response conforming to the document, output_text, usage", async () => {
    const res = await sdk().responses.create({
      model: "gpt-4o-mini",
      instructions: "Be brief.",
      input: [
        { role: "user", content: "我睡不着" },
        { role: "assistant", content: [{ type: "output_text", text: "怎么了？", annotations: [] }] as any },
        { role: "developer", content: [{ type: "input_text", text: "Stay calm." }] },
        {
          role: "user",
          content: [{ type: "input_text", text: "考试" }, { type: "input_image", image_url: "x" } as any],
        },
      ],
      metadata: { topic: "sleep" },
      tools: [{ type: "function", name: "f", parameters: {}, strict: false }],
      tool_choice: "auto",
      parallel_tool_calls: true,
      temperature: 0.2,
      truncation: "auto",
      include: ["message.output_text.logprobs"],
      reasoning: { effort: "low" },
      text: { format: { type: "json_object" } },
      store: true,
      user: "u-1",
    });
    assertSpec("Response", res);
    assert.match(res.id, /^resp_/);
    assert.equal(res.object, "response");
    assert.equal(res.status, "completed");
    assert.equal(res.output_text, REPLY);
    assert.equal(res.output.length, 1);
    assert.deepEqual(res.metadata, { topic: "sleep" });
    assert.equal(res.instructions, "Be brief.");
    assert.ok(res.usage!.input_tokens > 0 && res.usage!.output_tokens > 0);
    assert.equal(res.usage!.total_tokens, res.usage!.input_tokens + res.usage!.output_tokens);
    assert.equal(
      f.sim.sim.state().prompts.at(-1),
      "system:Be brief.\nuser:我睡不着\nemohaa:怎么了？\nsystem:Stay calm.\nuser:考试",
    );
    await settled();
  });

  it("max_output_tokens: status incomplete with reason max_output_tokens, whole and streamed", async () => {
    const res = await sdk().responses.create({ model: "x", input: "[[pieces:40]]", max_output_tokens: 3 });
    assertSpec("Response", res);
    assert.equal(res.status, "incomplete");
    assert.deepEqual(res.incomplete_details, { reason: "max_output_tokens" });
    assert.equal(res.usage!.output_tokens, 3);
    assert.equal(res.output[0]!.type === "message" && res.output[0]!.status, "incomplete");

    const { frames } = await rawStream({ input: "[[pieces:40]]", max_output_tokens: 3 });
    assertEvents(frames);
    const last = frames.at(-1)!.data;
    assert.equal(last.type, "response.incomplete");
    assert.equal(last.response.status, "incomplete");
    assert.deepEqual(last.response.incomplete_details, { reason: "max_output_tokens" });
    assert.ok(!frames.some((f) => f.event === "response.completed"));
    await settled();
  });

  it("stream: the event sequence of a text reply, each event valid and numbered, deltas adding up to the text", async () => {
    const { res, frames } = await rawStream({ input: "[[pieces:4]] [[flush]]" });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, /^text\/event-stream/);
    assert.equal(res.headers.get("x-accel-buffering"), "no");
    assertEvents(frames);
    const types = frames.map((f) => f.event!);
    assert.deepEqual(types.slice(0, 4), TEXT_EVENTS);
    assert.deepEqual(types.slice(-4), [...END_EVENTS, "response.completed"]);
    const deltas = frames.filter((f) => f.event === "response.output_text.delta");
    assert.equal(types.length, 8 + deltas.length);
    const text = deltas.map((f) => f.data.delta).join("");
    assert.equal(text, "片0片1片2片3");
    assert.equal(frames.find((f) => f.event === "response.output_text.done")!.data.text, text);
    const done = frames.at(-1)!.data.response;
    assert.equal(done.status, "completed");
    assert.equal(done.output[0].content[0].text, text);
    assert.ok(done.usage.output_tokens > 0);
    // One response id and one item id throughout.
    assert.equal(new Set(frames.filter((f) => f.data.response).map((f) => f.data.response.id)).size, 1);
    assert.equal(new Set(frames.filter((f) => f.data.item_id).map((f) => f.data.item_id)).size, 1);
    await settled();
  });

  it("openai SDK: responses.create with stream: true and responses.stream(...).finalResponse()", async () => {
    const stream = await sdk().responses.create({ model: "x", input: "hi", stream: true });
    let text = "";
    const types: string[] = [];
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === "response.output_text.delta") text += event.delta;
    }
    assert.equal(text, REPLY);
    assert.equal(types.at(-1), "response.completed");

    const runner = sdk().responses.stream({ model: "x", input: [{ role: "user", content: "hi" }] });
    let deltas = "";
    runner.on("response.output_text.delta", (e) => (deltas += e.delta));
    const final = await runner.finalResponse();
    assertSpec("Response", final);
    assert.equal(final.output_text, REPLY);
    assert.equal(deltas, REPLY);
    assert.equal(final.status, "completed");
    await settled();
  });

  it("openai SDK typed errors: dead token, no text, unknown previous_response_id, GET and DELETE of an id", async () => {
    await assert.rejects(sdk("expired-resp").responses.create({ model: "x", input: "hi" }), OpenAI.AuthenticationError);
    await assert.rejects(
      sdk("expired-resp").responses.create({ model: "x", input: "hi", stream: true }),
      OpenAI.AuthenticationError,
    );
    await assert.rejects(
      sdk().responses.create({ model: "x", input: [{ type: "input_image", image_url: "x" } as any] }),
      (e: any) => e instanceof OpenAI.BadRequestError && e.param === "input",
    );
    await assert.rejects(
      sdk().responses.create({ model: "x", input: [{ role: "user", content: "" }] }),
      (e: any) => e instanceof OpenAI.BadRequestError && e.param === "input",
    );
    await assert.rejects(
      sdk().responses.create({ model: "x", input: "more", previous_response_id: "resp_unknown" }),
      (e: any) =>
        e instanceof OpenAI.NotFoundError && e.param === "previous_response_id" && e.type === "invalid_request_error",
    );
    await assert.rejects(
      sdk().responses.retrieve("resp_abc"),
      (e: any) => e instanceof OpenAI.NotFoundError && /stores no responses/.test(e.message),
    );
    await assert.rejects(sdk().responses.delete("resp_abc"), OpenAI.NotFoundError);
    const res = await fetch(`${f.server.url}/v1/responses`, { method: "POST", body: "{}" });
    assert.equal(res.status, 401);
    assertSpec("ErrorResponse", await res.json());
    // Nothing reached the upstream for the unknown id: no conversation was opened for it.
    assert.ok(!f.sim.sim.state().prompts.includes("user:more"));
    await settled();
  });

  it("an upstream cut after the first events ends with error and response.failed, never a completed response", async () => {
    const { res, frames } = await rawStream({ input: "[[pieces:10]]" }, "cut-raw");
    assert.equal(res.status, 200);
    assertEvents(frames);
    assert.ok(frames.some((f) => f.event === "response.output_text.delta"));
    const [error, failed] = frames.slice(-2).map((f) => f.data);
    assert.equal(error.type, "error");
    assert.match(error.message, /ended before the answer was complete/);
    assert.equal(error.error.message, error.message);
    assert.equal(failed.type, "response.failed");
    assert.equal(failed.response.status, "failed");
    assert.equal(failed.response.error.code, "server_error");
    assert.equal(failed.response.error.message, error.message);
    assert.ok(!frames.some((f) => /completed|incomplete|done/.test(f.event!)));

    // The openai SDK throws, whether iterating or waiting for the final response.
    const isCut = (e: unknown) =>
      e instanceof OpenAI.APIError && /ended before the answer was complete/.test(e.message);
    await assert.rejects(
      sdk("cut-resp").responses.stream({ model: "x", input: "[[pieces:10]]" }).finalResponse(),
      isCut,
    );
    const stream = await sdk("cut-resp").responses.create({ model: "x", input: "[[pieces:10]]", stream: true });
    const seen: string[] = [];
    await assert.rejects(async () => {
      for await (const event of stream) seen.push(event.type);
    }, isCut);
    assert.ok(seen.includes("response.output_text.delta"));
    // Whole: a failure part-way is an error, never a partial response.
    await assert.rejects(
      sdk("cut-resp").responses.create({ model: "x", input: "[[pieces:10]]" }),
      OpenAI.APIError,
    );
    await settled();
  });

  it("a client that aborts mid-stream stops the upstream and the conversation is deleted", async () => {
    const before = f.sim.sim.state().aborted;
    const stream = await sdk("slow-resp").responses.create({ model: "x", input: "[[pieces:100]]", stream: true });
    let n = 0;
    for await (const event of stream) {
      if (event.type === "response.output_text.delta" && ++n === 2) stream.controller.abort();
    }
    await eventually(() => f.sim.sim.state().aborted > before, 10_000, "upstream aborted");
    await settled();
  });

  it("fails over from a dead token to a live one, and logs no token, instructions or message", async () => {
    const res = await sdk("expired-fo,live-fo").responses.create({
      model: "x",
      instructions: "secret instructions",
      input: "private-feelings secret",
    });
    assert.equal(res.output_text, REPLY);
    const stream = await sdk("live-fo2").responses.create({
      model: "x",
      stream: true,
      input: [{ role: "user", content: [{ type: "input_text", text: "private-feelings" }] }],
    });
    for await (const _ of stream) {
      // consume
    }
    await eventually(() => /POST \/v1\/responses 200 .*attempts=2/.test(f.server.output()), 5000, "the access line");
    f.server.assertPrivate();
    await settled();
  });

  it(
    "SIGTERM ends a long stream with error and response.failed (server_shutting_down), and deletes its conversation",
    { skip: !signalsApply && "no signals where this runs" },
    async () => {
      const own = await startServer({ EMOHAA_BASE_URL: f.sim.baseUrl, SHUTDOWN_GRACE_MS: "300" });
      const chatsBefore = f.sim.sim.state().chats;
      let answer: Promise<{ res: Response; frames: Frame[] }>;
      try {
        const res = await fetch(`${own.url}/v1/responses`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: "Bearer live-shutdown" },
          body: JSON.stringify({ stream: true, input: "[[pieces:200]] [[delay:50]]" }),
        });
        // The head came: the stream started (the upstream's first piece is in), so the stop ends a stream.
        assert.equal(res.headers.get("content-type")?.split(";")[0], "text/event-stream");
        assert.ok(f.sim.sim.state().chats > chatsBefore);
        answer = res.text().then((text) => ({
          res,
          frames: text.split("\n\n").filter((f) => f && !f.startsWith(":")).map((f) => ({
            event: /^event: (.*)$/m.exec(f)?.[1],
            data: JSON.parse(/^data: (.*)$/m.exec(f)![1]!),
          })),
        }));
      } catch (err) {
        await own.kill("SIGKILL");
        throw err;
      }
      assert.equal(await own.kill("SIGTERM"), 0);
      const { frames } = await answer;
      assertEvents(frames);
      const [error, failed] = frames.slice(-2).map((f) => f.data);
      assert.equal(error.code, "server_shutting_down");
      assert.equal(failed.type, "response.failed");
      await settled();
    },
  );
});
