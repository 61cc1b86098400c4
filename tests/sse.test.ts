import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { contentFramer, dataFrame } from "../lib/sse.ts";
import { deltaChunk } from "../lib/translate.ts";

describe("contentFramer", () => {
  it("is byte-identical to serialising the whole chunk", () => {
    const head = { id: "chatcmpl-x", created: 123, model: "emohaa" };
    const frame = contentFramer(head);
    for (const piece of ["hi", "你好\n😊", 'quote " and \\ back', "\u0000\u2028"]) {
      assert.equal(frame(piece), dataFrame(deltaChunk(head, { content: piece })));
    }
  });
  it("frames are one line of JSON ended by a blank line, LF only", () => {
    const f = contentFramer({ id: "a", created: 1, model: "emohaa" })("line1\r\nline2");
    assert.match(f, /^data: [^\n]*\n\n$/);
    assert.ok(!f.includes("\r"));
  });
});
