// JWT expiry against the real server process: an expired server-side token never reaches the upstream.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { eventually, type RunningSim, startSim } from "../support/sim.ts";
import { type RunningServer, startServer } from "../support/server.ts";
import { inSeconds, makeJwt } from "../support/jwt.ts";
import { tokenLabel } from "../../lib/chat/pool.ts";

let sim: RunningSim;
let server: RunningServer;
const expired = makeJwt({ exp: inSeconds(-600), sub: "sub-claim-expired" });
const far = makeJwt({ exp: inSeconds(86_400), sub: "sub-claim-far" });

before(async () => {
  sim = await startSim();
  server = await startServer({
    EMOHAA_BASE_URL: sim.baseUrl,
    EMOHAA_TOKENS: `${expired},${far}`,
    API_KEYS: "gk-expiry",
  });
});
after(async () => {
  await server?.kill();
  await sim?.stop();
});

const chat = (key: string) =>
  fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ messages: [{ role: "user", content: "hi" }] }),
  });

describe("JWT expiry (e2e)", () => {
  it("an expired server-side token is never sent upstream", async () => {
    for (let i = 0; i < 4; i++) assert.equal((await chat("gk-expiry")).status, 200);
    await eventually(() => sim.sim.state().open === 0, 10_000, "conversations deleted");
    assert.equal(sim.sim.state().callsByToken[expired], undefined);
    assert.ok(sim.sim.state().callsByToken[far]! >= 4);
  });

  it("a client's only expired token is a fast 401 token_expired; nothing of a token in the output", async () => {
    const token = makeJwt({ exp: inSeconds(-5), sub: "sub-claim-client" });
    // Client tokens go to a client-mode server.
    const client = await startServer({ EMOHAA_BASE_URL: sim.baseUrl });
    try {
      const res = await fetch(`${client.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ messages: [{ role: "user", content: "hi" }] }),
      });
      assert.equal(res.status, 401);
      assert.equal(((await res.json()) as any).error.code, "token_expired");
      assert.equal(sim.sim.state().callsByToken[token], undefined);
    } finally {
      await client.kill();
    }
    server.assertPrivate();
  });
});

describe("expiry warnings in the log (e2e)", () => {
  it("once per token near or past its end, by masked label; once when none is left valid", async () => {
    await eventually(
      () => server.output().includes(`warning: server-side token ${tokenLabel(expired)} expired at `),
      5_000,
      "the expired token's warning",
    );
    assert.ok(!server.output().includes(tokenLabel(far)), "a far token is not mentioned");
    const soon = makeJwt({ exp: inSeconds(20 * 60), sub: "sub-claim-soon" });
    const lone = await startServer({
      EMOHAA_BASE_URL: sim.baseUrl,
      EMOHAA_TOKENS: `${soon},${makeJwt({ exp: inSeconds(-60), sub: "sub-claim-gone" })}`,
      API_KEYS: "gk-expiry",
    });
    const dead = await startServer({ EMOHAA_BASE_URL: sim.baseUrl, EMOHAA_TOKENS: expired, API_KEYS: "gk-expiry" });
    try {
      await eventually(() => /expires in (19|20) min \(at /.test(lone.output()), 5_000, "the near-expiry warning");
      assert.ok(lone.output().includes(`server-side token ${tokenLabel(soon)} expires in`));
      assert.ok(!lone.output().includes("no valid server-side token left"));
      await eventually(() => dead.output().includes("no valid server-side token left"), 5_000, "the alarm");
      assert.equal(dead.output().split("no valid server-side token left").length, 2, "said once");
    } finally {
      await Promise.all([lone.kill(), dead.kill()]);
    }
    server.assertPrivate();
  });
});
