// One conformance suite for the state store, run against each backend: memory, Deno KV (a temporary SQLite file;
// only under Deno, as Bun has no Deno KV) and Redis (REDIS_URL, which scripts/test.mjs sets). Several clients of
// one store stand for several gateway instances.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kvStore } from "../../lib/state/kv.ts";
import { memoryStore } from "../../lib/state/memory.ts";
import { CONNECT_AT_START_MS, redisStore } from "../../lib/state/redis.ts";
import { type StateStore, StoreError } from "../../lib/state/store.ts";
import { hasKv, openKv } from "../../runtime/kv.ts";
import { findRedisServer, startRedis } from "../../scripts/redis.mjs";
import { timerBaseline } from "../support/loop.ts";

declare const Deno: any;

interface Backend {
  name: string;
  skip: string | false;
  /** `n` clients of one fresh store (a namespace of their own), as `n` instances would have. */
  clients(n: number): Promise<StateStore[]>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const uid = () => crypto.randomUUID().slice(0, 8);
const tmp = mkdtempSync(join(tmpdir(), "emohaa-state-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const backends: Backend[] = [
  {
    name: "memory",
    skip: false,
    async clients(n) {
      const s = memoryStore();
      return Array.from({ length: n }, () => s);
    },
  },
  {
    name: "kv",
    skip: !hasKv() && "Deno KV exists only under Deno: the KV cases run in the Deno run",
    async clients(n) {
      const path = join(tmp, "state.sqlite3");
      const prefix = `t${uid()}`;
      // Separate Deno.openKv handles on one file: separate SQLite connections, as separate processes have.
      return Promise.all(
        Array.from({ length: n }, async () => {
          const kv = await openKv(path);
          const store = kvStore(kv, { prefix, pollMs: 50 });
          let open = true;
          const close = () => store.close().finally(() => open && ((open = false), kv.close()));
          return { ...store, close };
        }),
      );
    },
  },
  {
    name: "redis",
    skip: !process.env.REDIS_URL && "REDIS_URL is not set (scripts/test.mjs starts a redis-server and sets it)",
    async clients(n) {
      const prefix = `t${uid()}`;
      return Promise.all(Array.from({ length: n }, () => redisStore({ url: process.env.REDIS_URL!, prefix })));
    },
  },
];

/** Runs `f` with `n` clients and closes them after. */
async function using(b: Backend, n: number, f: (s: StateStore[]) => Promise<void>): Promise<void> {
  const stores = await b.clients(n);
  try {
    await f(stores);
  } finally {
    await Promise.all([...new Set(stores)].map((s) => s.close()));
  }
}

for (const b of backends) {
  describe(`StateStore (${b.name})`, { skip: b.skip }, () => {
    it("take never exceeds perAccount across 3 clients with 50 concurrent takers", async () => {
      await using(b, 3, async (stores) => {
        const accounts = ["a1", "a2", "a3"];
        const perAccount = 2;
        const inFlight = new Map<string, number>();
        let peak = 0;
        let served = 0;
        const taker = async (i: number) => {
          const s = stores[i % 3]!;
          for (;;) {
            const lease = await s.take({ owner: `o${i % 3}`, accounts, perAccount, ttlMs: 30_000 });
            if (!lease) {
              await sleep(2 + Math.random() * 5);
              continue;
            }
            const n = (inFlight.get(lease.account) ?? 0) + 1;
            inFlight.set(lease.account, n);
            peak = Math.max(peak, n);
            await sleep(1 + Math.random() * 3);
            inFlight.set(lease.account, inFlight.get(lease.account)! - 1);
            assert.equal(await s.free(lease), true);
            served++;
            return;
          }
        };
        await Promise.all(Array.from({ length: 50 }, (_, i) => taker(i)));
        assert.equal(served, 50);
        assert.ok(peak <= perAccount, `peak ${peak} leases on one account`);
        assert.deepEqual([...(await stores[0]!.inFlight(accounts)).values()], [0, 0, 0]);
      });
    });

    it("take follows the preference order and answers null when every account is full", async () => {
      await using(b, 2, async ([s1, s2]) => {
        const l1 = await s1!.take({ owner: "i1", accounts: ["x", "y"], perAccount: 1 });
        const l2 = await s2!.take({ owner: "i2", accounts: ["x", "y"], perAccount: 1 });
        const l3 = await s2!.take({ owner: "i2", accounts: ["y", "x"], perAccount: 1 });
        assert.deepEqual([l1?.account, l2?.account, l3], ["x", "y", null]);
        assert.equal(l1!.owner, "i1");
        assert.ok(l1!.id.startsWith("i1."));
        assert.ok(l1!.expiresAt > Date.now() + 10_000, "the default TTL is in force");
        assert.deepEqual(Object.fromEntries(await s1!.inFlight(["x", "y", "z"])), { x: 1, y: 1, z: 0 });
        // More accounts than one read or one commit of some backends holds (Deno KV reads 10 keys at a time).
        const many = Array.from({ length: 12 }, (_, i) => `m${i}`);
        const leases = [];
        for (let i = 0; i < 12; i++) leases.push((await s1!.take({ owner: "i1", accounts: many, perAccount: 1 }))!);
        assert.deepEqual(leases.map((l) => l.account), many);
        assert.equal(await s2!.take({ owner: "i2", accounts: many, perAccount: 1 }), null);
        assert.deepEqual(await s1!.renew("i1", leases), []);
        assert.deepEqual([...(await s2!.inFlight(many)).values()], Array(12).fill(1));
      });
    });

    it("free gives the account to the next taker, once", async () => {
      await using(b, 2, async ([s1, s2]) => {
        const l1 = await s1!.take({ owner: "i1", accounts: ["x"], perAccount: 1 });
        assert.equal(await s2!.take({ owner: "i2", accounts: ["x"], perAccount: 1 }), null);
        assert.equal(await s1!.free(l1!), true);
        assert.equal(await s1!.free(l1!), false);
        assert.equal((await s2!.take({ owner: "i2", accounts: ["x"], perAccount: 1 }))?.account, "x");
      });
    });

    it("renew keeps an owner's leases; an owner that stops renewing loses them after the TTL", async () => {
      await using(b, 2, async ([s1, s2]) => {
        // Generous margins: the machine may be busy, and a late renewal must not look like a lost lease.
        const ttlMs = 1_000;
        const kept = await s1!.take({ owner: "live", accounts: ["k"], perAccount: 1, ttlMs });
        const dropped = await s2!.take({ owner: "dead", accounts: ["d"], perAccount: 1, ttlMs });
        for (let i = 0; i < 8; i++) {
          await sleep(150);
          assert.deepEqual(await s1!.renew("live", [kept!], ttlMs), []);
        }
        // 1.2 s after the take: the dead owner's lease is gone, the renewed one is held.
        assert.equal((await s1!.take({ owner: "other", accounts: ["d"], perAccount: 1, ttlMs }))?.account, "d");
        assert.equal(await s1!.take({ owner: "other", accounts: ["k"], perAccount: 1, ttlMs }), null);
        assert.deepEqual(await s2!.renew("dead", [dropped!], ttlMs), [dropped!.id]);
        assert.deepEqual(await s2!.renew("thief", [kept!], ttlMs), [kept!.id], "only the owner renews");
        assert.deepEqual(await s1!.renew("live", [], ttlMs), []);
      });
    });

    it("health reported by one client is seen by the others, with failures counted atomically", async () => {
      await using(b, 3, async ([s1, s2, s3]) => {
        const cool = await s1!.reportHealth("h1", { kind: "cool", error: "auth", cooldownMs: 60_000 });
        assert.equal(cool.lastError, "auth");
        assert.ok(cool.coolingUntil > Date.now() + 50_000);
        const fail = { kind: "fail", error: "server", threshold: 4, cooldownMs: 30_000 } as const;
        await Promise.all([s1, s2, s3, s1].map((s) => s!.reportHealth("h2", fail)));
        const seen = await s3!.readHealth(["h1", "h2", "h3"]);
        assert.equal(seen.get("h1")?.lastError, "auth");
        assert.equal(seen.get("h2")?.fails, 4);
        assert.ok(seen.get("h2")!.coolingUntil > Date.now(), "the fourth failure started the cooldown");
        assert.equal(seen.has("h3"), false);
        assert.deepEqual(await s2!.reportHealth("h1", { kind: "ok" }), { coolingUntil: 0, lastError: null, fails: 0 });
        assert.equal((await s3!.readHealth(["h1"])).size, 0);
        assert.equal((await s2!.reportHealth("h4", { kind: "note", error: "busy" })).coolingUntil, 0);
      });
    });

    it("a health-aware take skips accounts any client cooled, takes cooling ones last (soonest end first), and returns the health", async () => {
      await using(b, 2, async ([s1, s2]) => {
        const req = { owner: "i2", accounts: ["c1", "c2", "c3", "c4"], perAccount: 1, skipCooling: true };
        const warm = await s2!.take(req); // s2 has seen c1 healthy and free
        assert.deepEqual([warm?.account, warm?.health], ["c1", null]);
        await s2!.free(warm!);
        await s1!.reportHealth("c1", { kind: "cool", error: "auth", cooldownMs: 60_000 });
        await s1!.reportHealth("c2", { kind: "cool", error: "auth", cooldownMs: 30_000 });
        await s1!.reportHealth("c3", { kind: "note", error: "busy" });
        const l3 = await s2!.take(req);
        assert.equal(l3?.account, "c3", "c1 and c2 cool: the first other one");
        assert.deepEqual(l3?.health, { coolingUntil: 0, lastError: "busy", fails: 0 });
        assert.equal((await s2!.take(req))?.account, "c4");
        const l2 = await s2!.take(req);
        assert.equal(l2?.account, "c2", "then the cooling one that ends first");
        assert.equal(l2?.health?.lastError, "auth");
        assert.equal((await s2!.take(req))?.account, "c1");
        assert.equal(await s2!.take(req), null);
        // Without skipCooling, the order is the caller's and no health comes back.
        const plain = await s1!.take({ owner: "i1", accounts: ["c5"], perAccount: 1 });
        assert.equal(plain?.health, undefined);
      });
    });

    it("onFreed wakes a waiter on another client when a lease is freed", async () => {
      await using(b, 2, async ([s1, s2]) => {
        const lease = await s1!.take({ owner: "i1", accounts: ["w"], perAccount: 1 });
        let woken!: (a: string | undefined) => void;
        const wake = new Promise<string | undefined>((r) => (woken = r));
        const stop = await s2!.onFreed((a) => woken(a));
        assert.equal(await s2!.take({ owner: "i2", accounts: ["w"], perAccount: 1 }), null);
        const t0 = performance.now();
        await s1!.free(lease!);
        const account = await Promise.race([wake, sleep(3_000).then(() => "timeout")]);
        assert.notEqual(account, "timeout", "no wake-up within 3 s");
        if (account !== undefined) assert.equal(account, "w");
        assert.ok(performance.now() - t0 < 1_000, `woken after ${Math.round(performance.now() - t0)} ms`);
        assert.equal((await s2!.take({ owner: "i2", accounts: ["w"], perAccount: 1 }))?.account, "w");
        stop();
      });
    });

    it("journal: owners with a fresh heartbeat are alive; recovery finds only dead owners' conversations", async () => {
      await using(b, 2, async ([live, dying]) => {
        await live!.journalAdd({ owner: "alive", cid: "c1", index: 0, hash: "h0" });
        await dying!.journalAdd({ owner: "gone", cid: "c2", index: 1, hash: "h1" });
        await dying!.journalAdd({ owner: "gone", cid: "c3", index: 1, hash: "h1" });
        await live!.journalRemove("alive", "c1");
        await live!.journalAdd({ owner: "alive", cid: "c4", index: 2, hash: "h2" });
        const all = await live!.journalList();
        assert.deepEqual(all.map((r) => r.cid).sort(), ["c2", "c3", "c4"]);
        assert.deepEqual(await dying!.journalList("gone"), [
          { owner: "gone", cid: "c2", index: 1, hash: "h1" },
          { owner: "gone", cid: "c3", index: 1, hash: "h1" },
        ]);
        assert.deepEqual(await live!.deadOwners(10_000), [], "both wrote a heartbeat with their entries");
        await sleep(700);
        await live!.heartbeat("alive");
        assert.deepEqual(await live!.deadOwners(500), ["gone"]);
        await live!.forgetOwner("gone");
        assert.deepEqual(await live!.deadOwners(500), []);
        assert.deepEqual((await live!.journalList()).map((r) => r.cid), ["c4"]);
      });
    });

    it("deadAmong: any owner by its heartbeat alone, journalled or not; a missing heartbeat is dead", async () => {
      await using(b, 2, async ([s1, s2]) => {
        await s1!.heartbeat("holder-a");
        await s2!.heartbeat("holder-b");
        assert.deepEqual(await s1!.deadAmong([], 10_000), []);
        assert.deepEqual(await s2!.deadAmong(["holder-a", "holder-b", "never-beat"], 10_000), ["never-beat"]);
        assert.deepEqual(await s1!.deadOwners(10), [], "no journal: deadOwners does not list them");
        await sleep(700);
        await s2!.heartbeat("holder-b");
        assert.deepEqual(await s1!.deadAmong(["holder-a", "holder-b"], 500), ["holder-a"]);
        await s1!.forgetOwner("holder-b");
        assert.deepEqual(await s1!.deadAmong(["holder-b"], 10_000), ["holder-b"], "forgotten: no heartbeat");
        await assert.rejects(
          s1!.deadAmong(["bad owner"]),
          (e: unknown) => e instanceof StoreError && e.code === "invalid",
        );
      });
    });

    it("values: get, set with expiry, delete, and compare-and-set", async () => {
      await using(b, 2, async ([s1, s2]) => {
        const key = ["conv", "abc123"];
        assert.equal(await s1!.get(key), null);
        assert.equal(await s1!.cas(key, "0", { n: 1 }), false, "a version for an absent key fails");
        const v1 = await s1!.cas(key, null, { n: 1 });
        assert.equal(typeof v1, "string");
        assert.equal(await s2!.cas(key, null, { n: 2 }), false, "absent-only fails when present");
        assert.deepEqual(await s2!.get(key), { value: { n: 1 }, version: v1 });
        const v2 = await s2!.cas(key, v1 as string, { n: 2 });
        assert.equal(typeof v2, "string");
        assert.notEqual(v2, v1);
        assert.equal(await s1!.cas(key, v1 as string, { n: 3 }), false, "a stale version fails");
        assert.equal(await s1!.cas(key, v2 as string, null), null, "null deletes");
        assert.equal(await s1!.get(key), null);
        const v3 = await s1!.set(key, "again");
        assert.deepEqual(await s2!.get(key), { value: "again", version: v3 });
        assert.equal(await s2!.cas(key, v1 as string, "old"), false, "a version from before a delete fails");
        await s2!.delete(key);
        assert.equal(await s1!.get(key), null);
        await s1!.set(["ttl", "k"], 1, { expireInMs: 500 });
        assert.equal((await s2!.get(["ttl", "k"]))?.value, 1);
        await sleep(700);
        assert.equal(await s2!.get(["ttl", "k"]), null);
        assert.notEqual(await s2!.cas(["ttl", "k"], null, 2), false, "an expired key is absent");
      });
    });

    it("count adds across clients, reads back, and reports each op's counter after the call", async () => {
      await using(b, 2, async ([s1, s2]) => {
        const key = ["rpm", "k1", "m1"];
        const expireInMs = 60_000;
        assert.deepEqual(await s1!.count([]), { values: [], refused: -1 });
        assert.deepEqual(await s1!.count([{ key, by: 1, expireInMs }]), { values: [1], refused: -1 });
        assert.deepEqual(await s2!.count([{ key, by: 2, expireInMs }]), { values: [3], refused: -1 });
        // Only reads: by 0 or absent, no expiry needed; a counter never written is 0.
        assert.deepEqual(await s1!.count([{ key }, { key: ["rpm", "none"], by: 0 }]), {
          values: [3, 0],
          refused: -1,
        });
        // One counter twice in a call: both ops add, and both report the counter after the call.
        assert.deepEqual(await s2!.count([{ key, by: 1, expireInMs }, { key, by: 1, expireInMs }]), {
          values: [5, 5],
          refused: -1,
        });
        assert.deepEqual((await s1!.count([{ key, expireInMs }])).values, [5]);
        // Counters are kept apart from values under the same key.
        assert.equal(await s1!.get(key), null);
      });
    });

    it("count: a failed below check writes nothing, not even the call's other ops, and names the first failure", async () => {
      await using(b, 2, async ([s1, s2]) => {
        const expireInMs = 60_000;
        const [a, c, d] = [["lim", "a"], ["lim", "c"], ["lim", "d"]];
        await s1!.count([{ key: a, by: 3, expireInMs }]);
        const refused = await s2!.count([
          { key: c, by: 1, expireInMs },
          { key: a, by: 1, below: 3, expireInMs },
          { key: d, by: 1, below: 0, expireInMs },
        ]);
        assert.deepEqual(refused, { values: [0, 3, 0], refused: 1 }, "the values before the call");
        assert.deepEqual((await s1!.count([{ key: a, expireInMs }, { key: c, expireInMs }])).values, [3, 0]);
        // The check is on the value before the call: 3 is below 4, so it applies (and goes to 4).
        assert.deepEqual(await s2!.count([{ key: c, by: 1, expireInMs }, { key: a, by: 1, below: 4, expireInMs }]), {
          values: [1, 4],
          refused: -1,
        });
        // A below-only op checks without writing; a read-only call reports the failure too.
        assert.deepEqual(await s1!.count([{ key: c, by: 1, expireInMs }, { key: a, below: 5, expireInMs }]), {
          values: [2, 4],
          refused: -1,
        });
        assert.deepEqual(await s1!.count([{ key: a, below: 4 }]), { values: [4], refused: 0 });
      });
    });

    it("count: atLeast raises after by and never lowers; a negative by gives back", async () => {
      await using(b, 2, async ([s1, s2]) => {
        const key = ["last", "k1"];
        const expireInMs = 60_000;
        assert.deepEqual((await s1!.count([{ key, atLeast: 100, expireInMs }])).values, [100]);
        assert.deepEqual((await s2!.count([{ key, atLeast: 50, expireInMs }])).values, [100], "never lowers");
        assert.deepEqual((await s1!.count([{ key, by: 5, atLeast: 103, expireInMs }])).values, [105]);
        assert.deepEqual((await s2!.count([{ key, by: 1, atLeast: 200, expireInMs }])).values, [200]);
        const tokens = ["tokens", "k1"];
        assert.deepEqual((await s1!.count([{ key: tokens, by: 10, expireInMs }])).values, [10]);
        assert.deepEqual((await s2!.count([{ key: tokens, by: -3, expireInMs }])).values, [7]);
        assert.deepEqual((await s1!.count([{ key: tokens, by: -10, expireInMs }])).values, [-3]);
        assert.deepEqual((await s2!.count([{ key: tokens, expireInMs }])).values, [-3]);
      });
    });

    it("count: a counter expires expireInMs after its last write, and a later write starts it again", async () => {
      await using(b, 2, async ([s1, s2]) => {
        const key = ["win", "k1"];
        const expireInMs = 1_000;
        await s1!.count([{ key, by: 1, expireInMs }]);
        await sleep(400);
        await s2!.count([{ key, by: 1, expireInMs }]); // every write sets the expiry again
        // A read does not: this one comes past the first write's expiry, within the second's.
        await sleep(800);
        assert.deepEqual((await s1!.count([{ key, expireInMs }])).values, [2]);
        await sleep(1_000);
        assert.deepEqual((await s2!.count([{ key, expireInMs }])).values, [0], "expired");
        assert.deepEqual((await s2!.count([{ key, by: 2, below: 1, expireInMs: 60_000 }])).values, [2]);
        assert.deepEqual((await s1!.count([{ key, expireInMs }])).values, [2]);
      });
    });

    it("count: 3 clients with 90 concurrent limited increments apply exactly up to the limit", async () => {
      await using(b, 3, async (stores) => {
        const key = ["rpm", "busy"];
        const results = await Promise.all(
          Array.from({ length: 90 }, (_, i) => stores[i % 3]!.count([{ key, by: 1, below: 25, expireInMs: 60_000 }])),
        );
        const applied = results.filter((r) => r.refused === -1);
        assert.equal(applied.length, 25);
        assert.deepEqual(
          applied.map((r) => r.values[0]).sort((x, y) => x! - y!),
          Array.from({ length: 25 }, (_, i) => i + 1),
        );
        assert.ok(results.every((r) => r.refused === -1 || (r.refused === 0 && r.values[0] === 25)));
        assert.deepEqual((await stores[1]!.count([{ key }])).values, [25]);
      });
    });

    it("count refuses what is not a safe integer, a writing op without a positive expiry, and bad keys", async () => {
      await using(b, 1, async ([s]) => {
        const key = ["bad", "k"];
        const invalid = (e: unknown) => e instanceof StoreError && e.code === "invalid" && e.op === "count";
        for (
          const op of [
            { key, by: 1.5, expireInMs: 1_000 },
            { key, by: 2 ** 53, expireInMs: 1_000 },
            { key, below: Number.NaN, expireInMs: 1_000 },
            { key, atLeast: Infinity, expireInMs: 1_000 },
            { key, by: 1 },
            { key, atLeast: 1, expireInMs: -5 },
            { key, by: 1, expireInMs: 1.5 },
            { key, by: 1 } as never,
            { key: ["bad key"], by: 1, expireInMs: 1_000 },
            { key: [], expireInMs: 1_000 },
          ]
        ) {
          await assert.rejects(
            s!.count([{ key: ["fine"], by: 1, expireInMs: 1_000 }, op]),
            invalid,
            JSON.stringify(op),
          );
        }
        assert.deepEqual((await s!.count([{ key: ["fine"] }])).values, [0], "nothing was written");
        // A counter that would leave the safe integers is refused, and left as it was.
        await s!.count([{ key, atLeast: Number.MAX_SAFE_INTEGER, expireInMs: 60_000 }]);
        await assert.rejects(s!.count([{ key, by: 1, expireInMs: 60_000 }]), invalid);
        assert.deepEqual((await s!.count([{ key }])).values, [Number.MAX_SAFE_INTEGER]);
      });
    });

    it("count reads 150 counters in one call", async () => {
      await using(b, 2, async ([s1, s2]) => {
        const keys = Array.from({ length: 150 }, (_, i) => ["many", `k${i}`]);
        await s1!.count([0, 42, 149].map((i) => ({ key: keys[i]!, by: i + 1, expireInMs: 60_000 })));
        const r = await s2!.count(keys.map((key) => ({ key })));
        assert.equal(r.refused, -1);
        assert.deepEqual(r.values, keys.map((_, i) => ([0, 42, 149].includes(i) ? i + 1 : 0)));
        const limited = await s2!.count(keys.map((key) => ({ key, below: 10 })));
        assert.equal(limited.refused, 42);
      });
    });

    it("refuses keys that could hold text or tokens, with an invalid StoreError", async () => {
      await using(b, 1, async ([s]) => {
        await assert.rejects(
          s!.get(["conv", "hello world"]),
          (e: unknown) => e instanceof StoreError && e.code === "invalid",
        );
        await assert.rejects(s!.set([], 1), (e: unknown) => e instanceof StoreError && e.code === "invalid");
        await assert.rejects(s!.take({ owner: "o", accounts: ["a b"], perAccount: 1 }), StoreError);
      });
    });

    it("health() counts calls and latency; a closed store rejects unavailable", async () => {
      await using(b, 1, async ([s]) => {
        await s!.take({ owner: "o", accounts: ["m"], perAccount: 1 });
        const h = s!.health();
        assert.equal(h.backend, b.name);
        assert.equal(h.ok, true);
        assert.ok(h.calls >= 1 && h.latency.count >= 1);
        assert.equal(h.latency.buckets.at(-1), h.latency.count);
        await s!.close();
        await assert.rejects(s!.get(["k"]), (e: unknown) => e instanceof StoreError && e.code === "unavailable");
      });
    });
  });
}

describe(
  "StateStore (redis) when the server fails",
  { skip: !findRedisServer() && "redis-server is not installed" },
  () => {
    it("connecting to a port where nothing listens rejects unavailable, naming the URL without its password", async () => {
      const t0 = performance.now();
      await assert.rejects(redisStore({ url: "redis://user:secret@127.0.0.1:1", timeoutMs: 1_000 }), (e: unknown) => {
        assert.ok(e instanceof StoreError && e.code === "unavailable", String(e));
        assert.match(e.message, /127\.0\.0\.1:1/);
        assert.doesNotMatch(e.message, /secret/);
        return true;
      });
      // The first connection gets CONNECT_AT_START_MS (more than the call's 1 s), and no more.
      const took = performance.now() - t0;
      assert.ok(took >= CONNECT_AT_START_MS - 50 && took < CONNECT_AT_START_MS + 1_500, `${took} ms`);
    });

    it("a call rejects within its timeout when the server stops answering, and when it is gone", async () => {
      const server = await startRedis();
      try {
        // Connecting is not what this tests: a machine busy with other suites may take longer than 300 ms to.
        const s = await (async () => {
          for (let i = 0;; i++) {
            try {
              return await redisStore({ url: server.url, timeoutMs: 300, prefix: `t${uid()}` });
            } catch (err) {
              if (i >= 4) throw err;
            }
          }
        })();
        try {
          assert.ok(await s.take({ owner: "o", accounts: ["a"], perAccount: 1 }));
          // A server that hangs (every client paused): the call times out, it does not hang.
          const pause = await import("redis").then(async ({ createClient }) => {
            const c = createClient({ url: server.url });
            await c.connect();
            await c.sendCommand(["CLIENT", "PAUSE", "1500", "ALL"]);
            return c;
          });
          // The bound: 500 ms past what a 300 ms timer takes on this machine now.
          const bound = (await timerBaseline(300)) + 500;
          let t0 = performance.now();
          await assert.rejects(
            s.take({ owner: "o", accounts: ["b"], perAccount: 1 }),
            (e: unknown) => e instanceof StoreError && e.code === "timeout",
          );
          assert.ok(performance.now() - t0 < bound, `rejected after ${Math.round(performance.now() - t0)} ms`);
          await pause.close();
          await sleep(1_600);
          // A server that is gone: rejected at once or within the timeout, never queued for later.
          await server.stop();
          t0 = performance.now();
          await assert.rejects(s.take({ owner: "o", accounts: ["c"], perAccount: 1 }), StoreError);
          await assert.rejects(s.free({ id: "o.x", account: "a" }), StoreError);
          assert.ok(performance.now() - t0 < bound, `rejected after ${Math.round(performance.now() - t0)} ms`);
          const h = s.health();
          assert.equal(h.ok, false);
          assert.ok(h.timeouts >= 1 && h.failures >= 3);
        } finally {
          await s.close();
        }
      } finally {
        await server.stop();
      }
    });
  },
);

describe("StateStore (kv) across processes", { skip: !hasKv() && "Deno KV exists only under Deno" }, () => {
  it("3 processes taking and freeing leases on one SQLite file: no crash on 'database is locked', capacity held", async () => {
    const path = join(tmp, "shared.sqlite3");
    const worker = new URL("../support/kv-lease-worker.ts", import.meta.url).pathname;
    const run = (owner: string) =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const p = spawn(Deno.execPath(), ["run", "-A", "--unstable-kv", "--no-check", worker, path, owner, "15"], {
          stdio: ["ignore", "pipe", "pipe"],
        });
        let out = "";
        let err = "";
        p.stdout.on("data", (b) => (out += b));
        p.stderr.on("data", (b) => (err += b));
        p.on("close", (code) => resolve({ code, out, err }));
      });
    const results = await Promise.all(["p1", "p2", "p3"].map(run));
    const held: [string, number, number][] = [];
    for (const r of results) {
      assert.equal(r.code, 0, `a worker failed: ${r.err.slice(-800)}`);
      const report = JSON.parse(r.out.trim().split("\n").at(-1)!) as {
        held: [string, number, number][];
        failures: number;
      };
      assert.equal(report.failures, 0);
      assert.equal(report.held.length, 15);
      held.push(...report.held);
    }
    // perAccount 1: no two holding intervals on one account overlap, whichever processes held them.
    for (const account of ["a", "b"]) {
      const spans = held.filter((h) => h[0] === account).sort((x, y) => x[1] - y[1]);
      for (let i = 1; i < spans.length; i++) {
        assert.ok(spans[i]![1] >= spans[i - 1]![2], `two holders of ${account} at once`);
      }
    }
  });
});
