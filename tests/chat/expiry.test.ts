import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { expiresAtMs, isExpired, readExpiry, TokenExpiredError, unexpired } from "../../lib/chat/expiry.ts";
import { inSeconds, makeJwt } from "../support/jwt.ts";

describe("readExpiry", () => {
  it("reads exp and iat of a signed HS512 JWT, expired or not", () => {
    const exp = inSeconds(-3600);
    assert.deepEqual(readExpiry(makeJwt({ exp, iat: exp - 86_400 })), { exp, iat: exp - 86_400 });
    const far = inSeconds(86_400);
    assert.equal(readExpiry(makeJwt({ exp: far }))?.exp, far);
  });

  it("answers undefined for a JWT without exp, a token that is not a JWT, and a payload that is not JSON", () => {
    assert.equal(readExpiry(makeJwt({ exp: null })), undefined);
    assert.equal(readExpiry("live-1"), undefined);
    assert.equal(readExpiry("a.b.c"), undefined);
    assert.equal(readExpiry(`eyJhbGciOiJIUzUxMiJ9.${Buffer.from("not json").toString("base64url")}.sig`), undefined);
    assert.equal(
      readExpiry(`eyJhbGciOiJIUzUxMiJ9.${Buffer.from('{"exp":"tomorrow"}').toString("base64url")}.sig`),
      undefined,
    );
    assert.equal(readExpiry(`eyJhbGciOiJIUzUxMiJ9.${Buffer.from("[1]").toString("base64url")}.sig`), undefined);
  });
});

describe("readExpiry, read once", () => {
  it("reads a token's times once and keeps them (one frozen object), also past the cache's bound", () => {
    const token = makeJwt({ exp: inSeconds(60) });
    const first = readExpiry(token)!;
    assert.equal(readExpiry(token), first, "the same object: read once");
    assert.ok(Object.isFrozen(first));
    // More distinct tokens than the cache holds: every answer stays right as it empties and fills again.
    const base = inSeconds(1000);
    const many = Array.from({ length: 5000 }, (_, i) => makeJwt({ exp: base + i }));
    for (let round = 0; round < 2; round++) {
      many.forEach((t, i) => assert.equal(expiresAtMs(t), (base + i) * 1000));
    }
    assert.equal(readExpiry("not-a-jwt"), undefined);
    assert.equal(readExpiry("not-a-jwt"), undefined);
  });
});

describe("isExpired", () => {
  it("is true only once exp has passed; tokens without exp never expire here", () => {
    const token = makeJwt({ exp: 1_800_000_000 });
    assert.equal(expiresAtMs(token), 1_800_000_000_000);
    assert.equal(isExpired(token, 1_799_999_999_999), false);
    assert.equal(isExpired(token, 1_800_000_000_000), true);
    assert.equal(isExpired(makeJwt({ exp: null }), Number.MAX_SAFE_INTEGER), false);
    assert.equal(isExpired("live-1", Number.MAX_SAFE_INTEGER), false);
  });
});

describe("unexpired", () => {
  it("drops expired tokens and keeps the others in order", () => {
    const expired = makeJwt({ exp: inSeconds(-10) });
    const near = makeJwt({ exp: inSeconds(60) });
    const noExp = makeJwt({ exp: null });
    assert.deepEqual(unexpired([expired, near, "live-1", noExp], Date.now()), [near, "live-1", noExp]);
  });

  it("throws a 401 token_expired that says when, without the token or its claims", () => {
    const exp = 1_700_000_000;
    const token = makeJwt({ exp });
    assert.throws(() => unexpired([token], Date.now()), (e: unknown) => {
      assert.ok(e instanceof TokenExpiredError);
      assert.equal(e.status, 401);
      assert.equal(e.code, "token_expired");
      assert.equal(e.expiredAt, "2023-11-14T22:13:20.000Z");
      assert.match(e.message, /expired at 2023-11-14T22:13:20\.000Z/);
      assert.ok(!e.message.includes(token) && !e.message.includes("sub-claim"));
      return true;
    });
    // Several: the latest end is the one that matters.
    assert.throws(
      () => unexpired([token, makeJwt({ exp: exp + 60 })], Date.now()),
      /Every Emohaa token expired, the last at 2023-11-14T22:14:20\.000Z/,
    );
  });
});
