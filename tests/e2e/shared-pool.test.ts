// End to end: several gateway processes sharing one pool through a real store (Redis; Deno KV under Deno).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { eventually, type RunningSim, startSim } from "../support/sim.ts";
import { startServer } from "../support/server.ts";

const REDIS_URL = process.env.REDIS_URL;

let sim: RunningSim;
before(async () => {
  sim = await startSim();
});
after(async () => {
  await sim?.stop();
});

describe("STATE at start-up", () => {
  it("a store that cannot be reached stops the server with exit 1 and a message naming STATE", async () => {
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    const err = await startServer({ EMOHAA_BASE_URL: sim.baseUrl, STATE: "redis://:pw@127.0.0.1:1", STATE_TIMEOUT_MS: "500" })
      .then(() => undefined, (e: Error) => e);
    assert.ok(err, "the server started");
    assert.match(err.message, /exited with 1/);
    assert.match(err.message, /Invalid STATE=/);
    assert.ok(!err.message.includes("pw@"), "the password is masked");
  });
});
