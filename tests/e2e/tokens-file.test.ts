// End to end: EMOHAA_TOKENS_FILE is watched; a file renamed into place is in use within a second or two, and a
// file with no token or a broken one keeps the old list, with a warning.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tokenLabel } from "../../lib/chat/pool.ts";
import { eventually, type RunningSim, startSim } from "../support/sim.ts";
import { type RunningServer, startServer } from "../support/server.ts";

let sim: RunningSim;
let server: RunningServer;
const dir = mkdtempSync(join(tmpdir(), "emohaa-watch-"));
const file = join(dir, "tokens.txt");
const uid = crypto.randomUUID().slice(0, 8);
const first = `live-watch-${uid}-a`;
const second = `live-watch-${uid}-b`;

/** Replaces the tokens file the safe way: a temporary file beside it, renamed over it. */
function replaceFile(text: string): void {
  const tmp = join(dir, `.tokens.${crypto.randomUUID().slice(0, 6)}`);
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

const labels = async () => {
  const res = await fetch(`${server.url}/v1/tokens/status`, { headers: { authorization: "Bearer gk-watch" } });
  return ((await res.json()) as { tokens: { label: string }[] }).tokens.map((t) => t.label);
};

const chat = () =>
  fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: "Bearer gk-watch", "content-type": "application/json" },
    body: JSON.stringify({ messages: [{ role: "user", content: "hi" }] }),
  });

before(async () => {
  sim = await startSim();
  writeFileSync(file, `# accounts\n${first}\n`);
  server = await startServer({ EMOHAA_BASE_URL: sim.baseUrl, EMOHAA_TOKENS_FILE: file, API_KEYS: "gk-watch" });
});
after(async () => {
  await server?.kill();
  await sim?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("EMOHAA_TOKENS_FILE watched (e2e)", () => {
  it("a new file renamed into place is used within 2 s, without a signal", async () => {
    assert.equal((await chat()).status, 200);
    assert.ok(sim.sim.state().callsByToken[first]! > 0);
    const t0 = Date.now();
    replaceFile(`${second}\n`);
    await eventually(async () => (await labels()).join() === tokenLabel(second), 2_000, "the new file in use", 25);
    const ms = Date.now() - t0;
    const before = sim.sim.state().callsByToken[first];
    assert.equal((await chat()).status, 200);
    assert.ok(sim.sim.state().callsByToken[second]! > 0, "the new token was used");
    assert.equal(sim.sim.state().callsByToken[first], before, "the old token is no longer used");
    console.log(`tokens file replaced: in use after ${ms} ms`);
    await eventually(() => server.output().includes("EMOHAA_TOKENS_FILE changed: 1 server-side tokens now"));
  });

  it("an empty file, or one caught half-written, keeps the old list and logs a warning", async () => {
    replaceFile("# nothing yet\n");
    await eventually(() => server.output().includes("EMOHAA_TOKENS_FILE holds no token; keeping the old tokens"));
    assert.deepEqual(await labels(), [tokenLabel(second)]);
    // A writer stopped mid-way: a token cut by a line break with spaces in it cannot be a token.
    writeFileSync(file, `${second}\nlive-half way`);
    await eventually(() => server.output().includes("entry 2 is not a token"), 3_000, "the warning");
    assert.deepEqual(await labels(), [tokenLabel(second)]);
    assert.equal((await chat()).status, 200);
    server.assertPrivate();
  });
});
