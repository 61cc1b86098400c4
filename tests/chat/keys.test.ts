// Gateway keys: secrets shown once and kept only as hashes, names unique, changes through one list that every
// instance reads (the state store), KEYS_FILE, or memory.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileKeyList, GatewayKeys, KEY_PREFIX, type KeyListStore, storeKeyList } from "../../lib/chat/keys.ts";
import { ApiError } from "../../lib/errors.ts";
import { memoryStore } from "../../lib/state/memory.ts";
import { StoreError, type ValueStore } from "../../lib/state/store.ts";

const NOW = Date.UTC(2026, 11, 7, 12);
const quiet = { error: () => {} };
const tmp = mkdtempSync(join(tmpdir(), "emohaa-keys-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const keysOver = (list: KeyListStore, more: { envKeys?: string[]; pollMs?: number } = {}) =>
  new GatewayKeys({
    list,
    envKeys: more.envKeys ?? [],
    envLimits: { rpm: 7 },
    now: () => NOW,
    pollMs: more.pollMs,
    log: quiet,
  });
const status = (s: number, code?: string) => (e: unknown) =>
  e instanceof ApiError && e.status === s && (code === undefined || e.code === code);

describe("GatewayKeys", () => {
  it("creates a long random key shown once: the list keeps its SHA-256, never the secret", async () => {
    const store = memoryStore();
    const keys = keysOver(storeKeyList(store, "memory"));
    const { record, secret } = await keys.create("alice", { rpm: 5, concurrency: 1, tokensPerDay: 2000 });
    assert.ok(secret.startsWith(KEY_PREFIX) && secret.length >= KEY_PREFIX.length + 43, secret.length.toString());
    assert.equal(record.hash, createHash("sha256").update(secret).digest("hex"));
    assert.deepEqual(
      { name: record.name, rpm: record.rpm, concurrency: record.concurrency, tokensPerDay: record.tokensPerDay },
      { name: "alice", rpm: 5, concurrency: 1, tokensPerDay: 2000 },
    );
    const stored = JSON.stringify(await store.get(["keys", "list"]));
    assert.ok(!stored.includes(secret) && !stored.includes(secret.slice(KEY_PREFIX.length)), "no secret stored");
    assert.equal(keys.find(secret)?.name, "alice");
    assert.equal(keys.find(secret + "x"), undefined);
    const other = await keys.create("bob", {});
    assert.notEqual(other.secret, secret);
    assert.notEqual(other.record.id, record.id);
    assert.deepEqual(keys.list().map((k) => k.name), ["alice", "bob"]);
  });

  it("refuses a name in use (409) and an expiry in the past (400); 404 for an unknown name", async () => {
    const keys = keysOver(storeKeyList(memoryStore(), "memory"));
    await keys.create("alice", {});
    await assert.rejects(keys.create("alice", {}), status(409, "name_taken"));
    await assert.rejects(keys.create("carol", { expiresAt: NOW - 1 }), status(400, "invalid_value"));
    await assert.rejects(keys.update("alice", { expiresAt: NOW }), status(400));
    await assert.rejects(keys.update("nobody", { rpm: 1 }), status(404, "not_found"));
    await assert.rejects(keys.revoke("nobody"), status(404));
  });

  it("update sets and removes limits and expiry; revoke refuses the key at once", async () => {
    const keys = keysOver(storeKeyList(memoryStore(), "memory"));
    const { secret } = await keys.create("alice", { rpm: 5, tokensPerDay: 100 });
    const changed = await keys.update("alice", { rpm: 9, tokensPerDay: null, concurrency: 2, expiresAt: NOW + 60_000 });
    assert.equal(changed.rpm, 9);
    assert.equal(changed.tokensPerDay, undefined);
    assert.equal(changed.concurrency, 2);
    assert.deepEqual(
      { rpm: keys.find(secret)!.rpm, tokensPerDay: keys.find(secret)!.tokensPerDay, at: keys.find(secret)!.expiresAt },
      { rpm: 9, tokensPerDay: undefined, at: NOW + 60_000 },
    );
    await keys.update("alice", { expiresAt: null });
    assert.equal(keys.find(secret)!.expiresAt, undefined);
    await keys.revoke("alice");
    assert.equal(keys.find(secret), undefined);
    assert.equal(keys.any, false);
  });

  it("keys of API_KEYS are found too, named env… by their hash, with the KEY_DEFAULT_* limits", () => {
    const keys = keysOver(storeKeyList(memoryStore(), "memory"), { envKeys: ["k1"] });
    const k = keys.find("k1")!;
    const hash = createHash("sha256").update("k1").digest("hex");
    assert.equal(k.name, `env…${hash.slice(-4)}`);
    assert.equal(k.source, "env");
    assert.equal(k.rpm, 7);
    assert.ok(!k.id.includes("k1"));
    assert.equal(keys.any, true);
  });

  it("instances sharing a store: a key created on one works on the other, a revoke reaches it at its next poll", async () => {
    const store = memoryStore();
    const one = keysOver(storeKeyList(store, "state"), { pollMs: 30 });
    const two = keysOver(storeKeyList(store, "state"), { pollMs: 30 });
    await Promise.all([one.start(), two.start()]);
    try {
      const { secret } = await one.create("alice", {});
      await two.poll();
      assert.equal(two.find(secret)?.name, "alice");
      await two.revoke("alice");
      const t0 = Date.now();
      while (one.find(secret) && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 10));
      assert.equal(one.find(secret), undefined, "revoked on the other instance by its poll");
    } finally {
      one.stop();
      two.stop();
    }
  });

  it("concurrent creates on two instances both land (compare-and-set, again on a conflict)", async () => {
    const store = memoryStore();
    const one = keysOver(storeKeyList(store, "state"));
    const two = keysOver(storeKeyList(store, "state"));
    await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? one : two).create(`k${i}`, {})),
    );
    await one.poll();
    assert.deepEqual(one.list().map((k) => k.name).sort(), Array.from({ length: 10 }, (_, i) => `k${i}`).sort());
  });

  it("KEYS_FILE: the list survives a restart; the file holds no secret", async () => {
    const path = join(tmp, "keys.json");
    const io = {
      readFile: (p: string) => readFileSync(p, "utf8"),
      writeFile: (p: string, text: string) => writeFileSync(p, text, { mode: 0o600 }),
    };
    const first = keysOver(fileKeyList(path, io));
    await first.start();
    const { secret } = await first.create("alice", { rpm: 3 });
    assert.ok(!readFileSync(path, "utf8").includes(secret));
    const again = keysOver(fileKeyList(path, io));
    await again.start();
    assert.equal(again.find(secret)?.rpm, 3);
    assert.equal(again.persistence, "file");
  });

  it("a store that fails: a change is a 503 state_unavailable; polling keeps the last list", async () => {
    let failing = false;
    const base = memoryStore();
    const flaky: ValueStore = {
      get: (k) => (failing ? Promise.reject(new StoreError("unavailable", "get", "down")) : base.get(k)),
      set: (k, v, o) => base.set(k, v, o),
      delete: (k) => base.delete(k),
      cas: (
        k,
        e,
        v,
        o,
      ) => (failing ? Promise.reject(new StoreError("unavailable", "cas", "down")) : base.cas(k, e, v, o)),
    };
    const errors: string[] = [];
    const keys = new GatewayKeys({
      list: storeKeyList(flaky, "state"),
      envKeys: [],
      envLimits: {},
      now: () => NOW,
      log: { error: (m) => errors.push(m) },
    });
    const { secret } = await keys.create("alice", {});
    failing = true;
    await assert.rejects(keys.create("bob", {}), status(503, "state_unavailable"));
    await keys.poll();
    await keys.poll();
    assert.equal(keys.find(secret)?.name, "alice", "the last list is kept");
    assert.equal(errors.length, 1, "said once");
  });
});
