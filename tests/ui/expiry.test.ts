// ui/expiry.js: a pasted JWT's end read in the page, "expires in" steps, and whether a send would fail.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { makeJwt } from "../support/jwt.ts";

// Imported by URL: for the type checker "../../ui/*" are the text files the server embeds (lib/web/embedded.d.ts).
const expiry: any = await import(new URL("../../ui/expiry.js", import.meta.url).href);

const NOW = 1_800_000_000_000;
const jwt = (offsetMs: number | null) =>
  makeJwt({ exp: offsetMs === null ? null : Math.floor((NOW + offsetMs) / 1000) });

describe("jwtExpiry", () => {
  it("reads exp in milliseconds; null for a token that is not a JWT, has no exp, or a broken payload", () => {
    assert.equal(expiry.jwtExpiry(jwt(5 * 3_600_000)), Math.floor((NOW + 5 * 3_600_000) / 1000) * 1000);
    assert.equal(expiry.jwtExpiry(jwt(null)), null);
    assert.equal(expiry.jwtExpiry("live-token-1"), null);
    assert.equal(expiry.jwtExpiry("eyJhbGciOiJIUzUxMiJ9.%%%.sig"), null);
    assert.equal(expiry.jwtExpiry("eyJhbGciOiJIUzUxMiJ9.bm90IGpzb24.sig"), null);
  });
});

describe("expiryStatus", () => {
  it("says minutes under 2 h, hours under 2 days, days beyond; soon under an hour; expired at its end", () => {
    const at = (ms: number) => expiry.expiryStatus(NOW + ms, NOW);
    assert.deepEqual(at(5 * 3_600_000 + 59_000), { state: "ok", key: "expiresInH", vars: { n: 5 } });
    assert.deepEqual(at(90 * 60_000), { state: "ok", key: "expiresInMin", vars: { n: 90 } });
    assert.deepEqual(at(59 * 60_000), { state: "soon", key: "expiresInMin", vars: { n: 59 } });
    assert.deepEqual(at(10_000), { state: "soon", key: "expiresInMin", vars: { n: 1 } });
    assert.deepEqual(at(3 * 86_400_000), { state: "ok", key: "expiresInD", vars: { n: 3 } });
    assert.equal(at(0).state, "expired");
    assert.equal(expiry.expiryStatus(null, NOW), null);
  });
});

describe("sendWouldFail", () => {
  it("only when every token a send would use is known to have expired", () => {
    const gone = jwt(-60_000);
    assert.equal(expiry.sendWouldFail({ tokens: [gone], now: NOW }), true);
    assert.equal(expiry.sendWouldFail({ tokens: [gone, jwt(60_000)], now: NOW }), false);
    assert.equal(expiry.sendWouldFail({ tokens: [gone, "live-opaque"], now: NOW }), false, "an unknown end may work");
    assert.equal(expiry.sendWouldFail({ tokens: [], now: NOW }), false);
    // Server-side: the server's rows decide, whatever the pasted gateway key is.
    const iso = (ms: number) => new Date(NOW + ms).toISOString();
    const rows = (...ends: (string | null)[]) => ends.map((expiresAt) => ({ expiresAt }));
    assert.equal(expiry.sendWouldFail({ tokens: ["gk"], serverRows: rows(iso(-1), iso(-5)), now: NOW }), true);
    assert.equal(expiry.sendWouldFail({ tokens: ["gk"], serverRows: rows(iso(-1), null), now: NOW }), false);
    assert.equal(expiry.sendWouldFail({ tokens: ["gk"], serverRows: rows(), now: NOW }), false);
  });
});
