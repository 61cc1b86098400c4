// Test support: Emohaa-shaped tokens, HS512 JWTs signed for real (node:crypto), with a chosen `exp`.
import { createHmac } from "node:crypto";

const b64url = (s: string | Buffer) => Buffer.from(s).toString("base64url");

/**
 * An HS512 JWT like Emohaa's. `exp` and `iat` are in seconds (`exp: null` leaves it out); the payload also holds a
 * `sub` claim the privacy checks look for (`sub-claim-…`), so a test can tell that no claim reached a log line.
 */
export function makeJwt(claims: { exp?: number | null; iat?: number; sub?: string }, secret = "test-secret"): string {
  const header = b64url(JSON.stringify({ alg: "HS512", typ: "JWT" }));
  const payload: Record<string, unknown> = {
    sub: claims.sub ?? "sub-claim-user",
    iat: claims.iat ?? Math.floor(Date.now() / 1000) - 60,
  };
  if (claims.exp !== null) payload.exp = claims.exp ?? Math.floor(Date.now() / 1000) + 86_400;
  const body = `${header}.${b64url(JSON.stringify(payload))}`;
  return `${body}.${createHmac("sha512", secret).update(body).digest("base64url")}`;
}

/** Seconds since the epoch, `offset` seconds from now. */
export const inSeconds = (offset: number) => Math.floor(Date.now() / 1000) + offset;
