// Zod schemas of the Responses API wire format (POST /v1/responses): they validate requests and document the route.
import { z } from "@hono/zod-openapi";

const InputPart = z
  .looseObject({ type: z.string(), text: z.string().optional() })
  .openapi("ResponseInputPart", {
    description: "A content part: `input_text` and `output_text` parts are read; images, files and audio are left out.",
    example: { type: "input_text", text: "今天有点累" },
  });

const MessageItem = z
  .looseObject({
    type: z.literal("message").optional(),
    role: z.enum(["user", "system", "developer", "assistant"]),
    content: z.union([z.string(), z.array(InputPart)]),
  })
  .openapi("ResponseInputMessage", {
    description:
      "A message: all messages become one `role:text` prompt, as with chat completions (`developer` reads as `system`).",
    example: { role: "user", content: "今天有点累" },
  });

const OtherItem = z
  .looseObject({ type: z.string().refine((t) => t !== "message", "A message item needs a role and content") })
  .openapi("ResponseOtherInputItem", {
    description:
      "Any other item (function calls and their output, reasoning, item references): accepted and left out, " +
      "since Emohaa has no tools and this server stores no items. An `item_reference` to the latest message of a " +
      "kept conversation of the caller, last in the input and followed by new user, system or developer messages " +
      "only, continues that conversation as its response's `previous_response_id` would.",
    example: { type: "item_reference", id: "msg_3f9c2b7e1d5a4c08" },
  });

export const ResponseRequestSchema = z
  .looseObject({
    model: z.string().max(200).optional().openapi({
      description: "Any model name; the answer always says `emohaa`.",
      example: "emohaa",
    }),
    input: z.union([z.string(), z.array(z.union([MessageItem, OtherItem])).max(2000)]).optional().openapi({
      description: "A string (one user message) or a list of input items. It must hold some text.",
    }),
    instructions: z.string().nullish().openapi({ description: "A system message put before the input." }),
    previous_response_id: z.string().max(200).nullish().openapi({
      description: "Continue the kept conversation of an earlier response with only this input: it must be the " +
        "latest response of that conversation (Emohaa cannot branch one); any other id is a 404.",
    }),
    max_output_tokens: z.number().int().min(0).nullish().openapi({
      description: 'Cut the reply at this many (estimated) tokens: `status: "incomplete"`, reason `max_output_tokens`.',
    }),
    stream: z.boolean().nullish().openapi({
      description: "Stream the reply as server-sent events. Decided by this field only, never by `Accept`.",
    }),
    metadata: z.record(z.string(), z.string()).nullish().openapi({ description: "Repeated in the response." }),
    user: z.string().nullish(),
    store: z.boolean().nullish().openapi({
      description: "`false`: keep nothing, the conversation is deleted after the reply. Otherwise (the default) the " +
        "conversation is kept for `previous_response_id` (with CONTINUE_CONVERSATIONS). No text is stored either way.",
    }),
  })
  .openapi("CreateResponseRequest", {
    description:
      "An OpenAI Responses API request. Other fields (tools, tool_choice, parallel_tool_calls, reasoning, text, " +
      "temperature, top_p, truncation, include, ...) are accepted and ignored.",
    example: { model: "emohaa", input: "你好", stream: false },
  });

export type ResponseRequest = z.infer<typeof ResponseRequestSchema>;

/** Always empty here: no annotations, logprobs or tools. */
const EMPTY = z.array(z.unknown()).max(0);

const OutputText = z.object({
  type: z.literal("output_text"),
  text: z.string(),
  annotations: EMPTY,
  logprobs: EMPTY,
});

const OutputMessage = z
  .object({
    id: z.string(),
    type: z.literal("message"),
    status: z.enum(["in_progress", "completed", "incomplete"]),
    role: z.literal("assistant"),
    content: z.array(OutputText),
  })
  .openapi("ResponseOutputMessage");

const ResponseUsageSchema = z
  .object({
    input_tokens: z.number().int(),
    input_tokens_details: z.object({ cached_tokens: z.number().int(), cache_write_tokens: z.number().int() }),
    output_tokens: z.number().int(),
    output_tokens_details: z.object({ reasoning_tokens: z.number().int() }),
    total_tokens: z.number().int(),
  })
  .openapi("ResponseUsage", { description: "Estimated with the o200k_base tokenizer; Emohaa does not report usage." });

