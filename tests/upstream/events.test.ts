import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pieceReader } from "../../lib/upstream/events.ts";
import { UpstreamError } from "../../lib/upstream/errors.ts";
import type { BodySink, PushBody } from "../../lib/upstream/http1.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

/** A body whose reads give exactly these chunks; `byte` makes it a byte stream (Deno's and Node's fetch). */
function body(chunks: Uint8Array[], byte = false): ReadableStream<Uint8Array> {
  if (!byte) {
    return new ReadableStream({
      start(c) {
        for (const x of chunks) c.enqueue(x);
        c.close();
      },
    });
  }
  let i = 0;
  return new ReadableStream({
    type: "bytes",
    pull(c) {
      if (i < chunks.length) c.enqueue(chunks[i++]! as Uint8Array<ArrayBuffer>);
      else {
        c.close();
        c.byobRequest?.respond(0);
      }
    },
  });
}

async function readAll(r: ReturnType<typeof pieceReader>) {
  const batches: string[][] = [];
  for (let b = await r.read(); b; b = await r.read()) batches.push(b);
  return batches;
}

/** A pushed body (lib/upstream/http1.ts's answers): the test pushes bytes, ends it, and sees the cancel. */
function pushed() {
  let sink: BodySink | undefined;
  let cancelled = 0;
  const body: PushBody = {
    subscribe(s) {
      sink = s;
      return { cancel: () => void cancelled++ };
    },
  };
  return {
    body,
    push: (s: string) => sink!.data(bytes(s)),
    pushBytes: (b: Uint8Array) => sink!.data(b),
    end: (err?: unknown) => sink!.end(err),
    cancelled: () => cancelled,
  };
}

describe("pieceReader on a pushed body", () => {
  it("parses each push as it comes: a waiting read gets its batch, a split character is whole, an end without [DONE] is cut", async () => {
    const p = pushed();
    const r = pieceReader(p.body, 1024);
    assert.equal(r.readNow(), undefined);
    const first = r.read();
    p.push("data: a\n\ndata: b\n\n");
    assert.deepEqual(await first, ["a", "b"]);
    const split = bytes("data: 世\n\n");
    p.pushBytes(split.slice(0, 7));
    assert.equal(r.readNow(), undefined);
    p.pushBytes(split.slice(7));
    assert.deepEqual(await r.read(), ["世"]);
    const last = r.read();
    p.end(undefined);
    await assert.rejects(last, (e: unknown) => e instanceof UpstreamError && e.code === "upstream_stream_cut");
  });

  it("hands over what came before a transport failure, then the failure; after [DONE] a failure is no matter", async () => {
    const p = pushed();
    const r = pieceReader(p.body, 1024);
    p.push("data: a\n\n");
    p.end(new TypeError("The upstream closed the connection mid-response"));
    assert.deepEqual(await r.read(), ["a"]);
    await assert.rejects(r.read(), TypeError);
    const q = pushed();
    const done = pieceReader(q.body, 1024);
    q.push("data: a\n\ndata: [DONE]\n\n");
    q.end(new TypeError("late"));
    assert.deepEqual(await readAll(done), [["a"]]);
    assert.equal(q.cancelled(), 1, "the body is released at the end");
  });

  it("an event over the bound fails the reply however many bytes are still pushed after it", async () => {
    const p = pushed();
    const r = pieceReader(p.body, 1024);
    const waiting = r.read();
    p.push(`data: ${"x".repeat(2000)}`);
    p.push("x".repeat(5000));
    p.push("\n\ndata: late\n\n");
    await assert.rejects(waiting, (e: unknown) => e instanceof UpstreamError && e.code === "upstream_event_too_large");
    assert.equal(p.cancelled(), 1);
  });

  it("cancel releases the body and ends a read still waiting, as a cancelled stream's read ends", async () => {
    const p = pushed();
    const r = pieceReader(p.body, 1024);
    const waiting = r.read();
    r.cancel();
    await assert.rejects(waiting, (e: unknown) => e instanceof UpstreamError && e.code === "upstream_stream_cut");
    assert.equal(p.cancelled(), 1);
  });
});

