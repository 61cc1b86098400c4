// Comma-separated lists, split by one rule everywhere: API_KEYS and EMOHAA_TOKENS, the token file, the bearer header.

/** The entries of a comma-separated list: trimmed, empty ones dropped, and each kept once (first place wins). */
export function commaList(text: string): string[] {
  return [...new Set(text.split(",").map((t) => t.trim()).filter((t) => t.length > 0))];
}

/** A token file (EMOHAA_TOKENS_FILE): one token per line or several separated by commas; `#` starts a comment. */
export function parseTokenList(text: string): string[] {
  return commaList(text.split(/\r?\n/).map((line) => line.replace(/#.*/, "")).join(","));
}
