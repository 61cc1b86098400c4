// lib/start.ts: the one start-up path, driven with injected runtime parts (no sockets, files or environment).
import { describe, it } from "node:test";
import { UPSTREAM_LIMITS } from "../lib/config.ts";
import assert from "node:assert/strict";
import type { JournalEntry, JournalStore } from "../lib/chat/journal.ts";
import { tokenHash } from "../lib/chat/pool.ts";
import { type Config, ConfigError } from "../lib/config.ts";
import { type RuntimeParts, start } from "../lib/start.ts";
import { memoryStore } from "../lib/state/memory.ts";
import { createEmohaaClient } from "../lib/upstream/emohaa.ts";
import { createSimulator } from "../sim/simulator.ts";
import { eventually, simFetch } from "./support/sim.ts";

const BASE = "http://sim/echo-prod";

/** Runtime parts over the simulator; `journal` is what openJournal returns, and each call is recorded. */
function parts(sim = createSimulator(), journal?: JournalStore) {
  const opened: Config[] = [];
  const logs: string[] = [];
  const runtime: RuntimeParts = {
    dial: () => Promise.reject(new Error("no sockets in this test")),
    fetch: simFetch(sim),
    openJournal: async (config) => {
      opened.push(config);
      if (!journal) throw new Error("no journal in this test");
      return journal;
    },
    openState: async () => memoryStore(),
    readFile: (path) => {
      if (path === "/tokens.txt") return "live-f1\n# a comment\nlive-f2, live-s1\n";
      throw new Error("ENOENT");
    },
    writeLog: (text) => void logs.push(...text.trimEnd().split("\n")),
    sleep: () => Promise.resolve(),
    now: () => 0,
    id: () => "id",
  };
  return { runtime, opened, logs, sim };
}

/** A journal store in memory. */
function memoryJournal(entries: JournalEntry[]): JournalStore & { entries: JournalEntry[] } {
  const store = {
    entries: [...entries],
    load: async () => [...store.entries],
    add: (e: JournalEntry) => void store.entries.push(e),
    remove: (cid: string) => void (store.entries = store.entries.filter((e) => e.cid !== cid)),
  };
  return store;
}

const serverSide = { EMOHAA_BASE_URL: BASE, UPSTREAM_CLIENT: "fetch", EMOHAA_TOKENS: "live-s1", API_KEYS: "key-1" };

