// What the OpenAPI document says beyond the zod schemas: error responses, examples, the bearer scheme, the info.
import type { ErrorBody } from "../errors.ts";
import { ErrorSchema } from "./schemas.ts";
import { dataFrame, DONE_FRAME } from "../openai/sse.ts";
import { deltaChunk, usageChunk } from "../openai/translate.ts";

const err = (
  message: string,
  type: string,
  code: string | null,
  param: string | null = null,
): { value: ErrorBody } => ({
  value: { error: { message, type, param, code } },
});

/** The failures a route can answer with: why each status happens, and real error bodies as examples. */
const ERRORS: Record<
  number,
  { description: string; examples: Record<string, { summary?: string; value: ErrorBody }> }
> = {
  400: {
    description:
      "Invalid request: the body failed validation (`param` names the field) or asks for something unsupported",
    examples: {
      invalid: err(
        "Invalid request at messages: Too small: expected array to have >=1 items",
        "invalid_request_error",
        "invalid_request",
        "messages",
      ),
      unsupported: err(
        "Only n=1 is supported: Emohaa gives one answer per request",
        "invalid_request_error",
        "unsupported_value",
        "n",
      ),
    },
  },
  401: {
    description:
      "Missing bearer token or wrong API key, or (client mode) every token was rejected by Emohaa (expired or invalid), or every token's JWT `exp` has passed (`token_expired`, without an upstream call)",
    examples: {
      expired: err(
        "Emohaa rejected the token (expired or invalid) while trying to create a conversation",
        "authentication_error",
        "invalid_token",
      ),
      missing: err(
        "Missing bearer token: send `Authorization: Bearer TOKEN` (several tokens separated by commas)",
        "authentication_error",
        "missing_token",
      ),
      jwtExpired: err(
        "The Emohaa token expired at 2026-12-01T08:00:00.000Z: log in to Emohaa again and send the new token",
        "authentication_error",
        "token_expired",
      ),
    },
  },
  429: {
    description: "Emohaa's rate limit, or the account is still answering another request; or the gateway key's own " +
      "limit (`rate_limit_exceeded`: its requests per minute or at once) or daily token quota (`insufficient_quota`, " +
      "with `x-should-retry: false`: it refills at 00:00 UTC). `retry-after` says when to retry",
    examples: {
      keyRpm: err(
        "Rate limit reached for this API key: 5 requests per minute; retry in 42 s",
        "rate_limit_error",
        "rate_limit_exceeded",
      ),
      keyConcurrency: err(
        "Rate limit reached for this API key: 1 request at once; retry when one ends",
        "rate_limit_error",
        "rate_limit_exceeded",
      ),
      keyQuota: err(
        "This API key has used its 2000 tokens for today (UTC); it is refilled at 00:00 UTC",
        "insufficient_quota",
        "insufficient_quota",
      ),
      rateLimit: err(
        "Emohaa rate limit reached while trying to create a conversation",
        "rate_limit_error",
        "rate_limit_exceeded",
      ),
      busy: err(
        "Emohaa is still answering another request on this account; try again shortly",
        "rate_limit_error",
        "account_busy",
      ),
    },
  },
  500: {
    description: "A bug in this server",
    examples: { internal: err("Internal server error", "server_error", "internal_error") },
  },
  502: {
    description: "Emohaa failed, answered something unexpected, or could not be reached",
    examples: {
      unreachable: err("Cannot reach Emohaa to create a conversation", "upstream_error", "upstream_unreachable"),
      failed: err("Emohaa failed to create a conversation (upstream status 500)", "upstream_error", "upstream_error"),
    },
  },
  503: {
    description:
      "Server-side mode: Emohaa rejected every server token tried (the server's accounts are unavailable), or the server is shutting down",
    examples: {
      accounts: err(
        "The server's Emohaa accounts are unavailable: Emohaa rejected every token tried (expired or invalid)",
        "server_error",
        "accounts_unavailable",
      ),
      shutdown: err("The server is shutting down; retry the request", "server_error", "server_shutting_down"),
    },
  },
  504: {
    description: "Emohaa did not answer in time",
    examples: { timeout: err("Emohaa sent nothing within 60000 ms", "timeout_error", "upstream_timeout") },
  },
};

const RETRY_AFTER = {
  "retry-after": { description: "Seconds to wait before retrying", schema: { type: "integer" as const, example: 7 } },
};

