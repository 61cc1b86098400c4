import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Tokenizer } from "../../lib/openai/translate.ts";
import { loadTokenizer } from "../../lib/openai/tokenizer.ts";
import { testApp } from "../support/app.ts";
import { eventually } from "../support/sim.ts";

/** A tokenizer loader the test finishes by hand, counting how often it was asked. */
function heldTokenizer() {
  let finish!: (tk: Promise<Tokenizer>) => void;
  const loading = new Promise<Tokenizer>((resolve) => (finish = resolve));
  const held = { calls: 0, load: () => (held.calls++, loading), finish };
  return held;
}

describe("completionsHandler and the tokenizer", () => {
  for (
    const [what, extra] of [["a non-stream request", {}], ["max_tokens", { max_tokens: 5 }], ["include_usage", {
      stream: true,
      stream_options: { include_usage: true },
    }]] as const
  ) {
    it(`${what}: the upstream is asked while the tokenizer still loads`, async () => {
      const tk = heldTokenizer();
      const t = await testApp({ tokenizer: tk.load });
      const pending = t.chat({ messages: [{ role: "user", content: "hi" }], ...extra });
      await eventually(() => t.sim.state().chats === 1, 3000, "the upstream chat while the tokenizer loads");
      assert.equal(tk.calls, 1);
      tk.finish(loadTokenizer());
      const res = await pending;
      assert.equal(res.status, 200);
      const text = await res.text();
      const usage = "stream" in extra ? JSON.parse(text.split("\n\n").at(-3)!.slice(6)).usage : JSON.parse(text).usage;
      assert.ok(usage.completion_tokens > 0 && usage.prompt_tokens > 0, text);
      await eventually(() => t.sim.state().open === 0, 3000, "conversation deleted");
    });
  }

  it("a stream without usage or max_tokens never loads the tokenizer", async () => {
    const tk = heldTokenizer();
    const t = await testApp({ tokenizer: tk.load });
    const res = await t.chat({ messages: [{ role: "user", content: "hi" }], stream: true });
    assert.ok((await res.text()).endsWith("data: [DONE]\n\n"));
    assert.equal(tk.calls, 0);
  });

  it("a tokenizer that fails to load is a 500, and the conversation opened meanwhile is deleted", async () => {
    const t = await testApp({ tokenizer: () => Promise.reject(new Error("Cannot load the tokenizer")) });
    const res = await t.chat({ messages: [{ role: "user", content: "hi" }], max_tokens: 5 });
    assert.equal(res.status, 500);
    assert.equal(t.sim.state().created, 1);
    await eventually(() => t.sim.state().open === 0 && t.sim.state().openStreams === 0, 3000, "conversation deleted");
  });
});
