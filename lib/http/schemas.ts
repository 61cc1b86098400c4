// Zod schemas of the OpenAI wire format: they validate requests and generate the OpenAPI document.
import { z } from "@hono/zod-openapi";
import { TOKEN_STATES } from "../chat/pool.ts";
import { FINISH_REASONS } from "../openai/translate.ts";

const TextPart = z.looseObject({ type: z.literal("text"), text: z.string() });
const OtherPart = z.looseObject({ type: z.string() });
const ContentPart = z.union([TextPart, OtherPart]).openapi("ContentPart", {
  description: "A content part. Text parts are joined into the prompt; image and other parts are left out.",
});

export const MessageSchema = z
  .looseObject({
    role: z.enum(["system", "developer", "user", "assistant", "tool", "function"]),
    content: z.union([z.string(), z.array(ContentPart), z.null()]).optional(),
    name: z.string().optional(),
  })
  .openapi("ChatMessage", {
    description:
      "One message of the conversation. All messages are flattened into one `role:text` prompt; `system` messages are kept " +
      "first and the oldest turns are dropped to fit the upstream's size limit.",
    example: { role: "user", content: "今天有点累" },
  });

export const ChatRequestSchema = z
  .looseObject({
    model: z.string().max(200).optional().openapi({
      description: "Any model name; the answer always says `emohaa`.",
      example: "emohaa",
    }),
    messages: z.array(MessageSchema).min(1).max(2000),
    stream: z.boolean().nullish().openapi({
      description: "Stream the reply as server-sent events. Decided by this field only, never by `Accept`.",
    }),
    stream_options: z
      .looseObject({
        include_usage: z.boolean().nullish().openapi({
          description: "Send a last chunk with empty `choices` and the estimated `usage` before `[DONE]`.",
        }),
      })
      .nullish(),
    n: z.number().int().nullish().openapi({ description: "Only 1 is supported." }),
    max_tokens: z.number().int().min(0).nullish().openapi({
      description: 'Cut the reply at this many (estimated) tokens, `finish_reason: "length"`.',
    }),
    max_completion_tokens: z.number().int().min(0).nullish().openapi({
      description: "The newer name of `max_tokens`; wins when both are given.",
    }),
    stop: z.union([z.string(), z.array(z.string()).max(4)]).nullish().openapi({
      description: "Up to 4 sequences that end the reply.",
    }),
  })
  .openapi("ChatCompletionRequest", {
    description:
      "An OpenAI chat completion request. Other OpenAI fields (temperature, tools, metadata, ...) are accepted and " +
      "ignored; `user`, when a string, keeps end users of one key apart: a conversation kept for one is never " +
      "continued for another.",
    example: { model: "emohaa", messages: [{ role: "user", content: "你好" }], stream: false },
  });

export type ChatRequest = z.infer<typeof ChatRequestSchema>;

const UsageSchema = z
  .object({ prompt_tokens: z.number().int(), completion_tokens: z.number().int(), total_tokens: z.number().int() })
  .openapi("Usage", {
    description: "Estimated with the o200k_base tokenizer; Emohaa does not report usage.",
    example: { prompt_tokens: 9, completion_tokens: 24, total_tokens: 33 },
  });

const FinishReason = z.enum(FINISH_REASONS);

export const CompletionSchema = z
  .object({
    id: z.string(),
    object: z.literal("chat.completion"),
    created: z.number().int(),
    model: z.string(),
    choices: z.array(
      z.object({
        index: z.number().int(),
        message: z.object({ role: z.literal("assistant"), content: z.string(), refusal: z.null() }),
        logprobs: z.null(),
        finish_reason: FinishReason,
      }),
    ),
    usage: UsageSchema,
  })
  .openapi("ChatCompletion", {
    description: "The whole reply. A failure part-way is an error response, never a partial completion.",
    example: {
      id: "chatcmpl-3f9c2b7e1d5a4c08",
      object: "chat.completion",
      created: 1710000000,
      model: "emohaa",
      choices: [{
        index: 0,
        message: { role: "assistant", content: "你好啊！我是Emohaa，想和我聊点什么吗？😊", refusal: null },
        logprobs: null,
        finish_reason: "stop",
      }],
      usage: { prompt_tokens: 9, completion_tokens: 24, total_tokens: 33 },
    },
  });

