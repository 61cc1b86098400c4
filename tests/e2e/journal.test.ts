// End to end: kill -9 with streams open, restart, and the crash journal deletes every conversation left behind.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eventually, type RunningSim, startSim } from "../support/sim.ts";
import { signalsApply, startServer } from "../support/server.ts";

let sim: RunningSim;
before(async () => {
  sim = await startSim();
});
after(async () => {
  await sim?.stop();
});

describe("crash journal", { skip: !signalsApply && "no process signals where this runs" }, () => {
  it("kill -9 with streams open, restart: 0 conversations left; the journal never holds a token", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "emohaa-journal-")), "journal");
    const env = { EMOHAA_BASE_URL: sim.baseUrl, EMOHAA_TOKENS: "live-j1,live-j2,live-j3", API_KEYS: "key-j", JOURNAL_FILE: file };
    const first = await startServer(env);
    const streams = Array.from({ length: 3 }, () =>
      fetch(`${first.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer key-j" },
        body: JSON.stringify({ stream: true, messages: [{ role: "user", content: "[[pieces:500]] [[delay:100]]" }] }),
      }).then((r) => r.text()).catch(() => "cut"),
    );
    await eventually(() => sim.sim.state().openStreams === 3, 15_000, "3 streams open");
    const journal = readFileSync(file, "utf8");
    assert.equal(journal.trim().split("\n").length, 3);
    for (const secret of ["live-j1", "live-j2", "live-j3", "key-j"]) assert.ok(!journal.includes(secret));
    assert.equal(await first.kill("SIGKILL"), null);
    await Promise.all(streams);
    assert.equal(sim.sim.state().open, 3);

    const second = await startServer(env);
    try {
      await eventually(() => sim.sim.state().open === 0, 15_000, "leftovers deleted");
      assert.equal(sim.sim.state().badDeletes, 0);
      await eventually(() => second.output().includes("deleted 3 conversations left behind"), 5000, "log line");
    } finally {
      await second.kill();
    }
  });
});
