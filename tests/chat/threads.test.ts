// Threads: kept conversations on a memory store with a fake clock; two instances share one store.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Conversations } from "../../lib/chat/conversations.ts";
import {
  callerScope,
  type Claimed,
  continuedDigest,
  DELIVERY_GRACE_MS,
  splitContinuation,
  Threads,
  transcriptDigest,
} from "../../lib/chat/threads.ts";
import { memoryStore } from "../../lib/state/memory.ts";
import type { EmohaaClient } from "../../lib/upstream/emohaa.ts";
import { fakeClock, settled } from "../support/clock.ts";

const IDLE = 60_000;

function fleet() {
  const clock = fakeClock();
  const store = memoryStore({ now: clock.now });
  const deleted: string[] = [];
  const client = { deleteConversation: async (_t: string, cid: string) => void deleted.push(cid) } as EmohaaClient;
  let n = 0;
  const instance = (owner: string, caps?: { perAccount: number; total: number }) => {
    const conversations = new Conversations(client, async () => {});
    const threads = new Threads({
      store,
      conversations,
      owner,
      idleMs: IDLE,
      clock,
      id: () => `h${++n}`,
      sharedJournal: false,
      caps,
      onError: (err) => assert.fail(err as Error),
    });
    return { threads, conversations };
  };
  return { clock, store, deleted, instance };
}

const TOKENS = ["live-a", "live-b"];
const SCOPE = callerScope("Bearer key", TOKENS);

/** A fresh conversation answered and kept by `t`, as lib/chat/turn.ts does after a reply. */
async function keepFresh(
  t: ReturnType<ReturnType<typeof fleet>["instance"]>,
  cid: string,
  digest: string,
  token = "live-b",
) {
  t.conversations.created(token, cid);
  const handle = t.threads.newHandle();
  const kept = await t.threads.keep({ scope: SCOPE, tokens: TOKENS, handle, token, cid, digest });
  // The client has the reply at once (the edge's `Turn.delivered`): the idle time starts now.
  if (kept) t.threads.touch(handle);
  return { handle, kept };
}

describe("transcriptDigest and splitContinuation", () => {
  it("a digest changes with the model, a role, a character or the order; text parts count as their text", () => {
    const base = [{ role: "user", content: "你好" }, { role: "assistant", content: "嗨" }];
    const d = transcriptDigest("emohaa", base);
    assert.equal(
      d,
      transcriptDigest("emohaa", [{ role: "user", content: [{ type: "text", text: "你好" }] }, base[1]!]),
    );
    assert.notEqual(d, transcriptDigest("gpt-4o", base));
    assert.notEqual(d, transcriptDigest("emohaa", [{ role: "system", content: "你好" }, base[1]!]));
    assert.notEqual(d, transcriptDigest("emohaa", [{ role: "user", content: "你好 " }, base[1]!]));
    assert.notEqual(d, transcriptDigest("emohaa", [base[1]!, base[0]!]));
    assert.match(d, /^[0-9a-f]{64}$/);
  });

  it("a continuation is the history up to the last reply, then user messages only", () => {
    const u = (c: string) => ({ role: "user", content: c });
    const a = (c: string) => ({ role: "assistant", content: c });
    assert.equal(splitContinuation([u("1")]), undefined, "no reply yet");
    assert.equal(splitContinuation([u("1"), a("2")]), undefined, "nothing new");
    assert.equal(splitContinuation([u("1"), a("2"), { role: "system", content: "x" }, u("3")]), undefined);
    assert.deepEqual(splitContinuation([u("1"), a("2"), u("3"), u("4")]), {
      transcript: [u("1"), a("2")],
      added: [u("3"), u("4")],
    });
  });

  it("a caller's scope depends on its bearer, its accounts and the user field, and shows no token", () => {
    const s = callerScope("Bearer live-a", ["live-a"]);
    assert.notEqual(s, callerScope("Bearer live-b", ["live-a"]));
    assert.notEqual(s, callerScope("Bearer live-a", ["live-a", "live-b"]));
    assert.notEqual(s, callerScope("Bearer live-a", ["live-a"], "alice"));
    assert.ok(!s.includes("live"));
  });
});

