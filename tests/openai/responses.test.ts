// The Responses API's pure translation: input items to messages, a reply to a Response and to its stream events.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ApiError } from "../../lib/errors.ts";
import { buildPrompt } from "../../lib/openai/prompt.ts";
import {
  afterReference,
  eventFrame,
  inputMessages,
  ResponseEvents,
  type ResponseHead,
  responseObject,
} from "../../lib/openai/responses.ts";
import { ResponseSchema, ResponseStreamEventSchema } from "../../lib/http/responses-schemas.ts";
import { assertSpec } from "../support/openai-spec.ts";

const head: ResponseHead = {
  id: "resp_1",
  messageId: "msg_1",
  createdAt: 1710000000,
  model: "emohaa",
  instructions: "Be kind.",
  maxOutputTokens: 50,
  metadata: { k: "v" },
  previousResponseId: null,
  store: false,
};
const usage = { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 };

describe("inputMessages", () => {
  it("a string is one user message; instructions come first as a system message", () => {
    assert.deepEqual(inputMessages("你好", "Be kind."), [
      { role: "system", content: "Be kind." },
      { role: "user", content: "你好" },
    ]);
    assert.deepEqual(inputMessages("hi"), [{ role: "user", content: "hi" }]);
  });

  it("keeps message items in order, reads input_text and output_text parts, leaves other parts and items out", () => {
    const messages = inputMessages([
      { role: "developer", content: "Stay calm." },
      { type: "message", role: "user", content: [{ type: "input_text", text: "a" }, { type: "input_image" }] },
      { type: "reasoning" },
      { type: "item_reference" },
      { type: "function_call_output" },
      { type: "message", role: "assistant", content: [{ type: "output_text", text: "b" }, { type: "refusal" }] },
      { role: "user", content: [{ type: "input_text", text: "c" }, { type: "input_text", text: "d" }] },
    ]);
    assert.deepEqual(messages, [
      { role: "developer", content: "Stay calm." },
      { role: "user", content: "a" },
      { role: "assistant", content: "b" },
      { role: "user", content: "c\nd" },
    ]);
    // The prompt builder labels them as for chat completions.
    assert.equal(buildPrompt(messages, 8000).prompt, "system:Stay calm.\nuser:a\nemohaa:b\nuser:c\nd");
  });

  it("input without any text is a 400 naming input, whatever the instructions say", () => {
    const noText = (input: Parameters<typeof inputMessages>[0]) =>
      assert.throws(() => inputMessages(input, "Be kind."), (e: unknown) => {
        assert.ok(e instanceof ApiError);
        assert.equal(e.status, 400);
        assert.equal(e.param, "input");
        return true;
      });
    noText("");
    noText([]);
    noText([{ role: "user", content: "" }]);
    noText([{ role: "user", content: [{ type: "input_image" }] }]);
    noText([{ type: "function_call_output" }, { type: "item_reference" }]);
  });
});

describe("afterReference", () => {
  const ref = (id: unknown) => ({ type: "item_reference", id });

  it("the last reference's id and the messages after it, instructions first", () => {
    assert.deepEqual(
      afterReference([
        { role: "system", content: "Be kind." },
        { role: "user", content: "a" },
        ref("msg_1"),
        { role: "user", content: "b" },
        ref("msg_2"),
        { role: "developer", content: "Briefly." },
        { type: "message", role: "user", content: [{ type: "input_text", text: "c" }, { type: "input_image" }] },
      ], "Hi."),
      {
        id: "msg_2",
        messages: [
          { role: "system", content: "Hi." },
          { role: "developer", content: "Briefly." },
          { role: "user", content: "c" },
        ],
      },
    );
  });

  it("none without a reference, after a reference with nothing, or anything but a new turn after it", () => {
    const none = (input: Parameters<typeof afterReference>[0]) => assert.equal(afterReference(input, "Hi."), undefined);
    none("a");
    none([{ role: "user", content: "a" }]);
    none([{ role: "user", content: "a" }, ref("msg_1")]);
    none([ref("msg_1"), { role: "user", content: "" }]);
    none([ref("msg_1"), { role: "user", content: [{ type: "input_image" }] }]);
    none([ref("msg_1"), { role: "assistant", content: "b" }, { role: "user", content: "c" }]);
    none([ref("msg_1"), { type: "function_call_output" }, { role: "user", content: "c" }]);
    none([ref(undefined), { role: "user", content: "c" }]);
    none([ref(""), { role: "user", content: "c" }]);
    none([ref(7), { role: "user", content: "c" }]);
  });
});

