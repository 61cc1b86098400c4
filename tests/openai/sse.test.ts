import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createParser } from "eventsource-parser";
import { contentFramer, dataFrame } from "../../lib/openai/sse.ts";
import { deltaChunk } from "../../lib/openai/translate.ts";

describe("contentFramer", () => {
  it("is byte-identical to serialising the whole chunk", () => {
    const head = { id: "chatcmpl-x", created: 123, model: "emohaa" };
    const frame = contentFramer(head);
    for (const piece of ["hi", "你好\n😊", 'quote " and \\ back', "\u0000\u2028"]) {
      assert.equal(frame(piece), dataFrame(deltaChunk(head, { content: piece })));
    }
  });
  it("a piece holding line breaks and frame syntax stays one event with that exact text", () => {
    const piece = "line1\r\nline2\n\ndata: [DONE]\n\nevent: error\rdata: {}";
    const events: string[] = [];
    const parser = createParser({ onEvent: (e) => events.push(e.data) });
    parser.feed(contentFramer({ id: "a", created: 1, model: "emohaa" })(piece));
    assert.equal(events.length, 1);
    assert.equal(JSON.parse(events[0]!).choices[0].delta.content, piece);
  });
});
