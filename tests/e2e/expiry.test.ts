// JWT expiry against the real server process: an expired server-side token never reaches the upstream.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { eventually, type RunningSim, startSim } from "../support/sim.ts";
import { type RunningServer, startServer } from "../support/server.ts";
import { inSeconds, makeJwt } from "../support/jwt.ts";

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
