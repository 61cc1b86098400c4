// lib/framing.ts: the chunked coding decoded the same whatever the reads' splits (property tests), strict for a
// server, lenient for a client; where a head ends; a head's fields read as Headers reads them.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { ChunkedDecoder, type ChunkedResult, Fields, headEnd } from "../lib/framing.ts";

const enc = new TextEncoder();
const bytes = (s: string) => enc.encode(s);
const RUNS = Number(process.env.FUZZ_RUNS ?? 200);

/** Feeds `input` cut at `cuts` (sorted offsets); what came out, and the last result. */
function decode(input: Uint8Array, cuts: number[], strict: boolean) {
  const d = new ChunkedDecoder({ strict, maxTrailerBytes: 4096 });
  const out: number[] = [];
  let last: ChunkedResult = { state: "more" };
  let at = 0;
  for (const cut of [...cuts, input.length]) {
    if (cut < at) continue;
    // Each read in a buffer of its own that the "socket" reuses after the call: the decoder must copy what it keeps.
    const read = input.slice(at, cut);
    last = d.feed(read, (b) => void out.push(...b));
    // What is left after the body is a view of the read (a caller keeps a copy, as the server does), and what the
    // later reads bring follows it.
    if (last.state === "done") last = { state: "done", rest: new Uint8Array([...last.rest, ...input.slice(cut)]) };
    read.fill(0);
    at = cut;
    if (last.state !== "more") break;
  }
  return { body: new Uint8Array(out), last };
}

const token = fc.stringMatching(/^[a-z0-9!#$%&'*+.^_`|~-]{1,8}$/);
const quoted = fc.stringMatching(/^[a-z ]{0,6}$/).map((s) => `"${s}"`);
const extension = fc.tuple(fc.constantFrom("", " "), token, fc.option(fc.oneof(token, quoted)))
  .map(([bws, name, value]) => `${bws};${bws}${name}${value === null ? "" : `${bws}=${bws}${value}`}`);
const chunk = fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.array(extension, { maxLength: 2 }));
const message = fc.record({
  chunks: fc.array(chunk, { maxLength: 6 }),
  trailers: fc.array(fc.stringMatching(/^[a-z]{1,6}: [a-z]{0,6}$/), { maxLength: 2 }),
  after: fc.uint8Array({ maxLength: 10 }),
  upper: fc.boolean(),
});

/** A chunked body as a server (or client) would write it, CRLF line ends or bare LF ones. */
type Message = { chunks: [Uint8Array, string[]][]; trailers: string[]; after: Uint8Array; upper: boolean };
function encode(m: Message, eol = "\r\n"): { input: Uint8Array; body: Uint8Array; after: Uint8Array } {
  const parts: Uint8Array[] = [];
  const body: number[] = [];
  for (const [data, exts] of m.chunks) {
    const size = data.length.toString(16);
    parts.push(bytes(`${m.upper ? size.toUpperCase() : size}${exts.join("")}${eol}`), data, bytes(eol));
    body.push(...data);
  }
  parts.push(bytes(`0${eol}${m.trailers.map((t) => `${t}${eol}`).join("")}${eol}`), m.after);
  const input = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) input.set(p, (at += p.length) - p.length);
  return { input, body: new Uint8Array(body), after: m.after };
}

const cutsOf = (max: number) =>
  fc.uniqueArray(fc.integer({ min: 0, max }), { maxLength: 12 }).map((c) => c.sort((a, b) => a - b));

