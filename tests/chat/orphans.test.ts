// The sweep of kept conversations whose holder died: the account index, the heartbeat while holding, and
// Threads.sweep, on a memory store with fake clocks. A "dead" instance runs on a clock that never moves.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Conversations } from "../../lib/chat/conversations.ts";
import { INDEX_MAX, Orphans } from "../../lib/chat/orphans.ts";
import { tokenHash } from "../../lib/chat/pool.ts";
import { callerScope, Threads } from "../../lib/chat/threads.ts";
import type { Clock } from "../../lib/chat/clock.ts";
import { memoryStore } from "../../lib/state/memory.ts";
import type { EmohaaClient } from "../../lib/upstream/emohaa.ts";
import { fakeClock, settled } from "../support/clock.ts";

const IDLE = 600_000;
const DEAD = 10_000;
const TOKENS = ["live-a", "live-b"];
const SCOPE = callerScope("Bearer live-a,live-b", TOKENS);
const HASH = tokenHash("live-b");
const fail = (err: unknown) => assert.fail(err as Error);

function fleet() {
  const clock = fakeClock();
  const store = memoryStore({ now: clock.now });
  const deleted: string[] = [];
  const client = { deleteConversation: async (_t: string, cid: string) => void deleted.push(cid) } as EmohaaClient;
  let n = 0;
  /** An instance; `frozen`: its own timers never fire (it was killed), though the store's time moves on. */
  const instance = (owner: string, frozen = false) => {
    const own: Clock = frozen ? { ...fakeClock(), now: clock.now } : clock;
    const conversations = new Conversations(client, async () => {});
    const threads = new Threads({
      store,
      conversations,
      owner,
      idleMs: IDLE,
      clock: own,
      id: () => `h${++n}`,
      sharedJournal: false,
      sweep: { deadAfterMs: DEAD },
      onError: (err) => assert.fail(err as Error),
    });
    return { threads, conversations };
  };
  return { clock, store, deleted, instance };
}

type Instance = ReturnType<ReturnType<typeof fleet>["instance"]>;

async function keepFresh(t: Instance, cid: string, digest: string) {
  t.conversations.created("live-b", cid);
  const handle = t.threads.newHandle();
  assert.ok(await t.threads.keep({ scope: SCOPE, tokens: TOKENS, handle, token: "live-b", cid, digest }));
  await settled();
  return handle;
}

describe("Orphans: the account index", () => {
  it("lists and unlists handles with compare-and-set; an empty index is deleted; it expires by itself", async () => {
    const clock = fakeClock();
    const store = memoryStore({ now: clock.now });
    const o = new Orphans({ store, owner: "A", clock, deadAfterMs: DEAD, ttlMs: 60_000, onError: fail });
    await Promise.all([
      o.put("acct", "h1", { cid: "c1", owner: "A", idleUntil: 5 }),
      o.put("acct", "h2", { cid: "c2", owner: "B", idleUntil: 6 }),
    ]);
    assert.deepEqual(Object.keys((await o.read("acct"))!).sort(), ["h1", "h2"], "concurrent writers both count");
    await o.remove("acct", ["h1", "nope"]);
    assert.deepEqual(Object.keys((await o.read("acct"))!), ["h2"]);
    await o.remove("acct", ["h2"]);
    assert.equal(await store.get(["thread-a", "acct"]), null, "deleted when empty");
    await o.put("acct", "h3", { cid: "c3", owner: "A", idleUntil: 7 });
    await clock.advance(60_001);
    assert.equal(await o.read("acct"), null, "the store's expiry is the backstop");
  });

  it("is bounded: a full index drops the entry with the earliest idle deadline", async () => {
    const clock = fakeClock();
    const store = memoryStore({ now: clock.now });
    const o = new Orphans({ store, owner: "A", clock, deadAfterMs: DEAD, ttlMs: 60_000, onError: fail });
    for (let i = 0; i <= INDEX_MAX; i++) {
      await o.put("acct", `h${i}`, { cid: `c${i}`, owner: "A", idleUntil: 1000 - i });
    }
    const handles = Object.keys((await o.read("acct"))!);
    assert.equal(handles.length, INDEX_MAX);
    assert.ok(!handles.includes(`h${INDEX_MAX}`));
  });

  it("an account is due at most once per interval, never more often than a holder can be found dead", async () => {
    const clock = fakeClock();
    const o = new Orphans({
      store: memoryStore({ now: clock.now }),
      owner: "A",
      clock,
      deadAfterMs: DEAD,
      ttlMs: 60_000,
      onError: fail,
    });
    assert.equal(o.everyMs, DEAD);
    assert.equal(o.due("x"), true);
    assert.equal(o.due("x"), false);
    assert.equal(o.due("y"), true);
    await clock.advance(DEAD + 1);
    assert.equal(o.due("x"), true);
  });
});

