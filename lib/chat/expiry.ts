// A token's end, read from its JWT payload without verification: pure, and nothing of the token leaves it but exp/iat.
import { ApiError } from "../errors.ts";
import { Recent } from "../recent.ts";

/** The times an Emohaa JWT carries, in seconds since the epoch. */
export interface TokenTimes {
  /** When the token ends. */
  exp: number;
  /** When it was issued, when the payload says. */
  iat?: number;
}

// A JWT is three base64url parts; the payload of an Emohaa token is a few hundred bytes, so a bound costs nothing.
const JWT = /^[A-Za-z0-9_-]+\.([A-Za-z0-9_-]{2,8192})\.[A-Za-z0-9_-]*$/;

/**
 * The `exp` and `iat` of a JWT's payload, or undefined for a token that is not a JWT or has no numeric `exp`. The
 * signature is not (and cannot be) verified: the upstream does that; this only spares a call it would refuse.
 */
export function readExpiry(token: string): TokenTimes | undefined {
  // Every request reads the times of every token it may use (`unexpired`): about 9 µs a JWT on Bun, so each token's
  // are read once and kept (a token's payload never changes), the most recent 4,096-8,192 tokens' (lib/recent.ts).
  const known = read.get(token);
  if (known !== undefined) return known ?? undefined;
  const times = parseExpiry(token);
  // Frozen: one object answers for the token from now on.
  read.remember(token, times ? Object.freeze(times) : null);
  return times;
}

/** The times already read, by token (null: none to read). */
const read = new Recent<string, Readonly<TokenTimes> | null>(4096);

function parseExpiry(token: string): TokenTimes | undefined {
  const m = JWT.exec(token);
  if (!m) return undefined;
  let payload: unknown;
  try {
    const b64 = m[1]!.replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0));
    payload = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return undefined;
  }
  if (!payload || typeof payload !== "object") return undefined;
  const { exp, iat } = payload as { exp?: unknown; iat?: unknown };
  if (typeof exp !== "number" || !Number.isFinite(exp)) return undefined;
  return typeof iat === "number" && Number.isFinite(iat) ? { exp, iat } : { exp };
}

/** When the token ends, in milliseconds since the epoch; undefined when its payload does not say. */
export function expiresAtMs(token: string): number | undefined {
  const times = readExpiry(token);
  return times ? times.exp * 1000 : undefined;
}

/** When the token ends as an ISO time, or null when its payload does not say (what the status routes show). */
export function expiresAtIso(token: string): string | null {
  const at = expiresAtMs(token);
  return at === undefined ? null : new Date(at).toISOString();
}

/** Whether the token's `exp` has passed at `nowMs`; a token without one never counts as expired here. */
export function isExpired(token: string, nowMs: number): boolean {
  const at = expiresAtMs(token);
  return at !== undefined && at <= nowMs;
}

/** Every token of a request has expired: a 401 for a client, the 503 `accounts_unavailable` for server tokens. */
export class TokenExpiredError extends ApiError {
  /** The latest end among the tokens, as an ISO time. */
  readonly expiredAt: string;
  constructor(count: number, expiredAt: string) {
    super(
      401,
      count === 1
        ? `The Emohaa token expired at ${expiredAt}: log in to Emohaa again and send the new token`
        : `Every Emohaa token expired, the last at ${expiredAt}: log in to Emohaa again and send a new token`,
      { code: "token_expired" },
    );
    this.expiredAt = expiredAt;
  }
}

/**
 * The tokens of `tokens` not known to be expired at `nowMs`. When none is left, throws the fast 401 `token_expired`
 * that says when (the latest end among them), so a request with only expired tokens costs no upstream call.
 */
export function unexpired(tokens: readonly string[], nowMs: number): readonly string[] {
  const live = tokens.filter((t) => !isExpired(t, nowMs));
  if (live.length || !tokens.length) return live;
  throw new TokenExpiredError(tokens.length, new Date(Math.max(...tokens.map((t) => expiresAtMs(t)!))).toISOString());
}