describe("ChunkedDecoder", () => {
  it("decodes the same body and leaves the same rest whatever the splits (strict and lenient)", () => {
    fc.assert(
      fc.property(message.chain((m) => fc.tuple(fc.constant(m), cutsOf(400))), ([m, cuts]) => {
        const { input, body, after } = encode(m);
        for (const strict of [true, false]) {
          const r = decode(input, cuts, strict);
          assert.deepEqual(r.body, body);
          assert.equal(r.last.state, "done");
          assert.deepEqual(r.last.state === "done" && new Uint8Array(r.last.rest), after);
          // All at once gives the same.
          assert.deepEqual(decode(input, [], strict).body, body);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it("lenient takes bare LF line ends as a client must; strict refuses them", () => {
    fc.assert(
      fc.property(
        message.filter((m) => m.chunks.length > 0).chain((m) => fc.tuple(fc.constant(m), cutsOf(400))),
        ([m, cuts]) => {
          const { input, body } = encode(m, "\n");
          assert.deepEqual(decode(input, cuts, false).body, body);
          assert.equal(decode(input, cuts, true).last.state, "error");
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("malformed framing is an error whatever the splits, and the body before it came out", () => {
    const bad = [
      "5;\r\nhello\r\n0\r\n\r\n",
      "5;bad[=x\r\nhello\r\n0\r\n\r\n",
      "5;\0ext\r\nhello\r\n0\r\n\r\n",
      "x\r\n",
      "5\r\nhelloX\r\n",
      '5;a="open\r\n',
    ];
    for (const text of bad) {
      fc.assert(
        fc.property(cutsOf(text.length), (cuts) => {
          assert.equal(decode(bytes(text), cuts, true).last.state, "error", JSON.stringify(text));
        }),
        { numRuns: 50 },
      );
    }
    const r = decode(bytes("3\r\nabc\r\nzz\r\n"), [4], true);
    assert.equal(r.last.state, "error");
    assert.deepEqual(r.body, bytes("abc"));
  });

  it("a size line over 1 KiB is an error before it ends, however slowly it comes", () => {
    const d = new ChunkedDecoder({ strict: false, maxTrailerBytes: 4096 });
    let last: ChunkedResult = { state: "more" };
    for (let i = 0; i < 1100 && last.state === "more"; i++) last = d.feed(bytes(i ? " " : "5"), () => {});
    assert.equal(last.state, "error");
  });

  it("onData returning false stops the decoding", () => {
    const d = new ChunkedDecoder({ strict: true, maxTrailerBytes: 4096 });
    const seen: string[] = [];
    const r = d.feed(
      bytes("3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n"),
      (b) => (seen.push(new TextDecoder().decode(b)), false),
    );
    assert.equal(r.state, "more");
    assert.deepEqual(seen, ["abc"]);
  });
});

describe("headEnd", () => {
  it("finds the end of a head after CRLF CRLF or a bare LF LF, from where the last search stopped", () => {
    assert.equal(headEnd(bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\nbody"), 0), 27);
    assert.equal(headEnd(bytes("HTTP/1.1 200 OK\n\nbody"), 0), 17);
    assert.equal(headEnd(bytes("GET / HTTP/1.1\r\nHost: x\r\n"), 0), -1);
    const text = bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert.equal(headEnd(text, text.length - 4), text.length);
  });
});

const FIELDS: [string, string][] = [["Host", "h"], ["X-Tag", "a"], ["content-type", "text/plain"], ["x-tag", "b"]];

describe("Fields", () => {
  it("reads fields as Headers does: any case, repeated ones joined with a comma and a space, null when absent", () => {
    const fields = new Fields(FIELDS);
    const headers = new Headers(FIELDS);
    for (const name of ["x-tag", "X-TAG", "host", "Content-Type", "accept", "x-ta", "x-tagg"]) {
      assert.equal(fields.get(name), headers.get(name), name);
      assert.equal(fields.has(name), headers.has(name), name);
    }
  });

  it("reads any list of fields as Headers does (property)", () => {
    const name = fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,6}$/);
    const value = fc.stringMatching(/^[ -~]{0,8}$/).map((v) => v.trim());
    fc.assert(
      fc.property(fc.array(fc.tuple(name, value), { maxLength: 8 }), name, (list, probe) => {
        const fields = new Fields(list);
        const headers = new Headers(list);
        for (const n of [probe, ...list.map(([k]) => k.toUpperCase())]) {
          assert.equal(fields.get(n), headers.get(n), n);
          assert.equal(fields.has(n), headers.has(n), n);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it("folds only ASCII letters: `^` and `~`, `_` and DEL are different characters", () => {
    const fields = new Fields([["a^b", "1"], ["a_b", "2"]]);
    assert.equal(fields.get("a~b"), null);
    assert.equal(fields.get("a^b"), "1");
    assert.equal(fields.get("A_B"), "2");
    assert.equal(fields.get("a\x7fb"), null);
  });
});
