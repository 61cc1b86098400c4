import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LARGE, readBuffer, SMALL } from "../../runtime/read-buffer.ts";
import { dial } from "../../runtime/dial.ts";
import { createHttp1Fetch } from "../../lib/upstream/http1.ts";
import { rawServer } from "../support/raw-server.ts";

describe("readBuffer", () => {
  it("starts small, grows fourfold while reads fill it, up to the large size", () => {
    const r = readBuffer();
    const sizes = [r.next().length];
    for (let i = 0; i < 6; i++) {
      r.filled(r.next().length);
      sizes.push(r.next().length);
    }
    assert.deepEqual(sizes, [SMALL, SMALL * 4, SMALL * 16, LARGE, LARGE, LARGE, LARGE]);
  });

  it("keeps its size after a read that used much of it, and goes back to small after one that used little", () => {
    const r = readBuffer(1024, 65536);
    r.filled(1024);
    assert.equal(r.next().length, 4096);
    r.filled(3000);
    assert.equal(r.next().length, 4096, "a read that used most of it: kept");
    r.filled(600);
    assert.equal(r.next().length, 4096, "over half of the small size: kept");
    r.filled(100);
    assert.equal(r.next().length, 1024, "a streamed piece: back to small");
    r.filled(100);
    assert.equal(r.next().length, 1024);
  });

  it("carries a large body read in many sizes byte for byte through this runtime's dialer", async () => {
    // 300 KB in writes of every size from a byte to 100 KB: the buffer grows, shrinks and grows again under it.
    const body = new Uint8Array(300_000).map((_, i) => (i * 7 + (i >> 9)) & 0xff);
    const cuts = [1, 50, 1024, 1025, 4096, 100_000, 3, 70_000, 2000];
    const s = await rawServer(async (sock) => {
      sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
      let at = 0;
      for (let i = 0; at < body.length; i++) {
        const n = Math.min(cuts[i % cuts.length]!, body.length - at);
        sock.write(body.subarray(at, at + n));
        at += n;
        await new Promise((r) => setTimeout(r, 1));
      }
    });
    try {
      const f = createHttp1Fetch(dial);
      const got = new Uint8Array(await (await f(`${s.url}/`, { method: "GET", headers: {} })).arrayBuffer());
      assert.equal(got.length, body.length);
      assert.ok(got.every((b, i) => b === body[i]), "every byte as sent");
      f.close();
    } finally {
      await s.stop();
    }
  });
});
