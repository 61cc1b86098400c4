// lib/http/eviction.ts: which connection makes room at the cap, and how evicted sockets are closed.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { defaultMaxConnections, Eviction } from "../../lib/http/eviction.ts";

class FakeConn {
  closed: boolean | "lingering" = false;
  constructor(public state: string, public since: number, private readonly policy: Eviction<FakeConn>) {}
  destroy(linger = false): void {
    this.closed = linger ? "lingering" : true;
    this.policy.all.delete(this);
    this.policy.idle.delete(this);
    this.policy.reading.delete(this);
  }
}

function policy(maxConnections: number, lingerMs = 0) {
  const p = new Eviction<FakeConn>({ maxConnections, evictGraceMs: 20, bodyGraceMs: 1000, lingerMs });
  const add = (state: string, since: number, set: "idle" | "reading") => {
    const c = new FakeConn(state, since, p);
    p.all.add(c);
    p[set].add(c);
    return c;
  };
  return { p, add };
}

describe("Eviction", () => {
  it("below three quarters of the cap admits without evicting", () => {
    const { p, add } = policy(8);
    for (let i = 0; i < 5; i++) add("busy", 0, "reading");
    assert.equal(p.admit(1), true);
    assert.ok([...p.all].every((c) => c.closed === false));
  });

  it("makes room with the longest-idle connection first, then the oldest silent one past its grace", () => {
    const { p, add } = policy(4);
    const silent = add("idle", 0, "reading");
    const idle1 = add("idle", 5, "idle");
    add("busy", 0, "reading");
    assert.equal(p.admit(10), true);
    assert.equal(idle1.closed, "lingering", "the idle one goes first");
    assert.equal(silent.closed, false);
    add("idle", 9, "reading");
    assert.equal(p.admit(10), true, "at 3 of 4, the silent ones within their grace: taken without evicting");
    assert.equal(silent.closed, false);
    assert.equal(p.admit(30), true);
    assert.equal(silent.closed, "lingering", "past its grace, the oldest silent one goes");
  });

  it("at the cap the oldest goes whatever its age; a connection serving a request, or reading a body in its grace, never", () => {
    const { p, add } = policy(4);
    const serving = add("busy", 0, "reading");
    p.reading.delete(serving); // handled: no longer evictable
    const body = add("busy", 5, "reading");
    const young = add("idle", 9, "reading");
    add("head", 8, "reading");
    assert.equal(p.admit(10), true);
    assert.equal(young.closed, "lingering");
    assert.equal(body.closed, false);
    assert.equal(serving.closed, false);
  });

  it("shed closes one connection not serving a request; retire ends a socket after lingerMs, at once past the bound", async () => {
    const { p, add } = policy(4, 20);
    const busy = add("busy", 0, "reading");
    assert.equal(p.shed(), false);
    assert.equal(busy.closed, false);
    const waiting = add("head", 0, "reading");
    assert.equal(p.shed(), true);
    assert.equal(waiting.closed, true);
    const events: string[] = [];
    const wire = (n: number) => ({ pause: () => events.push(`pause ${n}`), end: () => events.push(`end ${n}`) });
    for (let i = 0; i < 5; i++) p.retire(wire(i));
    assert.deepEqual(events, ["pause 0", "pause 1", "pause 2", "pause 3", "end 4"]);
    await new Promise((r) => setTimeout(r, 60));
    assert.deepEqual(events.filter((e) => e.startsWith("end")).sort(), ["end 0", "end 1", "end 2", "end 3", "end 4"]);
  });

  it("defaultMaxConnections leaves room for the runtime and upstream connections", () => {
    assert.equal(defaultMaxConnections(96), 42);
    assert.ok(defaultMaxConnections(20_000) > 1000);
    assert.equal(defaultMaxConnections(undefined), 4096);
  });
});
