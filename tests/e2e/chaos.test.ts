// Chaos (CI size): concurrent requests over every failure mode with random client aborts; nothing silent, nothing left.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { CHAOS_ENV, rssMiB, runChaos } from "../support/chaos.ts";
import { eventually, type RunningSim, startSim } from "../support/sim.ts";
import { type RunningServer, startServer } from "../support/server.ts";

let sim: RunningSim;
let server: RunningServer;
before(async () => {
  sim = await startSim();
  server = await startServer({ EMOHAA_BASE_URL: sim.baseUrl, ...CHAOS_ENV });
});
after(async () => {
  await server?.kill();
  await sim?.stop();
});

describe("chaos", () => {
  it("every request ends in success or a visible error, 0 conversations left, /ping answers, memory settles", {
    timeout: 180_000,
  }, async () => {
    await runChaos({ url: server.url, requests: 30, concurrency: 10, seed: 1, hangMs: 15_000 }); // warm-up
    await eventually(() => sim.sim.state().open === 0, 15_000, "warm-up conversations deleted");
    const rssBefore = rssMiB(server.pid);
    const seed = Number(process.env.CHAOS_SEED ?? Date.now() % 100_000);
    const report = await runChaos({
      url: server.url,
      requests: Number(process.env.CHAOS_REQUESTS ?? 200),
      concurrency: 20,
      seed,
      hangMs: 15_000,
    });
    const detail = JSON.stringify({ seed, ...report });
    if (report.silentTruncation) {
      console.error(
        "SERVER OUTPUT TAIL\n" +
          server.output().split("\n").filter((l) => !/ (POST|GET) \//.test(l)).slice(-60).join("\n"),
      );
    }
    assert.equal(report.silentTruncation, 0, detail);
    assert.equal(report.hanging, 0, detail);
    assert.ok(report.success > 0 && report.visibleError > 0, detail);
    await eventually(
      () => sim.sim.state().open === 0 && sim.sim.state().openStreams === 0,
      20_000,
      `conversations deleted (${JSON.stringify({ open: sim.sim.state().open, streams: sim.sim.state().openStreams })})`,
    );
    assert.equal(sim.sim.state().badDeletes, 0);
    assert.equal(await (await fetch(`${server.url}/ping`)).text(), "pong");
    const rssAfter = rssMiB(server.pid);
    if (!Number.isNaN(rssBefore)) {
      assert.ok(
        rssAfter < Math.max(rssBefore * 1.5, rssBefore + 48),
        `RSS ${rssBefore.toFixed(1)} -> ${rssAfter.toFixed(1)} MiB`,
      );
    }
  });
});