describe("pieceReader", () => {
  for (const byte of [false, true]) {
    const kind = byte ? "a byte stream" : "a default stream";
    it(`hands over the pieces of each read as one batch and ends at [DONE] (${kind})`, async () => {
      const r = pieceReader(body([bytes("data: a\n\ndata: b\n\n"), bytes("data: c\n\ndata: [DONE]\n\n")], byte), 1024);
      assert.deepEqual(await readAll(r), [["a", "b"], ["c"]]);
      assert.equal(await r.read(), null);
    });

    it(`decodes characters split between reads and skips junk lines (${kind})`, async () => {
      const all = bytes(": comment\r\ndata: 你好😊\r\n\r\njunk line\n\ndata: [DONE]\n\n");
      const r = pieceReader(body([all.slice(0, 15), all.slice(15, 17), all.slice(17)], byte), 1024);
      assert.deepEqual((await readAll(r)).flat(), ["你好😊"]);
    });
  }

  it("ends at [DONE]: what follows it is not handed over", async () => {
    const r = pieceReader(body([bytes("data: a\n\ndata: b\n\ndata: [DONE]\n\ndata: late\n\n")]), 1024);
    assert.deepEqual((await readAll(r)).flat(), ["a", "b"]);
    assert.equal(await r.read(), null);
  });

  it("treats a body that ends without [DONE] as cut, after handing over what came", async () => {
    const r = pieceReader(body([bytes("data: a\n\n")]), 1024);
    assert.deepEqual(await r.read(), ["a"]);
    await assert.rejects(r.read(), (e: unknown) => e instanceof UpstreamError && e.code === "upstream_stream_cut");
  });

  it("fails on an error event, an event over the bound and a reply over the bound", async () => {
    await assert.rejects(
      readAll(pieceReader(body([bytes('event: error\ndata: {"status":500,"title":"boom"}\n\n')]), 1024)),
      (e: unknown) => e instanceof UpstreamError && e.status === 502,
    );
    // The bound is on what an event holds while incomplete: it arrives over more than one read.
    const huge = [bytes(`data: ${"x".repeat(5000)}`), bytes("\n\n"), bytes("data: [DONE]\n\n")];
    await assert.rejects(
      readAll(pieceReader(body(huge), 1024)),
      (e: unknown) => e instanceof UpstreamError && e.status === 502 && e.code === "upstream_event_too_large",
    );
    // The same event complete in one read, and one in a read of its own next to a normal piece.
    for (
      const chunks of [[bytes(`data: ${"x".repeat(5000)}\n\ndata: [DONE]\n\n`)], [
        bytes(`data: a\n\ndata: ${"x".repeat(1025)}\n\n`),
      ]]
    ) {
      for (const byte of [false, true]) {
        await assert.rejects(
          readAll(pieceReader(body(chunks, byte), 1024)),
          (e: unknown) => e instanceof UpstreamError && e.code === "upstream_event_too_large",
        );
      }
    }
    assert.deepEqual(
      (await readAll(pieceReader(body([bytes(`data: ${"x".repeat(1024)}\n\ndata: [DONE]\n\n`)]), 1024))).flat(),
      ["x".repeat(1024)],
    );
    await assert.rejects(
      readAll(pieceReader(body([bytes("data: 12345\n\n".repeat(10))]), 1024, 30)),
      (e: unknown) => e instanceof UpstreamError && e.code === "upstream_reply_too_large",
    );
  });

  it("an error event that quotes the request's token passes on neither the token nor its URL", async () => {
    const token = "acct-7d1e93b0c4";
    const ev = `event: error\ndata: ${
      JSON.stringify({
        status: 500,
        title: `Bearer ${token}`,
        detail: `GET https://x.invalid/chat?token=${token} failed for ${token}`,
      })
    }\n\n`;
    await assert.rejects(readAll(pieceReader(body([bytes(ev)]), 1024, Infinity, token)), (e: unknown) => {
      assert.ok(e instanceof UpstreamError && e.status === 502);
      assert.ok(!e.message.includes(token) && !e.message.includes("x.invalid"), e.message);
      return true;
    });
  });

  it("readNow gives what already arrived without waiting, undefined before anything did", async () => {
    const r = pieceReader(body([bytes("data: a\n\ndata: [DONE]\n\n")]), 1024);
    assert.equal(r.readNow(), undefined);
    assert.deepEqual(await r.read(), ["a"]);
    assert.equal(r.readNow(), null);
  });

  it("cancel releases the body", async () => {
    let cancelled = false;
    const b = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(bytes("data: a\n\n"));
      },
      cancel() {
        cancelled = true;
      },
    });
    const r = pieceReader(b, 1024);
    assert.deepEqual(await r.read(), ["a"]);
    r.cancel();
    await new Promise((res) => setTimeout(res, 0));
    assert.ok(cancelled);
  });
});
