// End to end: kept conversations are capped per account and per instance. A burst of distinct talks keeps no more
// than the caps open upstream; the least recently used goes first, /metrics counts them, and an evicted talk's next
// turn starts afresh saying why.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { eventually, type RunningSim, startSim } from "../support/sim.ts";
import { type RunningServer, startServer } from "../support/server.ts";

let sim: RunningSim;
let server: RunningServer;
before(async () => {
  sim = await startSim();
  server = await startServer({
    EMOHAA_BASE_URL: sim.baseUrl,
    CONTINUE_CONVERSATIONS: "true",
    KEPT_PER_ACCOUNT: "3",
    KEPT_MAX: "5",
  });
});
after(async () => {
  await server?.kill();
  await sim?.stop();
});

type Message = { role: string; content: string };
async function turn(token: string, messages: Message[]) {
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "emohaa", messages }),
  });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { choices: { message: { content: string } }[] };
  return { reply: body.choices[0]!.message.content, continuation: res.headers.get("x-emohaa-continuation") };
}
const metric = async (name: string) => {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\d+)$`, "m").exec(text)?.[1]);
};

describe("caps on kept conversations", () => {
  it("a burst of 10 distinct talks on one account keeps 3; the first talk's next turn starts afresh", async () => {
    const talks: Message[][] = [];
    for (let i = 0; i < 10; i++) {
      const first = { role: "user", content: `talk ${i}: hello` };
      const { reply, continuation } = await turn("live-caps", [first]);
      assert.equal(continuation, "new");
      talks.push([first, { role: "assistant", content: reply }]);
    }
    await eventually(() => sim.sim.state().open === 3, 5000, "3 kept open upstream");
    assert.equal(await metric("emohaa_conversations_kept"), 3);
    assert.equal(await metric("emohaa_conversations_evicted_total"), 7);
    // The last three are kept: they continue; the first was evicted: it starts afresh, saying why.
    const last = await turn("live-caps", [...talks[9]!, { role: "user", content: "and then?" }]);
    assert.equal(last.continuation, "continued");
    const first = await turn("live-caps", [...talks[0]!, { role: "user", content: "and then?" }]);
    assert.equal(first.continuation, "fresh-after-evicted");
  });

  it("a second account within its own cap: the instance keeps 5 in all, least recently used first", async () => {
    for (let i = 0; i < 3; i++) await turn("live-caps2", [{ role: "user", content: `other ${i}` }]);
    await eventually(() => sim.sim.state().open === 5, 5000, "5 kept open upstream");
    assert.equal(await metric("emohaa_conversations_kept"), 5);
  });
});