describe("start", () => {
  it("parses the environment once into the config the app runs with, and names a bad variable", async () => {
    const { runtime } = parts();
    const g = await start({ EMOHAA_BASE_URL: `${BASE}/`, PROMPT_MAX_BYTES: "777", UPSTREAM_CLIENT: "fetch" }, runtime);
    assert.equal(g.config.baseUrl, BASE);
    assert.equal(g.config.promptMaxBytes, 777);
    assert.equal(g.chat.maxAttempts, 3);
    await assert.rejects(
      start({ MAX_ATTEMPTS: "0" }, runtime),
      (err: Error) => err instanceof ConfigError && /^Invalid MAX_ATTEMPTS="0"/.test(err.message),
    );
  });

  it("serves chats through the runtime's fetch, with the runtime's ids", async () => {
    const { runtime, sim } = parts();
    const g = await start({ EMOHAA_BASE_URL: BASE, UPSTREAM_CLIENT: "fetch" }, runtime, { logLine: () => {} });
    const res = await g.app.request("/v1/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer live-1" },
      body: JSON.stringify({ messages: [{ role: "user", content: "hi" }] }),
    });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as any).id, "chatcmpl-id");
    // By default the conversation is kept for the next turn (CONTINUE_CONVERSATIONS), and deleted at shutdown.
    assert.equal(res.headers.get("x-emohaa-continuation"), "new");
    assert.equal(sim.state().open, 1);
    g.shutdown.abort();
    await g.conversations.drain();
    await eventually(() => sim.state().open === 0, 3000, "deleted at shutdown");
  });

  it("opens no journal in client mode or with JOURNAL=off; recovery then does nothing", async () => {
    const { runtime, opened } = parts();
    for (const env of [{ EMOHAA_BASE_URL: BASE }, { ...serverSide, JOURNAL: "off" }]) {
      const g = await start(env, runtime);
      assert.equal(g.journal, undefined);
      assert.equal(await g.recover(), 0);
    }
    assert.equal(opened.length, 0);
  });

  it("with server-side tokens opens the journal the config names, and recovery deletes what it lists", async () => {
    const sim = createSimulator();
    const cid = await createEmohaaClient({ limits: UPSTREAM_LIMITS, baseUrl: BASE, fetch: simFetch(sim) })
      .createConversation("live-s1");
    const gone = { cid: "c-gone", index: 0, hash: tokenHash("live-unknown") };
    const store = memoryJournal([{ cid, index: 0, hash: tokenHash("live-s1") }, gone]);
    const { runtime, opened } = parts(sim, store);
    const logs: string[] = [];
    const g = await start({ ...serverSide, JOURNAL: "kv", JOURNAL_KV_PATH: "/kv.sqlite3" }, runtime, {
      logLine: (l) => logs.push(l),
    });
    assert.deepEqual(opened.map((c) => c.journal), [{
      kind: "kv",
      file: undefined,
      kvPath: "/kv.sqlite3",
      ownerDeadAfterMs: 30_000,
      given: ["JOURNAL", "JOURNAL_KV_PATH"],
      directories: { stateDirectory: undefined, xdgStateHome: undefined },
    }]);
    assert.equal(g.journal, store);
    assert.equal(sim.state().open, 1);
    assert.equal(await g.recover(), 1);
    assert.equal(sim.state().open, 0);
    // An entry whose token is gone cannot be deleted: it leaves the journal.
    assert.deepEqual(store.entries, []);
    assert.ok(logs.some((l) => l.endsWith("deleted 1 conversations left behind by an earlier process")));
  });

  it("a journal that cannot be opened stops the start; one that cannot be read is logged, not thrown", async () => {
    const { runtime } = parts();
    await assert.rejects(start(serverSide, runtime), /no journal in this test/);
    const broken = { ...memoryJournal([]), load: () => Promise.reject(new TypeError("unreadable")) };
    const logs: string[] = [];
    const g = await start(serverSide, parts(undefined, broken).runtime, { logLine: (l) => logs.push(l) });
    assert.equal(await g.recover(), 0);
    assert.ok(logs.some((l) => l.endsWith("ERROR cannot read the crash journal: TypeError")));
  });

  it("opens the state store STATE names and gives an instance id; one that cannot be reached names STATE", async () => {
    const { runtime } = parts();
    const g = await start({ EMOHAA_BASE_URL: BASE }, runtime);
    assert.equal(g.state.backend, "memory");
    assert.equal(g.instanceId, "id");
    await g.state.close();
    const asked: Config["state"][] = [];
    const down: RuntimeParts = {
      ...runtime,
      openState: (config) => {
        asked.push(config.state);
        return Promise.reject(new Error("connect ECONNREFUSED redis://:pw@127.0.0.1:1"));
      },
    };
    await assert.rejects(
      start({ EMOHAA_BASE_URL: BASE, STATE: "redis://:pw@127.0.0.1:1" }, down),
      (e: unknown) => e instanceof ConfigError && /^Invalid STATE=/.test(e.message) && !e.message.includes("pw@"),
    );
    assert.equal(asked[0]?.kind, "redis");
  });

  it("reads EMOHAA_TOKENS_FILE through the runtime, with the inline tokens, and again on reload", async () => {
    const { runtime } = parts(undefined, memoryJournal([]));
    const g = await start({ ...serverSide, EMOHAA_TOKENS_FILE: "/tokens.txt" }, runtime);
    assert.equal(g.reloadTokens?.(), 3);
    await assert.rejects(
      start({ ...serverSide, EMOHAA_TOKENS_FILE: "/missing.txt" }, runtime),
      (err: Error) =>
        err instanceof ConfigError && err.message === 'Invalid EMOHAA_TOKENS_FILE="/missing.txt": cannot read the file',
    );
  });

  it("batches log lines into the runtime's writer unless a test takes them one by one", async () => {
    const { runtime, logs } = parts();
    const g = await start({ EMOHAA_BASE_URL: BASE, LOG_LEVEL: "info" }, runtime);
    g.printLine("one");
    g.printLine("two");
    assert.deepEqual(logs, []);
    await g.flushLogs();
    assert.deepEqual(logs, ["one", "two"]);
  });

  it("applies test overrides to the parsed config (values the environment's bounds refuse)", async () => {
    const { runtime } = parts();
    const g = await start({ EMOHAA_BASE_URL: BASE }, runtime, { config: (c) => ({ ...c, keepAliveMs: 50 }) });
    assert.equal(g.config.keepAliveMs, 50);
  });
});
