// Who may call the chat route, and with which Emohaa tokens: the client's own, or the server's behind gateway keys.
import { createHash, timingSafeEqual } from "node:crypto";
import type { GatewayKey } from "../chat/keys.ts";
import { ApiError } from "../errors.ts";
import { parseBearer } from "./bearer.ts";

/** What auth needs of the gateway keys (lib/chat/keys.ts `GatewayKeys`). */
export interface KeyDirectory {
  /** Whether any key exists (API_KEYS or managed): then every request needs one. */
  readonly any: boolean;
  /** The key whose secret this is. */
  find(secret: string): GatewayKey | undefined;
}

export interface AuthOptions {
  /** The server's own tokens (server-side mode); undefined: clients send their tokens as the bearer. */
  serverTokens?: () => readonly string[];
  /** The gateway keys of server-side mode (API_KEYS and the managed ones). */
  keys?: KeyDirectory;
  /**
   * ALLOW_ANONYMOUS: in server-side mode, requests without a key are served while no key exists at all. The first
   * key (of API_KEYS, or created through the admin API) closes anonymous use.
   */
  allowAnonymous: boolean;
  /** The bearer `/metrics` wants (METRICS_KEY); absent: a gateway key in server-side mode, nothing in client mode. */
  metricsKey?: string;
  /** Milliseconds since the epoch (key expiry). */
  now: () => number;
  /** A request presented an expired key (for the metrics, by the key's name). */
  onExpired?(name: string): void;
}

export interface Auth {
  /**
   * Server-side mode: the gateway key of the request, or undefined for an anonymous one (allowed only while no key
   * exists, with ALLOW_ANONYMOUS). Throws the 401 of a missing, unknown, revoked or expired key. Client mode:
   * undefined.
   */
  keyFor(authorization: string | null | undefined): GatewayKey | undefined;
  /** The request's key (as `keyFor`) and the Emohaa tokens it may use (as `tokensFor`), checked once. */
  callerFor(authorization: string | null | undefined): { key?: GatewayKey; tokens: readonly string[] };
  /** The Emohaa tokens this request may use. Throws 401 for a missing or wrong key. */
  tokensFor(authorization: string | null | undefined): readonly string[];
  /** Throws the 401 of a missing or wrong gateway key in server-side mode; does nothing otherwise. */
  requireKey(authorization: string | null | undefined): void;
  /** Throws a 401 unless the caller may read `/metrics` (see `AuthOptions.metricsKey`). */
  requireMetricsKey(authorization: string | null | undefined): void;
  /** The server's own tokens (server-side mode), for the metrics of their expiry; empty in client mode. */
  serverTokens(): readonly string[];
  /** Whether the server holds the tokens. */
  readonly serverSide: boolean;
}

const digest = (s: string) => createHash("sha256").update(s).digest();
const BEARER = /^\s*bearer\s+(\S+)\s*$/i;

const invalidKey = () =>
  new ApiError(
    401,
    "Invalid API key: this server holds the Emohaa tokens; send one of its API keys as the bearer",
    { code: "invalid_api_key" },
  );

export function createAuth(options: AuthOptions): Auth {
  const metricsKey = options.metricsKey ? digest(options.metricsKey) : undefined;
  const serverTokens = options.serverTokens;
  const keys = options.keys;
  const keyFor = (authorization: string | null | undefined): GatewayKey | undefined => {
    if (!serverTokens) return undefined;
    if (!keys?.any) {
      if (options.allowAnonymous) return undefined;
      throw new ApiError(401, "This server has no API key yet: its admin creates one with POST /admin/keys", {
        code: "invalid_api_key",
      });
    }
    const m = BEARER.exec(authorization ?? "");
    const key = m ? keys.find(m[1]!) : undefined;
    if (!key) throw invalidKey();
    if (key.expiresAt !== undefined && key.expiresAt <= options.now()) {
      options.onExpired?.(key.name);
      throw new ApiError(401, `This API key expired at ${new Date(key.expiresAt).toISOString()}`, {
        code: "invalid_api_key",
      });
    }
    return key;
  };
  const callerFor = (authorization: string | null | undefined) => {
    if (!serverTokens) return { tokens: parseBearer(authorization) };
    const key = keyFor(authorization);
    const tokens = serverTokens();
    if (!tokens.length) throw new ApiError(503, "The server has no Emohaa tokens configured", { code: "no_tokens" });
    return { key, tokens };
  };
  return {
    serverSide: !!serverTokens,
    serverTokens: () => serverTokens?.() ?? [],
    keyFor,
    requireKey: (authorization) => void keyFor(authorization),
    requireMetricsKey(authorization) {
      if (!metricsKey) return void keyFor(authorization);
      const m = BEARER.exec(authorization ?? "");
      // Compared in constant time; hashing makes the lengths equal.
      if (!m || !timingSafeEqual(digest(m[1]!), metricsKey)) {
        throw new ApiError(401, "Invalid metrics key: send METRICS_KEY as the bearer", { code: "invalid_api_key" });
      }
    },
    callerFor,
    tokensFor: (authorization) => callerFor(authorization).tokens,
  };
}
