import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { tokenHash } from "../../lib/chat/pool.ts";
import { sharedJournal, type SharedJournalOptions } from "../../lib/chat/shared-journal.ts";
import { memoryStore } from "../../lib/state/memory.ts";
import { redisStore } from "../../lib/state/redis.ts";
import type { StateStore } from "../../lib/state/store.ts";

const tokens = ["tok-a", "tok-b"];

/** Three instances on one store; `deletes` records every left-over deletion as `token cid`. */
function fleet(store: StateStore, opts: Partial<SharedJournalOptions> = {}) {
  const deletes: string[] = [];
  const errors: unknown[] = [];
  const make = (owner: string) =>
    sharedJournal({
      store,
      owner,
      tokens: () => tokens,
      deleteLeftover: async (token, cid) => (deletes.push(`${token} ${cid}`), true),
      deadAfterMs: 1000,
      onError: (err) => errors.push(err),
      ...opts,
    });
  return { a: make("inst-a"), b: make("inst-b"), c: make("inst-c"), deletes, errors };
}
const settle = () => new Promise((r) => setTimeout(r, 0));

describe("sharedJournal", () => {
  it("journals server tokens under its owner by position and hash, never a client's token; removes on delete", async () => {
    const store = memoryStore();
    const { a, errors } = fleet(store);
    a.hooks.created("tok-b", "c1");
    a.hooks.created("client-own-token", "c2");
    a.hooks.created("tok-a", "c3");
    a.hooks.deleted("tok-a", "c3");
    await settle();
    assert.deepEqual(await store.journalList(), [{ owner: "inst-a", cid: "c1", index: 1, hash: tokenHash("tok-b") }]);
    assert.deepEqual(errors, []);
  });

  it("recover deletes only a dead owner's conversations, once, then forgets it; live owners are untouched", async () => {
    let t = 1_000_000;
    const store = memoryStore({ now: () => t });
    const { a, b, c, deletes } = fleet(store);
    a.hooks.created("tok-a", "a1");
    a.hooks.created("tok-b", "a2");
    b.hooks.created("tok-a", "b1");
    await settle();
    t += 1500;
    // b is alive (a heartbeat now), a is not.
    await store.heartbeat("inst-b");
    const [byB, byC] = await Promise.all([b.recover(), c.recover()]);
    assert.equal(byB + byC, 2, "each of a's conversations deleted by exactly one survivor");
    assert.deepEqual(deletes.sort(), ["tok-a a1", "tok-b a2"]);
    assert.deepEqual((await store.journalList()).map((r) => r.cid), ["b1"]);
    assert.deepEqual(await store.deadOwners(1000), []);
  });

  it("a new instance starting while others stream deletes nothing of theirs", async () => {
    let t = 1_000_000;
    const store = memoryStore({ now: () => t });
    const { a, b, deletes } = fleet(store);
    a.hooks.created("tok-a", "a1");
    await settle();
    t += 900;
    assert.equal(await b.recover(), 0);
    assert.deepEqual(deletes, []);
    assert.equal((await store.journalList()).length, 1);
  });

  it("a deletion that fails keeps its entry for a later claim; the others are removed", async () => {
    let t = 1_000_000;
    const store = memoryStore({ now: () => t });
    const reports: unknown[] = [];
    const { a, b } = fleet(store, {
      deleteLeftover: async (_token, cid) => cid !== "a2",
      onRecovered: (r) => reports.push(r),
    });
    for (const cid of ["a1", "a2", "a3"]) a.hooks.created("tok-a", cid);
    await settle();
    t += 1500;
    assert.equal(await b.recover(), 2);
    assert.deepEqual((await store.journalList()).map((r) => r.cid), ["a2"]);
    assert.deepEqual(reports, [{ owner: "inst-a", deleted: 2, left: 1 }]);
    // Claimed: a second pass within the claim does nothing.
    assert.equal(await b.recover(), 0);
  });

  it("entries whose token left the list are dropped with their owner", async () => {
    let t = 1_000_000;
    const store = memoryStore({ now: () => t });
    const { a, deletes } = fleet(store);
    const b = sharedJournal({
      store,
      owner: "inst-b",
      tokens: () => ["tok-b"],
      deleteLeftover: async (token, cid) => (deletes.push(`${token} ${cid}`), true),
      deadAfterMs: 1000,
      onError: () => {},
    });
    a.hooks.created("tok-a", "a1");
    a.hooks.created("tok-b", "a2");
    await settle();
    t += 1500;
    assert.equal(await b.recover(), 1);
    assert.deepEqual(deletes, ["tok-b a2"]);
    assert.deepEqual(await store.journalList(), []);
  });

  it("store failures go to onError, never into the hooks' callers; recover resolves 0", async () => {
    const store = memoryStore();
    await store.close();
    const { a, errors } = fleet(store);
    a.hooks.created("tok-a", "a1");
    a.hooks.deleted("tok-a", "a1");
    assert.equal(await a.recover(), 0);
    await settle();
    assert.ok(errors.length >= 2);
  });

  it("start beats at once and on a timer; stop forgets the owner once its conversations are deleted", async () => {
    const store = memoryStore();
    const { a } = fleet(store, { deadAfterMs: 600 });
    assert.equal(a.heartbeatMs, 100);
    assert.equal(a.recoverEveryMs, 300);
    a.hooks.created("tok-a", "a1");
    await a.start();
    await new Promise((r) => setTimeout(r, 700));
    assert.deepEqual(await store.deadOwners(600), [], "beats keep it alive past deadAfterMs");
    await a.stop();
    assert.equal((await store.journalList()).length, 1, "a conversation not deleted stays for the others");
    a.hooks.deleted("tok-a", "a1");
    await settle();
    await a.stop();
    assert.deepEqual(await store.journalList(), []);
  });
});

describe("sharedJournal on Redis", { skip: !process.env.REDIS_URL && "REDIS_URL is not set" }, () => {
  it("two survivors recover one dead owner: every conversation deleted exactly once", async () => {
    const prefix = `sj${crypto.randomUUID().slice(0, 8)}`;
    const [s1, s2, s3] = await Promise.all([1, 2, 3].map(() => redisStore({ url: process.env.REDIS_URL!, prefix })));
    try {
      const deletes: string[] = [];
      const make = (store: StateStore, owner: string) =>
        sharedJournal({
          store,
          owner,
          tokens: () => tokens,
          deleteLeftover: async (_t, cid) => (deletes.push(cid), true),
          deadAfterMs: 1000,
          onError: (err) => assert.fail(String(err)),
        });
      const a = make(s1!, "inst-a");
      const b = make(s2!, "inst-b");
      const c = make(s3!, "inst-c");
      for (let i = 0; i < 10; i++) a.hooks.created(tokens[i % 2]!, `a${i}`);
      b.hooks.created("tok-a", "b0");
      await new Promise((r) => setTimeout(r, 1200));
      await s2!.heartbeat("inst-b");
      await s3!.heartbeat("inst-c");
      await Promise.all([b.recover(), c.recover()]);
      assert.deepEqual(deletes.sort(), Array.from({ length: 10 }, (_, i) => `a${i}`).sort());
      assert.deepEqual((await s2!.journalList()).map((r) => r.cid), ["b0"]);
    } finally {
      await Promise.all([s1, s2, s3].map((s) => s!.close()));
    }
  });
});
