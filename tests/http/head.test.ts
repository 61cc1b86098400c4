// lib/http/head.ts: the request head parsed strictly, and what it refuses with which status.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseHead, parseRequestLine } from "../../lib/http/head.ts";

const head = (s: string) => parseHead(s, "default.host");
const status = (s: string) => {
  try {
    head(s);
    return 0;
  } catch (err) {
    return (err as { status: number }).status;
  }
};

describe("parseHead", () => {
  it("parses method, target, version, headers, Host, body framing and keep-alive", () => {
    const h = head("POST /v1/x?a=1 HTTP/1.1\r\nHost: example.com:8000\r\nContent-Length: 12\r\nX-A: b \r\n\r\n");
    assert.equal(h.method, "POST");
    assert.equal(h.target, "/v1/x?a=1");
    assert.equal(h.host, "example.com:8000");
    assert.equal(h.body, 12);
    assert.equal(h.keepAlive, true);
    assert.deepEqual(h.headers[2], ["X-A", "b"]);
    assert.equal(head("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n").body, "chunked");
    assert.equal(head("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").keepAlive, false);
    assert.equal(head("GET / HTTP/1.0\r\n\r\n").keepAlive, false);
    assert.equal(head("GET / HTTP/1.0\r\n\r\n").host, "default.host");
    assert.equal(head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keepAlive, true);
    assert.equal(head("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n").host, "[::1]:80");
  });

  it("rejects what a strict server must: 400, 414, 417, 505", () => {
    assert.equal(status("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n"), 400);
    assert.equal(status("GET / HTTP/1.1\r\nHost : x\r\n\r\n"), 400);
    assert.equal(status("GET / HTTP/1.1\r\nHost: x\r\nX: \x00\r\n\r\n"), 400);
    assert.equal(status("GET / HTTP/1.1\nHost: x\r\n\r\n"), 400);
    assert.equal(status("GET / HTTP/1.1\r\n\r\n"), 400);
    for (const host of ["x/metrics?", "a?b", "a#b", "u@h", "a b", "a\tb"]) {
      assert.equal(status(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`), 400, host);
    }
    assert.equal(status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
    assert.equal(status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), 400);
    assert.equal(status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n"), 400);
    assert.equal(status("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"), 400);
    assert.equal(status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
    assert.equal(status("GET /a b HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    assert.equal(status(`GET /${"a".repeat(9000)} HTTP/1.1\r\nHost: x\r\n\r\n`), 414);
    assert.equal(status("GET / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n"), 417);
    assert.equal(status("GET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505);
  });

  it("a malformed version is a 400, a well-formed one not spoken a 505; HTTP/1.2 reads as 1.1", () => {
    for (const v of ["HTTP/1", "HTTP/01.01", "HTTP/1.1.1", "http/1.1", "HTTP/1.x", "HTTP /1.1", "HTTP/"]) {
      assert.equal(status(`GET / ${v}\r\nHost: x\r\n\r\n`), 400, v);
    }
    for (const v of ["HTTP/2.0", "HTTP/0.9", "HTTP/3.0"]) assert.equal(status(`GET / ${v}\r\nHost: x\r\n\r\n`), 505, v);
    assert.equal(head("GET / HTTP/1.2\r\nHost: x\r\n\r\n").minor, 1);
  });

  it("methods are case-sensitive: the app's methods pass, any other token is a 501, a long or odd one a 400", () => {
    for (const m of ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]) {
      assert.equal(parseRequestLine(`${m} / HTTP/1.1`).method, m);
    }
    for (const m of ["get", "Post", "TRACE", "CONNECT", "PROPFIND", "BREW"]) {
      assert.equal(status(`${m} / HTTP/1.1\r\nHost: x\r\n\r\n`), 501, m);
    }
    assert.equal(status(`${"G".repeat(100_000)} / HTTP/1.1\r\nHost: x\r\n\r\n`), 400);
    assert.equal(status("G(T / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
  });
});
