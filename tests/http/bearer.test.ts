import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseBearer } from "../../lib/http/bearer.ts";
import { ApiError } from "../../lib/errors.ts";

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
    assert.throws(
      () => parseBearer("Bearer abc\r\nX-Evil: 1"),
      (e: unknown) => e instanceof ApiError && e.status === 401 && !e.message.includes("abc"),
    );
    assert.throws(() => parseBearer("Bearer tök"), (e: unknown) => e instanceof ApiError && e.status === 401);
  });
});
