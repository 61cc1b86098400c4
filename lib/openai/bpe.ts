// o200k_base's byte-pair encoding over a compact rank table: every token's bytes in one Uint8Array, where each ends in
// one Uint32Array, an open-addressing hash index in one Int32Array and a direct table of the two-byte tokens (about
// 4.5 MB for 200,000 ranks, none of it in the garbage collector's heap). gpt-tokenizer's own tables (a Map of 200,000
// strings, an array of them, byte arrays, and a merge cache of up to 100,000 entries) held 25-31 MB of heap and raised
// an idle server's RSS by 35 MB on Bun and 68 MB on Deno, where this table raises it by 16 and 23 (docs/performance.md).
// The encoding is gpt-tokenizer's, which is tiktoken's: its pre-tokenizer pattern splits the text, a piece that is a
// token is that token, and any other piece is merged from its UTF-8 bytes, the adjacent pair of lowest rank first
// (the leftmost on a tie). tests/openai/tokenizer.test.ts compares every rank and the encodings with the library's.
import { Recent } from "../recent.ts";
import type { Encoding } from "./tokenizer-load.ts";

/** The ranks' bytes, added in rank order (`push`, `end`), then indexed (`index`) for lookup by bytes (`rank`). */
export class RankTable {
  private data = new Uint8Array(1 << 21);
  private ends = new Uint32Array(1 << 18);
  private used = 0;
  /** Ranks added. */
  size = 0;
  private slots = new Int32Array(0);
  private mask = 0;
  /** The ranks of two bytes, by their value (b0 << 8 | b1), -1 for none: most of a merge's lookups. */
  private pairs = new Int32Array(0);

  /** Appends a byte to the rank being added. */
  push(byte: number): void {
    if (this.used === this.data.length) this.data = grown(this.data, new Uint8Array(this.data.length * 2));
    this.data[this.used++] = byte;
  }

  /** Ends the rank being added: its bytes are the ones pushed since the previous end. */
  end(): void {
    if (this.size === this.ends.length) this.ends = grown(this.ends, new Uint32Array(this.ends.length * 2));
    this.ends[this.size++] = this.used;
  }

  /**
   * Indexes the ranks added, `perTurn` at a time with `turn()` between; the tables shrink to their content first.
   * A rank's bytes equal to an earlier one's would be found as the earlier: `rank` returns the first.
   */
  async index(turn: () => Promise<void>, perTurn: number): Promise<void> {
    this.data = this.data.slice(0, this.used);
    this.ends = this.ends.slice(0, this.size);
    let capacity = 1024;
    while (capacity < this.size * 2.5) capacity *= 2;
    const slots = new Int32Array(capacity);
    const mask = capacity - 1;
    for (let rank = 0; rank < this.size; rank++) {
      const from = rank ? this.ends[rank - 1]! : 0;
      const to = this.ends[rank]!;
      let at = hash(this.data, from, to) & mask;
      while (slots[at] !== 0 && !this.equal(slots[at]! - 1, this.data, from, to)) at = (at + 1) & mask;
      if (slots[at] === 0) slots[at] = rank + 1;
      if (rank % perTurn === perTurn - 1) await turn();
    }
    this.slots = slots;
    this.mask = mask;
    const pairs = new Int32Array(1 << 16);
    const two = new Uint8Array(2);
    for (let i = 0; i < pairs.length; i++) {
      two[0] = i >> 8;
      two[1] = i & 255;
      pairs[i] = this.rank(two, 0, 2);
    }
    this.pairs = pairs;
  }

  /** The rank whose bytes are `bytes[from, to)`, or -1. */
  rank(bytes: Uint8Array, from: number, to: number): number {
    if (to - from === 2 && this.pairs.length) return this.pairs[(bytes[from]! << 8) | bytes[from + 1]!]!;
    const slots = this.slots;
    let at = hash(bytes, from, to) & this.mask;
    for (let slot = slots[at]!; slot !== 0; slot = slots[at]!) {
      if (this.equal(slot - 1, bytes, from, to)) return slot - 1;
      at = (at + 1) & this.mask;
    }
    return -1;
  }

  /** A rank's bytes (a view into the table), or undefined for a number that is no rank. */
  bytes(rank: number): Uint8Array | undefined {
    if (!(rank >= 0 && rank < this.size) || !Number.isInteger(rank)) return undefined;
    return this.data.subarray(rank ? this.ends[rank - 1]! : 0, this.ends[rank]!);
  }

  private equal(rank: number, bytes: Uint8Array, from: number, to: number): boolean {
    const start = rank ? this.ends[rank - 1]! : 0;
    if (this.ends[rank]! - start !== to - from) return false;
    const data = this.data;
    for (let i = from, j = start; i < to; i++, j++) if (bytes[i] !== data[j]) return false;
    return true;
  }
}

function grown<T extends Uint8Array | Uint32Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

/** FNV-1a over the bytes, its bits mixed down so the index's low bits depend on all of them. */
function hash(bytes: Uint8Array, from: number, to: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  return (h ^ (h >>> 13)) >>> 0;
}

