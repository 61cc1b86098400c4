// Who may call the chat route, and with which Emohaa tokens: the client's own, or the server's behind gateway keys.
import { createHash, timingSafeEqual } from "node:crypto";
import { ApiError } from "./errors.ts";
import { parseBearer } from "./tokens.ts";

export interface AuthOptions {
  /** The server's own tokens (server-side mode); undefined: clients send their tokens as the bearer. */
  serverTokens?: () => readonly string[];
  /** Gateway keys accepted in server-side mode; empty with server tokens means anonymous use was allowed. */
  apiKeys: readonly string[];
}

export interface Auth {
  /** The Emohaa tokens this request may use. Throws 401 for a missing or wrong key. */
  tokensFor(authorization: string | null | undefined): readonly string[];
  /** Whether the server holds the tokens. */
  readonly serverSide: boolean;
}

const digest = (s: string) => createHash("sha256").update(s).digest();

/** Compares a presented key with every accepted key in constant time (hashes make the lengths equal). */
function keyMatches(given: string, keys: readonly Buffer[]): boolean {
  const g = digest(given);
  let ok = false;
  for (const k of keys) ok = timingSafeEqual(g, k) || ok;
  return ok;
}

export function createAuth(options: AuthOptions): Auth {
  const keys = options.apiKeys.map(digest);
  const serverTokens = options.serverTokens;
  return {
    serverSide: !!serverTokens,
    tokensFor(authorization) {
      if (!serverTokens) return parseBearer(authorization);
      if (keys.length) {
        const m = /^\s*bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
        if (!m || !keyMatches(m[1]!, keys)) {
          throw new ApiError(401, "Invalid API key: this server holds the Emohaa tokens; send one of its API_KEYS as the bearer", { code: "invalid_api_key" });
        }
      }
      const tokens = serverTokens();
      if (!tokens.length) throw new ApiError(503, "The server has no Emohaa tokens configured", { code: "no_tokens" });
      return tokens;
    },
  };
}
