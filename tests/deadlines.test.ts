import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Deadlines } from "../lib/deadlines.ts";
import { fakeClock } from "./support/clock.ts";

/** Deadlines on a fake clock, with what fired in order. */
function setup() {
  const clock = fakeClock(0);
  const d = new Deadlines({
    now: clock.now,
    setTimeout: (fn, ms) => clock.setTimeout(fn, ms) as ReturnType<typeof setTimeout>,
    clearTimeout: (t) => clock.clearTimeout(t),
  });
  const fired: string[] = [];
  const at = (name: string) => () => void fired.push(`${name}@${clock.now()}`);
  return { clock, d, fired, at };
}

describe("Deadlines", () => {
  it("fires deadlines of one length in order, each at its time, from one timer", async () => {
    const { clock, d, fired, at } = setup();
    d.add(100, at("a"));
    await clock.advance(10);
    d.add(100, at("b"));
    await clock.advance(30);
    d.add(100, at("c"));
    assert.equal(clock.pending, 1, "one timer for the three");
    await clock.advance(200);
    assert.deepEqual(fired, ["a@100", "b@110", "c@140"]);
    assert.equal(clock.pending, 0);
    assert.equal(d.pending, 0);
  });

  it("never fires a cancelled deadline, and lets the timer go when none is left", async () => {
    const { clock, d, fired, at } = setup();
    const a = d.add(100, at("a"));
    const b = d.add(100, at("b"));
    a.cancel();
    a.cancel();
    await clock.advance(100);
    assert.deepEqual(fired, ["b@100"]);
    const c = d.add(50, at("c"));
    c.cancel();
    assert.equal(clock.pending, 0, "no timer for a queue whose deadlines were all cancelled");
    b.cancel(); // after it fired: nothing
    await clock.advance(100);
    assert.deepEqual(fired, ["b@100"]);
  });

  it("keeps each length apart: a short deadline set after a long one fires first", async () => {
    const { clock, d, fired, at } = setup();
    d.add(1000, at("long"));
    d.add(10, at("short"));
    assert.equal(clock.pending, 2, "a timer per length");
    await clock.advance(1000);
    assert.deepEqual(fired, ["short@10", "long@1000"]);
  });

  it("takes a deadline set while one fires, and drops cancelled ones in bulk without losing the rest", async () => {
    const { clock, d, fired, at } = setup();
    d.add(100, () => {
      fired.push(`first@${clock.now()}`);
      d.add(100, at("second"));
    });
    const many = Array.from({ length: 300 }, (_, i) => d.add(100, at(`m${i}`)));
    for (const m of many.slice(0, 290)) m.cancel();
    assert.equal(d.pending, 11);
    await clock.advance(100);
    assert.deepEqual(fired, ["first@100", ...many.slice(290).map((_, i) => `m${290 + i}@100`)]);
    await clock.advance(100);
    assert.equal(fired.at(-1), "second@200");
    assert.equal(d.pending, 0);
    assert.equal(clock.pending, 0);
  });
});