/** The encoding: `split` (a global, Unicode pattern: the pre-tokenizer) over a rank table. Specials are plain text. */
export class BytePairEncoding implements Encoding {
  private readonly split: RegExp;
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder();
  /** A piece's UTF-8 bytes: reused, grown for a longer piece. */
  private buffer = new Uint8Array(1024);
  /** The merge's parts and pair ranks: reused, grown for a longer piece. */
  private starts = new Int32Array(256);
  private ranks = new Int32Array(256);
  /** Pieces merged lately (a word that is no token recurs): at most 2 × MERGED_KEPT of them. */
  private readonly merged = new Recent<string, number[]>(MERGED_KEPT);

  constructor(private readonly table: RankTable, split: RegExp) {
    // Its own copy: a global pattern keeps its position (lastIndex) between searches.
    this.split = new RegExp(split.source, split.flags);
  }

  encode(text: string): number[] {
    const out: number[] = [];
    this.run(text, out);
    return out;
  }

  countTokens(text: string): number {
    return this.run(text, undefined);
  }

  /** The text of `tokens`; bytes that are not UTF-8 (a multi-byte character cut short) decode to U+FFFD. */
  decode(tokens: number[]): string {
    let length = 0;
    for (const t of tokens) length += this.known(t).length;
    const out = new Uint8Array(length);
    let at = 0;
    for (const t of tokens) {
      const b = this.known(t);
      out.set(b, at);
      at += b.length;
    }
    return this.decoder.decode(out);
  }

  private known(token: number): Uint8Array {
    const b = this.table.bytes(token);
    if (!b) throw new Error(`Token ${token} is not in the byte pair encoder.`);
    return b;
  }

  /** Counts the tokens of `text`, and pushes them to `out` when given. */
  private run(text: string, out: number[] | undefined): number {
    const split = this.split;
    split.lastIndex = 0;
    let n = 0;
    for (let m = split.exec(text); m !== null; m = split.exec(text)) {
      const piece = m[0];
      if (!piece) {
        split.lastIndex++;
        continue;
      }
      n += this.piece(piece, out);
    }
    return n;
  }

  private piece(piece: string, out: number[] | undefined): number {
    const cached = piece.length <= MERGED_LENGTH_KEPT;
    const seen = cached ? this.merged.get(piece) : undefined;
    if (seen) {
      if (out) { for (const t of seen) out.push(t); }
      return seen.length;
    }
    if (this.buffer.length < piece.length * 3) this.buffer = new Uint8Array(piece.length * 3);
    const bytes = this.buffer;
    const length = this.encoder.encodeInto(piece, bytes).written;
    const whole = this.table.rank(bytes, 0, length);
    // A piece with a lone surrogate is not looked up whole by gpt-tokenizer (its key is the string): merged, as there.
    if (whole >= 0 && (length === 1 || piece.isWellFormed())) {
      out?.push(whole);
      return 1;
    }
    const tokens = this.merge(bytes, length);
    if (cached) this.merged.remember(piece, tokens);
    if (out) { for (const t of tokens) out.push(t); }
    return tokens.length;
  }

  /** tiktoken's merge of `bytes[0, length)`: the adjacent pair of lowest rank first, the leftmost on a tie. */
  private merge(bytes: Uint8Array, length: number): number[] {
    if (this.starts.length <= length) {
      this.starts = new Int32Array(length * 2 + 2);
      this.ranks = new Int32Array(length * 2 + 2);
    }
    const { table, starts, ranks } = this;
    // starts[i]: where part i begins (parts = the first `parts` entries, and one more for the end);
    // ranks[i]: the rank of parts i and i + 1 merged, NONE if that is no token.
    let parts = length;
    for (let i = 0; i <= length; i++) starts[i] = i;
    for (let i = 0; i < length - 1; i++) ranks[i] = pairRank(table, bytes, i, i + 2);
    ranks[length - 1] = NONE;
    for (;;) {
      let lowest = NONE;
      let at = -1;
      for (let i = 0; i < parts - 1; i++) {
        if (ranks[i]! < lowest) {
          lowest = ranks[i]!;
          at = i;
        }
      }
      if (at < 0) break;
      // Part at + 1 joins part at.
      starts.copyWithin(at + 1, at + 2, parts + 1);
      ranks.copyWithin(at + 1, at + 2, parts);
      parts--;
      ranks[at] = at + 2 <= parts ? pairRank(table, bytes, starts[at]!, starts[at + 2]!) : NONE;
      if (at > 0) ranks[at - 1] = pairRank(table, bytes, starts[at - 1]!, starts[at + 1]!);
    }
    const tokens: number[] = [];
    for (let i = 0; i < parts; i++) {
      const r = table.rank(bytes, starts[i]!, starts[i + 1]!);
      if (r < 0) throw new Error("A byte is not in the byte pair encoder");
      tokens.push(r);
    }
    return tokens;
  }
}

/** Merged pieces kept per generation of the cache. */
const MERGED_KEPT = 4096;
/**
 * The longest piece kept, in UTF-16 code units: a word recurs, a long run of gibberish seldom does. Two generations of
 * pieces this long (and their tokens) are about 4 MB at the very most; of prose, a few hundred kilobytes.
 */
const MERGED_LENGTH_KEPT = 48;

/** No rank: higher than every rank. */
const NONE = 0x7fffffff;

function pairRank(table: RankTable, bytes: Uint8Array, from: number, to: number): number {
  const r = table.rank(bytes, from, to);
  return r < 0 ? NONE : r;
}
