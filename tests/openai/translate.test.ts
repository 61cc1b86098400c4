import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { completion, Cutter, deltaChunk, usageChunk, usageOf } from "../../lib/openai/translate.ts";
import { loadTokenizer } from "../../lib/openai/tokenizer.ts";

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
    assert.deepEqual(feed(new Cutter({ stop: [], maxTokens: 100, tokenizer: tk }), ["你好", "啊"]), {
      out: "你好啊",
      finish: "stop",
    });
  });
  it("max_tokens 0 gives an empty reply", async () => {
    const tk = await loadTokenizer();
    assert.deepEqual(feed(new Cutter({ stop: [], maxTokens: 0, tokenizer: tk }), ["x"]), { out: "", finish: "length" });
  });
  it("cuts a long unbroken run at max_tokens, in big pieces or small", async () => {
    const tk = await loadTokenizer();
    const run = "b".repeat(150_000);
    for (const maxTokens of [1, 7, 100, 5000, 30_000]) {
      for (const pieces of [[run], chunks(run, 50_000), chunks(run.slice(0, 40_000), 3).concat(run.slice(40_000))]) {
        const r = feed(new Cutter({ stop: [], maxTokens, tokenizer: tk }), pieces);
        assert.equal(r.finish, "length");
        assert.equal(tk.count(r.out), maxTokens, `max_tokens ${maxTokens}, ${pieces.length} pieces`);
        assert.ok(run.startsWith(r.out));
      }
    }
    // Under the limit, nothing is cut.
    assert.deepEqual(feed(new Cutter({ stop: [], maxTokens: 100_000, tokenizer: tk }), chunks(run, 50_000)), {
      out: run,
      finish: "stop",
    });
  });
  it("cuts at exactly max_tokens however the text is split into pieces", async () => {
    const tk = await loadTokenizer();
    const texts = [
      "你好啊！我是Emohaa，想和我聊点什么吗？😊 今天心情如何？\n".repeat(200),
      `Well, isn't it ${"x".repeat(700)} then\n\n${"情".repeat(600)} and /path/to ${" ".repeat(400)}end`,
      "x\n x\n".repeat(400),
    ];
    for (const text of texts) {
      for (const maxTokens of [3, 150, 700]) {
        // Pieces never split a surrogate pair (the upstream's text is whole characters). A cut can differ with
        // the pieces only inside a word (the stream cannot wait for a word's end): the count cannot.
        for (const size of [1, 2, 5, 64, 1000, text.length]) {
          const r = feed(new Cutter({ stop: [], maxTokens, tokenizer: tk }), chunks(text, size));
          assert.equal(r.finish, "length");
          assert.ok(text.startsWith(r.out));
          assert.equal(tk.count(r.out), maxTokens, `max_tokens ${maxTokens}, pieces of ${size}`);
        }
      }
    }
  });
  it("encodes only what was sent since the last boundary: linear work however long the reply", async () => {
    const real = await loadTokenizer();
    let work = 0;
    // The real tokenizer, with the characters it is given to count or encode added up.
    const tk = {
      ...real,
      count: (t: string) => ((work += t.length), real.count(t)),
      encode: (t: string) => ((work += t.length), real.encode(t)),
    };
    for (const text of ["b".repeat(60_000), "情绪 ".repeat(20_000)]) {
      work = 0;
      const r = feed(new Cutter({ stop: [], maxTokens: 1_000_000, tokenizer: tk }), chunks(text, 3));
      assert.equal(r.out, text);
      assert.ok(work <= 2 * text.length, `${work} characters counted for ${text.length}`);
      work = 0;
      const cut = feed(new Cutter({ stop: [], maxTokens: 9000, tokenizer: tk }), chunks(text, 3));
      assert.equal(cut.finish, "length");
      assert.ok(work <= 4 * text.length, `${work} characters counted for ${text.length}`);
    }
  });
});

/** `text` in pieces of `size` characters, never splitting a surrogate pair. */
function chunks(text: string, size: number): string[] {
  const out: string[] = [];
  for (let at = 0; at < text.length;) {
    let end = Math.min(text.length, at + size);
    if ((text.charCodeAt(end) & 0xfc00) === 0xdc00) end++;
    out.push(text.slice(at, end));
    at = end;
  }
  return out;
}

describe("chunks", () => {
  const head = { id: "chatcmpl-1", created: 1, model: "emohaa" };
  it("deltaChunk has the OpenAI shape", () => {
    assert.deepEqual(deltaChunk(head, { content: "x" }), {
      id: "chatcmpl-1",
      object: "chat.completion.chunk",
      created: 1,
      model: "emohaa",
      choices: [{ index: 0, delta: { content: "x" }, logprobs: null, finish_reason: null }],
    });
  });
  it("usageChunk has empty choices", () => {
    assert.deepEqual(usageChunk(head, usageOf(2, 3)).choices, []);
    assert.deepEqual(usageChunk(head, usageOf(2, 3)).usage, {
      prompt_tokens: 2,
      completion_tokens: 3,
      total_tokens: 5,
    });
  });
  it("completion has message, finish_reason and usage", () => {
    const c = completion(head, "hi", "length", usageOf(1, 1));
    assert.equal(c.object, "chat.completion");
    assert.equal(c.choices[0]!.message.content, "hi");
    assert.equal(c.choices[0]!.finish_reason, "length");
  });
});
