// Token expiry in the browser, pure: a pasted JWT's `exp` read here (the token never leaves for it), the server's
// `expiresAt` for its own tokens, how far off an end is, and whether a send would fail on expired tokens only.

/** Under this much left, a token is shown as near its end. */
export const SOON_MS = 3_600_000;

/** A JWT's `exp` in epoch milliseconds, or null for a token that is not a JWT or has none. Not verified. */
export function jwtExpiry(token) {
  const m = /^[A-Za-z0-9_-]+\.([A-Za-z0-9_-]{2,8192})\.[A-Za-z0-9_-]*$/.exec(String(token));
  if (!m) return null;
  try {
    const b64 = m[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0));
    const exp = JSON.parse(new TextDecoder().decode(bytes))?.exp;
    return typeof exp === "number" && Number.isFinite(exp) ? exp * 1000 : null;
  } catch {
    return null;
  }
}

/** An ISO time (a status route's `expiresAt`) in epoch milliseconds, or null. */
export function isoExpiry(value) {
  const ms = value ? Date.parse(value) : NaN;
  return Number.isFinite(ms) ? ms : null;
}

/**
 * Where a token stands at `now`: `{state: "ok" | "soon" | "expired", key, vars}` for the words, or null when its
 * end is unknown. Whole hours from 2 h on, minutes below, days from 2 days on.
 */
export function expiryStatus(atMs, now) {
  if (atMs === null || atMs === undefined) return null;
  const left = atMs - now;
  if (left <= 0) return { state: "expired", key: "expiredAgo", vars: {} };
  const state = left < SOON_MS ? "soon" : "ok";
  const minutes = Math.max(1, Math.floor(left / 60_000));
  if (minutes < 120) return { state, key: "expiresInMin", vars: { n: minutes } };
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return { state, key: "expiresInH", vars: { n: hours } };
  return { state, key: "expiresInD", vars: { n: Math.floor(hours / 24) } };
}

/**
 * True when every token a send would use is known to have expired: the pasted tokens themselves (client mode), or,
 * when the server holds the tokens (`serverRows` from its status), every one of those. Unknown ends never count.
 */
export function sendWouldFail({ tokens, serverRows, now }) {
  if (serverRows) {
    return serverRows.length > 0 &&
      serverRows.every((r) => expiryStatus(isoExpiry(r.expiresAt), now)?.state === "expired");
  }
  return tokens.length > 0 && tokens.every((tk) => expiryStatus(jwtExpiry(tk), now)?.state === "expired");
}
