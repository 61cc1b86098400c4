import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { md5Hex } from "../lib/md5.ts";

describe("md5Hex", () => {
  it("matches RFC 1321's test suite", () => {
    assert.equal(md5Hex(""), "d41d8cd98f00b204e9800998ecf8427e");
    assert.equal(md5Hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
    assert.equal(md5Hex("message digest"), "f96b697d7cb7938d525a2f31aaf161d0");
    assert.equal(md5Hex("12345678901234567890123456789012345678901234567890123456789012345678901234567890"), "57edf4a22be3c955ac49da2e2107b67a");
  });

  it("matches node:crypto for every length around the block and padding edges, and for non-ASCII text", () => {
    const node = (s: string) => createHash("md5").update(s).digest("hex");
    for (let n = 0; n <= 200; n++) {
      const s = Array.from({ length: n }, (_, i) => String.fromCharCode(33 + ((i * 7 + n) % 90))).join("");
      assert.equal(md5Hex(s), node(s), `length ${n}`);
    }
    for (const s of ["1700000000000-_-0.123", "情绪支持 ✨ emoji 🫂", "\u0000\u00ff\u0100"]) assert.equal(md5Hex(s), node(s));
  });
});
