// The form encoding (application/x-www-form-urlencoded, as URLSearchParams serialises it): how the upstream client
// writes its queries (lib/upstream/emohaa.ts) and how the prompt's size in the chat URL is measured
// (lib/openai/prompt.ts), one fact for both. A pure leaf: it imports nothing.

const FORM_PLAIN = /^[\w.*-]*$/;
const FORM_EXTRA = /[!'()~]/g;
const hex = (c: string) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`;

/**
 * A value as URLSearchParams serialises it: every byte of its UTF-8 percent-encoded but ASCII letters, digits and
 * `*-._`, a space as `+`, a lone surrogate as U+FFFD. Without a URLSearchParams object per call: encodeURIComponent,
 * then the five characters it leaves that the form encoding does not.
 */
export function formEncode(value: string): string {
  if (FORM_PLAIN.test(value)) return value;
  const wellFormed = value.isWellFormed() ? value : value.toWellFormed();
  return encodeURIComponent(wellFormed).replaceAll("%20", "+").replace(FORM_EXTRA, hex);
}

/** A query's fields as URLSearchParams serialises them, in order. */
export function formQuery(fields: Record<string, string>): string {
  let q = "";
  for (const name in fields) q += `${q ? "&" : ""}${formEncode(name)}=${formEncode(fields[name]!)}`;
  return q;
}

/** Whether an ASCII character takes one byte in the form encoding: FORM_PLAIN's, and a space (as `+`). */
const ONE = Array.from({ length: 128 }, (_, c) => c === 32 || FORM_PLAIN.test(String.fromCharCode(c)));

/** `formEncode(value).length`, counted without encoding: 1 or 3 per ASCII character, 3 per UTF-8 byte of the rest. */
export function formLength(value: string): number {
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x80) n += ONE[c] ? 1 : 3;
    else if (c < 0x800) n += 6;
    else if (c >= 0xd800 && c <= 0xdbff && (value.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 12; // a surrogate pair: four bytes
      i++;
    } else n += 9; // three bytes; a lone surrogate travels as U+FFFD, three bytes too
  }
  return n;
}
