import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { loopGaps } from "../support/loop.ts";
import { countTokens } from "gpt-tokenizer/encoding/o200k_base";
import { boundedTokenizer, countInTurns, loadTokenizer, nextTurn, PIECE_MAX } from "../../lib/openai/tokenizer.ts";
import { loadEncoding, parseRanks, RANKS_PER_TURN } from "../../lib/openai/tokenizer-load.ts";
import embeddedRanks from "../../lib/openai/tokenizer-ranks.ts";
import stockRanks from "gpt-tokenizer/bpeRanks/o200k_base";
import * as stock from "gpt-tokenizer/encoding/o200k_base";
import fc from "fast-check";
import { runtimeParts } from "../../runtime/parts.ts";

/** A seeded generator, so a failure can be replayed. */
function random(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t ^= t + Math.imul(t ^ (t >>> 7), 61 | t);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Everything the tokenizer's pre-tokenizer treats differently: cases, digits, punctuation, `'s`, `/`, marks,
// CJK, emoji (surrogate pairs), spaces, tabs, line breaks, an ideographic space.
const ALPHABET = [
  "a",
  "b",
  "Z",
  "é",
  "7",
  "42",
  ".",
  "!",
  "'s",
  "/",
  "\u0301",
  "你",
  "好",
  "，",
  "😊",
  " ",
  "  ",
  "\t",
  "\n",
  "\r\n",
  "\u3000",
  "word",
  " the",
  "...",
];

/** Random text made of the alphabet above; `spaced` keeps words short (a space at least every few pieces). */
function randomText(seed: number, pieces: number, spaced = true): string {
  const next = random(seed);
  let out = "";
  for (let i = 0; i < pieces; i++) {
    out += ALPHABET[Math.floor(next() * ALPHABET.length)]!;
    if (spaced && i % 20 === 19) out += "x ";
  }
  return out;
}

/** Random lowercase letters: one unbroken word the merge cache cannot shortcut. */
function randomWord(seed: number, length: number): string {
  const next = random(seed);
  let out = "";
  for (let i = 0; i < length; i++) out += String.fromCharCode(97 + Math.floor(next() * 26));
  return out;
}

describe("loadTokenizer", () => {
  it("counts ordinary text exactly as the whole-text tokenizer does", async () => {
    const tk = await loadTokenizer();
    for (let seed = 1; seed <= 20; seed++) {
      const text = randomText(seed, 400);
      assert.equal(tk.count(text), countTokens(text), `seed ${seed}`);
      assert.equal(tk.encode(text).length, tk.count(text), `seed ${seed}`);
    }
    const prose = "你好啊！我是Emohaa，想和我聊点什么吗？😊 今天心情如何？\n\n".repeat(40) + "The end, isn't it?\r\n";
    assert.equal(tk.count(prose), countTokens(prose));
  });

  it("boundary gives a place where the parts count to the same as the whole", async () => {
    const tk = await loadTokenizer();
    for (let seed = 1; seed <= 40; seed++) {
      for (
        const text of [
          randomText(seed, 300),
          randomText(seed, 300, false),
          "b".repeat(300 + seed * 37),
          "x\n x\n".repeat(60 + seed),
        ]
      ) {
        const at = tk.boundary(text);
        assert.ok(at > 0 && at < text.length, `seed ${seed}: a boundary in a text longer than ${PIECE_MAX}`);
        assert.equal(tk.count(text.slice(0, at)) + tk.count(text.slice(at)), tk.count(text), `seed ${seed} at ${at}`);
      }
    }
    assert.equal(tk.boundary("nospace"), 0);
    assert.equal(tk.boundary("two words"), 3);
  });

  it("counts special-token text such as <|endoftext|> as ordinary text instead of throwing", async () => {
    const tk = await loadTokenizer();
    assert.ok(tk.count("hi <|endoftext|> there") > 3);
    assert.equal(tk.decode(tk.encode("<|im_start|>x")), "<|im_start|>x");
  });

  it("counts 150,000 characters of one unbroken word in bounded pieces, giving the event loop turns", async () => {
    const tk = await loadTokenizer();
    const word = randomWord(7, 150_000);
    const { result, longest, ticks } = await loopGaps(() => countInTurns(tk, word));
    assert.ok(result > 150_000 / 10, `a plausible count: ${result}`);
    assert.equal(result, tk.count(word));
    assert.ok(ticks > 10, `the loop had turns while counting: ${ticks}`);
    assert.ok(longest < 200, `the loop was held ${longest.toFixed(0)} ms of CPU at a time`);
  });

  it("counts a long space run, a long line of CJK and a 'b' run at the same bound", async () => {
    const tk = await loadTokenizer();
    for (const text of [" ".repeat(100_000), "情".repeat(60_000), "b".repeat(150_000), "!\n".repeat(50_000)]) {
      const { result, longest } = await loopGaps(() => countInTurns(tk, text));
      assert.ok(result > 0);
      assert.equal(result, tk.count(text));
      assert.ok(longest < 200, `the loop was held ${longest.toFixed(0)} ms of CPU at a time`);
    }
  });
});

describe("the tokenizer's first load, in slices (lib/openai/tokenizer-load.ts)", () => {
  const text = () => runtimeParts().tokenizerRanks!();

  it("reads the rank table from the package on disk, the same text as the copy compiled in", async () => {
    assert.equal(await text(), embeddedRanks);
  });

  it("reads every one of the 200,000 ranks as gpt-tokenizer's own module holds it, byte for byte", async () => {
    let turns = 0;
    const table = await parseRanks(await text(), async () => void turns++);
    assert.equal(table.size, stockRanks.length);
    const utf8 = new TextEncoder();
    for (let rank = 0; rank < stockRanks.length; rank++) {
      const stockRank = stockRanks[rank]!;
      const want = typeof stockRank === "string" ? utf8.encode(stockRank) : Uint8Array.from(stockRank);
      assert.deepEqual(table.bytes(rank), want, `rank ${rank}: ${JSON.stringify(stockRank)}`);
    }
    assert.ok(turns >= Math.floor(table.size / RANKS_PER_TURN), `${turns} turns`);
    assert.equal(table.bytes(table.size), undefined);
    assert.equal(table.bytes(-1), undefined);
  });

  it("reads the escapes a JavaScript string literal may hold, and refuses a table it does not understand", async () => {
    const source =
      `const c0 = [\n\t"a\\x41\\u00e9\\u{1F600}\\ud83d\\ude00\\'\\"\\\\\\0\\n\t",\n\t'q',\n\t[\n\t\t255,\n\t\t0\n\t]\n];`;
    const table = await parseRanks(source, async () => {});
    assert.equal(table.size, 3);
    assert.deepEqual(
      table.bytes(0),
      new TextEncoder().encode("aA\u00e9\u{1F600}\u{1F600}'\"\\\u0000\n\t"),
    );
    assert.deepEqual(table.bytes(1), new TextEncoder().encode("q"));
    assert.deepEqual(table.bytes(2), Uint8Array.of(255, 0));
    for (const bad of [`const c0 = [\n\t256\n];`, `const c0 = [\n\t"\\x4"\n];`, `const c0 = [\n\t"open`, "nothing"]) {
      await assert.rejects(parseRanks(bad, async () => {}), /rank table/, bad);
    }
  });

  it("encodes, decodes and counts as gpt-tokenizer does: a corpus, then arbitrary text", async () => {
    const enc = await loadEncoding(nextTurn, await text());
    const plain = { disallowedSpecial: new Set<string>() };
    const same = (t: string) => {
      const tokens = stock.encode(t, plain);
      assert.deepEqual(enc.encode(t), tokens, JSON.stringify(t.slice(0, 40)));
      assert.equal(enc.countTokens(t), tokens.length);
      if (t.isWellFormed()) assert.equal(enc.decode(tokens), t);
    };
    const corpus = [
      "",
      "hello world",
      "你好，世界！我今天有点难过，想找人聊聊。",
      "\u0000\u0007 odd bytes \ufeff a BOM\t a tab \u00a0",
      "emoji 😀👍🏽 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
      "lone surrogates \ud800 x\udfff \ud83d",
      "<|endoftext|> <|im_start|>user",
      "I'm sure they'll say it's FINE, DON'T they? https://example.com/a/b?c=d&e=f",
      randomWord(3, 2000),
      "The quick brown fox jumps over the lazy dog. ".repeat(30),
      // Words that are no token, again and again: merged once, then from the cache of merged pieces; and a word longer
      // than the cache keeps, merged each time.
      " zxqvbn qwrtzp 你们好吗朋友".repeat(40),
      ` ${randomWord(5, 60)}`.repeat(5),
    ];
    for (const t of corpus) same(t);
    for (const t of corpus) same(t);
    for (let seed = 1; seed <= 30; seed++) same(randomText(seed, 200, seed % 2 === 0));
    fc.assert(fc.property(fc.string({ unit: "binary", maxLength: 60 }), (t) => same(t)), { numRuns: 500 });
    fc.assert(fc.property(fc.string({ unit: "grapheme", maxLength: 80 }), (t) => same(t)), { numRuns: 500 });
    assert.throws(() => enc.decode([stockRanks.length + 100]), /not in the byte pair encoder/);
  });

  it("gives the event loop turns while it loads: no request waits on the load", async () => {
    const source = await text();
    const { ticks, longest } = await loopGaps(() => loadEncoding(nextTurn, source));
    // All at once it held the loop 300-800 ms (the module's parse, then the maps' build).
    assert.ok(ticks > 100, `the loop had turns while loading: ${ticks}`);
    assert.ok(longest < 150, `the loop was held ${longest.toFixed(0)} ms of CPU at a time`);
  });
});

