// lib/recent.ts: a bounded memory in two generations.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Recent } from "../lib/recent.ts";

describe("Recent", () => {
  it("holds at most twice what it keeps, and forgets the entries not used for longest", () => {
    const r = new Recent<number, string>(3);
    for (let i = 0; i < 100; i++) {
      r.remember(i, `v${i}`);
      assert.ok(r.size <= 6, `${r.size} entries`);
    }
    assert.equal(r.get(99), "v99");
    assert.equal(r.get(96), "v96");
    assert.equal(r.get(95), undefined);
    assert.equal(r.get(0), undefined);
  });

  it("keeps an entry that is used, however many others come", () => {
    const r = new Recent<string, number>(4);
    r.remember("kept", 1);
    for (let i = 0; i < 1000; i++) {
      r.remember(`other ${i}`, i);
      assert.equal(r.get("kept"), 1, `after ${i} others`);
    }
    assert.ok(r.size <= 8);
  });

  it("replaces a value without counting the key twice", () => {
    const r = new Recent<string, number>(2);
    r.remember("a", 1);
    r.remember("a", 2);
    r.remember("b", 3);
    assert.equal(r.size, 2);
    assert.equal(r.get("a"), 2);
    // Now "a" and "b" are the old generation: "a" remembered again is counted once, with its new value.
    r.remember("c", 4);
    r.remember("a", 5);
    assert.equal(r.size, 3);
    assert.equal(r.get("a"), 5);
  });
});
