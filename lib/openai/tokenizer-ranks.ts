// The tokenizer's rank table as text, compiled into bundles and binaries (`with { type: "text" }`): what
// lib/openai/tokenizer-load.ts parses where no copy on disk is given (RuntimeParts.tokenizerRanks).
import source from "../../node_modules/gpt-tokenizer/esm/bpeRanks/o200k_base.js" with { type: "text" };

/** gpt-tokenizer's o200k_base ranks module, as text. */
export default source as unknown as string;
