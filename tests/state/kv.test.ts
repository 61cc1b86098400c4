// lib/state/kv.ts: the round trips of the lease path, counted on a real Deno KV file through a counting proxy, and
// expired leases the KV has not dropped yet. Deno only (Bun has no Deno KV); the conformance suite is store.test.ts.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type KvLike, kvStore } from "../../lib/state/kv.ts";
import { type Lease, type StateStore, StoreError } from "../../lib/state/store.ts";
import { hasKv, openKv } from "../../runtime/kv.ts";
import { countingKv } from "../support/counting-kv.ts";

const tmp = mkdtempSync(join(tmpdir(), "emohaa-kv-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const uid = () => crypto.randomUUID().slice(0, 8);

/** `n` stores on one KV file (separate connections, as separate processes have), each with its own counter. */
async function clients(n: number) {
  const path = join(tmp, `s-${uid()}.sqlite3`);
  const prefix = `t${uid()}`;
  const out: { store: StateStore; calls: string[]; trips: () => number; raw: KvLike }[] = [];
  for (let i = 0; i < n; i++) {
    const raw = await openKv(path);
    const c = countingKv(raw);
    out.push({ store: kvStore(c.kv, { prefix }), calls: c.calls, trips: c.trips, raw });
  }
  const close = async () => {
    for (const c of out) {
      await c.store.close();
      c.raw.close();
    }
  };
  return { clients: out, prefix, close };
}

/** The calls `f` makes. */
async function cost<T>(calls: string[], f: () => Promise<T>): Promise<{ value: T; calls: string[] }> {
  const from = calls.length;
  const value = await f();
  return { value, calls: calls.slice(from) };
}

describe("kvStore round trips", { skip: !hasKv() && "Deno KV exists only under Deno" }, () => {
  it("take and free are one commit each, health-aware or not; renew of 8 leases is one commit", async () => {
    const { clients: [c], close } = await clients(1);
    try {
      const s = c!.store;
      const accounts = ["a1", "a2", "a3", "a4"];
      for (const skipCooling of [false, true]) {
        const leases: Lease[] = [];
        // perAccount 2: eight takes fill both slots of every account, first fit in preference order.
        for (let i = 0; i < 8; i++) {
          const { value, calls } = await cost(
            c!.calls,
            () => s.take({ owner: "o", accounts, perAccount: 2, skipCooling }),
          );
          assert.deepEqual(calls, ["commit"], `take ${i}`);
          leases.push(value!);
        }
        assert.deepEqual(leases.map((l) => l.account), ["a1", "a1", "a2", "a2", "a3", "a3", "a4", "a4"]);
        if (skipCooling) assert.ok(leases.every((l) => l.health === null), "health comes back with the lease");
        const renewed = await cost(c!.calls, () => s.renew("o", leases));
        assert.deepEqual(renewed, { value: [], calls: ["commit"] });
        // Full, and known to be: one read answers null (8 slots and 4 health keys: two reads of 10 keys at once).
        const trips = c!.trips();
        assert.deepEqual(await cost(c!.calls, () => s.take({ owner: "o", accounts, perAccount: 2, skipCooling })), {
          value: null,
          calls: skipCooling ? ["getMany", "getMany"] : ["getMany"],
        });
        assert.equal(c!.trips() - trips, 1, "one round trip");
        for (const l of leases) {
          assert.deepEqual(await cost(c!.calls, () => s.free(l)), { value: true, calls: ["commit"] });
        }
        assert.deepEqual([...(await s.inFlight(accounts)).values()], [0, 0, 0, 0]);
      }
    } finally {
      await close();
    }
  });

  it("concurrent takes of one instance commit on different slots: 8 takes at once over 8 accounts are 8 commits", async () => {
    const { clients: [c], close } = await clients(1);
    try {
      const accounts = Array.from({ length: 8 }, (_, i) => `p${i}`);
      const { value, calls } = await cost(
        c!.calls,
        () =>
          Promise.all(accounts.map(() => c!.store.take({ owner: "o", accounts, perAccount: 1, skipCooling: true }))),
      );
      assert.deepEqual(value.map((l) => l?.account).sort(), accounts);
      assert.deepEqual(calls, Array(8).fill("commit"));
    } finally {
      await close();
    }
  });

  it("a take on a slot another instance took meanwhile reads and commits again: 3 calls, capacity held", async () => {
    const { clients: [a, b], close } = await clients(2);
    try {
      const req = { accounts: ["x", "y"], perAccount: 1 };
      // b saw x free (its own lease, freed); then a takes x behind b's back.
      await b!.store.free((await b!.store.take({ owner: "b", ...req }))!);
      const la = await a!.store.take({ owner: "a", ...req });
      assert.equal(la?.account, "x");
      const { value, calls } = await cost(b!.calls, () => b!.store.take({ owner: "b", ...req }));
      assert.equal(value?.account, "y");
      assert.deepEqual(calls, ["commit", "getMany", "commit"]);
      // Now b knows x is taken: its next take goes straight to the free slot, or reads once when none is.
      await b!.store.free(value!);
      assert.deepEqual((await cost(b!.calls, () => b!.store.take({ owner: "b", ...req }))).calls, ["commit"]);
      assert.deepEqual((await cost(b!.calls, () => b!.store.take({ owner: "b", ...req }))).calls, ["getMany"]);
      assert.deepEqual(Object.fromEntries(await a!.store.inFlight(["x", "y"])), { x: 1, y: 1 });
    } finally {
      await close();
    }
  });

  it("a free that races a renewal, or a free of a lease taken by another client, finds the lease by id", async () => {
    const { clients: [a, b], close } = await clients(2);
    try {
      const l = (await a!.store.take({ owner: "a", accounts: ["r"], perAccount: 1 }))!;
      // Another client of the same owner renews it: a's version is stale, its free still frees it.
      assert.deepEqual(await b!.store.renew("a", [l]), []);
      const { value, calls } = await cost(a!.calls, () => a!.store.free(l));
      assert.equal(value, true);
      assert.deepEqual(calls, ["commit", "list", "commit"]);
      assert.equal(await a!.store.free(l), false);
      assert.equal((await b!.store.take({ owner: "b", accounts: ["r"], perAccount: 1 }))?.account, "r");
    } finally {
      await close();
    }
  });

  it("an expired lease the KV has not dropped yet does not count, and its slot is taken over", async () => {
    const { clients: [c], prefix, close } = await clients(1);
    try {
      // KV drops expired keys some time after expireIn: stand for that with a key that never expires.
      await c!.raw.set([prefix, "slot", "old", 0], { id: "gone.1", owner: "gone", exp: Date.now() - 1_000 });
      assert.equal((await c!.store.inFlight(["old"])).get("old"), 0);
      const { value, calls } = await cost(
        c!.calls,
        () => c!.store.take({ owner: "o", accounts: ["old"], perAccount: 1 }),
      );
      assert.equal(value?.account, "old");
      assert.deepEqual(
        calls,
        ["commit", "getMany", "commit"],
        "the blind commit fails on the old key, then replaces it",
      );
      assert.equal((await c!.store.inFlight(["old"])).get("old"), 1);
      assert.equal(await c!.store.take({ owner: "o", accounts: ["old"], perAccount: 1 }), null);
      assert.deepEqual(await c!.store.renew("gone", [{ id: "gone.1", account: "old" }]), ["gone.1"]);
    } finally {
      await close();
    }
  });

  it("a health-aware take checks the health it assumed: a cooldown written by another instance is honoured at once", async () => {
    const { clients: [a, b], close } = await clients(2);
    try {
      const req = { accounts: ["d", "e"], perAccount: 1, skipCooling: true };
      await b!.store.free((await b!.store.take({ owner: "b", ...req }))!); // b saw d healthy and free
      await a!.store.reportHealth("d", { kind: "cool", error: "auth", cooldownMs: 60_000 });
      const { value, calls } = await cost(b!.calls, () => b!.store.take({ owner: "b", ...req }));
      assert.equal(value?.account, "e", "the cooling account is skipped");
      assert.deepEqual(calls, ["commit", "getMany", "commit"]);
      // Now b knows: the next take goes to e in one commit, and d comes only when nothing else has room.
      await b!.store.free(value!);
      const next = await cost(b!.calls, () => b!.store.take({ owner: "b", ...req }));
      assert.deepEqual([next.value?.account, next.calls], ["e", ["commit"]]);
      const last = await b!.store.take({ owner: "b", ...req });
      assert.equal(last?.account, "d");
      assert.equal(last?.health?.lastError, "auth");
    } finally {
      await close();
    }
  });
  it("a repeated writing count by one client is one commit, reading only the first time", async () => {
    const { clients: [c], close } = await clients(1);
    try {
      const s = c!.store;
      const ops = [
        { key: ["rpm", "k", "m1"], by: 1, below: 3, expireInMs: 60_000 },
        { key: ["tpd", "k", "d1"], by: 10, expireInMs: 60_000 },
        { key: ["last", "k"], atLeast: Date.now(), expireInMs: 60_000 },
      ];
      assert.deepEqual((await cost(c!.calls, () => s.count(ops))).calls, ["getMany", "commit"], "first: unknown");
      for (let i = 2; i <= 3; i++) {
        const { value, calls } = await cost(c!.calls, () => s.count(ops));
        assert.deepEqual([value.refused, value.values.slice(0, 2), calls], [-1, [i, 10 * i], ["commit"]]);
      }
      // The hint says refused: decided again on one read (a snapshot of the three), nothing committed.
      const { value, calls } = await cost(c!.calls, () => s.count(ops));
      assert.deepEqual([value.refused, value.values.slice(0, 2), calls], [0, [3, 30], ["getMany"]]);
    } finally {
      await close();
    }
  });

  it("a count after another client wrote the counter reads and commits again, and stays right", async () => {
    const { clients: [a, b], close } = await clients(2);
    try {
      const op = { key: ["rpm", "shared"], by: 1, below: 3, expireInMs: 60_000 };
      assert.deepEqual((await a!.store.count([op])).values, [1]);
      assert.deepEqual((await b!.store.count([op])).values, [2]);
      const { value, calls } = await cost(a!.calls, () => a!.store.count([op]));
      assert.deepEqual(value, { values: [3], refused: -1 });
      assert.deepEqual(calls, ["commit", "getMany", "commit"], "the hint was stale: its commit failed");
      // b's hint (2, below 3) says it applies: its commit fails, and the read sees 3, so it refuses.
      const refused = await cost(b!.calls, () => b!.store.count([op]));
      assert.deepEqual(refused, { value: { values: [3], refused: 0 }, calls: ["commit", "getMany"] });
      // A give-back by a, then b's hint (3) would refuse, but the counter is 2: b reads and applies.
      assert.deepEqual((await a!.store.count([{ ...op, by: -1, below: undefined }])).values, [2]);
      const applied = await cost(b!.calls, () => b!.store.count([op]));
      assert.deepEqual(applied, { value: { values: [3], refused: -1 }, calls: ["getMany", "commit"] });
    } finally {
      await close();
    }
  });

  it("count: a read of 150 counters is one round trip of getMany calls; a write is refused past 100 counters", async () => {
    const { clients: [c], close } = await clients(1);
    try {
      const keys = Array.from({ length: 150 }, (_, i) => ["many", `k${i}`]);
      const trips = c!.trips();
      const read = await cost(c!.calls, () => c!.store.count(keys.map((key) => ({ key }))));
      assert.deepEqual(read.calls, Array(15).fill("getMany"));
      assert.equal(c!.trips() - trips, 1, "one round trip");
      // Deno KV checks at most 100 keys in one atomic commit, and a count writes all of its counters in one.
      await assert.rejects(
        c!.store.count(keys.slice(0, 101).map((key) => ({ key, by: 1, expireInMs: 60_000 }))),
        (e: unknown) => e instanceof StoreError && e.code === "invalid",
      );
      const wide = await c!.store.count(keys.slice(0, 100).map((key) => ({ key, by: 1, expireInMs: 60_000 })));
      assert.deepEqual(wide.values, Array(100).fill(1));
    } finally {
      await close();
    }
  });
});
