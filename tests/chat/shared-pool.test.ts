// lib/chat/shared-pool.ts: two pools on one store behave as two instances sharing their accounts.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type Lease, type Outcome, TokenPool } from "../../lib/chat/pool.ts";
import { SharedPool, type SharedPoolOptions } from "../../lib/chat/shared-pool.ts";
import { ApiError } from "../../lib/errors.ts";
import { kvStore } from "../../lib/state/kv.ts";
import { memoryStore } from "../../lib/state/memory.ts";
import type { StateStore } from "../../lib/state/store.ts";

const OPTIONS = {
  perToken: 1,
  authCooldownMs: 60_000,
  failCooldownMs: 5_000,
  failThreshold: 2,
  queueTimeoutMs: 2_000,
  queueMax: 10,
};

/** Pools named a, b, ... on one store, closed by `end`. */
function fleet(store: StateStore = memoryStore(), extra: Partial<SharedPoolOptions> = {}) {
  const pools: SharedPool[] = [];
  const errors: string[] = [];
  const pool = (owner: string, more: Partial<SharedPoolOptions> = {}) => {
    const p = new SharedPool({
      ...OPTIONS,
      store,
      owner,
      viewTtlMs: 0,
      retryMs: 50,
      onError: (m) => errors.push(m),
      ...extra,
      ...more,
    });
    pools.push(p);
    return p;
  };
  const end = async () => {
    for (const p of pools) p.close();
    await store.close();
  };
  return { store, pool, errors, end };
}

