import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { loopGaps } from "../support/loop.ts";
import type { Reply } from "../../lib/chat/reply.ts";
import { collectCompletion, keepAliveRunning, type ReplyContext, streamCompletion } from "../../lib/chat/respond.ts";
import { Cutter } from "../../lib/openai/translate.ts";
import { loadTokenizer } from "../../lib/openai/tokenizer.ts";
import { eventually } from "../support/sim.ts";

/** A reply whose pieces have all arrived already: `readNow` hands them over without a turn of the event loop. */
function arrived(pieces: string[]): Reply & { closed: boolean } {
  let i = 0;
  const next = () => (i < pieces.length ? pieces[i++]! : null);
  return {
    closed: false,
    read: async () => next(),
    readNow: () => next(),
    close() {
      this.closed = true;
    },
    finishedOn: () => undefined,
    keep() {},
  };
}

/** Random lowercase letters: one unbroken word the tokenizer's merge cache cannot shortcut. */
function randomWord(seed: number, length: number): string {
  let s = seed;
  let out = "";
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out += String.fromCharCode(97 + ((s >>> 16) % 26));
  }
  return out;
}

const head = { id: "chatcmpl-1", created: 1, model: "emohaa" };
const context = (
  pieces: string[],
  maxTokens?: number,
  prompt = "hi",
): Promise<ReplyContext & { reply: ReturnType<typeof arrived> }> =>
  loadTokenizer().then((tk) => ({
    head,
    reply: arrived(pieces),
    first: undefined,
    cutter: new Cutter({ stop: [], maxTokens, tokenizer: tk }),
    prompt,
    tokenizer: Promise.resolve(tk),
  }));

/** The data payloads of an event stream, read to its end. */
async function frames(body: ReadableStream<Uint8Array>): Promise<{ writes: number; data: string[] }> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let writes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    writes++;
    text += decoder.decode(value, { stream: true });
  }
  return { writes, data: text.split("\n\n").filter((f) => f.startsWith("data: ")).map((f) => f.slice(6)) };
}

describe("collectCompletion", () => {
  it("counts a reply of 3 x 50,000 letters with turns of the event loop between slices", async () => {
    const word = randomWord(1, 150_000);
    const ctx = await context([word.slice(0, 50_000), word.slice(50_000, 100_000), word.slice(100_000)]);
    const { result, longest, ticks } = await loopGaps(() => collectCompletion(ctx));
    assert.equal(result.choices[0]!.message.content, word);
    assert.ok(result.usage.completion_tokens > 150_000 / 10, `plausible: ${result.usage.completion_tokens}`);
    assert.equal(result.usage.completion_tokens, (await loadTokenizer()).count(word));
    assert.ok(ticks > 10, `the loop had turns: ${ticks}`);
    assert.ok(longest < 200, `the loop was held ${longest.toFixed(0)} ms of CPU at a time`);
    assert.equal(ctx.reply.closed, true);
  });

  it("cuts at max_tokens inside huge pieces with turns between slices", async () => {
    const word = randomWord(2, 150_000);
    for (const maxTokens of [10, 20_000]) {
      const ctx = await context([word.slice(0, 50_000), word.slice(50_000, 100_000), word.slice(100_000)], maxTokens);
      const { result, longest } = await loopGaps(() => collectCompletion(ctx));
      assert.equal(result.choices[0]!.finish_reason, "length");
      assert.ok(word.startsWith(result.choices[0]!.message.content));
      assert.equal(result.usage.completion_tokens, maxTokens);
      assert.ok(longest < 200, `the loop was held ${longest.toFixed(0)} ms of CPU at a time`);
    }
  });

  it("gives the loop turns through 50,000 tiny pieces that arrived at once, when max_tokens counts them", async () => {
    const word = randomWord(3, 150_000);
    const ctx = await context(word.match(/.{1,3}/g)!, 1_000_000);
    const { result, longest, ticks } = await loopGaps(() => collectCompletion(ctx));
    assert.equal(result.choices[0]!.finish_reason, "stop");
    assert.equal(result.choices[0]!.message.content, word);
    assert.ok(ticks > 10, `the loop had turns: ${ticks}`);
    assert.ok(longest < 200, `the loop was held ${longest.toFixed(0)} ms of CPU at a time`);
  });
});

