// The tokenizer's first load, a slice at a time. gpt-tokenizer's o200k_base module holds its 200,000 ranks as one
// JavaScript array literal (parsing it blocked the event loop 170-470 ms) and builds its encoder's maps in one loop
// (120-340 ms more). Here the ranks are parsed from the same module's text (lib/openai/tokenizer.ts gets it) in
// slices of RANKS_PER_TURN entries and the maps are filled the same way, with a turn of the event loop between
// slices: no request waits on the load.
// The encoder is gpt-tokenizer's own; only the filling of its tables is done here, after constructing it over no
// ranks. `loadEncoding` checks the parts it fills are what it expects (and refuses another major version), and
// tests/openai/tokenizer.test.ts compares every rank, the tables and the encodings with the library's own load.
import { GptEncoding } from "gpt-tokenizer/GptEncoding";
import { getEncodingParams } from "gpt-tokenizer/modelParams";
import { compareUint8Arrays } from "gpt-tokenizer/utfUtil";

/** Ranks parsed or entered between two turns of the event loop: a few milliseconds of work. */
export const RANKS_PER_TURN = 2_000;

/** What the tokenizer uses of gpt-tokenizer's encoding. */
export interface Encoding {
  encode(text: string, options: object): number[];
  decode(tokens: number[]): string;
  countTokens(text: string, options: object): number;
}

type Rank = string | number[];

/** The parts of gpt-tokenizer's BytePairEncodingCore (4.x) that its constructor fills from the ranks. */
interface Core {
  bytePairRankDecoder: Rank[];
  bytePairStringRankEncoder: Map<string, number>;
  bytePairNonUtfRankDecoder: Map<number, Uint8Array>;
  bytePairNonUtfSortedEncoder: [Uint8Array, number][];
  mergeableBytePairRankCount: number;
}

/**
 * Elements of a JavaScript array literal (its lines without their indentation, joined) as JSON: the string escapes
 * JSON lacks (`\x41`, `\v`, `\0`, `\'`) and the raw control characters a JavaScript string may hold (a tab) in
 * JSON's forms. Outside the strings no control character is left once the lines are joined.
 */
function jsToJson(text: string): string {
  // deno-lint-ignore no-control-regex -- control characters are what this pattern is about
  text = text.replace(/[\u0000-\u001f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  if (!text.includes("\\")) return text;
  return text.replace(/\\(x([0-9A-Fa-f]{2})|[\s\S])/g, (all, esc: string, hex: string | undefined) => {
    if (hex) return `\\u00${hex}`;
    if (esc === "v") return "\\u000b";
    if (esc === "0") return "\\u0000";
    if (esc === "'") return "'";
    return all;
  });
}

/**
 * The ranks of a bundled ranks module's text: each `const cN = [` ... `];` block's elements, one per line that
 * starts with a single tab (an array of bytes may continue on deeper lines), parsed RANKS_PER_TURN at a time. The
 * text is walked line by line, never split whole (that alone held the loop 20-60 ms).
 */
export async function parseRanks(text: string, turn: () => Promise<void>): Promise<Rank[]> {
  const ranks: Rank[] = [];
  let inBlock = false;
  let chunk: string[] = [];
  let elements = 0;
  const flush = async () => {
    if (!chunk.length) return;
    const body = chunk.join("").replace(/,$/, "");
    chunk = [];
    elements = 0;
    for (const r of JSON.parse(`[${jsToJson(body)}]`) as Rank[]) ranks.push(r);
    await turn();
  };
  for (let at = 0; at < text.length;) {
    let end = text.indexOf("\n", at);
    if (end < 0) end = text.length;
    const line = text.slice(at, end);
    at = end + 1;
    if (!inBlock) {
      inBlock = /^const c\d+ = \[$/.test(line);
      continue;
    }
    if (line === "];") {
      inBlock = false;
      await flush();
      continue;
    }
    // A new element starts at one tab; a chunk ends between elements only, never inside an array of bytes.
    if (line[0] === "\t" && line[1] !== "\t" && line[1] !== "]") {
      if (elements >= RANKS_PER_TURN) await flush();
      elements++;
    }
    chunk.push(line.replace(/^\t+/, ""));
  }
  return ranks;
}

/** Whether `core` has the parts this file fills, as gpt-tokenizer 4.x builds them. */
function isCore(core: unknown): core is Core {
  const c = core as Partial<Core> | undefined;
  return c?.bytePairStringRankEncoder instanceof Map && c.bytePairNonUtfRankDecoder instanceof Map &&
    Array.isArray(c.bytePairNonUtfSortedEncoder);
}

/**
 * o200k_base's encoding from its ranks module's text, built a slice at a time with `turn()` between slices. Throws
 * if gpt-tokenizer's encoder is not built as this file expects (another major version).
 */
export async function loadEncoding(turn: () => Promise<void>, source: string): Promise<Encoding> {
  const ranks = await parseRanks(source, turn);
  // gpt-tokenizer's own construction over no ranks (its loops and checks over 200,000 of them take one block), then
  // what it would have filled from the ranks, below, a slice at a time.
  const params = getEncodingParams("o200k_base", () => []);
  // The constructor is private in the types (getEncodingApi is the public way, and checks 200,000 ranks at once).
  const Encoder = GptEncoding as unknown as new (p: typeof params) => GptEncoding;
  const encoding = new Encoder({ ...params, expectedVocabularySize: undefined });
  const core = (encoding as unknown as { bytePairEncodingCoreProcessor?: unknown }).bytePairEncodingCoreProcessor;
  if (!isCore(core) || core.bytePairStringRankEncoder.size || core.mergeableBytePairRankCount !== 0) {
    // Another gpt-tokenizer than the 4.x package-lock.json pins: its tests fail the same way.
    throw new Error("gpt-tokenizer's encoder is not built as lib/openai/tokenizer-load.ts expects");
  }
  core.bytePairRankDecoder = ranks;
  core.mergeableBytePairRankCount = ranks.length;
  (encoding as unknown as { vocabularySize: number }).vocabularySize = ranks.length + params.specialTokensEncoder.size;
  await turn();
  const binary: [Uint8Array, number][] = [];
  for (let from = 0; from < ranks.length; from += RANKS_PER_TURN) {
    const to = Math.min(ranks.length, from + RANKS_PER_TURN);
    for (let rank = from; rank < to; rank++) {
      const value = ranks[rank]!;
      if (typeof value === "string") {
        core.bytePairStringRankEncoder.set(value, rank);
        continue;
      }
      const bytes = new Uint8Array(value);
      binary.push([bytes, rank]);
      core.bytePairNonUtfRankDecoder.set(rank, bytes);
    }
    await turn();
  }
  core.bytePairNonUtfSortedEncoder = binary.sort((a, b) => compareUint8Arrays(a[0], b[0]));
  return encoding;
}