export const ChunkSchema = z
  .object({
    id: z.string(),
    object: z.literal("chat.completion.chunk"),
    created: z.number().int(),
    model: z.string(),
    choices: z.array(
      z.object({
        index: z.number().int(),
        delta: z.object({ role: z.literal("assistant").optional(), content: z.string().optional() }),
        logprobs: z.null(),
        finish_reason: FinishReason.nullable(),
      }),
    ),
    usage: UsageSchema.optional(),
  })
  .openapi("ChatCompletionChunk", {
    description:
      "One `data:` frame of the event stream. The first delta carries the role, exactly one chunk has a finish_reason, " +
      "an optional usage chunk (empty choices) follows with `stream_options.include_usage`, then `data: [DONE]`. " +
      'A failure after streaming began is sent as `data: {"error": {...}}` and the stream closes without [DONE].',
    example: {
      id: "chatcmpl-3f9c2b7e1d5a4c08",
      object: "chat.completion.chunk",
      created: 1710000000,
      model: "emohaa",
      choices: [{ index: 0, delta: { content: "你好啊！" }, logprobs: null, finish_reason: null }],
    },
  });

export const ErrorSchema = z
  .object({
    error: z.object({
      message: z.string(),
      type: z.string(),
      param: z.string().nullable(),
      code: z.string().nullable(),
    }),
  })
  .openapi("Error", {
    description:
      "Every failure, in OpenAI's shape, with a real HTTP status. `code` is stable; `message` is for people.",
    example: {
      error: {
        message: "Emohaa rejected the token (expired or invalid) while trying to create a conversation",
        type: "authentication_error",
        param: null,
        code: "invalid_token",
      },
    },
  });

export const TokenCheckRequestSchema = z
  .object({ token: z.string().min(1).max(4096).openapi({ example: "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9..." }) })
  .openapi("TokenCheckRequest", {
    description: "One Emohaa token (not a comma-separated list).",
    example: { token: "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9..." },
  });

export const TokenCheckResponseSchema = z
  .object({
    live: z.boolean().openapi({
      description: "`true` when Emohaa accepted the token; `false` without asking it once the JWT `exp` has passed",
    }),
    expiresAt: z.string().nullable().openapi({
      description: "When the token's JWT `exp` says it ends (ISO time); null when it is not a JWT or has no `exp`",
      example: "2026-12-02T08:00:00.000Z",
    }),
  })
  .openapi("TokenCheckResponse", { example: { live: true, expiresAt: "2026-12-02T08:00:00.000Z" } });

export const ModelSchema = z
  .object({ id: z.string(), object: z.literal("model"), created: z.number().int(), owned_by: z.string() })
  .openapi("Model", { example: { id: "emohaa", object: "model", created: 1710000000, owned_by: "emohaa-free-api" } });

export const ModelListSchema = z
  .object({
    object: z.literal("list"),
    data: z.array(ModelSchema),
  })
  .openapi("ModelList", {
    example: {
      object: "list",
      data: [{ id: "emohaa", object: "model", created: 1710000000, owned_by: "emohaa-free-api" }],
    },
  });

/** One account of the pool as the status page and the admin API show it: masked label, state, expiry. */
export const AccountStatusSchema = z.object({
  label: z.string().openapi({ description: "The last 4 hex digits of the token's SHA-256", example: "…3fa2" }),
  state: z.enum(TOKEN_STATES),
  inFlight: z.number().int(),
  coolingUntil: z.string().nullable(),
  lastError: z.string().nullable(),
  expiresAt: z.string().nullable().openapi({
    description: "When the token's JWT `exp` says it ends (ISO time); null when it is not a JWT or has no `exp`",
  }),
});

export const TokenStatusSchema = z
  .object({
    mode: z.enum(["server", "client"]).openapi({
      description: "`server`: the server holds the tokens (EMOHAA_TOKENS); `client`: callers send them",
    }),
    waiting: z.number().int().openapi({ description: "Requests queued for a free account" }),
    tokens: z.array(AccountStatusSchema),
  })
  .openapi("TokenStatus");
