import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseBearer, TokenPicker } from "../lib/tokens.ts";
import { ApiError } from "../lib/errors.ts";

describe("parseBearer", () => {
  it("splits a comma list, trims spaces, drops empty entries and duplicates", () => {
    assert.deepEqual(parseBearer("Bearer  T1 , T2,,T3 ,T1"), ["T1", "T2", "T3"]);
  });
  it("accepts the scheme in any case", () => {
    assert.deepEqual(parseBearer("bearer abc"), ["abc"]);
    assert.deepEqual(parseBearer("BEARER abc"), ["abc"]);
  });
  it("rejects a missing header, another scheme and an empty list with 401", () => {
    for (const h of [undefined, "", "Basic abc", "Bearer ", "Bearer , ,"]) {
      assert.throws(() => parseBearer(h), (e: unknown) => e instanceof ApiError && e.status === 401, String(h));
    }
  });
  it("rejects tokens with control or non-ASCII characters, without echoing them", () => {
    assert.throws(() => parseBearer("Bearer abc\r\nX-Evil: 1"), (e: unknown) => e instanceof ApiError && e.status === 401 && !e.message.includes("abc"));
    assert.throws(() => parseBearer("Bearer tök"), (e: unknown) => e instanceof ApiError && e.status === 401);
  });
});

describe("TokenPicker", () => {
  it("prefers a token with no request in flight", () => {
    const p = new TokenPicker();
    const release = p.hold("a");
    for (let i = 0; i < 20; i++) assert.equal(p.pick(["a", "b"], new Set()), "b");
    release();
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) seen.add(p.pick(["a", "b"], new Set())!);
    assert.deepEqual([...seen].sort(), ["a", "b"]);
  });
  it("skips tried tokens and returns undefined when all were tried", () => {
    const p = new TokenPicker();
    assert.equal(p.pick(["a", "b"], new Set(["a"])), "b");
    assert.equal(p.pick(["a"], new Set(["a"])), undefined);
  });
  it("release is idempotent", () => {
    const p = new TokenPicker();
    const r = p.hold("a");
    r();
    r();
    assert.equal(p.active, 0);
  });
});
