// End to end: with client tokens on a shared store, a kept conversation whose holder was killed is deleted by the
// next request with its token on another instance, once its holder is seen dead; a live holder's is never swept.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { eventually, type RunningSim, startSim } from "../support/sim.ts";
import { type RunningServer, signalsApply, startServer } from "../support/server.ts";
import { sharedStores } from "../support/stores.ts";

let sim: RunningSim;
before(async () => {
  sim = await startSim();
});
after(async () => {
  await sim?.stop();
});

const run = crypto.randomUUID().slice(0, 8);
const DEAD_MS = 1500;

type Message = { role: string; content: string };

/** One chat turn with the client's own token as the bearer; `max_tokens` cuts the reply, so nothing is kept. */
async function chat(server: RunningServer, token: string, messages: Message[], extra: object = {}) {
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "emohaa", messages, ...extra }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  const body = await res.json() as { choices: { message: { content: string } }[] };
  return { text: body.choices[0]!.message.content, continuation: res.headers.get("x-emohaa-continuation") };
}

const backends = sharedStores();

for (const backend of backends) {
  describe(`kept conversations of a killed instance, client tokens: ${backend.name}`, {
    skip: backend.skip || (!signalsApply && "no process signals where this runs"),
  }, () => {
    it("a live holder's is never swept; a killed holder's goes at the token's next use, deleted once", async () => {
      const env = {
        EMOHAA_BASE_URL: sim.baseUrl,
        CONTINUE_CONVERSATIONS: "true",
        STATE: backend.state(),
        STATE_TIMEOUT_MS: "10000",
        STATE_OWNER_DEAD_AFTER_MS: String(DEAD_MS),
      };
      const token = `live-sweep-${run}`;
      const [a, b, c] = await Promise.all([startServer(env), startServer(env), startServer(env)]);
      const servers = [a!, b!, c!];
      try {
        const { open, badDeletes } = sim.sim.state();
        const m: Message[] = [{ role: "user", content: "W1 [[reply:在的]]" }];
        const r1 = await chat(a!, token, m);
        assert.equal(r1.continuation, "new");
        m.push({ role: "assistant", content: r1.text });
        assert.equal(sim.sim.state().open, open + 1, "kept on A");

        // A lives: other instances serve the same token for several dead bounds, and sweep, and leave it alone.
        for (let i = 0; i < 8; i++) {
          await chat(servers[1 + (i % 2)]!, token, [{ role: "user", content: `other talk ${i}` }], { max_tokens: 1 });
          await new Promise((r) => setTimeout(r, DEAD_MS / 3));
        }
        await eventually(() => sim.sim.state().open === open + 1, 5000, "only the kept one is open");
        // Still there: the talk continues, on B, which holds it from now on.
        m.push({ role: "user", content: "W2 [[reply:嗯]]" });
        const r2 = await chat(b!, token, m);
        assert.equal(r2.continuation, "continued");
        m.push({ role: "assistant", content: r2.text });

        assert.equal(await b!.kill("SIGKILL"), null);
        assert.equal(sim.sim.state().open, open + 1, "left behind by the kill");
        // Right after the kill its holder is not dead yet: a request with the token leaves it.
        await chat(a!, token, [{ role: "user", content: "too soon" }], { max_tokens: 1 });
        await new Promise((r) => setTimeout(r, 500));
        assert.equal(sim.sim.state().open, open + 1, "not swept while the holder may be alive");
        await new Promise((r) => setTimeout(r, DEAD_MS + 500));
        // Two instances use the token at once: both sweep, one deletes.
        await Promise.all([a!, c!].map((s) => chat(s, token, [{ role: "user", content: "later" }], { max_tokens: 1 })));
        await eventually(() => sim.sim.state().open === open, 10_000, "the orphan deleted");
        assert.equal(sim.sim.state().badDeletes, badDeletes, "deleted exactly once");
        // Its talk now starts afresh, with the merged prompt.
        m.push({ role: "user", content: "W3" });
        assert.equal((await chat(c!, token, m, { max_tokens: 1 })).continuation, "new");
        for (const s of [a!, c!]) s.assertPrivate();
        await eventually(
          () => /deleted 1 kept conversations whose holder died/.test(a!.output() + c!.output()),
          5000,
          "the sweep logged",
        );
      } finally {
        await Promise.all(servers.map((s) => s.kill("SIGTERM").catch(() => null)));
      }
      await eventually(() => sim.sim.state().open === 0, 10_000, "none left at the end");
    });

    it("one instance killed and restarted on the same store: the next request with the token deletes it", async () => {
      const env = {
        EMOHAA_BASE_URL: sim.baseUrl,
        CONTINUE_CONVERSATIONS: "true",
        STATE: backend.state(),
        STATE_TIMEOUT_MS: "10000",
        STATE_OWNER_DEAD_AFTER_MS: String(DEAD_MS),
      };
      const token = `live-restart-${run}`;
      const { open, badDeletes } = sim.sim.state();
      const first = await startServer(env);
      await chat(first, token, [{ role: "user", content: "V1" }]);
      await chat(first, token, [{ role: "user", content: "V1b" }]);
      assert.equal(sim.sim.state().open, open + 2);
      assert.equal(await first.kill("SIGKILL"), null);
      const second = await startServer(env);
      try {
        await new Promise((r) => setTimeout(r, DEAD_MS + 500));
        assert.equal(sim.sim.state().open, open + 2, "nothing is deleted before the token is used");
        await chat(second, token, [{ role: "user", content: "V2" }], { max_tokens: 1 });
        await eventually(() => sim.sim.state().open === open, 10_000, "both deleted");
        assert.equal(sim.sim.state().badDeletes, badDeletes);
        second.assertPrivate();
      } finally {
        await second.kill("SIGTERM");
      }
    });
  });
}
