import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { completion, Cutter, deltaChunk, usageChunk, usageOf } from "../lib/translate.ts";
import { loadTokenizer } from "../lib/usage.ts";

const feed = (c: Cutter, pieces: string[]) => {
  let out = "";
  let finish: string | undefined;
  for (const p of pieces) {
    const r = c.push(p);
    out += r.emit;
    if (r.finish) {
      finish = r.finish;
      break;
    }
  }
  if (!finish) {
    const r = c.flush();
    out += r.emit;
    finish = r.finish ?? "stop";
  }
  return { out, finish };
};

describe("Cutter", () => {
  it("passes text through with no stop and no max_tokens", () => {
    const c = new Cutter({ stop: [] });
    assert.equal(c.passThrough, true);
    assert.deepEqual(feed(c, ["a", "b"]), { out: "ab", finish: "stop" });
  });
  it("cuts at a stop sequence inside one piece", () => {
    assert.deepEqual(feed(new Cutter({ stop: ["END"] }), ["hello END world"]), { out: "hello ", finish: "stop" });
  });
  it("cuts at a stop sequence split across pieces", () => {
    assert.deepEqual(feed(new Cutter({ stop: ["心情"] }), ["今天心", "情如何"]), { out: "今天", finish: "stop" });
    assert.deepEqual(feed(new Cutter({ stop: ["abc"] }), ["xa", "b", "cy"]), { out: "x", finish: "stop" });
  });
  it("releases held text when the prefix does not continue", () => {
    assert.deepEqual(feed(new Cutter({ stop: ["abc"] }), ["xa", "bz"]), { out: "xabz", finish: "stop" });
    assert.deepEqual(feed(new Cutter({ stop: ["abc"] }), ["xab"]), { out: "xab", finish: "stop" });
  });
  it("picks the earliest of several stop sequences", () => {
    assert.deepEqual(feed(new Cutter({ stop: ["zz", "b"] }), ["abzz"]), { out: "a", finish: "stop" });
  });
  it("cuts at max_tokens with finish_reason length", async () => {
    const tk = await loadTokenizer();
    const text = "The quick brown fox jumps over the lazy dog again and again.";
    const r = feed(new Cutter({ stop: [], maxTokens: 5, tokenizer: tk }), text.match(/.{1,4}/g)!);
    assert.equal(r.finish, "length");
    assert.equal(tk.count(r.out), 5);
    assert.ok(text.startsWith(r.out));
  });
  it("does not cut a reply shorter than max_tokens", async () => {
    const tk = await loadTokenizer();
    assert.deepEqual(feed(new Cutter({ stop: [], maxTokens: 100, tokenizer: tk }), ["你好", "啊"]), { out: "你好啊", finish: "stop" });
  });
  it("max_tokens 0 gives an empty reply", async () => {
    const tk = await loadTokenizer();
    assert.deepEqual(feed(new Cutter({ stop: [], maxTokens: 0, tokenizer: tk }), ["x"]), { out: "", finish: "length" });
  });
});

describe("chunks", () => {
  const head = { id: "chatcmpl-1", created: 1, model: "emohaa" };
  it("deltaChunk has the OpenAI shape", () => {
    assert.deepEqual(deltaChunk(head, { content: "x" }), {
      id: "chatcmpl-1", object: "chat.completion.chunk", created: 1, model: "emohaa",
      choices: [{ index: 0, delta: { content: "x" }, logprobs: null, finish_reason: null }],
    });
  });
  it("usageChunk has empty choices", () => {
    assert.deepEqual(usageChunk(head, usageOf(2, 3)).choices, []);
    assert.deepEqual(usageChunk(head, usageOf(2, 3)).usage, { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 });
  });
  it("completion has message, finish_reason and usage", () => {
    const c = completion(head, "hi", "length", usageOf(1, 1));
    assert.equal(c.object, "chat.completion");
    assert.equal(c.choices[0]!.message.content, "hi");
    assert.equal(c.choices[0]!.finish_reason, "length");
  });
});
