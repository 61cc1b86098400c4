// End to end: kill -9 with streams open, restart, and the crash journal deletes every conversation left behind: the
// server with its journal file, and deploy.ts under `deno serve` (Deno Deploy's way) with its journal in Deno KV.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { type JournalEntry, replayJournal } from "../../lib/chat/journal.ts";
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
    const env = {
      EMOHAA_BASE_URL: sim.baseUrl,
      EMOHAA_TOKENS: "live-j1,live-j2,live-j3",
      API_KEYS: "key-j",
      JOURNAL_FILE: file,
    };
    const first = await startServer(env);
    const streams = Array.from({ length: 3 }, () =>
      fetch(`${first.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer key-j" },
        body: JSON.stringify({ stream: true, messages: [{ role: "user", content: "[[pieces:500]] [[delay:100]]" }] }),
      }).then((r) => r.text()).catch(() => "cut"));
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

  const env = (extra: Record<string, string>) => ({
    EMOHAA_BASE_URL: sim.baseUrl,
    EMOHAA_TOKENS: "live-j1,live-j2",
    API_KEYS: "key-j",
    ...extra,
  });
  const openStream = (url: string) =>
    fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer key-j" },
      body: JSON.stringify({ stream: true, messages: [{ role: "user", content: "[[pieces:50]] [[delay:100]]" }] }),
    }).then((r) => r.text()).catch(() => "cut");
  const mode = (path: string) => statSync(path).mode & 0o777;
  const refused = (extra: Record<string, string>) =>
    startServer(env(extra)).then(
      async (s) => (await s.kill(), "started"),
      (err: Error) => err.message,
    );

  it("a symbolic link planted at JOURNAL_FILE: the server refuses to start, naming JOURNAL_FILE, and the target is untouched", async () => {
    const dir = mkdtempSync(join(tmpdir(), "emohaa-journal-"));
    const target = join(dir, "victim");
    writeFileSync(target, "+ 0 planted c-planted\nimportant data\n", { mode: 0o600 });
    const file = join(dir, "journal");
    symlinkSync(target, file);
    const message = await refused({ JOURNAL_FILE: file });
    assert.match(message, /exited with 1 before listening/);
    assert.match(message, /Invalid JOURNAL_FILE=.*symbolic link/);
    assert.equal(readFileSync(target, "utf8"), "+ 0 planted c-planted\nimportant data\n");
    assert.equal(sim.sim.state().open, 0);
  });

  it("a JOURNAL_FILE others may write (0666), or another user's: refused at start-up", async () => {
    const dir = mkdtempSync(join(tmpdir(), "emohaa-journal-"));
    const open = join(dir, "open");
    writeFileSync(open, "");
    chmodSync(open, 0o666);
    assert.match(await refused({ JOURNAL_FILE: open }), /Invalid JOURNAL_FILE=.*others may write/);
    if (process.getuid?.() === 0) {
      const theirs = join(dir, "theirs");
      writeFileSync(theirs, "", { mode: 0o600 });
      chownSync(theirs, 65534, 65534);
      assert.match(await refused({ JOURNAL_FILE: theirs }), /Invalid JOURNAL_FILE=.*owned by another user/);
    }
  });

  it("by default: a 0700 directory under XDG_STATE_HOME, a 0600 file per port-0 process, removed at a clean shutdown", async () => {
    const state = mkdtempSync(join(tmpdir(), "emohaa-state-"));
    const dir = join(state, "emohaa-free-api");
    const a = await startServer(env({ XDG_STATE_HOME: state }));
    const b = await startServer(env({ XDG_STATE_HOME: state }));
    try {
      const streams = [openStream(a.url), openStream(b.url)];
      await eventually(() => sim.sim.state().openStreams === 2, 15_000, "2 streams open");
      assert.equal(mode(dir), 0o700);
      const files = readdirSync(dir);
      assert.equal(files.length, 2, "two port-0 servers, two journals");
      for (const f of files) {
        assert.equal(mode(join(dir, f)), 0o600);
        // One stream each still open (a busy account may have been tried first and its conversation deleted).
        assert.equal(replayJournal(readFileSync(join(dir, f), "utf8")).length, 1);
      }
      await Promise.all(streams);
    } finally {
      assert.equal(await a.kill(), 0);
      assert.equal(await b.kill(), 0);
    }
    await eventually(() => sim.sim.state().open === 0, 15_000, "conversations deleted");
    assert.deepEqual(readdirSync(dir), []);
    assert.ok(existsSync(dir));
  });
});

const root = new URL("../../", import.meta.url).pathname;
const deno = join(root, "node_modules", "deno", "deno");
/** Where deploy.ts runs: the plain suites and the `deno serve` deployment run; not the binary's or the bundle's. */
const deployApplies = existsSync(deno) && (!process.env.E2E_COMMAND || / serve /.test(process.env.E2E_COMMAND));

/** The entries of a Deno KV journal, read by a separate Deno process while the server may hold the database open. */
async function kvJournalEntries(path: string): Promise<JournalEntry[]> {
  const script = `const kv = await Deno.openKv(${JSON.stringify(path)}); const out = [];
for await (const e of kv.list({ prefix: ["emohaa-journal"] })) out.push(e.value);
console.log(JSON.stringify(out)); kv.close();`;
  const { stdout } = await promisify(execFile)(deno, ["eval", "--unstable-kv", script], { cwd: tmpdir() });
  return JSON.parse(stdout);
}

const skipDeploy = !deployApplies && "deploy.ts does not run here";

describe("crash journal in Deno KV, deploy.ts under deno serve", { skip: skipDeploy }, () => {
  // A local KV database needs read and write permission for its file; on Deno Deploy the platform's KV needs none.
  const allow = ["--allow-net", "--allow-env", "--allow-read", "--allow-write", "--allow-sys"];
  const denoServe = [deno, "serve", ...allow, "--port", "0", "--host", "127.0.0.1", "deploy.ts"];
  const secrets = ["live-k1", "live-k2", "live-k3", "key-k"];

  it("STATE=memory, JOURNAL=kv: kill -9 with streams open, restart: 0 conversations left; no token in the database", async () => {
    const dir = mkdtempSync(join(tmpdir(), "emohaa-kv-"));
    const env = {
      EMOHAA_BASE_URL: sim.baseUrl,
      EMOHAA_TOKENS: "live-k1,live-k2,live-k3",
      API_KEYS: "key-k",
      // One instance's journal in KV: with the state in memory (deploy.ts would put it in Deno KV by default, and
      // the journal with it: tests/e2e/shared-journal.test.ts).
      STATE: "memory",
      JOURNAL: "kv",
      JOURNAL_KV_PATH: join(dir, "journal.sqlite3"),
    };
    const first = await startServer(env, denoServe);
    const streams = Array.from({ length: 3 }, () =>
      fetch(`${first.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer key-k" },
        body: JSON.stringify({ stream: true, messages: [{ role: "user", content: "[[pieces:500]] [[delay:100]]" }] }),
      }).then((r) => r.text()).catch(() => "cut"));
    await eventually(() => sim.sim.state().openStreams === 3, 15_000, "3 streams open");
    // Deno KV writes in the background (a file journal's appends are synchronous): wait until all three are in.
    let entries: JournalEntry[] = [];
    const written = async () => (entries = await kvJournalEntries(env.JOURNAL_KV_PATH)).length === 3;
    await eventually(written, 15_000, "3 journal entries");
    for (const secret of secrets) assert.ok(!JSON.stringify(entries).includes(secret));
    assert.equal(await first.kill("SIGKILL"), null);
    await Promise.all(streams);
    assert.equal(sim.sim.state().open, 3);
    for (const file of readdirSync(dir)) {
      const bytes = readFileSync(join(dir, file)).toString("latin1");
      for (const secret of secrets) assert.ok(!bytes.includes(secret), `${file} holds ${secret}`);
    }

    const second = await startServer(env, denoServe);
    try {
      await eventually(() => sim.sim.state().open === 0, 15_000, "leftovers deleted").catch((err) => {
        throw new Error(`${err.message}; ${sim.sim.state().open} open; output:\n${second.output()}`);
      });
      assert.equal(sim.sim.state().badDeletes, 0);
      await eventually(() => second.output().includes("deleted 3 conversations left behind"), 5000, "log line");
    } finally {
      await second.kill("SIGKILL");
    }
  });
});
