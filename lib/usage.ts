// Token estimates with a real BPE tokenizer (gpt-tokenizer, o200k_base): usage and max_tokens cutting.
import type { Tokenizer } from "./translate.ts";

let loaded: Promise<Tokenizer> | undefined;

/**
 * Loads the tokenizer once (its tables take a few hundred milliseconds to build), so start-up can warm it
 * while the server already answers. Emohaa's own tokenizer is unknown: counts are estimates.
 */
export function loadTokenizer(): Promise<Tokenizer> {
  loaded ??= import("gpt-tokenizer/encoding/o200k_base").then((m) => ({
    encode: (text: string) => m.encode(text),
    decode: (tokens: number[]) => m.decode(tokens),
    count: (text: string) => (text ? m.countTokens(text) : 0),
  }));
  return loaded;
}
