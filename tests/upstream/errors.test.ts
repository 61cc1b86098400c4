import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  asProblem,
  maybeJson,
  problemOf,
  sanitiseUpstreamText,
  UpstreamError,
  upstreamFailure,
} from "../../lib/upstream/errors.ts";

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

  it("takes retry-after from the upstream, else 5 s, and cuts what the upstream said to 160 characters", () => {
    assert.equal(upstreamFailure(429, "answer", null, { retryAfter: "12" }).retryAfter, 12);
    assert.equal(upstreamFailure(429, "answer", null, { retryAfter: "soon" }).retryAfter, 5);
    const e = upstreamFailure(500, "answer", { title: "many words ".repeat(100) });
    assert.ok(e.message.length < 250, e.message);
  });

  it("passes on the upstream's plain words, and a redirect as a 502 of its own", () => {
    const e = upstreamFailure(500, "answer", { status: 500, title: "Internal Server Error", detail: "model failed" });
    assert.equal(e.message, "Emohaa failed to answer (upstream status 500): Internal Server Error - model failed");
    const r = upstreamFailure(302, "create a conversation", null);
    assert.deepEqual([r.status, r.kind, r.code], [502, "protocol", "upstream_redirect"]);
  });

  it("never passes on the token or anything token-like the upstream quoted", () => {
    const token = "tk_9f3a1c77e2b44d0c";
    const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    const hostile = [
      `bad token ${token}`,
      `Authorization: Bearer ${token}`,
      `GET https://ai-role.cn/echo-prod/chat?token=${token}&cid=1 failed`,
      `GET /chat?token=${encodeURIComponent("a+b/c=" + token)}`,
      `token=${token}`,
      `seen (${token.slice(0, 10)}...)`,
      `x${token}y`,
      `jwt ${jwt}`,
      `hex deadbeef0123456789abcdef0011`,
      `base64 ${btoa(token)}`,
      `line\r\nbreak \u202e${token}`,
    ];
    for (const said of hostile) {
      for (const status of [400, 404, 500, 503]) {
        const e = upstreamFailure(status, "answer", { status, title: "Error", detail: said }, { token });
        for (
          const secret of [
            token,
            token.slice(4, 12),
            jwt.slice(0, 20),
            "deadbeef0123",
            btoa(token).slice(0, 12),
            "ai-role.cn",
          ]
        ) {
          assert.ok(!e.message.includes(secret), `${said} -> ${e.message}`);
        }
        assert.ok(!/[\r\n\u202e]/.test(e.message), e.message);
      }
    }
    // Without the token to compare against, credential-like runs still go.
    assert.equal(sanitiseUpstreamText("token expired for session-9f3a1c77e2b4"), "token expired for [redacted]");
    assert.equal(sanitiseUpstreamText("另一个请求正在进行中"), "另一个请求正在进行中");
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