export const ResponseSchema = z
  .object({
    id: z.string(),
    object: z.literal("response"),
    created_at: z.number().int(),
    status: z.enum(["in_progress", "completed", "incomplete", "failed"]),
    completed_at: z.number().int().nullable(),
    error: z.object({ code: z.enum(["server_error", "rate_limit_exceeded"]), message: z.string() }).nullable(),
    incomplete_details: z.object({ reason: z.literal("max_output_tokens") }).nullable(),
    instructions: z.string().nullable(),
    max_output_tokens: z.number().int().nullable(),
    model: z.string(),
    output: z.array(OutputMessage),
    parallel_tool_calls: z.boolean(),
    previous_response_id: z.string().nullable(),
    reasoning: z.null(),
    store: z.boolean(),
    temperature: z.null(),
    text: z.object({ format: z.object({ type: z.literal("text") }) }),
    tool_choice: z.literal("none"),
    tools: EMPTY,
    top_p: z.null(),
    truncation: z.literal("disabled"),
    usage: ResponseUsageSchema.optional().openapi({ description: "Present once the reply ended" }),
    metadata: z.record(z.string(), z.string()),
  })
  .openapi("Response", {
    description:
      "One reply as a Response: one assistant `message` item with one `output_text` part. A failure part-way is an " +
      "error response, never a partial 200; the `max_output_tokens` cut is `incomplete`.",
    example: {
      id: "resp_3f9c2b7e1d5a4c08",
      object: "response",
      created_at: 1710000000,
      status: "completed",
      completed_at: 1710000001,
      error: null,
      incomplete_details: null,
      instructions: null,
      max_output_tokens: null,
      model: "emohaa",
      output: [{
        id: "msg_3f9c2b7e1d5a4c09",
        type: "message",
        status: "completed",
        role: "assistant",
        content: [{ type: "output_text", text: "你好啊！我是Emohaa。", annotations: [], logprobs: [] }],
      }],
      parallel_tool_calls: false,
      previous_response_id: null,
      reasoning: null,
      store: false,
      temperature: null,
      text: { format: { type: "text" } },
      tool_choice: "none",
      tools: [],
      top_p: null,
      truncation: "disabled",
      usage: {
        input_tokens: 9,
        input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
        output_tokens: 9,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: 18,
      },
      metadata: {},
    },
  });

const seq = { sequence_number: z.number().int() };
const at = { item_id: z.string(), output_index: z.number().int(), content_index: z.number().int() };
const lifecycle = (type: string) => z.object({ type: z.literal(type), response: ResponseSchema, ...seq });

export const ResponseStreamEventSchema = z
  .discriminatedUnion("type", [
    lifecycle("response.created"),
    lifecycle("response.in_progress"),
    z.object({
      type: z.literal("response.output_item.added"),
      output_index: z.number().int(),
      item: OutputMessage,
      ...seq,
    }),
    z.object({ type: z.literal("response.content_part.added"), ...at, part: OutputText, ...seq }),
    z.object({
      type: z.literal("response.output_text.delta"),
      ...at,
      delta: z.string(),
      logprobs: EMPTY,
      ...seq,
    }),
    z.object({
      type: z.literal("response.output_text.done"),
      ...at,
      text: z.string(),
      logprobs: EMPTY,
      ...seq,
    }),
    z.object({ type: z.literal("response.content_part.done"), ...at, part: OutputText, ...seq }),
    z.object({
      type: z.literal("response.output_item.done"),
      output_index: z.number().int(),
      item: OutputMessage,
      ...seq,
    }),
    lifecycle("response.completed"),
    lifecycle("response.incomplete"),
    z.object({
      type: z.literal("error"),
      code: z.string().nullable(),
      message: z.string(),
      param: z.string().nullable(),
      error: z.object({
        message: z.string(),
        type: z.string(),
        param: z.string().nullable(),
        code: z.string().nullable(),
      })
        .openapi({ description: "The same error in OpenAI's error shape, which the openai SDK throws" }),
      ...seq,
    }),
    lifecycle("response.failed"),
  ])
  .openapi("ResponseStreamEvent", {
    description:
      "One event of the stream, sent as `event: <type>` and `data: <JSON>`: response.created, response.in_progress, " +
      "response.output_item.added, response.content_part.added, response.output_text.delta per piece, " +
      "response.output_text.done, response.content_part.done, response.output_item.done, then response.completed " +
      "(or response.incomplete after the `max_output_tokens` cut). A failure after the first event is an `error` " +
      "event followed by response.failed, and the stream closes.",
  });

export const DeletedResponseSchema = z
  .object({ id: z.string(), object: z.literal("response"), deleted: z.literal(true) })
  .openapi("DeletedResponse");

/** The `{response_id}` path parameter. */
export const ResponseIdParam = z.object({
  response_id: z.string().max(200).openapi({ param: { name: "response_id", in: "path" }, example: "resp_3f9c2b7e" }),
});
