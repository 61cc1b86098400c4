// Conformance: the official `openai` npm SDK as the client, against the real server process.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { eventually } from "../support/sim.ts";
import { sdkClient } from "../support/sdk.ts";
import { DEFAULT_REPLY } from "../../sim/simulator.ts";
import { gatewayOverSim } from "../support/server.ts";

const f = gatewayOverSim();
const REPLY = DEFAULT_REPLY;

const sdk = (token = "live-sdk") => sdkClient(f.server.url, token);
const settled = f.settled;

describe("openai SDK", () => {
  it("non-stream create returns a typed completion with usage and _request_id", async () => {
    const res = await sdk().chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "你好" }],
    });
    assert.equal(res.object, "chat.completion");
    assert.equal(res.choices[0]!.message.content, REPLY);
    assert.ok(res.usage!.total_tokens > 0);
    assert.match((res as any)._request_id, /^req_/);
    await settled();
  });

  it("stream with include_usage: text, one finish_reason, then a usage chunk", async () => {
    const stream = await sdk().chat.completions.create({
      model: "emohaa",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "hi" }],
    });
    let text = "";
    let finishes = 0;
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      if (chunk.choices[0]?.finish_reason) finishes++;
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, REPLY);
    assert.equal(finishes, 1);
    assert.ok(usage && usage.completion_tokens > 0);
    await settled();
  });

  it("finalChatCompletion() of a stream helper", async () => {
    const runner = sdk().chat.completions.stream({ model: "emohaa", messages: [{ role: "user", content: "hi" }] });
    const final = await runner.finalChatCompletion();
    assert.equal(final.choices[0]!.message.content, REPLY);
    assert.equal(final.choices[0]!.finish_reason, "stop");
    await settled();
  });

  it("typed errors: AuthenticationError, RateLimitError, BadRequestError; mid-stream error throws APIError", async () => {
    await assert.rejects(
      sdk("expired-sdk").chat.completions.create({ model: "x", messages: [{ role: "user", content: "x" }] }),
      OpenAI.AuthenticationError,
    );
    await assert.rejects(
      sdk("ratelimit-sdk").chat.completions.create({ model: "x", messages: [{ role: "user", content: "x" }] }),
      OpenAI.RateLimitError,
    );
    await assert.rejects(sdk().chat.completions.create({ model: "x", messages: [] }), OpenAI.BadRequestError);
    const stream = await sdk("cut-sdk").chat.completions.create({
      model: "x",
      stream: true,
      messages: [{ role: "user", content: "[[pieces:10]]" }],
    });
    await assert.rejects(
      (async () => {
        for await (const _ of stream) {
          // consume
        }
      })(),
      (e: unknown) => e instanceof OpenAI.APIError && /ended before the answer was complete/.test((e as Error).message),
    );
    await settled();
  });

  it("controller.abort() stops the upstream", async () => {
    const before = f.sim.sim.state().aborted;
    const stream = await sdk().chat.completions.create({
      model: "x",
      stream: true,
      messages: [{ role: "user", content: "[[pieces:100]] [[delay:50]]" }],
    });
    let n = 0;
    for await (const _ of stream) {
      if (++n === 3) stream.controller.abort();
    }
    await eventually(() => f.sim.sim.state().aborted > before, 10_000, "upstream aborted");
    await settled();
  });

  it("models.list() lists emohaa", async () => {
    const page = await sdk().models.list();
    assert.deepEqual(page.data.map((m) => m.id), ["emohaa"]);
  });

  it("models.retrieve() answers emohaa and throws NotFoundError for another model", async () => {
    const model = await sdk().models.retrieve("emohaa");
    assert.equal(model.id, "emohaa");
    assert.equal(model.object, "model");
    await assert.rejects(
      sdk().models.retrieve("gpt-4o"),
      (e: unknown) => e instanceof OpenAI.NotFoundError && (e as any).code === "model_not_found",
    );
  });
});
