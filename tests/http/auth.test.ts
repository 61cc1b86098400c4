import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createAuth } from "../../lib/http/auth.ts";
import { ApiError } from "../../lib/errors.ts";

describe("createAuth", () => {
  it("client mode: the bearer is the token list", () => {
    const auth = createAuth({ apiKeys: [] });
    assert.equal(auth.serverSide, false);
    assert.deepEqual(auth.tokensFor("Bearer a,b"), ["a", "b"]);
  });
  it("server mode: a right gateway key gets the server's tokens, never the bearer", () => {
    const auth = createAuth({ serverTokens: () => ["s1", "s2"], apiKeys: ["k1", "k2"] });
    assert.deepEqual(auth.tokensFor("Bearer k2"), ["s1", "s2"]);
    assert.deepEqual(auth.tokensFor("bearer k1"), ["s1", "s2"]);
  });
  it("server mode: a wrong or missing key is 401 that does not echo it", () => {
    const auth = createAuth({ serverTokens: () => ["s1"], apiKeys: ["k1"] });
    for (const h of [undefined, "Bearer k", "Bearer k1x", "Bearer s1", "Basic k1"]) {
      assert.throws(
        () => auth.tokensFor(h),
        (e: unknown) =>
          e instanceof ApiError && e.status === 401 && !e.message.includes("k1") && !e.message.includes("s1"),
        String(h),
      );
    }
  });
  it("server mode with anonymous use allowed needs no key", () => {
    assert.deepEqual(createAuth({ serverTokens: () => ["s1"], apiKeys: [] }).tokensFor(undefined), ["s1"]);
  });
  it("requireKey: a gateway key in server mode with keys; nothing in client mode or anonymous server mode", () => {
    const server = createAuth({ serverTokens: () => ["s1"], apiKeys: ["k1"] });
    assert.doesNotThrow(() => server.requireKey("Bearer k1"));
    for (const h of [undefined, "Bearer k2", "Bearer s1"]) {
      assert.throws(() => server.requireKey(h), (e: unknown) => e instanceof ApiError && e.status === 401, String(h));
    }
    assert.doesNotThrow(() => createAuth({ apiKeys: ["k1"] }).requireKey(undefined));
    assert.doesNotThrow(() => createAuth({ serverTokens: () => ["s1"], apiKeys: [] }).requireKey(undefined));
  });
  it("requireMetricsKey: METRICS_KEY when set (in either mode), else the gateway key rule", () => {
    const client = createAuth({ apiKeys: [], metricsKey: "m1" });
    assert.doesNotThrow(() => client.requireMetricsKey("Bearer m1"));
    for (const h of [undefined, "Bearer m2", "Bearer k1"]) {
      assert.throws(
        () => client.requireMetricsKey(h),
        (e: unknown) => e instanceof ApiError && e.status === 401 && !e.message.includes("m1"),
      );
    }
    const server = createAuth({ serverTokens: () => ["s1"], apiKeys: ["k1"], metricsKey: "m1" });
    assert.throws(
      () => server.requireMetricsKey("Bearer k1"),
      (e: unknown) => e instanceof ApiError && e.status === 401,
    );
    assert.doesNotThrow(() =>
      createAuth({ serverTokens: () => ["s1"], apiKeys: ["k1"] }).requireMetricsKey("Bearer k1")
    );
    assert.doesNotThrow(() => createAuth({ apiKeys: [] }).requireMetricsKey(undefined));
  });
});
