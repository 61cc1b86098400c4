import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { clientKey, RateLimiter } from "../../lib/http/ratelimit.ts";

describe("RateLimiter", () => {
  it("allows a burst, then one request per refill interval, and says how long to wait", () => {
    let now = 0;
    const limiter = new RateLimiter({ perMinute: 2, burst: 3, now: () => now });
    assert.deepEqual([1, 2, 3].map(() => limiter.take("a")), [0, 0, 0]);
    // Two per minute: the next one is 30 s away.
    assert.equal(limiter.take("a"), 30);
    now += 10_000;
    assert.equal(limiter.take("a"), 20);
    now += 20_000;
    assert.equal(limiter.take("a"), 0);
    assert.ok(limiter.take("a") > 0);
    // Another client has a budget of its own.
    assert.equal(limiter.take("b"), 0);
  });

  it("refills no further than the burst after a long quiet spell", () => {
    let now = 0;
    const limiter = new RateLimiter({ perMinute: 60, burst: 2, now: () => now });
    limiter.take("a");
    now += 3_600_000;
    assert.deepEqual([limiter.take("a"), limiter.take("a")], [0, 0]);
    assert.ok(limiter.take("a") > 0);
  });

  it("tracks at most maxClients, forgetting the least recently seen", () => {
    const now = 0;
    const limiter = new RateLimiter({ perMinute: 1, burst: 1, maxClients: 100, now: () => now });
    limiter.take("first");
    for (let i = 0; i < 1000; i++) limiter.take(`client-${i}`);
    assert.equal(limiter.size, 100);
    // A client seen recently is still limited; the first one was forgotten and starts afresh.
    assert.ok(limiter.take("client-999") > 0);
    assert.equal(limiter.take("first"), 0);
  });
});

describe("clientKey", () => {
  it("is the peer's address; without one, the shared key 'unknown'", () => {
    assert.equal(clientKey("192.0.2.1", null, false), "192.0.2.1");
    assert.equal(clientKey(undefined, null, false), "unknown");
  });

  it("ignores X-Forwarded-For unless told to trust it, then takes its last entry", () => {
    assert.equal(clientKey("10.0.0.1", "192.0.2.9", false), "10.0.0.1");
    assert.equal(clientKey("10.0.0.1", "198.51.100.1, 192.0.2.9", true), "192.0.2.9");
    assert.equal(clientKey("10.0.0.1", "", true), "10.0.0.1");
  });

  it("counts an IPv6 address by its /64, and an IPv4-mapped one as IPv4", () => {
    assert.equal(clientKey("2001:db8:1:2::1", null, false), clientKey("2001:db8:1:2:ffff:eeee:dddd:cccc", null, false));
    assert.notEqual(clientKey("2001:db8:1:2::1", null, false), clientKey("2001:db8:1:3::1", null, false));
    assert.equal(clientKey("2001:0DB8:0001:0002::1", null, false), clientKey("[2001:db8:1:2::9]", null, false));
    assert.equal(clientKey("::ffff:192.0.2.7", null, false), "192.0.2.7");
    assert.equal(clientKey("::1", null, false), clientKey("::2", null, false));
  });
});
