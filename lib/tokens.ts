// Account tokens: parsing the bearer list and choosing the token for each attempt.
import { ApiError } from "./errors.ts";

/** Reads `Authorization: Bearer T1,T2,T3`: case-insensitive scheme, spaces trimmed, empty entries dropped. */
export function parseBearer(header: string | null | undefined): string[] {
  const m = /^\s*bearer\s+(.*)$/is.exec(header ?? "");
  if (!m) throw new ApiError(401, "Missing bearer token: send `Authorization: Bearer TOKEN` (several tokens separated by commas)", { code: "missing_token" });
  const tokens = [...new Set(m[1]!.split(",").map((t) => t.trim()).filter((t) => t.length > 0))];
  if (tokens.length === 0) throw new ApiError(401, "Missing bearer token: the token list is empty", { code: "missing_token" });
  for (const t of tokens) {
    // Tokens travel in upstream headers and URLs: refuse what would break or smuggle a header.
    if (!/^[\x21-\x7e]+$/.test(t) || t.length > 4096) {
      throw new ApiError(401, "Invalid bearer token: tokens are printable ASCII without spaces", { code: "invalid_token" });
    }
  }
  if (tokens.length > 64) throw new ApiError(400, "Too many tokens in the bearer list (at most 64)", { code: "too_many_tokens", param: "Authorization" });
  return tokens;
}

/** Tracks requests in flight per token so a request prefers an idle account. */
export class TokenPicker {
  private readonly inFlight = new Map<string, number>();

  /** Picks the token with the fewest requests in flight among those not yet tried; random among equals. */
  pick(tokens: readonly string[], tried: ReadonlySet<string>, random: () => number = Math.random): string | undefined {
    let best: string[] = [];
    let least = Infinity;
    for (const t of tokens) {
      if (tried.has(t)) continue;
      const n = this.inFlight.get(t) ?? 0;
      if (n < least) {
        least = n;
        best = [t];
      } else if (n === least) best.push(t);
    }
    return best.length ? best[Math.floor(random() * best.length)] : undefined;
  }

  /** Marks a request on `token` as started; call the returned function exactly once when it ends. */
  hold(token: string): () => void {
    this.inFlight.set(token, (this.inFlight.get(token) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.inFlight.get(token) ?? 1) - 1;
      if (n <= 0) this.inFlight.delete(token);
      else this.inFlight.set(token, n);
    };
  }

  /** Requests in flight across all tokens. */
  get active(): number {
    let n = 0;
    for (const v of this.inFlight.values()) n += v;
    return n;
  }
}