/** The headers of a gateway key with an rpm limit, as OpenAI sends them: on every answer, 429s included. */
export const RATE_LIMIT_HEADERS = {
  "x-ratelimit-limit-requests": {
    description: "A gateway key with an rpm limit: its requests per minute",
    schema: { type: "integer" as const, example: 5 },
  },
  "x-ratelimit-remaining-requests": {
    description: "Requests this key has left in the current minute (across every instance)",
    schema: { type: "integer" as const, example: 4 },
  },
  "x-ratelimit-reset-requests": {
    description: "Time until the minute's count starts again, as OpenAI writes it (`42s`, `850ms`)",
    schema: { type: "string" as const, example: "42s" },
  },
};

/** Error responses for the given statuses, ready to spread into a route's `responses`. */
export function errorResponses(...statuses: (keyof typeof ERRORS)[]) {
  return Object.fromEntries(
    statuses.map((s) => {
      const e = ERRORS[s]!;
      return [s, {
        description: e.description,
        ...(s === 429 ? { headers: { ...RETRY_AFTER, ...RATE_LIMIT_HEADERS } } : {}),
        content: { "application/json": { schema: ErrorSchema, examples: e.examples } },
      }];
    }),
  );
}

/** One error response with a description and example of its own: for routes whose failures are not the chat route's. */
export function errorResponse<S extends number>(
  status: S,
  description: string,
  example: { summary?: string; value: ErrorBody },
) {
  const headers = status === 429 ? { headers: RETRY_AFTER } : {};
  const response = {
    description,
    ...headers,
    content: { "application/json": { schema: ErrorSchema, examples: { example } } },
  };
  return { [status]: response } as Record<S, typeof response>;
}

/** Example bodies of a chat completion request. */
export const chatRequestExamples = {
  simple: {
    summary: "One question, whole answer as JSON",
    value: { model: "emohaa", messages: [{ role: "user", content: "你好" }] },
  },
  stream: {
    summary: "Streamed, with a system message and the usage chunk",
    value: {
      model: "emohaa",
      stream: true,
      stream_options: { include_usage: true },
      messages: [
        { role: "system", content: "Answer briefly." },
        { role: "user", content: "I can't sleep before exams." },
      ],
    },
  },
  multiTurn: {
    summary: "A conversation so far",
    value: {
      model: "emohaa",
      messages: [
        { role: "user", content: "你好" },
        { role: "assistant", content: "你好啊！我是Emohaa，想和我聊点什么吗？" },
        { role: "user", content: "今天有点累" },
      ],
    },
  },
};

const head = { id: "chatcmpl-3f9c2b7e1d5a4c08", created: 1710000000, model: "emohaa" };

/** A whole event stream as sent on the wire (with `stream_options.include_usage`), built by the real framing code. */
export const streamExample = [
  deltaChunk(head, { role: "assistant", content: "" }),
  deltaChunk(head, { content: "你好啊！" }),
  deltaChunk(head, { content: "我是Emohaa。" }),
  deltaChunk(head, {}, "stop"),
  usageChunk(head, { prompt_tokens: 9, completion_tokens: 9, total_tokens: 18 }),
]
  .map(dataFrame)
  .join("") + DONE_FRAME;

/** The `bearer` security scheme: one token or a comma-separated list. */
export const bearerScheme = {
  type: "http" as const,
  scheme: "bearer",
  bearerFormat: "TOKEN[,TOKEN...]",
  description:
    "One Emohaa token, or several separated by commas: `Authorization: Bearer T1,T2,T3`. A request uses the least busy " +
    "token and fails over to the next when one is rejected, rate limited or down. When the server holds the tokens " +
    "(`EMOHAA_TOKENS`), send one of its API keys instead, or nothing if it has none.",
};

/** The document's `openapi`, `info` and `tags`. */
export const documentConfig = {
  openapi: "3.1.0",
  info: {
    title: "emohaa-free-api",
    version: "1.0.0",
    description:
      "OpenAI-compatible gateway for the Emohaa chatbot. Point an OpenAI SDK at this server with your Emohaa token(s) " +
      'as the API key. Errors always have the shape `{"error": {message, type, param, code}}` and a real HTTP status.',
  },
  tags: [
    { name: "Chat", description: "OpenAI chat completions, whole or streamed" },
    { name: "Responses", description: "The OpenAI Responses API, whole or streamed" },
    { name: "Tokens", description: "Emohaa account tokens" },
    { name: "Models", description: "The model list OpenAI clients ask for" },
    { name: "Health", description: "For load balancers and uptime checks" },
    { name: "Admin", description: "The server's own tokens, behind ADMIN_KEY: list, add, replace, remove" },
  ],
};
