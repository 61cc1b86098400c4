import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type PoolOptions, tokenHash, TokenPool } from "../../lib/chat/pool.ts";
import { ApiError } from "../../lib/errors.ts";

const opts = (o: Partial<PoolOptions> = {}): PoolOptions => ({
  perToken: 1,
  authCooldownMs: 600_000,
  failCooldownMs: 30_000,
  failThreshold: 2,
  queueTimeoutMs: 1000,
  queueMax: 10,
  ...o,
});
const never = new AbortController().signal;
const none = new Set<string>();

describe("TokenPool", () => {
  it("lends a token with nothing in flight, least recently used first", async () => {
    const pool = new TokenPool(opts());
    const a = await pool.acquire(["a", "b"], none, never);
    const b = await pool.acquire(["a", "b"], none, never);
    assert.notEqual(a!.token, b!.token);
    assert.equal(pool.active, 2);
  });

  it("among idle tokens, lends the one whose last lease began longest ago, whatever the list's order", async () => {
    let t = 1000;
    const pool = new TokenPool(opts({ perToken: 2, now: () => t }));
    const use = async (tokens: string[]) => {
      const lease = (await pool.acquire(tokens, none, never))!;
      t += 10;
      lease.release();
      return lease.token;
    };
    // Every token idle: the list's order alone would give "a" every time.
    assert.equal(await use(["a", "b", "c"]), "a");
    assert.equal(await use(["a", "b", "c"]), "b");
    assert.equal(await use(["a", "b", "c"]), "c");
    assert.equal(await use(["a", "b", "c"]), "a");
    // "b" used last now, "a" just before it: "c" is the least recently used, then "a".
    assert.equal(await use(["b"]), "b");
    assert.equal(await use(["c", "b", "a"]), "c");
    assert.equal(await use(["b", "a"]), "a");
  });

  it("queues when all are busy and hands a freed token to the first waiter (FIFO)", async () => {
    const pool = new TokenPool(opts());
    const held = await pool.acquire(["a"], none, never);
    const order: number[] = [];
    const w1 = pool.acquire(["a"], none, never).then((l) => (order.push(1), l!));
    const w2 = pool.acquire(["a"], none, never).then((l) => (order.push(2), l!));
    assert.equal(pool.waiting, 2);
    held!.release();
    (await w1).release();
    (await w2).release();
    assert.deepEqual(order, [1, 2]);
    assert.equal(pool.active, 0);
  });

  it("a queue timeout is a 429 with retry-after", async () => {
    const pool = new TokenPool(opts({ queueTimeoutMs: 50 }));
    await pool.acquire(["a"], none, never);
    await assert.rejects(
      pool.acquire(["a"], none, never),
      (e: unknown) => e instanceof ApiError && e.status === 429 && e.retryAfter! >= 1,
    );
    assert.equal(pool.waiting, 0);
  });

  it("a full queue refuses at once with 429", async () => {
    const pool = new TokenPool(opts({ queueMax: 1 }));
    await pool.acquire(["a"], none, never);
    const waiting = pool.acquire(["a"], none, never);
    await assert.rejects(pool.acquire(["a"], none, never), (e: unknown) => e instanceof ApiError && e.status === 429);
    waiting.catch(() => {});
  });

  it("a waiter whose client leaves is removed at once", async () => {
    const pool = new TokenPool(opts());
    const held = await pool.acquire(["a"], none, never);
    const ac = new AbortController();
    const p = pool.acquire(["a"], none, ac.signal);
    ac.abort();
    await assert.rejects(p, (e: unknown) => e instanceof ApiError && e.status === 499);
    assert.equal(pool.waiting, 0);
    held!.release();
    assert.equal(pool.active, 0);
  });

  it("a rejected token cools down and is used only when no healthy token is left", async () => {
    let now = 1000;
    const pool = new TokenPool(opts({ now: () => now }));
    pool.report("dead", "auth");
    for (let i = 0; i < 5; i++) {
      const l = await pool.acquire(["dead", "live"], none, never);
      assert.equal(l!.token, "live");
      l!.release();
    }
    const last = await pool.acquire(["dead"], none, never);
    assert.equal(last!.token, "dead");
    last!.release();
    assert.equal(pool.status(["dead"])[0]!.state, "cooling");
    now += 600_001;
    assert.equal(pool.status(["dead"])[0]!.state, "healthy");
  });

  it("repeated transient failures cool a token briefly; a success clears it", () => {
    const now = 0;
    const pool = new TokenPool(opts({ now: () => now }));
    pool.report("t", "server");
    assert.equal(pool.status(["t"])[0]!.state, "healthy");
    pool.report("t", "timeout");
    assert.equal(pool.status(["t"])[0]!.state, "cooling");
    pool.report("t", "ok");
    assert.deepEqual(pool.status(["t"])[0], {
      label: pool.status(["t"])[0]!.label,
      state: "healthy",
      inFlight: 0,
      coolingUntil: null,
      lastError: null,
      expiresAt: null,
    });
  });

  it("busy and rate limits say nothing about health", () => {
    const pool = new TokenPool(opts());
    for (let i = 0; i < 5; i++) pool.report("t", "busy");
    assert.equal(pool.status(["t"])[0]!.state, "healthy");
  });

  it("returns undefined when every token was tried", async () => {
    const pool = new TokenPool(opts());
    assert.equal(await pool.acquire(["a"], new Set(["a"]), never), undefined);
  });

  it("status shows a masked label, never the token", () => {
    const pool = new TokenPool(opts());
    const [s] = pool.status(["super-secret-token"]);
    assert.equal(s!.label, "…" + tokenHash("super-secret-token").slice(-4));
    assert.ok(!JSON.stringify(pool.status()).includes("super-secret"));
  });
});
