// The tokenizer's first load, a slice at a time. gpt-tokenizer's o200k_base module holds its 200,000 ranks as one
// JavaScript array literal (parsing it as a module blocked the event loop 170-470 ms, and its encoder's tables took
// 25 MB of heap). Here the ranks are read from the same module's text (lib/openai/tokenizer.ts gets it) straight
// into a compact table (lib/openai/bpe.ts), RANKS_PER_TURN at a time, with a turn of the event loop between
// slices: no request waits on the load, and nothing but the table is left once it is done.
// tests/openai/tokenizer.test.ts compares every rank and the encodings with the library's own.
import { getEncodingParams } from "gpt-tokenizer/modelParams";
import { BytePairEncoding, RankTable } from "./bpe.ts";

/** Ranks parsed or indexed between two turns of the event loop: a few milliseconds of work. */
export const RANKS_PER_TURN = 2_000;

/** What the tokenizer uses of an encoding. Text such as `<|endoftext|>` is ordinary text, not a special token. */
export interface Encoding {
  encode(text: string): number[];
  decode(tokens: number[]): string;
  countTokens(text: string): number;
}

const enum Char {
  Tab = 9,
  LineFeed = 10,
  Return = 13,
  Space = 32,
  DoubleQuote = 34,
  SingleQuote = 39,
  Comma = 44,
  Zero = 48,
  Nine = 57,
  Open = 91,
  Backslash = 92,
  Close = 93,
}

/** One-character escapes of a JavaScript string and the code units they stand for. */
const ESCAPES: Record<string, number> = { n: 10, r: 13, t: 9, b: 8, f: 12, v: 11, 0: 0 };

/**
 * Writes a string's UTF-16 code units to a rank table as UTF-8, as TextEncoder does (a lone surrogate: U+FFFD), with
 * no string made per rank: decoding each literal to a string for TextEncoder left more memory behind (measured,
 * three runs each, an idle server with the tokenizer: Deno 101-105 MB instead of 97-101, Bun 82-84 MB instead of 79,
 * and Bun's peak during the load 117-119 MB instead of 91-100).
 */
class Utf8Writer {
  private high = -1;
  constructor(private readonly table: RankTable) {}

  unit(u: number): void {
    if (u >= 0xdc00 && u <= 0xdfff && this.high >= 0) {
      this.point(0x10000 + ((this.high - 0xd800) << 10) + (u - 0xdc00));
      this.high = -1;
      return;
    }
    this.flush();
    if (u >= 0xd800 && u <= 0xdbff) this.high = u;
    else this.point(u);
  }

  /** Ends a string: a high surrogate still waiting is a lone one. */
  flush(): void {
    if (this.high >= 0) this.point(0xfffd);
    this.high = -1;
  }

  point(c: number): void {
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
    const t = this.table;
    if (c < 0x80) t.push(c);
    else if (c < 0x800) t.push(0xc0 | (c >> 6)), t.push(0x80 | (c & 63));
    else if (c < 0x10000) t.push(0xe0 | (c >> 12)), t.push(0x80 | ((c >> 6) & 63)), t.push(0x80 | (c & 63));
    else {
      t.push(0xf0 | (c >> 18)), t.push(0x80 | ((c >> 12) & 63));
      t.push(0x80 | ((c >> 6) & 63)), t.push(0x80 | (c & 63));
    }
  }
}

const malformed = (text: string, at: number) =>
  new Error(
    `The tokenizer's rank table is not as expected at character ${at}: ${JSON.stringify(text.slice(at, at + 20))}`,
  );

/** Reads the string literal at `text[at]` into the table; returns the index after its closing quote. */
function readString(text: string, at: number, out: Utf8Writer): number {
  const quote = text.charCodeAt(at);
  for (let i = at + 1; i < text.length;) {
    const c = text.charCodeAt(i);
    if (c === quote) {
      out.flush();
      return i + 1;
    }
    if (c !== Char.Backslash) {
      out.unit(c);
      i++;
      continue;
    }
    const e = text[i + 1]!;
    if (e === "x" || (e === "u" && text[i + 2] !== "{")) {
      const digits = e === "x" ? 2 : 4;
      const hex = text.slice(i + 2, i + 2 + digits);
      if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== digits) throw malformed(text, i);
      out.unit(parseInt(hex, 16));
      i += 2 + digits;
    } else if (e === "u") {
      const close = text.indexOf("}", i);
      const hex = text.slice(i + 3, close);
      if (close < 0 || !/^[0-9a-fA-F]{1,6}$/.test(hex)) throw malformed(text, i);
      out.flush();
      out.point(parseInt(hex, 16));
      i = close + 1;
    } else if (e === "\n") {
      i += 2; // a line continuation: nothing
    } else {
      const digit = text.charCodeAt(i + 2);
      if (e === "0" && digit >= Char.Zero && digit <= Char.Nine) throw malformed(text, i); // an octal escape
      out.unit(ESCAPES[e] ?? e.charCodeAt(0));
      i += 2;
    }
  }
  throw malformed(text, at);
}

/** Reads the array of byte values at `text[at]` into the table; returns the index after its `]`. */
function readBytes(text: string, at: number, table: RankTable): number {
  const close = text.indexOf("]", at);
  if (close < 0) throw malformed(text, at);
  for (const part of text.slice(at + 1, close).split(",")) {
    const s = part.trim();
    if (!s) continue;
    const byte = Number(s);
    if (!/^\d{1,3}$/.test(s) || byte > 255) throw malformed(text, at);
    table.push(byte);
  }
  return close + 1;
}

/**
 * The ranks of a bundled ranks module's text: each `const cN = [` ... `]` block's elements (strings, as UTF-8, and
 * arrays of bytes), in order, RANKS_PER_TURN at a time with `turn()` between.
 */
export async function parseRanks(text: string, turn: () => Promise<void>): Promise<RankTable> {
  const table = new RankTable();
  const writer = new Utf8Writer(table);
  const block = /const c\d+ = \[/g;
  let sinceTurn = 0;
  for (let m = block.exec(text); m !== null; m = block.exec(text)) {
    let at = m.index + m[0].length;
    for (;;) {
      let c = text.charCodeAt(at);
      while (c === Char.Space || c === Char.Tab || c === Char.LineFeed || c === Char.Return || c === Char.Comma) {
        c = text.charCodeAt(++at);
      }
      if (c === Char.Close) break;
      if (c === Char.DoubleQuote || c === Char.SingleQuote) at = readString(text, at, writer);
      else if (c === Char.Open) at = readBytes(text, at, table);
      else throw malformed(text, at);
      table.end();
      if (++sinceTurn === RANKS_PER_TURN) {
        sinceTurn = 0;
        await turn();
      }
    }
    block.lastIndex = at + 1;
  }
  if (!table.size) throw new Error("The tokenizer's rank table holds no ranks");
  return table;
}

/** o200k_base's encoding from its ranks module's text, built a slice at a time with `turn()` between slices. */
export async function loadEncoding(turn: () => Promise<void>, source: string): Promise<Encoding> {
  const table = await parseRanks(source, turn);
  await turn();
  await table.index(turn, RANKS_PER_TURN * 4);
  // gpt-tokenizer's pre-tokenizer pattern for o200k_base (its ranks are not used: no table is built from them).
  return new BytePairEncoding(table, getEncodingParams("o200k_base", () => []).tokenSplitRegex);
}
