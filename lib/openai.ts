// Zod schemas of the OpenAI wire format: they validate requests and generate the OpenAPI document.
import { z } from "@hono/zod-openapi";

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
  .openapi("ChatMessage");

export const ChatRequestSchema = z
  .looseObject({
    model: z.string().max(200).optional().openapi({ description: "Any model name; the answer always says `emohaa`.", example: "emohaa" }),
    messages: z.array(MessageSchema).min(1).max(2000),
    stream: z.boolean().nullish().openapi({ description: "Stream the reply as server-sent events. Decided by this field only, never by `Accept`." }),
    stream_options: z.looseObject({ include_usage: z.boolean().nullish() }).nullish(),
    n: z.number().int().nullish().openapi({ description: "Only 1 is supported." }),
    max_tokens: z.number().int().min(0).nullish().openapi({ description: "Cut the reply at this many (estimated) tokens, `finish_reason: \"length\"`." }),
    max_completion_tokens: z.number().int().min(0).nullish(),
    stop: z.union([z.string(), z.array(z.string()).max(4)]).nullish().openapi({ description: "Up to 4 sequences that end the reply." }),
  })
  .openapi("ChatCompletionRequest", {
    description: "An OpenAI chat completion request. Other OpenAI fields (temperature, tools, user, metadata, ...) are accepted and ignored.",
    example: { model: "emohaa", messages: [{ role: "user", content: "你好" }], stream: false },
  });

export type ChatRequest = z.infer<typeof ChatRequestSchema>;

const UsageSchema = z
  .object({ prompt_tokens: z.number().int(), completion_tokens: z.number().int(), total_tokens: z.number().int() })
  .openapi("Usage", { description: "Estimated with the o200k_base tokenizer; Emohaa does not report usage." });

const FinishReason = z.enum(["stop", "length"]);

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
  .openapi("ChatCompletion");

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
      "A failure after streaming began is sent as `data: {\"error\": {...}}` and the stream closes without [DONE].",
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
    example: { error: { message: "Emohaa rejected the token (expired or invalid) while trying to create a conversation", type: "authentication_error", param: null, code: "invalid_token" } },
  });

export const TokenCheckRequestSchema = z
  .object({ token: z.string().min(1).max(4096).openapi({ example: "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9..." }) })
  .openapi("TokenCheckRequest");

export const TokenCheckResponseSchema = z.object({ live: z.boolean() }).openapi("TokenCheckResponse");

export const ModelListSchema = z
  .object({
    object: z.literal("list"),
    data: z.array(z.object({ id: z.string(), object: z.literal("model"), created: z.number().int(), owned_by: z.string() })),
  })
  .openapi("ModelList");
