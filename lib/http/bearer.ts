// Account tokens as clients send them: the comma-separated bearer list.
import { commaList } from "../list.ts";
import { ApiError } from "../errors.ts";

/** Whether a token can travel in the upstream's headers and URLs: printable ASCII without spaces, at most 4 KiB. */
export function isUsableToken(token: string): boolean {
  return token.length <= 4096 && /^[\x21-\x7e]+$/.test(token);
}

/** Reads `Authorization: Bearer T1,T2,T3`: case-insensitive scheme, spaces trimmed, empty entries dropped. */
export function parseBearer(header: string | null | undefined): string[] {
  const m = /^\s*bearer\s+(.*)$/is.exec(header ?? "");
  if (!m) {
    throw new ApiError(
      401,
      "Missing bearer token: send `Authorization: Bearer TOKEN` (several tokens separated by commas)",
      { code: "missing_token" },
    );
  }
  const tokens = commaList(m[1]!);
  if (tokens.length === 0) {
    throw new ApiError(401, "Missing bearer token: the token list is empty", { code: "missing_token" });
  }
  for (const t of tokens) {
    // Tokens travel in upstream headers and URLs: refuse what would break or smuggle a header.
    if (!isUsableToken(t)) {
      throw new ApiError(401, "Invalid bearer token: tokens are printable ASCII without spaces", {
        code: "invalid_token",
      });
    }
  }
  if (tokens.length > 64) {
    throw new ApiError(400, "Too many tokens in the bearer list (at most 64)", {
      code: "too_many_tokens",
      param: "Authorization",
    });
  }
  return tokens;
}
