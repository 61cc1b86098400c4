import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createAuth } from "../../lib/http/auth.ts";
import { ApiError } from "../../lib/errors.ts";
import { GatewayKeys, storeKeyList } from "../../lib/chat/keys.ts";
import { memoryStore } from "../../lib/state/memory.ts";

const NOW = 1_800_000_000_000;
const quiet = { error: () => {} };

/** The gateway keys of a server with these API_KEYS and no managed key yet. */
const keysOf = (envKeys: string[]) =>
  new GatewayKeys({ list: storeKeyList(memoryStore(), "memory"), envKeys, envLimits: {}, now: () => NOW, log: quiet });

const client = (metricsKey?: string) => createAuth({ allowAnonymous: false, metricsKey, now: () => NOW });
const server = (apiKeys: string[], more: { allowAnonymous?: boolean; metricsKey?: string } = {}) =>
  createAuth({
    serverTokens: () => ["s1", "s2"],
    keys: keysOf(apiKeys),
    allowAnonymous: more.allowAnonymous ?? false,
    metricsKey: more.metricsKey,
    now: () => NOW,
  });
const is401 = (e: unknown) => e instanceof ApiError && e.status === 401;

describe("createAuth", () => {
  it("client mode: the bearer is the token list", () => {
    const auth = client();
    assert.equal(auth.serverSide, false);
    assert.deepEqual(auth.tokensFor("Bearer a,b"), ["a", "b"]);
    assert.equal(auth.keyFor("Bearer a"), undefined);
  });
  it("server mode: a right gateway key gets the server's tokens, never the bearer, and names its key", () => {
    const auth = server(["k1", "k2"]);
    assert.deepEqual(auth.tokensFor("Bearer k2"), ["s1", "s2"]);
    assert.deepEqual(auth.tokensFor("bearer k1"), ["s1", "s2"]);
    const caller = auth.callerFor("Bearer k1");
    assert.match(caller.key!.name, /^env…[0-9a-f]{4}$/);
    assert.equal(caller.key!.source, "env");
    assert.notEqual(auth.keyFor("Bearer k2")!.id, caller.key!.id);
  });
  it("server mode: a wrong or missing key is 401 that does not echo it", () => {
    const auth = server(["k1"]);
    for (const h of [undefined, "Bearer k", "Bearer k1x", "Bearer s1", "Basic k1"]) {
      assert.throws(
        () => auth.tokensFor(h),
        (e: unknown) => is401(e) && !(e as Error).message.includes("k1") && !(e as Error).message.includes("s1"),
        String(h),
      );
    }
  });
  it("anonymous use: only with ALLOW_ANONYMOUS and while no key exists; the first managed key closes it", async () => {
    const keys = keysOf([]);
    const open = createAuth({ serverTokens: () => ["s1"], keys, allowAnonymous: true, now: () => NOW });
    const closed = createAuth({ serverTokens: () => ["s1"], keys, allowAnonymous: false, now: () => NOW });
    assert.deepEqual(open.tokensFor(undefined), ["s1"]);
    assert.throws(() => closed.tokensFor(undefined), (e: unknown) => is401(e) && /POST \/admin\/keys/.test(String(e)));
    const { secret } = await keys.create("alice", {});
    assert.throws(() => open.tokensFor(undefined), is401, "a key exists now");
    assert.equal(open.keyFor(`Bearer ${secret}`)!.name, "alice");
    assert.equal(closed.keyFor(`Bearer ${secret}`)!.name, "alice");
    await keys.revoke("alice");
    assert.throws(() => closed.keyFor(`Bearer ${secret}`), is401, "revoked");
    assert.deepEqual(open.tokensFor(undefined), ["s1"], "no key left: anonymous again");
  });
  it("an expired key is a 401 naming when it expired, and is counted by name", async () => {
    let now = NOW;
    const keys = new GatewayKeys({
      list: storeKeyList(memoryStore(), "memory"),
      envKeys: [],
      envLimits: {},
      now: () => now,
      log: quiet,
    });
    const expired: string[] = [];
    const auth = createAuth({
      serverTokens: () => ["s1"],
      keys,
      allowAnonymous: false,
      now: () => now,
      onExpired: (n) => expired.push(n),
    });
    const { secret } = await keys.create("bob", { expiresAt: NOW + 1000 });
    assert.equal(auth.keyFor(`Bearer ${secret}`)!.name, "bob");
    now += 1000;
    assert.throws(
      () => auth.keyFor(`Bearer ${secret}`),
      (e: unknown) => is401(e) && (e as ApiError).code === "invalid_api_key" && /expired at 2027/.test(String(e)),
    );
    assert.deepEqual(expired, ["bob"]);
  });
  it("requireKey: a gateway key in server mode with keys; nothing in client mode or anonymous server mode", () => {
    const auth = server(["k1"]);
    assert.doesNotThrow(() => auth.requireKey("Bearer k1"));
    for (const h of [undefined, "Bearer k2", "Bearer s1"]) assert.throws(() => auth.requireKey(h), is401, String(h));
    assert.doesNotThrow(() => client().requireKey(undefined));
    assert.doesNotThrow(() => server([], { allowAnonymous: true }).requireKey(undefined));
  });
  it("requireMetricsKey: METRICS_KEY when set (in either mode), else the gateway key rule", () => {
    const c = client("m1");
    assert.doesNotThrow(() => c.requireMetricsKey("Bearer m1"));
    for (const h of [undefined, "Bearer m2", "Bearer k1"]) {
      assert.throws(() => c.requireMetricsKey(h), (e: unknown) => is401(e) && !(e as Error).message.includes("m1"));
    }
    assert.throws(() => server(["k1"], { metricsKey: "m1" }).requireMetricsKey("Bearer k1"), is401);
    assert.doesNotThrow(() => server(["k1"]).requireMetricsKey("Bearer k1"));
    assert.doesNotThrow(() => client().requireMetricsKey(undefined));
  });
});
