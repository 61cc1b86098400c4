// Upstream failures: the error the client sees for each way Emohaa can fail, and its problem+json bodies.
import { ApiError } from "./errors.ts";

/** What went wrong upstream, for failover and token health decisions. */
export type UpstreamKind = "auth" | "busy" | "rate" | "server" | "network" | "timeout" | "protocol";

/** An upstream failure: an ApiError carrying the kind of failure (the client sees status and message). */
export class UpstreamError extends ApiError {
  constructor(readonly kind: UpstreamKind, status: number, message: string, opts: { code: string; retryAfter?: number; cause?: unknown }) {
    super(status, message, opts);
  }
}

/**
 * JSON.parse for a body that may not be JSON: undefined instead of a SyntaxError. Text that cannot start a
 * JSON value is not even tried: a thrown error costs more than the whole parse (plain-text ids, every request).
 */
export function maybeJson(text: string): unknown {
  const c = text.trimStart().charCodeAt(0);
  // { [ " - 0-9 t f n
  if (!(c === 123 || c === 91 || c === 34 || c === 45 || (c >= 48 && c <= 57) || c === 116 || c === 102 || c === 110)) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export interface Problem {
  status?: number;
  title?: string;
  detail?: string;
}

export function asProblem(v: unknown): Problem | null {
  if (!v || typeof v !== "object" || Array.isArray(v)) return null;
  const p = v as Record<string, unknown>;
  if (typeof p.status !== "number" && typeof p.title !== "string") return null;
  return { status: typeof p.status === "number" ? p.status : undefined, title: String(p.title ?? ""), detail: String(p.detail ?? "") };
}

/** Maps an upstream status (HTTP or problem+json) to the error the client sees. Never echoes the token. */
export function upstreamFailure(status: number, what: string, problem: Problem | null, retryAfterHeader?: string | null): UpstreamError {
  const said = problem?.title || problem?.detail ? `: ${[problem.title, problem.detail].filter(Boolean).join(" - ").slice(0, 200)}` : "";
  if (status === 401 || status === 403) {
    return new UpstreamError("auth", 401, `Emohaa rejected the token (expired or invalid) while trying to ${what}`, { code: "invalid_token" });
  }
  if (status === 429) {
    const retryAfter = Number(retryAfterHeader) > 0 ? Number(retryAfterHeader) : 5;
    const busy = /progress|stream|busy|正在/i.test(said);
    return new UpstreamError(busy ? "busy" : "rate", 429, busy
      ? "Emohaa is still answering another request on this account; try again shortly"
      : `Emohaa rate limit reached while trying to ${what}`, { code: busy ? "account_busy" : "rate_limit_exceeded", retryAfter });
  }
  if (status >= 500) return new UpstreamError("server", 502, `Emohaa failed to ${what} (upstream status ${status})${said}`, { code: "upstream_error" });
  return new UpstreamError("protocol", 502, `Emohaa refused to ${what} (upstream status ${status})${said}`, { code: "upstream_error" });
}

/** The problem body an event or answer may carry, if it is one. */
export function problemOf(data: string): Problem | null {
  return asProblem(maybeJson(data));
}
