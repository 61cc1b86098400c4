// Who may call the chat route, and with which Emohaa tokens: the client's own, or the server's behind gateway keys.
import { createHash, timingSafeEqual } from "node:crypto";
import { ApiError } from "../errors.ts";
import { parseBearer } from "./bearer.ts";

export interface AuthOptions {
  /** The server's own tokens (server-side mode); undefined: clients send their tokens as the bearer. */
  serverTokens?: () => readonly string[];
  /** Gateway keys accepted in server-side mode; empty with server tokens means anonymous use was allowed. */
  apiKeys: readonly string[];
  /** The bearer `/metrics` wants (METRICS_KEY); absent: a gateway key in server-side mode, nothing in client mode. */
  metricsKey?: string;
}

export interface Auth {
  /** The Emohaa tokens this request may use. Throws 401 for a missing or wrong key. */
  tokensFor(authorization: string | null | undefined): readonly string[];
  /** Throws the 401 of a missing or wrong gateway key in server-side mode with API_KEYS; does nothing otherwise. */
  requireKey(authorization: string | null | undefined): void;
  /** Throws a 401 unless the caller may read `/metrics` (see `AuthOptions.metricsKey`). */
  requireMetricsKey(authorization: string | null | undefined): void;
  /** The server's own tokens (server-side mode), for the metrics of their expiry; empty in client mode. */
  serverTokens(): readonly string[];
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

/** Whether an Authorization header carries one of `keys` as its bearer. */
function bearerMatches(authorization: string | null | undefined, keys: readonly Buffer[]): boolean {
  const m = /^\s*bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
  return !!m && keyMatches(m[1]!, keys);
}

export function createAuth(options: AuthOptions): Auth {
  const keys = options.apiKeys.map(digest);
  const metricsKeys = options.metricsKey ? [digest(options.metricsKey)] : undefined;
  const serverTokens = options.serverTokens;
  const requireKey = (authorization: string | null | undefined) => {
    if (serverTokens && keys.length && !bearerMatches(authorization, keys)) {
      throw new ApiError(
        401,
        "Invalid API key: this server holds the Emohaa tokens; send one of its API_KEYS as the bearer",
        { code: "invalid_api_key" },
      );
    }
  };
  return {
    serverSide: !!serverTokens,
    serverTokens: () => serverTokens?.() ?? [],
    requireKey,
    requireMetricsKey(authorization) {
      if (!metricsKeys) return requireKey(authorization);
      if (!bearerMatches(authorization, metricsKeys)) {
        throw new ApiError(401, "Invalid metrics key: send METRICS_KEY as the bearer", { code: "invalid_api_key" });
      }
    },
    tokensFor(authorization) {
      if (!serverTokens) return parseBearer(authorization);
      requireKey(authorization);
      const tokens = serverTokens();
      if (!tokens.length) throw new ApiError(503, "The server has no Emohaa tokens configured", { code: "no_tokens" });
      return tokens;
    },
  };
}