describe("Threads", () => {
  it("a kept transcript is claimed once: a second claim, or another scope, finds nothing", async () => {
    const f = fleet();
    const a = f.instance("A");
    const { handle, kept } = await keepFresh(a, "c1", "d1");
    assert.ok(kept);
    assert.equal(await a.threads.claim(callerScope("Bearer other", TOKENS), TOKENS, "d1"), undefined);
    assert.equal(await a.threads.claim(SCOPE, ["live-a"], "d1"), undefined, "the account is not the caller's");
    const claimed = (await a.threads.claim(SCOPE, TOKENS, "d1")) as Claimed | undefined;
    assert.equal(claimed?.handle, handle);
    assert.equal(claimed?.cid, "c1");
    assert.equal(claimed?.token, "live-b");
    assert.equal(await a.threads.claim(SCOPE, TOKENS, "d1"), undefined, "consumed");
  });

  it("the same transcript kept twice: neither continues, and the first is deleted", async () => {
    const f = fleet();
    const a = f.instance("A");
    assert.ok((await keepFresh(a, "c1", "same")).kept);
    assert.equal((await keepFresh(a, "c2", "same")).kept, false);
    await settled();
    assert.deepEqual(f.deleted, ["c1"], "the first ended; the second is deleted by its reply");
    assert.equal(await a.threads.claim(SCOPE, TOKENS, "same"), undefined);
  });

  it("a kept conversation the client never got (it left after the keep) is deleted after the idle time and a grace", async () => {
    const f = fleet();
    const a = f.instance("A");
    a.conversations.created("live-b", "c1");
    const handle = a.threads.newHandle();
    assert.ok(await a.threads.keep({ scope: SCOPE, tokens: TOKENS, handle, token: "live-b", cid: "c1", digest: "d1" }));
    await f.clock.advance(IDLE + DELIVERY_GRACE_MS - 1000);
    assert.deepEqual(f.deleted, []);
    await f.clock.advance(2000);
    assert.deepEqual(f.deleted, ["c1"]);
  });

  it("deletes a kept conversation after the idle time, once", async () => {
    const f = fleet();
    const a = f.instance("A");
    await keepFresh(a, "c1", "d1");
    await f.clock.advance(IDLE - 1000);
    assert.deepEqual(f.deleted, []);
    await f.clock.advance(2000);
    assert.deepEqual(f.deleted, ["c1"]);
    assert.equal(a.conversations.open, 0);
    assert.equal(await a.threads.claim(SCOPE, TOKENS, "d1"), undefined);
    await f.clock.advance(IDLE * 3);
    assert.deepEqual(f.deleted, ["c1"]);
  });

  it("another instance takes a conversation over: only the last holder deletes it", async () => {
    const f = fleet();
    const a = f.instance("A");
    const b = f.instance("B");
    const { handle } = await keepFresh(a, "c1", "d1");
    await f.clock.advance(IDLE / 2);
    const claimed = (await b.threads.claim(SCOPE, TOKENS, "d1")) as Claimed | undefined;
    assert.ok(claimed);
    assert.equal(b.conversations.open, 1, "B counts it now");
    assert.ok(
      await b.threads.keep({ scope: SCOPE, tokens: TOKENS, handle, token: "live-b", cid: "c1", digest: "d2", claimed }),
    );
    b.threads.touch(handle);
    // A's timer fires first: it lets the conversation go instead of deleting it.
    await f.clock.advance(IDLE / 2 + 1000);
    assert.deepEqual(f.deleted, []);
    assert.equal(a.conversations.open, 0);
    await f.clock.advance(IDLE);
    assert.deepEqual(f.deleted, ["c1"]);
    assert.equal(b.conversations.open, 0);
  });

  it("caps: past an account's or the instance's cap, the least recently used is deleted and its turn says why", async () => {
    const f = fleet();
    const a = f.instance("A", { perAccount: 2, total: 3 });
    await keepFresh(a, "c1", "d1");
    await keepFresh(a, "c2", "d2");
    // c1 continued: the most recently used now, so c2 is the least.
    const claimed = (await a.threads.claim(SCOPE, TOKENS, "d1")) as Claimed;
    assert.ok(await a.threads.keep({ ...claimed, scope: SCOPE, tokens: TOKENS, digest: "d1b", claimed }));
    await keepFresh(a, "c3", "d3");
    await settled();
    assert.deepEqual(f.deleted, ["c2"], "the account's least recently used");
    assert.equal(await a.threads.claim(SCOPE, TOKENS, "d2"), "evicted");
    assert.equal(a.threads.kept, 2);
    // Another account: within its own cap, but the instance holds 3, then 4: its least recently used goes.
    await keepFresh(a, "c4", "d4", "live-a");
    await keepFresh(a, "c5", "d5", "live-a");
    await settled();
    assert.deepEqual(f.deleted, ["c2", "c1"]);
    assert.equal(a.threads.kept, 3);
    assert.equal(a.conversations.open, 3);
    // A conversation in a turn is never the one evicted.
    const busy = (await a.threads.claim(SCOPE, TOKENS, "d3")) as Claimed;
    assert.ok(busy);
    await keepFresh(a, "c6", "d6", "live-a");
    await settled();
    assert.deepEqual(f.deleted, ["c2", "c1", "c4"]);
  });

  it("shutdown deletes what this instance holds; a stale holder lets go of what another deleted", async () => {
    const f = fleet();
    const a = f.instance("A");
    const b = f.instance("B");
    const { handle } = await keepFresh(a, "c1", "d1");
    const claimed = (await b.threads.claim(SCOPE, TOKENS, "d1")) as Claimed | undefined;
    await b.threads.keep({ scope: SCOPE, tokens: TOKENS, handle, token: "live-b", cid: "c1", digest: "d2", claimed });
    await Promise.all([a.threads.endAll(), b.threads.endAll()]);
    await settled();
    assert.deepEqual(f.deleted, ["c1"]);
    assert.equal(a.conversations.open + b.conversations.open, 0);
  });

  it("end: only with the account's tokens; then it is gone for claims and handles", async () => {
    const f = fleet();
    const a = f.instance("A");
    const b = f.instance("B");
    const { handle } = await keepFresh(a, "c1", "d1");
    assert.equal(await b.threads.end(handle, ["live-x"]), false);
    assert.equal(await b.threads.end(handle, TOKENS), true);
    await settled();
    assert.deepEqual(f.deleted, ["c1"]);
    assert.equal(await b.threads.end(handle, TOKENS), false);
    assert.equal(await a.threads.claim(SCOPE, TOKENS, "d1"), undefined);
    assert.equal(await a.threads.claimHandle(handle, TOKENS), undefined);
    // A's idle timer finds it ended elsewhere: no second delete.
    await f.clock.advance(IDLE * 2);
    assert.deepEqual(f.deleted, ["c1"]);
    assert.equal(a.conversations.open + b.conversations.open, 0);
  });

  it("claimHandle continues by handle; its transcript is consumed with it", async () => {
    const f = fleet();
    const a = f.instance("A");
    const { handle } = await keepFresh(a, "c1", "d1");
    assert.equal(await a.threads.claimHandle(handle, ["live-x"]), undefined);
    const claimed = await a.threads.claimHandle(handle, TOKENS);
    assert.equal(claimed?.cid, "c1");
    assert.equal(await a.threads.claimHandle(handle, TOKENS), undefined, "busy in its turn");
    assert.equal(await a.threads.claim(SCOPE, TOKENS, "d1"), undefined);
  });

  it("claimHandle with expect: only in the conversation's scope, and only while it holds the digest named", async () => {
    const f = fleet();
    const a = f.instance("A");
    const { handle } = await keepFresh(a, "c1", "d1");
    await a.threads.name("resp_1", { handle, digest: "d1" });
    assert.deepEqual(await a.threads.named("resp_1"), { handle, digest: "d1" });
    assert.equal(await a.threads.named("resp_unknown"), undefined);
    assert.equal(await a.threads.claimHandle(handle, TOKENS, { scope: "other", digest: "d1" }), undefined);
    assert.equal(await a.threads.claimHandle(handle, TOKENS, { scope: SCOPE, digest: "d0" }), undefined);
    const claimed = await a.threads.claimHandle(handle, TOKENS, { scope: SCOPE, digest: "d1" });
    assert.deepEqual([claimed?.cid, claimed?.digest], ["c1", "d1"]);
    // Its next turn keeps it under a new digest: the first name no longer claims it, the second does.
    const d2 = continuedDigest("d1", "emohaa", [{ role: "user", content: "more" }, {
      role: "assistant",
      content: "ok",
    }]);
    assert.ok(
      await a.threads.keep({ scope: SCOPE, tokens: TOKENS, handle, token: "live-b", cid: "c1", digest: d2, claimed }),
    );
    await a.threads.name("resp_2", { handle, digest: d2 });
    assert.equal(await a.threads.claimHandle(handle, TOKENS, { scope: SCOPE, digest: "d1" }), undefined, "moved on");
    assert.equal((await a.threads.claimHandle(handle, TOKENS, { scope: SCOPE, digest: d2 }))?.cid, "c1");
    // Names are stored hashed: the store holds no id a client could continue with.
    assert.ok(!JSON.stringify(await f.store.get(["thread-n", "resp_2"])).includes(handle));
    // A name lapses with the conversation's records.
    await f.clock.advance(IDLE + 700_000);
    assert.equal(await a.threads.named("resp_2"), undefined);
  });

  it("continuedDigest chains on the digest held and matches no whole transcript", () => {
    const turn = [{ role: "user", content: "B" }, { role: "assistant", content: "ok" }];
    const d = continuedDigest("d1", "emohaa", turn);
    assert.notEqual(d, continuedDigest("d2", "emohaa", turn));
    assert.notEqual(d, transcriptDigest("emohaa", turn));
    assert.match(d, /^[0-9a-f]{64}$/);
  });
});