describe("responseObject", () => {
  it("a completed reply: one message item with one output_text part, usage renamed, valid by OpenAI's document", () => {
    const r = responseObject(head, { status: "completed", text: "hello", usage, completedAt: 1710000002 });
    assertSpec("Response", r);
    ResponseSchema.parse(r);
    assert.equal(r.completed_at, 1710000002);
    assert.deepEqual(r.output, [{
      id: "msg_1",
      type: "message",
      status: "completed",
      role: "assistant",
      content: [{ type: "output_text", text: "hello", annotations: [], logprobs: [] }],
    }]);
    assert.deepEqual(r.usage, {
      input_tokens: 5,
      input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
      output_tokens: 7,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: 12,
    });
    assert.deepEqual([r.instructions, r.max_output_tokens, r.metadata], ["Be kind.", 50, { k: "v" }]);
  });

  it("incomplete after the cut says why; in progress has no usage and no output; failed says what failed", () => {
    const cut = responseObject(head, { status: "incomplete", text: "he", usage });
    assertSpec("Response", cut);
    assert.deepEqual(cut.incomplete_details, { reason: "max_output_tokens" });
    assert.equal(cut.output[0]!.status, "incomplete");
    assert.equal(cut.completed_at, null);

    const started = responseObject(head, { status: "in_progress" });
    assertSpec("Response", started);
    assert.deepEqual(started.output, []);
    assert.equal("usage" in started, false);

    const failed = responseObject(head, { status: "failed", error: new ApiError(502, "Emohaa ended early") });
    assertSpec("Response", failed);
    assert.deepEqual(failed.error, { code: "server_error", message: "Emohaa ended early" });
    const limited = responseObject(head, { status: "failed", error: new ApiError(429, "busy") });
    assert.equal(limited.error!.code, "rate_limit_exceeded");
  });
});

describe("ResponseEvents", () => {
  it("numbers every event from 0, and each is valid by OpenAI's document and by our schema", () => {
    const ev = new ResponseEvents(head);
    const all = [...ev.opening(), ev.delta("he"), ev.delta("llo"), ...ev.done("hello", "stop", usage, 1710000001)];
    assert.deepEqual(all.map((e) => e.type), [
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      "response.output_text.delta",
      "response.output_text.delta",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.completed",
    ]);
    all.forEach((e, i) => {
      assert.equal(e.sequence_number, i);
      assertSpec("ResponseStreamEvent", e);
      ResponseStreamEventSchema.parse(e);
    });
    const completed = all.at(-1)!.response as ReturnType<typeof responseObject>;
    assert.equal(completed.status, "completed");
    assert.equal(completed.output[0]!.content[0]!.text, "hello");
  });

  it("the cut ends with response.incomplete; a failure with an error event, then response.failed", () => {
    const cut = new ResponseEvents(head);
    cut.opening();
    const end = cut.done("he", "length", usage, 1);
    assert.equal(end.at(-1)!.type, "response.incomplete");
    assert.equal(end[2]!.item && (end[2]!.item as { status: string }).status, "incomplete");

    const failing = new ResponseEvents(head);
    failing.opening();
    failing.delta("he");
    const [error, failed] = failing.failed(new ApiError(504, "Emohaa sent nothing", { code: "upstream_timeout" }));
    assert.deepEqual(
      [error!.sequence_number, error!.type, error!.code, error!.message, error!.param],
      [5, "error", "upstream_timeout", "Emohaa sent nothing", null],
    );
    // OpenAI's error object too: the openai SDK throws a stream's `data.error`.
    assert.deepEqual(error!.error, {
      message: "Emohaa sent nothing",
      type: "timeout_error",
      param: null,
      code: "upstream_timeout",
    });
    assert.equal(failed!.sequence_number, 6);
    assert.equal((failed!.response as { status: string }).status, "failed");
    for (const e of [error!, failed!]) {
      assertSpec("ResponseStreamEvent", e);
      ResponseStreamEventSchema.parse(e);
    }
  });

  it("eventFrame names the event and carries it as one data line", () => {
    const e = new ResponseEvents(head).delta("a\nb");
    assert.equal(eventFrame(e), `event: response.output_text.delta\ndata: ${JSON.stringify(e)}\n\n`);
  });
});
