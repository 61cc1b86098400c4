// The one error type of the gateway, below every layer, and the OpenAI error body it renders to: prompt, pool and
// upstream failures are raised as the ApiError the edge renders (lib/http/app.ts).

/** OpenAI error `type` values clients switch on. */
export type ErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "not_found_error"
  | "rate_limit_error"
  | "insufficient_quota"
  | "upstream_error"
  | "timeout_error"
  | "server_error";

const TYPE_BY_STATUS: Record<number, ErrorType> = {
  400: "invalid_request_error",
  401: "authentication_error",
  403: "permission_error",
  404: "not_found_error",
  405: "invalid_request_error",
  413: "invalid_request_error",
  415: "invalid_request_error",
  429: "rate_limit_error",
  502: "upstream_error",
  503: "server_error",
  504: "timeout_error",
};

export interface ApiErrorOptions {
  code?: string | null;
  param?: string | null;
  type?: ErrorType;
  /** Seconds the client should wait before retrying (sent as `retry-after`). */
  retryAfter?: number;
  /** More headers the answer carries (a rate limit's `x-ratelimit-*`). */
  headers?: Record<string, string>;
  /** False: SDKs must not retry (`x-should-retry: false`), e.g. a spent daily quota. */
  retry?: boolean;
  cause?: unknown;
}

/** An error with an HTTP status and an OpenAI error code; rendered in one place (`app.onError`). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string | null;
  readonly param: string | null;
  readonly type: ErrorType;
  readonly retryAfter?: number;
  private readonly extra?: Record<string, string>;
  private readonly retry?: boolean;

  constructor(status: number, message: string, options: ApiErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ApiError";
    this.status = status;
    this.code = options.code ?? null;
    this.param = options.param ?? null;
    this.type = options.type ?? TYPE_BY_STATUS[status] ?? (status >= 500 ? "server_error" : "invalid_request_error");
    this.retryAfter = options.retryAfter;
    this.extra = options.headers;
    this.retry = options.retry;
  }

  /** The OpenAI wire shape `{error: {message, type, param, code}}`. */
  toJSON(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }

  /** Headers that belong with this error (`retry-after`, and `x-should-retry` for the openai SDK). */
  headers(): Record<string, string> {
    const h: Record<string, string> = { ...this.extra };
    if (this.retryAfter !== undefined) h["retry-after"] = String(Math.max(1, Math.ceil(this.retryAfter)));
    // Permanent failures must not be retried by SDKs that retry every 5xx; transient ones may be.
    // A server whose every account was rejected will not recover within an SDK's retry window either.
    if (
      this.status === 401 || this.status === 403 || this.status === 400 || this.code === "accounts_unavailable" ||
      this.retry === false
    ) {
      h["x-should-retry"] = "false";
    }
    return h;
  }
}

export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** Turns anything thrown into an ApiError; unknown errors become a 500 with a generic message. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  return new ApiError(500, "Internal server error", { code: "internal_error", cause: err });
}

/**
 * The 503 of a state store that cannot be reached: `what` could not be done, and nothing was (fail closed). Retry in
 * a second: `retry-after: 1`.
 */
export function stateUnavailable(what: string, cause?: unknown): ApiError {
  return new ApiError(503, `The shared state store is unavailable, so ${what}; retry`, {
    code: "state_unavailable",
    retryAfter: 1,
    cause,
  });
}

/** The error for a request the client itself cancelled (nginx's 499): logged, never read by anyone. */
export function clientClosed(): ApiError {
  return new ApiError(499, "Client closed the request", { code: "client_closed" });
}

/** Whether an error is an abort or a timeout signal's rejection. */
/** What a call past its time limit fails with (lib/chat/deadline.ts, lib/upstream/http1.ts's kept deadlines). */
export const timedOut = (what: string): DOMException => new DOMException(`The ${what} timed out`, "TimeoutError");

export function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === "AbortError" || err.name === "TimeoutError");
}
