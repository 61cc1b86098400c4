// lib/http/response.ts: a response's wire form.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { chunkBytes, dateHeaders, headBytes, plain, responseHead } from "../../lib/http/response.ts";

const text = (b: Uint8Array) => new TextDecoder("latin1").decode(b);

describe("response wire form", () => {
  it("responseHead keeps the handler's fields but framing ones, returns its Content-Length, adds a Date", () => {
    const res = new Response("x", {
      status: 201,
      headers: { "X-A": "1", "Content-Length": "1", Connection: "close", "Keep-Alive": "5", "transfer-encoding": "x" },
    });
    const { text, appLength } = responseHead(res, "Mon, 07 Dec 2026 00:00:00 GMT");
    assert.equal(appLength, "1");
    assert.equal(text.split("\r\n")[0], "HTTP/1.1 201 Created");
    assert.match(text, /x-a: 1\r\n/i);
    assert.doesNotMatch(text, /connection|keep-alive|transfer-encoding|content-length/i);
    assert.match(text, /Date: Mon, 07 Dec 2026 00:00:00 GMT\r\n$/);
    const dated = responseHead(new Response(null, { headers: { date: "then" } }), "now").text;
    assert.doesNotMatch(dated, /now/);
  });

  it("frames chunks, the server's own answers and Latin-1 heads", () => {
    assert.equal(text(chunkBytes(new TextEncoder().encode("hello, world!!!!!"))), "11\r\nhello, world!!!!!\r\n");
    assert.equal(
      text(plain(431)),
      "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain\r\nContent-Length: 31\r\n" +
        "Connection: close\r\n\r\nRequest Header Fields Too Large",
    );
    assert.deepEqual([...headBytes("é")], [0xe9]);
  });

  it("dateHeaders formats at most once a second", () => {
    const date = dateHeaders();
    const a = date(Date.UTC(2026, 11, 7, 0, 0, 0, 100));
    assert.equal(a, "Mon, 07 Dec 2026 00:00:00 GMT");
    assert.equal(date(Date.UTC(2026, 11, 7, 0, 0, 0, 900)), a);
    assert.equal(date(Date.UTC(2026, 11, 7, 0, 0, 1, 0)), "Mon, 07 Dec 2026 00:00:01 GMT");
  });
});
