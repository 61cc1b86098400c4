// End to end: SIGTERM lets streams finish within the grace period, ends the rest with an error, deletes everything.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { eventually, type RunningSim, startSim } from "../support/sim.ts";
import { signalsApply, startServer } from "../support/server.ts";

let sim: RunningSim;
before(async () => {
  sim = await startSim();
});
after(async () => {
  await sim?.stop();
});

const stream = (url: string, token: string, content: string) =>
  fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ stream: true, messages: [{ role: "user", content }] }),
  }).then((r) => r.text());

describe("graceful shutdown", { skip: !signalsApply && "no signals where this runs" }, () => {
  it("SIGTERM with 20 streams open: short ones finish, long ones get an error frame, 0 conversations left, exit 0", async () => {
    const server = await startServer({ EMOHAA_BASE_URL: sim.baseUrl, SHUTDOWN_GRACE_MS: "2500" });
    const shortOnes = Array.from(
      { length: 5 },
      (_, i) => stream(server.url, `live-short${i}`, "[[pieces:8]] [[delay:150]]"),
    );
    const longOnes = Array.from(
      { length: 15 },
      (_, i) => stream(server.url, `live-long${i}`, "[[pieces:200]] [[delay:100]]"),
    );
    try {
      // Every chat has started (short ones may already be done): all 20 were in flight at SIGTERM time or finished.
      await eventually(
        () => sim.sim.state().chats === 20 && sim.sim.state().openStreams >= 15,
        15_000,
        "20 streams started",
      );
    } catch (err) {
      await server.kill("SIGKILL"); // never leave a server behind when the test fails early
      throw err;
    }
    const code = await server.kill("SIGTERM");
    assert.equal(code, 0);
    for (const text of await Promise.all(shortOnes)) assert.ok(text.endsWith("data: [DONE]\n\n"));
    for (const text of await Promise.all(longOnes)) {
      assert.ok(!text.includes("[DONE]"));
      assert.match(text, /"code":"server_shutting_down"/);
    }
    assert.equal(sim.sim.state().open, 0);
    assert.equal(sim.sim.state().openStreams, 0);
  });
});