describe("Threads.sweep", () => {
  it("heartbeats only while holding: written before the record names the holder, removed once it holds nothing", async () => {
    const f = fleet();
    const a = f.instance("A");
    assert.deepEqual(await f.store.deadAmong(["A"], DEAD), ["A"]);
    await keepFresh(a, "c1", "d1");
    assert.deepEqual(Object.keys((await f.store.get<object>(["thread-a", HASH]))!.value).length, 1);
    await f.clock.advance(DEAD * 3);
    assert.deepEqual(await f.store.deadAmong(["A"], DEAD), [], "alive while holding");
    await f.clock.advance(IDLE);
    assert.deepEqual(f.deleted, ["c1"], "deleted when idle");
    assert.deepEqual(await f.store.deadAmong(["A"], DEAD), ["A"], "its heartbeat went with the last one");
    assert.equal(await f.store.get(["thread-a", HASH]), null, "unlisted");
    assert.equal(f.clock.pending, 0, "no timer left");
  });

  it("a record names an instance as holder only once its heartbeat is written", async () => {
    const f = fleet();
    const a = f.instance("A");
    const handle = await keepFresh(a, "c1", "d1");
    // B's heartbeats wait at a gate: its claim must not move the record to B before one lands.
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const heartbeat = f.store.heartbeat.bind(f.store);
    f.store.heartbeat = (owner) => owner === "B" ? gate.then(() => heartbeat(owner)) : heartbeat(owner);
    const b = f.instance("B");
    const claiming = b.threads.claim(SCOPE, TOKENS, "d1");
    await settled();
    const owner = async () => (await f.store.get<{ owner: string }>(["thread-h", handle]))?.value.owner;
    assert.equal(await owner(), "A", "not before B's heartbeat");
    open();
    assert.ok(await claiming);
    assert.equal(await owner(), "B");
    assert.deepEqual(await f.store.deadAmong(["B"], DEAD), []);
  });

  it("a dead holder's conversation is deleted by the next sweep with its token after the dead bound, once", async () => {
    const f = fleet();
    const a = f.instance("A", true);
    const handle = await keepFresh(a, "c1", "d1");
    const b = f.instance("B");
    const c = f.instance("C");
    assert.equal(await b.threads.sweep(TOKENS), 0, "its heartbeat is still fresh");
    await f.clock.advance(DEAD + 1);
    assert.deepEqual(
      await Promise.all([c.threads.sweep(["live-x", "live-b"]), f.instance("D").threads.sweep(TOKENS)]).then((n) =>
        n.sort()
      ),
      [0, 1],
    );
    await settled();
    assert.deepEqual(f.deleted, ["c1"], "deleted once, though two swept at once");
    assert.equal(await f.store.get(["thread-a", HASH]), null, "unlisted");
    assert.equal(await b.threads.claim(SCOPE, TOKENS, "d1"), undefined, "its transcript starts afresh");
    assert.equal(await b.threads.claimHandle(handle, TOKENS), undefined);
    assert.deepEqual(await f.store.deadAmong(["A"], 1e9), ["A"], "the dead holder's heartbeat is forgotten");
    await f.clock.advance(DEAD * 2);
    assert.equal(await b.threads.sweep(TOKENS), 0);
    assert.deepEqual(f.deleted, ["c1"]);
  });

  it("a live holder's conversation is never swept; one taken over is judged by its new holder", async () => {
    const f = fleet();
    const a = f.instance("A");
    await keepFresh(a, "c1", "d1");
    const b = f.instance("B");
    for (let i = 0; i < 6; i++) {
      await f.clock.advance(DEAD * 2);
      assert.equal(await b.threads.sweep(TOKENS), 0);
    }
    assert.deepEqual(f.deleted, []);
    // B takes it over and keeps it; then A dies: the index's old hint names A, the record names B (alive).
    const claimed = await b.threads.claim(SCOPE, TOKENS, "d1");
    assert.ok(claimed && claimed !== "evicted");
    const dying = f.instance("Z", true);
    await keepFresh(dying, "c2", "other");
    await f.clock.advance(DEAD * 2);
    const c = f.instance("C");
    assert.equal(await c.threads.sweep(TOKENS), 1, "only the dead one's");
    await settled();
    assert.deepEqual(f.deleted, ["c2"]);
    // A busy record of a live holder, mid-turn, stays too; its keep lists it under B.
    assert.ok(
      await b.threads.keep({
        scope: SCOPE,
        tokens: TOKENS,
        handle: claimed.handle,
        token: "live-b",
        cid: "c1",
        digest: "d2",
        claimed,
      }),
    );
    await settled();
    const index = (await f.store.get<Record<string, { owner: string }>>(["thread-a", HASH]))!.value;
    assert.equal(index[claimed.handle]!.owner, "B");
  });

  it("an entry whose record is missing stays while its keep may still be writing it, and goes once old", async () => {
    const f = fleet();
    const o = new Orphans({ store: f.store, owner: "Z", clock: f.clock, deadAfterMs: DEAD, ttlMs: 1e9, onError: fail });
    await o.put(HASH, "conv-nothing", { cid: "c9", owner: "Z", idleUntil: f.clock.now() + IDLE });
    const b = f.instance("B");
    assert.equal(await b.threads.sweep(TOKENS), 0);
    assert.ok((await o.read(HASH))?.["conv-nothing"], "recent: kept");
    await f.clock.advance(IDLE + 150_000);
    assert.equal(await b.threads.sweep(TOKENS), 0);
    assert.equal(await o.read(HASH), null, "old: dropped");
    assert.deepEqual(f.deleted, [], "nothing to delete without a record");
  });

  it("a holder that missed its idle deadline by the margin is swept, and lets it go without deleting twice", async () => {
    const f = fleet();
    // Alive (its heartbeat is written by hand) but its own timers never fire.
    const a = f.instance("A", true);
    await keepFresh(a, "c1", "d1");
    const b = f.instance("B");
    await f.clock.advance(IDLE);
    await f.store.heartbeat("A");
    assert.equal(await b.threads.sweep(TOKENS), 0, "within the margin");
    await f.clock.advance(150_000);
    await f.store.heartbeat("A");
    assert.equal(await b.threads.sweep(TOKENS), 1);
    await a.threads.endAll();
    await settled();
    assert.deepEqual(f.deleted, ["c1"]);
  });
});
