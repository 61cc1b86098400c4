// End to end: token counting of a hostile reply (one unbroken word of 150,000 characters) against the real
// server process, while /ping must keep answering.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { eventually, type RunningSim, startSim } from "../support/sim.ts";
import { type RunningServer, startServer } from "../support/server.ts";

let sim: RunningSim;
let server: RunningServer;

before(async () => {
  sim = await startSim();
  server = await startServer({ EMOHAA_BASE_URL: sim.baseUrl, LOG_LEVEL: "info" });
  // The tokenizer's tables are built once, on first use, in one go (a few hundred milliseconds: see README):
  // loaded before the measurement, which is about counting.
  const warm = await chat({ messages: [{ role: "user", content: "hi" }] }, "live-warm");
  assert.equal(warm.status, 200);
  await warm.body?.cancel();
});

after(async () => {
  await server?.kill();
  await sim?.stop();
});

const chat = (body: Record<string, unknown>, token: string) =>
  fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
// 3 pieces of 50,000 `b`: one word of 150,000 characters.
const HOSTILE = [{ role: "user", content: "[[repeat:b:150000]] [[pieces:3]]" }];
const WORD = "b".repeat(150_000);

/** Asks /ping every 50 ms until stopped; resolves with the slowest answer, in milliseconds. */
function pinger(): { stop(): Promise<number> } {
  let running = true;
  let slowest = 0;
  const done = (async () => {
    while (running) {
      const t0 = performance.now();
      const res = await fetch(`${server.url}/ping`, { signal: AbortSignal.timeout(30_000) });
      assert.equal(await res.text(), "pong");
      slowest = Math.max(slowest, performance.now() - t0);
      await new Promise((r) => setTimeout(r, 50));
    }
    return slowest;
  })();
  return { stop: () => ((running = false), done) };
}

/** The content and the usage chunk of a streamed completion. */
async function streamed(res: Response): Promise<{ content: string; usage: Record<string, number> }> {
  const frames = (await res.text()).split("\n\n").filter((f) => f.startsWith("data: {")).map((f) =>
    JSON.parse(f.slice(6))
  );
  return { content: frames.map((f) => f.choices[0]?.delta?.content ?? "").join(""), usage: frames.at(-1).usage };
}

describe("token counting", () => {
  it(
    "a reply of 3 x 50,000 'b' is counted while /ping keeps answering within a second",
    { timeout: 120_000 },
    async () => {
      const ping = pinger();
      const [whole, stream, cut] = await Promise.all([
        chat({ messages: HOSTILE }, "live-tok1"),
        chat({ messages: HOSTILE, stream: true, stream_options: { include_usage: true } }, "live-tok2"),
        chat({ messages: HOSTILE, max_tokens: 3000 }, "live-tok3"),
      ]);
      assert.equal(whole.status, 200);
      const completion = (await whole.json()) as any;
      assert.equal(completion.choices[0].message.content, WORD);
      assert.ok(completion.usage.completion_tokens > 150_000 / 20, JSON.stringify(completion.usage));
      assert.ok(completion.usage.prompt_tokens > 0);

      assert.equal(stream.status, 200);
      const s = await streamed(stream);
      assert.equal(s.content, WORD);
      assert.deepEqual(s.usage, completion.usage);

      assert.equal(cut.status, 200);
      const c = (await cut.json()) as any;
      assert.equal(c.choices[0].finish_reason, "length");
      assert.equal(c.usage.completion_tokens, 3000);
      assert.ok(WORD.startsWith(c.choices[0].message.content) && c.choices[0].message.content.length > 3000);

      const slowest = await ping.stop();
      assert.ok(slowest < 1000, `/ping took ${slowest.toFixed(0)} ms`);
      await eventually(() => sim.sim.state().open === 0, 10_000, "conversations deleted");
    },
  );

  it("text that looks like a special token is counted as text, not a server error", async () => {
    const text = "<|endoftext|> and <|im_start|>";
    const res = await chat(
      { messages: [{ role: "user", content: `[[reply:${text}]]` }], max_tokens: 100 },
      "live-tok4",
    );
    assert.equal(res.status, 200);
    const body = (await res.json()) as any;
    assert.equal(body.choices[0].message.content, text);
    assert.ok(body.usage.completion_tokens > 2);
  });
});
