import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { buildPrompt, messageText, promptLine } from "../../lib/openai/prompt.ts";
import { ApiError } from "../../lib/errors.ts";

describe("promptLine", () => {
  it("labels each role, assistant as emohaa, developer as system", () => {
    assert.equal(promptLine({ role: "user", content: "hi" }), "user:hi");
    assert.equal(promptLine({ role: "assistant", content: "yo" }), "emohaa:yo");
    assert.equal(promptLine({ role: "system", content: "be kind" }), "system:be kind");
    assert.equal(promptLine({ role: "developer", content: "x" }), "system:x");
    assert.equal(promptLine({ role: "tool", content: "{}" }), "tool:{}");
  });
  it("never renames text inside a message", () => {
    const p = buildPrompt([
      { role: "user", content: "assistant says assistant" },
      { role: "assistant", content: "ok" },
      { role: "user", content: "assistant?" },
    ], 10_000);
    assert.equal(p.prompt, "user:assistant says assistant\nemohaa:ok\nuser:assistant?");
  });
});

describe("messageText", () => {
  it("joins text parts and leaves out images and other parts", () => {
    assert.equal(
      messageText([{ type: "text", text: "a" }, { type: "image_url" }, { type: "text", text: "b" }]),
      "a\nb",
    );
  });
  it("treats null content as empty", () => assert.equal(messageText(null), ""));
  it("keeps the role label on array content", () => {
    assert.equal(promptLine({ role: "assistant", content: [{ type: "text", text: "hey" }] }), "emohaa:hey");
  });
});

describe("buildPrompt", () => {
  // A line's size as it travels: form-encoded (URLSearchParams is the oracle), and the joining newline, %0A.
  const size = (s: string) => new URLSearchParams({ v: s }).toString().length - 2 + 3;
  it("keeps system messages and the newest turns that fit", () => {
    const msgs = [
      { role: "system", content: "S" },
      { role: "user", content: "old".repeat(50) },
      { role: "assistant", content: "mid" },
      { role: "user", content: "new" },
    ];
    const cap = size("system:S") + size("emohaa:mid") + size("user:new") + 5;
    const p = buildPrompt(msgs, cap);
    assert.equal(p.prompt, "system:S\nemohaa:mid\nuser:new");
    assert.equal(p.dropped, 1);
  });
  it("counts size URL-encoded (CJK takes 9 bytes a character)", () => {
    const msgs = [{ role: "user", content: "你".repeat(10) }];
    assert.throws(
      () => buildPrompt(msgs, 60),
      (e: unknown) =>
        e instanceof ApiError && e.status === 400 && e.code === "context_length_exceeded" && e.param === "messages",
    );
    assert.equal(buildPrompt(msgs, 200).prompt, "user:" + "你".repeat(10));
  });
  it("counts size as the prompt is sent, form-encoded: a space one byte (+), a parenthesis or ! three", () => {
    const spaces = [{ role: "user", content: " ".repeat(100) }];
    // "user:" is 7 bytes encoded (the colon is %3A), the spaces 100, the newline 3.
    assert.equal(buildPrompt(spaces, 110).prompt, "user:" + " ".repeat(100));
    const parens = [{ role: "user", content: "()!~'".repeat(20) }];
    assert.throws(() => buildPrompt(parens, 300 + 9), ApiError);
    assert.equal(buildPrompt(parens, 300 + 10).prompt, "user:" + "()!~'".repeat(20));
  });
  it("keeps the whole history when it fits", () => {
    const msgs = [{ role: "user", content: "a" }, { role: "assistant", content: "b" }, { role: "user", content: "c" }];
    assert.deepEqual(buildPrompt(msgs, 6000), { prompt: "user:a\nemohaa:b\nuser:c", dropped: 0 });
  });
  it("leaves no hole: stops at the first turn that does not fit", () => {
    const msgs = [{ role: "user", content: "a" }, { role: "assistant", content: "x".repeat(100) }, {
      role: "user",
      content: "c",
    }];
    assert.equal(buildPrompt(msgs, 30).prompt, "user:c");
  });
});

describe("buildPrompt with text that is not well-formed UTF-16", () => {
  it("measures a lone surrogate as the replacement character it becomes, instead of throwing", () => {
    const { prompt } = buildPrompt([{ role: "user", content: "hi \ud800 there" }], 6000);
    assert.equal(prompt, "user:hi \ud800 there");
    assert.throws(() => buildPrompt([{ role: "user", content: "\ud800".repeat(700) }], 6000), ApiError);
  });
});
