// openTurn: continuing a kept conversation by its handle (what a Responses API previous_response_id builds on).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { openTurn, type TurnRequest } from "../../lib/chat/turn.ts";
import { callerScope } from "../../lib/chat/threads.ts";
import { testApp } from "../support/app.ts";
import { eventually } from "../support/sim.ts";

/** Reads a turn's reply to its end, keeps it as the edge does, and closes it. */
async function finish(turn: Awaited<ReturnType<typeof openTurn>>): Promise<string> {
  let text = turn.first ?? "";
  // `first` is the first piece already read (holdMs: Infinity), or null for an empty reply.
  for (let p = turn.first === null ? null : await turn.reply.read(); p !== null;) {
    text += p;
    p = await turn.reply.read();
  }
  await turn.complete(text);
  turn.reply.close();
  return text;
}

describe("openTurn", () => {
  const request = (tokens: string[], content: string, handle?: string): TurnRequest => ({
    tokens,
    scope: callerScope(`Bearer ${tokens.join(",")}`, tokens),
    model: "emohaa",
    messages: [{ role: "user", content }],
    fresh: false,
    promptMaxBytes: 6000,
    signal: new AbortController().signal,
    holdMs: Infinity,
    handle,
  });

  it("continues a conversation by its handle with only the new input, and keeps it for the next", async () => {
    const { gateway, sim } = await testApp({ continueConversations: true });
    const tokens = ["live-turn-1"];
    const first = await openTurn(gateway.chat, gateway.threads, request(tokens, "第一句"));
    assert.equal(first.continuation, "new");
    await finish(first);
    const second = await openTurn(gateway.chat, gateway.threads, request(tokens, "第二句 [[recall]]", first.handle));
    assert.equal(second.continuation, "continued");
    assert.equal(second.handle, first.handle);
    assert.equal(await finish(second), "user:第一句\nuser:第二句 [[recall]]");
    const third = await openTurn(gateway.chat, gateway.threads, request(tokens, "第三句", first.handle));
    await finish(third);
    assert.equal(sim.state().created, 1);
    assert.equal(sim.state().open, 1);
    gateway.shutdown.abort();
    await eventually(() => sim.state().open === 0, 3000, "deleted at shutdown");
  });

  it("a kept conversation's idle time starts when the client has the reply, not while the answer is finished", async () => {
    const { gateway, sim } = await testApp({ continueConversations: true, conversationIdleMs: 200 });
    const turn = await openTurn(gateway.chat, gateway.threads, request(["live-turn-idle"], "你好"));
    await finish(turn);
    // The answer's last work (its usage counted, the tokenizer's first load) takes longer than the idle time.
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(sim.state().open, 1, "kept until the client has the reply");
    turn.delivered();
    const t0 = Date.now();
    await eventually(() => sim.state().open === 0, 3000, "deleted after the idle time from delivery");
    assert.ok(Date.now() - t0 >= 150, `deleted ${Date.now() - t0} ms after delivery`);
  });

  it("a handle that is gone or not the caller's is a 404, never a silent fresh start", async () => {
    const { gateway, sim } = await testApp({ continueConversations: true });
    const first = await openTurn(gateway.chat, gateway.threads, request(["live-turn-2"], "你好"));
    await finish(first);
    for (const [tokens, handle] of [[["live-turn-3"], first.handle], [["live-turn-2"], "conv-nothing"]] as const) {
      await assert.rejects(
        openTurn(gateway.chat, gateway.threads, request([...tokens], "还在吗", handle)),
        (e: { status: number; code: string }) => e.status === 404 && e.code === "conversation_not_found",
      );
    }
    assert.equal(sim.state().created, 1);
  });
});