const never = new AbortController().signal;
const none = new Set<string>();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("SharedPool", () => {
  it("acquire lends each account to one request across instances; a waiter is woken by another instance's release", async () => {
    const f = fleet();
    try {
      const a = f.pool("a");
      const b = f.pool("b");
      const first = (await a.acquire(["live-1"], none, never))!;
      assert.equal(first.token, "live-1");
      let got: Lease | undefined;
      const waiting = b.acquire(["live-1"], none, never).then((l) => (got = l));
      await sleep(30);
      assert.equal(got, undefined);
      assert.equal(b.waiting, 1);
      first.release();
      await waiting;
      assert.equal(got!.token, "live-1");
      assert.equal(b.active, 1);
      assert.equal(a.active, 0);
      got!.release();
    } finally {
      await f.end();
    }
  });

  it("acquire spreads requests over healthy accounts and resolves undefined when every one was tried", async () => {
    const f = fleet();
    try {
      const a = f.pool("a");
      const leases = await Promise.all([
        a.acquire(["live-1", "live-2", "live-3"], none, never),
        a.acquire(["live-1", "live-2", "live-3"], none, never),
      ]);
      assert.notEqual(leases[0]!.token, leases[1]!.token);
      leases.forEach((l) => l!.release());
      assert.equal(await a.acquire(["live-1"], new Set(["live-1"]), never), undefined);
    } finally {
      await f.end();
    }
  });

  it("report shares health: an account rejected through one instance is skipped by the others", async () => {
    const f = fleet();
    try {
      const a = f.pool("a");
      const b = f.pool("b");
      a.report("expired-1", "auth");
      await sleep(10);
      for (let i = 0; i < 4; i++) {
        const l = (await b.acquire(["expired-1", "live-1"], none, never))!;
        assert.equal(l.token, "live-1");
        l.release();
        await sleep(5);
      }
      const [s] = await b.status(["expired-1"]);
      assert.equal(s!.state, "cooling");
      assert.equal(s!.lastError, "auth");
    } finally {
      await f.end();
    }
  });

  it("a rejection is in the store before the instance that saw it takes its next lease (no other instance is handed it meanwhile)", async () => {
    const inner = memoryStore();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    // A store whose health writes are slow (Deno KV under contention): the write lands only when released.
    const store: StateStore = Object.assign(Object.create(inner), {
      reportHealth: (account: string, update: Parameters<StateStore["reportHealth"]>[1]) =>
        held.then(() => inner.reportHealth(account, update)),
    });
    const f = fleet(store);
    try {
      const a = f.pool("a");
      const b = f.pool("b");
      a.report("expired-1", "auth");
      // Instance a fails over: its take waits for the write.
      let failedOver: Lease | undefined;
      const failover = a.acquire(["live-1", "expired-1"], new Set(["expired-1"]), never).then((l) => (failedOver = l));
      await sleep(20);
      assert.equal(failedOver, undefined, "the failover waits for the rejection to be shared");
      release();
      await failover;
      assert.equal(failedOver!.token, "live-1");
      const l = (await b.acquire(["expired-1", "live-2"], none, never))!;
      assert.equal(l.token, "live-2", "the other instance skips the account once the failover has its lease");
      l.release();
      failedOver!.release();
    } finally {
      await f.end();
    }
  });

  it("the one health rule: the in-process pool and the shared one come to the same states from the same outcomes", async () => {
    let t = 1_000_000;
    const now = () => t;
    const f = fleet(memoryStore({ now }), { now });
    try {
      const shared = f.pool("a");
      const local = new TokenPool({ ...OPTIONS, now });
      const sequences: Outcome[][] = [
        ["auth"],
        ["server"],
        ["server", "timeout"],
        ["network", "ok", "network"],
        ["busy", "rate", "protocol"],
        ["timeout", "timeout", "ok"],
        ["auth", "ok"],
      ];
      const view = (s: { state: string; lastError: string | null; coolingUntil: string | null }) => ({
        state: s.state,
        lastError: s.lastError,
        coolingUntil: s.coolingUntil,
      });
      for (const [i, seq] of sequences.entries()) {
        const token = `live-rule-${i}`;
        for (const o of seq) {
          t += 10;
          local.report(token, o);
          shared.report(token, o);
          await sleep(1);
        }
        const [a] = local.status([token]);
        const [b] = await shared.status([token]);
        assert.deepEqual(view(b!), view(a!), seq.join(","));
      }
    } finally {
      await f.end();
    }
  });

  it("report of a success on an account known healthy writes nothing to the store", async () => {
    const f = fleet(memoryStore());
    try {
      const a = f.pool("a");
      (await a.acquire(["live-1"], none, never))!.release();
      await sleep(5);
      const before = f.store.health().calls;
      for (let i = 0; i < 10; i++) a.report("live-1", "ok");
      assert.equal(f.store.health().calls, before);
      a.report("live-1", "server");
      a.report("live-1", "ok");
      await sleep(5);
      assert.equal(f.store.health().calls, before + 2);
    } finally {
      await f.end();
    }
  });

  it("lending costs one store call and giving back one, for tokens never seen before too; a cooldown from elsewhere is honoured at once", async () => {
    const f = fleet();
    try {
      const a = f.pool("a");
      const b = f.pool("b");
      for (let i = 0; i < 5; i++) {
        // Fresh client tokens each time: no health read before the take, the take reads it.
        const tokens = [`live-${i}-1`, `live-${i}-2`];
        const before = f.store.health().calls;
        const l = (await b.acquire(tokens, none, never))!;
        assert.equal(f.store.health().calls - before, 1, "one call to lend");
        l.release();
        await sleep(1);
        assert.equal(f.store.health().calls - before, 2, "one call to give back");
      }
      // b has just seen live-0-1 healthy; a learns it is dead: b's next take skips it, with no read of its own.
      a.report("live-0-1", "auth");
      await sleep(5);
      for (let i = 0; i < 3; i++) {
        const l = (await b.acquire(["live-0-1", "live-0-2"], none, never))!;
        assert.equal(l.token, "live-0-2");
        l.release();
        await sleep(1);
      }
    } finally {
      await f.end();
    }
  });

  it("counts show the pool as every instance sees it, read at most every viewTtlMs, and this instance's view when the store fails", async () => {
    const store = memoryStore();
    const f = fleet(store);
    try {
      const tokens = ["live-1", "live-2", "expired-1"];
      const a = f.pool("a");
      const b = f.pool("b", { tokens: () => tokens, viewTtlMs: 60_000 });
      const held = (await a.acquire(["live-1"], none, never))!;
      a.report("expired-1", "auth");
      await sleep(5);
      // b never lent anything nor heard of the rejection itself.
      assert.deepEqual(await b.counts(), { healthy: 1, cooling: 1, busy: 1 });
      held.release();
      await sleep(5);
      const calls = store.health().calls;
      assert.deepEqual(await b.counts(), { healthy: 1, cooling: 1, busy: 1 }, "cached");
      assert.equal(store.health().calls, calls, "no store call within viewTtlMs");
      const c = f.pool("c", { tokens: () => tokens, viewTtlMs: 0 });
      assert.deepEqual(await c.counts(), { healthy: 2, cooling: 1, busy: 0 });
      await store.close();
      assert.deepEqual(await c.counts(), { healthy: 2, cooling: 1, busy: 0 }, "its own view: it read the cooldown");
    } finally {
      await f.end();
    }
  });

  it("counts never wait on a store that hangs beyond its timeout: this instance's view then", async () => {
    const hang = () => new Promise<never>(() => {});
    // A Deno KV that accepts calls and never answers (kvStore is pure: any KvLike will do, under Bun too).
    const kv = {
      get: hang,
      getMany: hang,
      set: hang,
      delete: hang,
      list: () => ({ [Symbol.asyncIterator]: () => ({ next: hang }) }),
      atomic: () => {
        const a = { check: () => a, set: () => a, delete: () => a, commit: hang };
        return a;
      },
      watch: () => new ReadableStream(),
      close() {},
    };
    const f = fleet(kvStore(kv, { timeoutMs: 200 }));
    try {
      const p = f.pool("a", { tokens: () => ["live-1", "live-2"] });
      const t0 = performance.now();
      assert.deepEqual(await p.counts(), { healthy: 2, cooling: 0, busy: 0 });
      assert.ok(performance.now() - t0 < 1_000, `answered after ${Math.round(performance.now() - t0)} ms`);
      await assert.rejects(
        p.acquire(["live-1"], none, never),
        (e: unknown) => e instanceof ApiError && e.status === 503,
      );
    } finally {
      await f.end();
    }
  });

  it("status shows every instance's leases from the store", async () => {
    const f = fleet();
    try {
      const a = f.pool("a");
      const b = f.pool("b");
      const l = (await a.acquire(["live-1"], none, never))!;
      const [s] = await b.status(["live-1"]);
      assert.deepEqual({ state: s!.state, inFlight: s!.inFlight }, { state: "busy", inFlight: 1 });
      assert.ok(!JSON.stringify(s).includes("live-1"));
      l.release();
    } finally {
      await f.end();
    }
  });

  it("a waiter gets 429 with retry-after after the queue timeout, and a full queue refuses at once", async () => {
    const f = fleet(memoryStore(), { queueTimeoutMs: 150, queueMax: 1 });
    try {
      const a = f.pool("a");
      const held = (await a.acquire(["live-1"], none, never))!;
      const started = Date.now();
      const waited = a.acquire(["live-1"], none, never).catch((e) => e);
      const refused = await a.acquire(["live-1"], none, never).catch((e) => e);
      assert.ok(refused instanceof ApiError && refused.status === 429 && refused.code === "accounts_busy");
      const err = await waited;
      assert.ok(err instanceof ApiError && err.status === 429 && (err.retryAfter ?? 0) >= 1);
      assert.ok(Date.now() - started >= 140);
      held.release();
    } finally {
      await f.end();
    }
  });

  it("a store that fails makes acquire and waiters fail closed with 503 state_unavailable", async () => {
    const store = memoryStore();
    const f = fleet(store);
    const a = f.pool("a");
    const held = (await a.acquire(["live-1"], none, never))!;
    const waiting = a.acquire(["live-1"], none, never).catch((e) => e);
    await sleep(20);
    await store.close();
    held.release(); // the free fails: counted and logged, and the waiter's retry meets the closed store
    const err = await waiting;
    assert.ok(
      err instanceof ApiError && err.status === 503 && err.code === "state_unavailable" && err.retryAfter === 1,
      String(err),
    );
    await assert.rejects(
      a.acquire(["live-2"], none, never),
      (e: unknown) => e instanceof ApiError && e.code === "state_unavailable",
    );
    assert.ok(a.counters.writeFailures >= 1);
    assert.equal(f.errors.length, 1, "one log line for a run of failures");
    a.close();
  });

  it("live leases are renewed in one batch; a closed instance's leases lapse after the TTL and others take them", async () => {
    const f = fleet(memoryStore(), { leaseTtlMs: 150 });
    try {
      const a = f.pool("a");
      const b = f.pool("b");
      const held = (await a.acquire(["live-1"], none, never))!;
      let got: Lease | undefined;
      const waiting = b.acquire(["live-1"], none, never).then((l) => (got = l));
      await sleep(400); // more than two TTLs: only renewals keep the lease
      assert.equal(got, undefined);
      a.close(); // as if the instance died: no more renewals, no free
      const closedAt = Date.now();
      await waiting;
      assert.ok(Date.now() - closedAt < 150 + 50 + 100, `took ${Date.now() - closedAt} ms`);
      assert.equal(got!.token, "live-1");
      got!.release();
      void held;
    } finally {
      await f.end();
    }
  });

  it("a client that leaves the queue never gets a lease", async () => {
    const f = fleet();
    try {
      const a = f.pool("a");
      const held = (await a.acquire(["live-1"], none, never))!;
      const ac = new AbortController();
      const left = a.acquire(["live-1"], none, ac.signal).catch((e) => e);
      await sleep(10);
      ac.abort();
      assert.ok((await left) instanceof ApiError);
      assert.equal(a.waiting, 0);
      held.release();
      await sleep(20);
      assert.equal(a.active, 0);
    } finally {
      await f.end();
    }
  });
});
