// lib/http/edge.ts: the one edge of every route, and that the routed and the fast paths answer alike through it.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { HTTPException } from "hono/http-exception";
import { z } from "zod";
import { ApiError } from "../../lib/errors.ts";
import { createEdge, isPostTo, parseRequest } from "../../lib/http/edge.ts";
import { isValidHost } from "../../lib/http/head.ts";
import type { Logger, RequestLine } from "../../lib/http/log.ts";

function edgeWith(corsOrigin = "*") {
  const lines: RequestLine[] = [];
  const errors: string[] = [];
  const logger = {
    request: (l: RequestLine) => lines.push(l),
    error: (m: string) => errors.push(m),
  } as unknown as Logger;
  let n = 0;
  const edge = createEdge({ corsOrigin, exposeHeaders: ["x-request-id", "retry-after"], logger, id: () => `id${++n}` });
  return { edge, lines, errors };
}

describe("edge", () => {
  it("request ids: a sane client id is kept, anything else replaced by a fresh one", () => {
    const { edge } = edgeWith();
    assert.equal(edge.requestId("abc-1.2:3_x"), "abc-1.2:3_x");
    assert.equal(edge.requestId("has space"), "req_id1");
    assert.equal(edge.requestId("x".repeat(65)), "req_id2");
    assert.equal(edge.requestId(null), "req_id3");
  });

  it("CORS: any origin with *, only listed ones (and vary) with a list; a preflight reflects what was asked", async () => {
    const any = edgeWith().edge;
    assert.deepEqual(any.cors("https://x.example"), {
      "access-control-allow-origin": "*",
      "access-control-expose-headers": "x-request-id,retry-after",
    });
    const listed = edgeWith("https://a.example, https://b.example").edge;
    assert.equal(listed.cors("https://b.example")["access-control-allow-origin"], "https://b.example");
    assert.equal(listed.cors("https://c.example")["access-control-allow-origin"], undefined);
    assert.equal(listed.cors(null).vary, "Origin");
    const pre = listed.preflight(
      new Request("http://h/v1/chat/completions", {
        method: "OPTIONS",
        headers: {
          origin: "https://a.example",
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization, content-type ,x-stainless-os",
        },
      }),
    );
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get("access-control-allow-origin"), "https://a.example");
    assert.equal(pre.headers.get("access-control-allow-headers"), "authorization,content-type,x-stainless-os");
    assert.equal(pre.headers.get("access-control-allow-methods"), "GET,HEAD,PUT,POST,DELETE,PATCH");
    assert.equal(pre.headers.get("access-control-max-age"), "86400");
    assert.equal(pre.headers.get("vary"), "Origin, Access-Control-Request-Headers");
    assert.equal(await pre.text(), "");
  });

  it("Host: one grammar, the server's (RFC 9110), refused with a logged 400 that names no path", async () => {
    for (const ok of ["localhost", "a.b-c_d~", "127.0.0.1:8080", "[::1]:1", "x:", "a!b$c"]) {
      assert.ok(isValidHost(ok), ok);
    }
    for (const bad of ["x/metrics?", "a b", "user@host", "x#y", "[::1", "h:123456", ""]) {
      assert.ok(!isValidHost(bad), bad);
    }
    const { edge, lines } = edgeWith();
    const req = (host: string) => new Request("http://h/ping", { headers: { host, "x-request-id": "r1" } });
    assert.equal(edge.badHost(req("h:1")), null);
    const res = edge.badHost(req("x/metrics?"))!;
    assert.equal(res.status, 400);
    assert.equal(res.headers.get("x-request-id"), "r1");
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, "invalid_request");
    assert.deepEqual(lines.map((l) => [l.path, l.status]), [["-", 400]]);
  });

  it("render: an ApiError as it is, Hono's HTTPException as invalid_request, anything else a 500 that is logged", () => {
    const { edge, errors } = edgeWith();
    const api = new ApiError(429, "slow down", { code: "rate_limit_exceeded", retryAfter: 3 });
    const r1 = edge.render(api, "POST", "/x");
    assert.equal(r1.error, api);
    assert.equal(r1.headers["retry-after"], "3");
    assert.equal(edge.render(new HTTPException(400, { message: "bad" }), "GET", "/x").error.code, "invalid_request");
    assert.equal(edge.render(new TypeError("boom"), "GET", "/y").error.status, 500);
    assert.deepEqual(errors, ["unhandled TypeError on GET /y"]);
  });

  it("JSON bodies: 415 for another media type, 400 for malformed JSON or a refused body, the value otherwise", async () => {
    const schema = z.object({ n: z.number() });
    const post = (body: string, type?: string) =>
      new Request("http://h/v1/x", { method: "POST", body, headers: type ? { "content-type": type } : {} });
    const code = (p: Promise<unknown>) => p.then(() => 0, (e: ApiError) => e.status);
    assert.deepEqual(await parseRequest(post('{"n":1}', "application/json; charset=utf-8"), 1024, schema), { n: 1 });
    assert.deepEqual(await parseRequest(post('{"n":2}', "application/vnd.x+json"), 1024, schema), { n: 2 });
    assert.equal(await code(parseRequest(post('{"n":1}', "text/plain"), 1024, schema)), 415);
    assert.equal(await code(parseRequest(post('{"n":1}'), 1024, schema)), 415);
    assert.equal(await code(parseRequest(post("{", "application/json"), 1024, schema)), 400);
    assert.equal(await code(parseRequest(post('{"n":"1"}', "application/json"), 1024, schema)), 400);
    assert.equal(await code(parseRequest(post(`{"n":${"1".repeat(2000)}}`, "application/json"), 1024, schema)), 413);
  });

  it("isPostTo matches the path exactly, with or without a query", () => {
    const r = (method: string, url: string) => new Request(url, { method });
    assert.ok(isPostTo(r("POST", "http://h/v1/chat/completions"), "/v1/chat/completions"));
    assert.ok(isPostTo(r("POST", "http://h:1/v1/chat/completions?x=1"), "/v1/chat/completions"));
    assert.ok(!isPostTo(r("POST", "http://h/v1/chat/completions/"), "/v1/chat/completions"));
    assert.ok(!isPostTo(r("GET", "http://h/v1/chat/completions"), "/v1/chat/completions"));
  });
});
