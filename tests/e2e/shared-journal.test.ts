// End to end: the crash journal shared by instances (STATE=redis, and deploy.ts under `deno serve` on one local
// Deno KV file). Real processes, a real store: kill -9 of one instance mid-stream, and the survivors delete its
// conversations once its heartbeat is silent, never those of a live instance; a new instance starting while others
// stream deletes nothing of theirs (what a shared JOURNAL=kv did before). Counted at the simulator.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "redis";
import { runtimeName } from "../../runtime/serve.ts";
import { eventually, type RunningSim, startSim } from "../support/sim.ts";
import { type RunningServer, signalsApply, startServer } from "../support/server.ts";

let sim: RunningSim;
before(async () => {
  sim = await startSim();
});
after(async () => {
  await sim?.stop();
});

// Fast for tests: an instance silent for 2 s is dead; heartbeats every 333 ms, recovery passes every ~1 s.
const DEAD_AFTER_MS = 2000;
const accounts = Array.from({ length: 6 }, (_, i) => `live-sj${i}`);
/**
 * The same accounts, in an order of each instance's own (B from the first, A from the third, C from the fifth), so
 * instances whose pools do not share leases rarely meet on one account; recovery finds a token by its hash anyway.
 */
const tokensOf = (name: string) => {
  const k = { B: 0, A: 2, C: 4 }[name] ?? 0;
  return [...accounts.slice(k), ...accounts.slice(0, k)].join(",");
};

/** One long stream through `url`, tagged so the simulator tells whose conversation it is; abort it to end it. */
function openStream(url: string, tag: string) {
  const abort = new AbortController();
  const done = fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    signal: abort.signal,
    headers: { "content-type": "application/json", authorization: "Bearer key-sj" },
    body: JSON.stringify({
      stream: true,
      messages: [{ role: "user", content: `[[pieces:600]] [[delay:100]] ${tag}` }],
    }),
  }).then((r) => r.text()).catch(() => "cut");
  return { abort: () => abort.abort(), done };
}

/** The conversations that streamed a prompt tagged `tag`, and those of them deleted, at the simulator. */
function conversationsOf(tag: string) {
  const s = sim.sim.state();
  const ids = Object.entries(s.promptOf).filter(([, p]) => p.endsWith(` ${tag}`)).map(([id]) => id);
  return { ids, deleted: ids.filter((id) => s.deletedIds.includes(id)) };
}

/**
 * The scenario, whatever the store: B streams (alive throughout), A streams; C starts while both stream and
 * deletes nothing; A is killed with -9; B and C delete A's conversations, each exactly once, and nothing of B's
 * or C's; when their clients leave, B and C delete their own and nothing is left.
 */
