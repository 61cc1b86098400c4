// ui/chat-state.js: the playground chat's reducer, without a browser.
import { describe, it } from "node:test";
import assert from "node:assert/strict";

// Imported by URL: for the type checker "../../ui/*" are the text files the server embeds (lib/web/embedded.d.ts).
const { chatReducer, historyOf, initialChat } = await import(new URL("../../ui/chat-state.js", import.meta.url).href);

/** The state after `actions`, from an empty chat. */
const run = (...actions: object[]) => actions.reduce((s: any, a) => chatReducer(s, a), initialChat);
const error = { kind: "auth", message: "Emohaa rejected the token", status: 401, code: "invalid_token" };

describe("chatReducer", () => {
  it("sends a question: it joins the transcript with a streaming reply, the box empties, the chat is pending", () => {
    const s = run({ type: "input", text: "hi there" }, { type: "send", exchange: 1, text: "hi there" });
    assert.equal(s.prompt, "");
    assert.equal(s.pending, 1);
    assert.deepEqual(
      s.turns.map((x: any) => [x.id, x.role, x.content, x.state]),
      [
        ["u1", "user", "hi there", undefined],
        ["a1", "assistant", "", "streaming"],
      ],
    );
  });

  it("grows the reply as text arrives, then completes it with timings and usage", () => {
    const usage = { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 };
    const s = run(
      { type: "send", exchange: 1, text: "hi" },
      { type: "delta", exchange: 1, content: "你" },
      { type: "delta", exchange: 1, content: "你好" },
      { type: "done", exchange: 1, content: "你好", ttftMs: 12, totalMs: 30, usage },
    );
    assert.equal(s.pending, null);
    assert.deepEqual(s.turns[1], {
      id: "a1",
      exchange: 1,
      role: "assistant",
      content: "你好",
      state: "done",
      ttftMs: 12,
      totalMs: 30,
      usage,
    });
  });

  it("keys every turn by its exchange, never by its place: ids stay unique over turns, errors and a new chat", () => {
    const s = run(
      { type: "send", exchange: 1, text: "a" },
      { type: "fail", exchange: 1, error, ttftMs: null, totalMs: 5 },
      { type: "send", exchange: 2, text: "a" },
      { type: "done", exchange: 2, content: "ok", ttftMs: 1, totalMs: 2, usage: null },
    );
    const ids = s.turns.map((x: any) => x.id);
    assert.deepEqual(ids, ["u1", "e1", "u2", "a2"]);
    const after = run({ type: "send", exchange: 1, text: "a" }, { type: "clear" }, {
      type: "send",
      exchange: 2,
      text: "b",
    });
    assert.deepEqual(
      after.turns.map((x: any) => x.id),
      ["u2", "a2"],
    );
  });

  it("on an error before any text: the reply goes, the question is marked failed and put back, the error is shown", () => {
    const s = run({ type: "send", exchange: 1, text: "are you there?" }, {
      type: "fail",
      exchange: 1,
      error,
      ttftMs: null,
      totalMs: 40,
    });
    assert.equal(s.pending, null);
    assert.equal(s.prompt, "are you there?");
    assert.deepEqual(s.turns, [
      { id: "u1", exchange: 1, role: "user", content: "are you there?", failed: true },
      { id: "e1", exchange: 1, role: "error", error },
    ]);
    assert.deepEqual(historyOf(s.turns), [], "a failed question is not sent again as history");
  });

  it("does not overwrite what was typed meanwhile when it puts a question back", () => {
    const s = run({ type: "send", exchange: 1, text: "first" }, { type: "input", text: "second" }, {
      type: "fail",
      exchange: 1,
      error,
      ttftMs: null,
      totalMs: 1,
    });
    assert.equal(s.prompt, "second");
  });

  it("on a stop after some text: the reply stays, marked stopped with its timings, and no error is shown", () => {
    const s = run(
      { type: "send", exchange: 1, text: "tell me a story" },
      { type: "delta", exchange: 1, content: "Once" },
      { type: "fail", exchange: 1, error: null, ttftMs: 15, totalMs: 90 },
    );
    assert.equal(s.pending, null);
    assert.equal(s.prompt, "");
    assert.deepEqual(s.turns[1], {
      id: "a1",
      exchange: 1,
      role: "assistant",
      content: "Once",
      state: "stopped",
      ttftMs: 15,
      totalMs: 90,
    });
    assert.equal(s.turns.length, 2);
    assert.deepEqual(historyOf(s.turns), [
      { role: "user", content: "tell me a story" },
      { role: "assistant", content: "Once" },
    ]);
  });

  it("keeps the text and shows the error when a stream breaks off mid-reply", () => {
    const broke = { kind: "stream", message: "The stream ended before the reply was complete" };
    const s = run({ type: "send", exchange: 1, text: "q" }, { type: "delta", exchange: 1, content: "par" }, {
      type: "fail",
      exchange: 1,
      error: broke,
      ttftMs: 3,
      totalMs: 9,
    });
    assert.deepEqual(
      s.turns.map((x: any) => [x.id, x.state ?? x.error?.kind ?? null]),
      [
        ["u1", null],
        ["a1", "stopped"],
        ["e1", "stream"],
      ],
    );
  });

  it("drops a cleared reply's late updates, and its end leaves the next exchange pending", () => {
    const cleared = run({ type: "send", exchange: 1, text: "old" }, { type: "delta", exchange: 1, content: "o" }, {
      type: "clear",
    });
    assert.deepEqual(cleared.turns, []);
    assert.equal(cleared.pending, null);
    const next = chatReducer(cleared, { type: "send", exchange: 2, text: "new" });
    for (
      const late of [
        { type: "delta", exchange: 1, content: "old reply" },
        { type: "done", exchange: 1, content: "old reply", ttftMs: 1, totalMs: 2, usage: null },
        { type: "fail", exchange: 1, error, ttftMs: null, totalMs: 2 },
      ]
    ) {
      const s = chatReducer(next, late);
      assert.equal(s, next, late.type);
    }
    // The stopped exchange's question is not put back into the box either.
    assert.equal(chatReducer(cleared, { type: "fail", exchange: 1, error: null, ttftMs: null, totalMs: 2 }).prompt, "");
  });

  it("sends the conversation without errors or failed questions, stopped replies included", () => {
    const s = run(
      { type: "send", exchange: 1, text: "one" },
      { type: "done", exchange: 1, content: "1", ttftMs: 1, totalMs: 1, usage: null },
      { type: "send", exchange: 2, text: "two" },
      { type: "fail", exchange: 2, error, ttftMs: null, totalMs: 1 },
      { type: "send", exchange: 3, text: "two" },
      { type: "delta", exchange: 3, content: "tw" },
      { type: "fail", exchange: 3, error: null, ttftMs: 1, totalMs: 1 },
    );
    assert.deepEqual(historyOf(s.turns), [
      { role: "user", content: "one" },
      { role: "assistant", content: "1" },
      { role: "user", content: "two" },
      { role: "assistant", content: "tw" },
    ]);
  });

  it("leaves the state as it is for an action it does not know", () => {
    const s = run({ type: "send", exchange: 1, text: "q" });
    assert.equal(chatReducer(s, { type: "nope" }), s);
  });
});
