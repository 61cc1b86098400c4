// Token estimates with a real BPE tokenizer (gpt-tokenizer, o200k_base): usage and max_tokens cutting, at a bounded cost.
import { setImmediate } from "node:timers";
import type { Tokenizer } from "./translate.ts";
import type { Encoding } from "./tokenizer-load.ts";

/**
 * The longest stretch of text encoded in one piece when it holds no boundary (see `scan`). BPE merges one
 * pre-token in time quadratic in its length (gpt-tokenizer took 20 s for 150,000 `b`), and no pre-token spans
 * a boundary, so cutting boundary-less stretches every PIECE_MAX characters bounds the work per character.
 * Real text has a boundary every word or line, so its counts are exact; a stretch cut this way (a very long
 * "word", or a long paragraph with no space or line break) may count a token more per cut.
 */
export const PIECE_MAX = 256;

/** Characters counted between two turns of the event loop: about a millisecond of work, a few for gibberish. */
export const TURN_CHARS = 512;

// JavaScript's `\s` (the tokenizer's pattern uses it) as a char code test.
const isSpace = (c: number) =>
  c === 32 || (c >= 9 && c <= 13) || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
  c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;
const isBreak = (c: number) => c === 10 || c === 13;
const WORD = /^[\p{L}\p{N}]$/u;
const PUNCT = /^[^\s\p{L}\p{N}\p{M}']$/u;
const charAt = (text: string, i: number) => String.fromCodePoint(text.codePointAt(i)!);

/**
 * Whether o200k_base never merges across `text[i - 1]` and `text[i]` (so the parts count to the same as the
 * whole): a space or tab after a non-space (a word takes its leading space; only line breaks stick to what
 * precedes them), or a non-space other than `/` after a line break.
 */
function isBoundary(text: string, i: number): boolean {
  const c = text.charCodeAt(i);
  const b = text.charCodeAt(i - 1);
  return isSpace(c) ? !isBreak(c) && !isSpace(b) : isBreak(b) && c !== 47;
}

/** The last place in (from, to] where a letter or digit is followed by punctuation (also a boundary), or 0. */
function lastWordEnd(text: string, from: number, to: number): number {
  for (let i = to; i > from; i--) {
    if ((text.charCodeAt(i) & 0xfc00) === 0xdc00) continue;
    const before = (text.charCodeAt(i - 1) & 0xfc00) === 0xdc00 ? i - 2 : i - 1;
    if (before >= 0 && WORD.test(charAt(text, before)) && PUNCT.test(charAt(text, i))) return i;
  }
  return 0;
}

/**
 * Scans `text` for boundaries, cutting each stretch without one after PIECE_MAX characters (at its last
 * word end if it has one, never inside a surrogate pair); pushes the cuts to `cuts` and returns the last
 * boundary or cut (0 if none). Each cut depends only on the text before it and the character after it, so a
 * text counted piece by piece, from boundary to boundary, is cut in the same places as the whole.
 */
function scan(text: string, cuts?: number[]): number {
  let last = 0;
  for (let i = 1; i < text.length; i++) {
    if (isBoundary(text, i)) last = i;
    else if (i - last >= PIECE_MAX && (text.charCodeAt(i) & 0xfc00) !== 0xdc00) {
      last = lastWordEnd(text, last, i) || i;
      cuts?.push(last);
    }
  }
  return last;
}

/** Applies `f` to the pieces of `text` between its cuts. */
function eachPiece(text: string, f: (piece: string) => void): void {
  const cuts: number[] = [];
  scan(text, cuts);
  let from = 0;
  for (const at of cuts) {
    f(text.slice(from, at));
    from = at;
  }
  f(from ? text.slice(from) : text);
}

/** The Tokenizer over one encoding, each boundary-less stretch cut every PIECE_MAX characters (see `scan`). */
export function boundedTokenizer(m: Encoding): Tokenizer {
  return {
    encode(text) {
      if (text.length <= PIECE_MAX) return m.encode(text);
      const out: number[] = [];
      eachPiece(text, (p) => {
        for (const t of m.encode(p)) out.push(t);
      });
      return out;
    },
    decode: (tokens) => m.decode(tokens),
    count(text) {
      if (!text) return 0;
      if (text.length <= PIECE_MAX) return m.countTokens(text);
      let n = 0;
      eachPiece(text, (p) => (n += m.countTokens(p)));
      return n;
    },
    boundary: (text) => scan(text),
  };
}

let loaded: Promise<Tokenizer> | undefined;

/**
 * Loads the tokenizer once (its tables take a few hundred milliseconds to build, in slices), so start-up can warm it
 * while the server already answers. `readRanks` reads the rank table from disk (RuntimeParts.tokenizerRanks). Emohaa's own tokenizer is unknown: counts are estimates.
 */
export function loadTokenizer(readRanks?: () => Promise<string>): Promise<Tokenizer> {
  // A slice at a time, with turns of the event loop between (lib/openai/tokenizer-load.ts): nobody waits on it.
  loaded ??= (async () => {
    const [{ loadEncoding }, source] = await Promise.all([import("./tokenizer-load.ts"), ranksText(readRanks)]);
    return boundedTokenizer(await loadEncoding(nextTurn, source));
  })();
  return loaded;
}

/**
 * The rank table's text: read from the package on disk when the runtime can (`readRanks`; Bun's import of a 2 MB
 * text held the event loop about 250 ms, an asynchronous read none), else the copy compiled in (bundles, binaries).
 */
async function ranksText(readRanks?: () => Promise<string>): Promise<string> {
  if (readRanks) {
    try {
      return await readRanks();
    } catch {
      // No package on disk (a bundle, a binary): the compiled-in copy.
    }
  }
  return (await import("./tokenizer-ranks.ts")).default;
}

/** Resolves after the event loop had a turn (timers, I/O and other requests ran). */
export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Counts `text` a slice of about TURN_CHARS characters at a time, giving the event loop a turn between slices,
 * so a reply of a megabyte never holds other requests up for more than a slice's work. Slices end at boundaries
 * (`Tokenizer.boundary`), so the total is the same as `count(text)`. A short text is counted at once.
 */
export async function countInTurns(tk: Tokenizer, text: string, slice = TURN_CHARS): Promise<number> {
  let n = 0;
  let from = 0;
  while (text.length - from > slice) {
    // A window longer than PIECE_MAX always holds a boundary or cut; the fallback guards against a tokenizer without.
    const window = text.slice(from, from + Math.max(slice, PIECE_MAX + 1));
    const cut = tk.boundary(window) || window.length;
    n += tk.count(window.slice(0, cut));
    from += cut;
    await nextTurn();
  }
  return n + tk.count(from ? text.slice(from) : text);
}
