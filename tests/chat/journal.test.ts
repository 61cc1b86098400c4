import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type JournalEntry, journalFor, journalLine, replayJournal, resolveEntries } from "../../lib/chat/journal.ts";
import { tokenHash } from "../../lib/chat/pool.ts";

describe("replayJournal", () => {
  it("keeps entries added and not removed; ignores junk lines", () => {
    const text = "+ 0 h0 c1\n+ 1 h1 c2\n- c1\ngarbage\n+ x h c3\n+ 2 h2 c4\n";
    assert.deepEqual(replayJournal(text), [{ index: 1, hash: "h1", cid: "c2" }, { index: 2, hash: "h2", cid: "c4" }]);
  });
});

describe("journalLine", () => {
  it("writes lines replayJournal reads back: added, then removed", () => {
    const a = { index: 0, hash: "h0", cid: "conv-1" };
    const b = { index: 3, hash: "h3", cid: "conv-2" };
    assert.deepEqual(replayJournal(journalLine.add(a) + journalLine.add(b) + journalLine.remove("conv-1")), [b]);
  });
});

describe("resolveEntries", () => {
  it("finds the token by position, or by hash after a reorder; orphans the rest", () => {
    const tokens = ["b", "a"];
    const entries: JournalEntry[] = [
      { cid: "c1", index: 0, hash: tokenHash("b") },
      { cid: "c2", index: 0, hash: tokenHash("a") },
      { cid: "c3", index: 5, hash: tokenHash("gone") },
    ];
    const r = resolveEntries(entries, tokens);
    assert.deepEqual(r.found, [{ token: "b", cid: "c1" }, { token: "a", cid: "c2" }]);
    assert.deepEqual(r.orphaned.map((e) => e.cid), ["c3"]);
  });
});

describe("journalFor", () => {
  it("journals server tokens by position and hash, never a client's token, and swallows store failures", () => {
    const added: JournalEntry[] = [];
    const removed: string[] = [];
    const errors: unknown[] = [];
    const j = journalFor(
      { load: async () => [], add: (e) => void added.push(e), remove: (c) => void removed.push(c) },
      () => ["s0", "s1"],
      (e) => errors.push(e),
    );
    j.created("s1", "c1");
    j.created("client-token", "c2");
    j.deleted("s1", "c1");
    j.deleted("client-token", "c2");
    assert.deepEqual(added, [{ cid: "c1", index: 1, hash: tokenHash("s1") }]);
    assert.deepEqual(removed, ["c1"]);
    assert.ok(!JSON.stringify(added).includes('s1"'));
    const broken = journalFor(
      {
        load: async () => [],
        add: () => {
          throw new Error("disk full");
        },
        remove: () => {},
      },
      () => ["s0"],
      (e) => errors.push(e),
    );
    broken.created("s0", "c9");
    assert.equal(errors.length, 1);
  });
});