describe("streamCompletion", () => {
  it("counts a huge reply's usage with turns of the event loop between slices", async () => {
    const word = randomWord(4, 150_000);
    const ctx = await context(
      [word.slice(0, 50_000), word.slice(50_000, 100_000), word.slice(100_000)],
      undefined,
      randomWord(5, 20_000),
    );
    const { result, longest, ticks } = await loopGaps(() =>
      frames(streamCompletion(ctx, { includeUsage: true, keepAliveMs: 15_000 }))
    );
    const usage = JSON.parse(result.data.at(-2)!).usage;
    const tk = await loadTokenizer();
    assert.deepEqual(usage, {
      prompt_tokens: tk.count(ctx.prompt),
      completion_tokens: tk.count(word),
      total_tokens: tk.count(ctx.prompt) + tk.count(word),
    });
    assert.equal(result.data.at(-1), "[DONE]");
    assert.ok(ticks > 10, `the loop had turns: ${ticks}`);
    assert.ok(longest < 200, `the loop was held ${longest.toFixed(0)} ms of CPU at a time`);
  });

  it("sends a short reply that arrived whole in one write, usage included", async () => {
    const ctx = await context(["你好啊！", "我是Emohaa。"]);
    ctx.first = ctx.reply.readNow();
    const { writes, data } = await frames(streamCompletion(ctx, { includeUsage: true, keepAliveMs: 15_000 }));
    assert.equal(writes, 1);
    assert.ok(JSON.parse(data.at(-2)!).usage.completion_tokens > 0);
    assert.equal(data.at(-1), "[DONE]");
  });
});

describe("keep-alives", () => {
  /** A reply that stays silent until the test ends it. */
  const silent = () => {
    let end!: (v: null) => void;
    const done = new Promise<null>((r) => (end = r));
    const reply: Reply = {
      read: () => done,
      readNow: () => undefined,
      close() {},
      finishedOn: () => undefined,
      keep() {},
    };
    return { reply, end: () => end(null) };
  };
  /** The stream's text so far, read as it comes, and whether it ended. */
  const reading = (body: ReadableStream<Uint8Array>) => {
    const r = { text: "", ended: false };
    const reader = body.getReader();
    const decoder = new TextDecoder();
    void (async () => {
      for (let x = await reader.read(); !x.done; x = await reader.read()) r.text += decoder.decode(x.value);
      r.ended = true;
    })();
    return r;
  };
  const pings = (text: string) => text.split(": ping\n\n").length - 1;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it("pings every silent stream of one interval, each until its own end", async () => {
    const a = silent();
    const b = silent();
    const stream = (reply: Reply) =>
      reading(
        streamCompletion(
          { head, reply, first: undefined, cutter: new Cutter({ stop: [] }), prompt: "hi" },
          { includeUsage: false, keepAliveMs: 100 },
        ),
      );
    const ra = stream(a.reply);
    await sleep(40);
    const rb = stream(b.reply);
    await eventually(() => pings(ra.text) >= 2 && pings(rb.text) >= 2, 5000, "pings on both streams");
    a.end();
    await eventually(() => ra.ended, 5000, "the first stream's end");
    const before = pings(rb.text);
    await eventually(() => pings(rb.text) >= before + 2, 5000, "the other stream's pings going on without the first");
    await sleep(150);
    assert.equal(pings(ra.text.slice(ra.text.indexOf("[DONE]"))), 0, "no ping after an end");
    assert.equal(keepAliveRunning(100), true);
    b.end();
    await eventually(() => rb.ended, 5000, "the second stream's end");
    // The timer outlives the last stream by half an interval at most: a tick that finds none stops it.
    await eventually(() => !keepAliveRunning(100), 5000, "the keep-alive timer stopped");
    // Streams one after another (a client's requests in turn) keep it going; it stops again after the last.
    for (let i = 0; i < 3; i++) {
      const c = silent();
      const rc = stream(c.reply);
      assert.equal(keepAliveRunning(100), true);
      c.end();
      await eventually(() => rc.ended, 5000, "a stream's end");
    }
    await eventually(() => !keepAliveRunning(100), 5000, "the keep-alive timer stopped again");
    assert.ok(rb.text.endsWith("data: [DONE]\n\n"));
  });
});
