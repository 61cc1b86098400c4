import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { asProblem, maybeJson, problemOf, upstreamFailure, UpstreamError } from "../lib/upstream-errors.ts";

describe("upstreamFailure", () => {
  it("maps each upstream status to what the client sees and the pool learns", () => {
    const cases: [number, string | null, number, string, string][] = [
      [401, null, 401, "auth", "invalid_token"],
      [403, null, 401, "auth", "invalid_token"],
      [429, "Too Many Requests", 429, "rate", "rate_limit_exceeded"],
      [429, "another request is in progress", 429, "busy", "account_busy"],
      [500, null, 502, "server", "upstream_error"],
      [503, null, 502, "server", "upstream_error"],
      [404, "Not Found", 502, "protocol", "upstream_error"],
    ];
    for (const [status, title, client, kind, code] of cases) {
      const e = upstreamFailure(status, "create a conversation", title ? { status, title } : null);
      assert.ok(e instanceof UpstreamError);
      assert.deepEqual([e.status, e.kind, e.code], [client, kind, code], `upstream ${status} ${title}`);
    }
  });

  it("takes retry-after from the upstream, else 5 s, and cuts what the upstream said to 200 characters", () => {
    assert.equal(upstreamFailure(429, "answer", null, "12").retryAfter, 12);
    assert.equal(upstreamFailure(429, "answer", null, "soon").retryAfter, 5);
    const e = upstreamFailure(500, "answer", { title: "x".repeat(500) });
    assert.ok(e.message.length < 300);
  });
});

describe("maybeJson, asProblem, problemOf", () => {
  it("parses JSON, gives undefined for text that is not, and recognises problem bodies only", () => {
    assert.deepEqual(maybeJson('{"a":1}'), { a: 1 });
    assert.equal(maybeJson("c_123"), undefined);
    assert.equal(maybeJson("{broken"), undefined);
    assert.deepEqual(asProblem({ status: 429, title: "Too Many" }), { status: 429, title: "Too Many", detail: "" });
    assert.equal(asProblem({ id: "x" }), null);
    assert.equal(asProblem([1]), null);
    assert.deepEqual(problemOf('{"title":"Unauthorized"}'), { status: undefined, title: "Unauthorized", detail: "" });
    assert.equal(problemOf("a piece of the reply"), null);
  });
});
