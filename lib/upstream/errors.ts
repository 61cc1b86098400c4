// Upstream failures: the error the client sees for each way Emohaa can fail, and its problem+json bodies.
import { ApiError } from "../errors.ts";

/** What went wrong upstream, for failover and token health decisions. */
export type UpstreamKind = "auth" | "busy" | "rate" | "server" | "network" | "timeout" | "protocol";

/** An upstream failure: an ApiError carrying the kind of failure (the client sees status and message). */
export class UpstreamError extends ApiError {
  constructor(
    readonly kind: UpstreamKind,
    status: number,
    message: string,
    opts: { code: string; retryAfter?: number; cause?: unknown },
  ) {
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
  if (!(c === 123 || c === 91 || c === 34 || c === 45 || (c >= 48 && c <= 57) || c === 116 || c === 102 || c === 110)) {
    return undefined;
  }
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
  return {
    status: typeof p.status === "number" ? p.status : undefined,
    title: String(p.title ?? ""),
    detail: String(p.detail ?? ""),
  };
}

/** How much of an upstream problem's title and detail is looked at, and how much of it may reach a client. */
const SCAN_CHARS = 1000;
const SAID_CHARS = 160;
const REDACTED = "[redacted]";

/**
 * What an upstream problem said, made safe to show a client: an upstream error may quote the request it refused,
 * token included, and every key holder would read it. Gone are the token itself (plain, URL-encoded or any part of
 * 8 characters or more), URLs, query strings, anything after `Bearer` or a `token=`/`key:`-like label, and every
 * run that looks like a credential (JWTs, base64 or hex: 24 characters or more, or 12 or more mixing letters and
 * digits); control characters become spaces and the result is at most 160 characters.
 */
export function sanitiseUpstreamText(text: string, token?: string): string {
  let t = text.slice(0, SCAN_CHARS).replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, " ");
  if (token && token.length >= 4) {
    for (const form of new Set([token, encodeURIComponent(token)])) t = t.split(form).join(REDACTED);
  }
  t = t
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]*/gi, "[url]")
    .replace(/\bbearer\s+[^\s,;"']+/gi, `Bearer ${REDACTED}`)
    .replace(
      /\b(access_token|token|authorization|auth|api_?key|key|secret|password|passwd|cookie|session|signature|sig|xreal)(\s*[:=]\s*)(?!bearer\b)[^\s,;&"']+/gi,
      `$1$2${REDACTED}`,
    )
    .replace(/\?[^\s"']*=[^\s"']*/g, `?${REDACTED}`)
    .replace(/[\w~+.%\/=-]{8,}/g, (run) => {
      if (run.length >= 24 || (token && sharesPart(run, token))) return REDACTED;
      const bare = run.replace(/^[^a-z0-9]+|[^a-z0-9]+$/gi, "");
      return bare.length >= 12 && /\d/.test(bare) && /[a-z]/i.test(bare) ? REDACTED : run;
    })
    .replace(/\s+/g, " ")
    .trim();
  const chars = [...t];
  return chars.length > SAID_CHARS ? `${chars.slice(0, SAID_CHARS - 1).join("")}…` : t;
}

/** Whether `run` holds 8 or more consecutive characters of `token` (an echo of part of it). */
function sharesPart(run: string, token: string): boolean {
  for (let i = 0; i + 8 <= token.length; i++) if (run.includes(token.slice(i, i + 8))) return true;
  return false;
}

/** What the upstream's own words may add to a message: its sanitised title and detail, or nothing. */
function saidBy(problem: Problem | null, token?: string): string {
  const raw = [problem?.title, problem?.detail].filter(Boolean).join(" - ");
  const said = raw ? sanitiseUpstreamText(raw, token) : "";
  return said ? `: ${said}` : "";
}

/** Context for {@link upstreamFailure}: the `retry-after` header, and the token the request carried (redacted). */
export interface FailureContext {
  retryAfter?: string | null;
  token?: string;
}

/**
 * Maps an upstream status (HTTP or problem+json) to the error the client sees: a fixed message per kind, the
 * upstream status, and at most the upstream's sanitised words (see {@link sanitiseUpstreamText}). A redirect is
 * never followed: it is a 502 like any answer that is not the one asked for.
 */
export function upstreamFailure(
  status: number,
  what: string,
  problem: Problem | null,
  context: FailureContext = {},
): UpstreamError {
  if (status === 401 || status === 403) {
    return new UpstreamError("auth", 401, `Emohaa rejected the token (expired or invalid) while trying to ${what}`, {
      code: "invalid_token",
    });
  }
  if (status === 429) {
    const retryAfter = Number(context.retryAfter) > 0 ? Number(context.retryAfter) : 5;
    // Decided on the raw words (they never leave this function): only the verdict reaches the client.
    const raw = `${problem?.title ?? ""} ${problem?.detail ?? ""}`.slice(0, SCAN_CHARS);
    const busy = /progress|stream|busy|正在/i.test(raw);
    return new UpstreamError(
      busy ? "busy" : "rate",
      429,
      busy
        ? "Emohaa is still answering another request on this account; try again shortly"
        : `Emohaa rate limit reached while trying to ${what}`,
      { code: busy ? "account_busy" : "rate_limit_exceeded", retryAfter },
    );
  }
  if (status >= 300 && status < 400) {
    return new UpstreamError(
      "protocol",
      502,
      `Emohaa answered with a redirect (upstream status ${status}) while trying to ${what}; redirects are not followed`,
      { code: "upstream_redirect" },
    );
  }
  const said = saidBy(problem, context.token);
  if (status >= 500) {
    return new UpstreamError("server", 502, `Emohaa failed to ${what} (upstream status ${status})${said}`, {
      code: "upstream_error",
    });
  }
  return new UpstreamError("protocol", 502, `Emohaa refused to ${what} (upstream status ${status})${said}`, {
    code: "upstream_error",
  });
}

/** The problem body an event or answer may carry, if it is one. */
export function problemOf(data: string): Problem | null {
  return asProblem(maybeJson(data));
}