async function scenario(start: (name: string) => Promise<RunningServer>) {
  sim.sim.reset();
  const b = await start("B");
  const a = await start("A");
  let c: RunningServer | undefined;
  const streams = [
    openStream(b.url, "from-B"),
    openStream(b.url, "from-B"),
    openStream(a.url, "from-A"),
    openStream(a.url, "from-A"),
  ];
  const outputs = () =>
    [["A", a], ["B", b], ["C", c]].map(([n, x]) => `${n}:\n${(x as RunningServer | undefined)?.output().slice(-1500)}`)
      .join("\n");
  let aKilled = false;
  try {
    await eventually(() => sim.sim.state().openStreams === 4, 20_000, "4 streams open").catch((err) => {
      throw new Error(`${err.message}; ${JSON.stringify(sim.sim.state().openStreams)} open\n${outputs()}`);
    });
    c = await start("C");
    streams.push(openStream(c.url, "from-C"));
    await eventually(() => sim.sim.state().openStreams === 5, 20_000, "5 streams open");
    // C's first recovery pass ran at its start, and a few periodic ones since: all live, nothing deleted.
    await new Promise((r) => setTimeout(r, DEAD_AFTER_MS * 1.5));
    assert.deepEqual(
      sim.sim.state().deletedIds.filter((id) => sim.sim.state().promptOf[id]),
      [],
      "nothing of a live instance deleted",
    );
    const ofA = conversationsOf("from-A");
    assert.equal(ofA.ids.length, 2);

    aKilled = true;
    assert.equal(await a.kill("SIGKILL"), null);
    await eventually(
      () => conversationsOf("from-A").deleted.length === 2,
      DEAD_AFTER_MS * 5,
      "A's conversations deleted",
    )
      .catch((err) => {
        throw new Error(`${err.message}\n${outputs()}`);
      });
    const s = sim.sim.state();
    assert.equal(s.badDeletes, 0, "each of A's conversations deleted once");
    assert.deepEqual(conversationsOf("from-B").deleted, []);
    assert.deepEqual(conversationsOf("from-C").deleted, []);
    assert.equal(s.openStreams, 3, "B's and C's streams still run");
    // The log is written in batches: the line may come a moment after the deletions.
    const told = () =>
      [b, c].reduce(
        (n, x) => n + Number(/deleted (\d+) conversations left behind by a dead instance/.exec(x!.output())?.[1] ?? 0),
        0,
      );
    await eventually(() => told() === 2, 5000, "the survivors saying what they deleted");
    // B and C delete their own conversations when their clients leave: nothing is left, nothing twice.
    for (const st of streams) st.abort();
    await eventually(() => sim.sim.state().open === 0, 15_000, "every conversation deleted");
    assert.equal(sim.sim.state().badDeletes, 0);
  } finally {
    for (const st of streams) st.abort();
    await Promise.all(streams.map((st) => st.done));
    if (!aKilled) await a.kill("SIGKILL");
    await Promise.all([b.kill("SIGKILL"), c?.kill("SIGKILL")]);
  }
}

const redisUrl = process.env.REDIS_URL;
const skipRedis = !signalsApply
  ? "no process signals where this runs"
  : !redisUrl && "REDIS_URL is not set (scripts/test.mjs starts a redis-server)";

describe("crash journal shared in Redis", { skip: skipRedis }, () => {
  // A database of its own, emptied first (scripts/test.mjs gives each test process one): other tests' instances, and
  // their dead owners, live in other ones.
  const url = redisUrl!;
  before(async () => {
    const client = createClient({ url });
    await client.connect();
    await client.flushDb();
    await client.close();
  });

  it("kill -9 of one instance mid-stream: the survivors delete its conversations once, and nothing of theirs", async () => {
    await scenario((name) =>
      startServer({
        EMOHAA_BASE_URL: sim.baseUrl,
        EMOHAA_TOKENS: tokensOf(name),
        API_KEYS: "key-sj",
        STATE: url,
        STATE_OWNER_DEAD_AFTER_MS: String(DEAD_AFTER_MS),
      })
    );
  });
});

const root = new URL("../../", import.meta.url).pathname;
const deno = join(root, "node_modules", "deno", "deno");
// Under the Deno run and Deno Deploy's run only: each starts three `deno serve` processes, slow on a busy machine.
const kvApplies = existsSync(deno) && signalsApply &&
  (process.env.E2E_COMMAND ? / serve /.test(process.env.E2E_COMMAND) : runtimeName() === "deno");

describe(
  "crash journal shared in Deno KV, deploy.ts under deno serve",
  { skip: !kvApplies && "runs under Deno only" },
  () => {
    const dir = mkdtempSync(join(tmpdir(), "emohaa-kv-fleet-"));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const denoServe = [
      deno,
      "serve",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-write",
      "--allow-sys",
      "--port",
      "0",
      "--host",
      "127.0.0.1",
      "deploy.ts",
    ];

    it("three isolates on one KV file: kill -9 of one mid-stream, the others delete its conversations once, nothing of theirs", async () => {
      await scenario((name) =>
        startServer({
          EMOHAA_BASE_URL: sim.baseUrl,
          EMOHAA_TOKENS: tokensOf(name),
          API_KEYS: "key-sj",
          STATE: `kv:${join(dir, "state.sqlite3")}`,
          STATE_OWNER_DEAD_AFTER_MS: String(DEAD_AFTER_MS),
        }, denoServe)
      );
    });
  },
);