describe("boundedTokenizer", () => {
  /** An encoding that records what it is given: the work BPE does grows with the square of a piece's words. */
  const recording = () => {
    const seen: string[] = [];
    const m = {
      encode: (t: string) => (seen.push(t), Array.from({ length: Math.ceil(t.length / 4) }, () => 1)),
      decode: (tokens: number[]) => "x".repeat(tokens.length * 4),
      countTokens: (t: string) => (seen.push(t), Math.ceil(t.length / 4)),
    };
    return { tk: boundedTokenizer(m), seen };
  };
  const longestStretch = (t: string) => Math.max(0, ...t.split(/[ \t\n]+/).map((w) => w.length));

  it("never hands the encoding a stretch without a boundary longer than PIECE_MAX", () => {
    const { tk, seen } = recording();
    for (
      const text of [
        "b".repeat(150_000),
        "情".repeat(10_000),
        "😊".repeat(5000),
        `${"a".repeat(1000)} ${"c".repeat(1000)}`,
      ]
    ) {
      seen.length = 0;
      tk.count(text);
      tk.encode(text);
      assert.equal(seen.reduce((n, s) => n + s.length, 0), 2 * text.length, "every character counted once per call");
      for (const s of seen) assert.ok(longestStretch(s) <= PIECE_MAX + 1, `a stretch of ${longestStretch(s)}`);
      // No piece starts with the second half of a surrogate pair.
      for (const s of seen) assert.ok(!/^[\uDC00-\uDFFF]/.test(s));
    }
  });

  it("cuts a long stretch after its last word end, where that keeps the count exact", async () => {
    const tk = await loadTokenizer();
    const text = "今天天气很好，我们去公园散步吧。".repeat(60);
    assert.equal(tk.count(text), countTokens(text));
  });

  it("countInTurns adds up to count for any text, slice size and seed", async () => {
    const tk = await loadTokenizer();
    for (let seed = 1; seed <= 10; seed++) {
      for (const text of [randomText(seed, 3000), randomText(seed, 3000, false), randomWord(seed, 5000)]) {
        for (const slice of [1, 300, 1000, 4096]) {
          assert.equal(await countInTurns(tk, text, slice), tk.count(text), `seed ${seed} slice ${slice}`);
        }
      }
    }
  });
});
