// The Responses API: POST /v1/responses (served before the router, like chat completions), GET and DELETE by id.
//
// A response is one reply from one upstream conversation, opened through `ResponseThreads`: the default opens a
// fresh conversation per request and knows no response ids, because this server stores no responses. A store of
// conversation handles (continuing a conversation across requests) plugs in there without touching this file.
import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { Env } from "hono";
import { type ChatDeps, type OpenedReply, openReply } from "../chat/reply.ts";
import { collectReply, type StreamFormat, streamReply } from "../chat/respond.ts";
import { errorResponse, errorResponses } from "./apidoc.ts";
import { type CompletionsDeps, type Edge, isPostTo, MODEL, ownAccountsError, parseRequest } from "./completions.ts";
import { ApiError } from "./errors.ts";
import {
  DeletedResponseSchema,
  ResponseIdParam,
  ResponseRequestSchema,
  ResponseSchema,
  ResponseStreamEventSchema,
} from "./responses-schemas.ts";
import { buildPrompt } from "../openai/prompt.ts";
import {
  eventFrame,
  finishStatus,
  inputMessages,
  ResponseEvents,
  type ResponseHead,
  responseObject,
} from "../openai/responses.ts";
import { SSE_HEADERS } from "../openai/sse.ts";
import { Cutter } from "../openai/translate.ts";

export const RESPONSES_PATH = "/v1/responses";

/** What opening the reply of one response needs. */
export interface ThreadRequest {
  /** The id of the response being made: a store that keeps its conversation keeps it under this id. */
  responseId: string;
  /** The response this one continues (`previous_response_id`), or null for a new conversation. */
  previousId: string | null;
  tokens: readonly string[];
  /** The prompt of this request's input alone. */
  prompt: string;
  signal: AbortSignal;
  /** How long to hold the status for the first piece (see openReply). */
  holdMs: number;
  onAttempt: (attempts: number) => void;
}

/** Where the conversations of responses come from, and how one ends early. */
export interface ResponseThreads {
  /**
   * Opens the reply: a new conversation, or with `previousId` the conversation of that response. An unknown or
   * ended `previousId` is OpenAI's 404 naming `previous_response_id` (see `previousNotFound`).
   */
  open(request: ThreadRequest): Promise<OpenedReply>;
  /** Ends the conversation of response `id` at once; false when no such response is known (a 404). */
  end(id: string, tokens: readonly string[]): Promise<boolean>;
}

/** OpenAI's answer to a `previous_response_id` it does not know. */
export function previousNotFound(id: string): ApiError {
  return new ApiError(404, `Previous response with id '${id}' not found`, {
    type: "invalid_request_error",
    code: "previous_response_not_found",
    param: "previous_response_id",
  });
}

function responseNotFound(id: string, why: string): ApiError {
  return new ApiError(404, `Response with id '${id}' not found: ${why}`, {
    type: "invalid_request_error",
    code: "response_not_found",
    param: "response_id",
  });
}

/** A new upstream conversation per response, deleted after its reply; no response id is ever known. */
export function statelessThreads(chat: ChatDeps): ResponseThreads {
  return {
    async open(r) {
      if (r.previousId !== null) throw previousNotFound(r.previousId);
      return openReply(chat, r.tokens, r.prompt, r.signal, r.holdMs, r.onAttempt);
    },
    end: async () => false,
  };
}

/** Whether a request is one for the POST handler. */
export function isResponsesRequest(req: Request): boolean {
  return isPostTo(req, RESPONSES_PATH);
}

/** The Responses API's event stream of one reply (lib/openai/responses.ts), for lib/chat/respond.ts. */
function responsesFormat(head: ResponseHead, now: () => number): StreamFormat {
  const events = new ResponseEvents(head);
  const frames = (list: { type: string; sequence_number: number }[]) => list.map(eventFrame).join("");
  return {
    opening: () => frames(events.opening()),
    piece: (text) => eventFrame(events.delta(text)),
    whole: true,
    end: (finish, text, usage) => frames(events.done(text!, finish, usage!, Math.floor(now() / 1000))),
    fail: (e) => frames(events.failed(e)),
  };
}

/** Builds the POST handler. `edge` is shared with the Hono app, so every route answers alike. */
export function responsesHandler(
  deps: CompletionsDeps,
  edge: Edge,
  threads: ResponseThreads,
): (req: Request) => Promise<Response> {
  const route = RESPONSES_PATH;
  const line = (id: string, start: number, status: number, code: string | null, attempts: number) =>
    edge.record(route, { method: "POST", path: route, status, ms: deps.now() - start, attempts, id, code });

  return async (req) => {
    const start = deps.now();
    const id = edge.requestId(req.headers.get("x-request-id"));
    const headers: Record<string, string> = { "x-request-id": id, ...edge.cors(req.headers.get("origin")) };
    let attempts = 0;
    try {
      // Authentication comes before the body is read, as for chat completions.
      const tokens = deps.auth.tokensFor(req.headers.get("authorization"));
      const body = await parseRequest(req, deps.maxBodyBytes, ResponseRequestSchema);
      const { prompt } = buildPrompt(inputMessages(body.input ?? [], body.instructions), deps.promptMaxBytes, "input");
      const maxTokens = body.max_output_tokens ?? undefined;
      const stream = body.stream === true;
      // Usage is always part of a Response; the tokenizer loads while the upstream answers.
      const tokenizer = deps.tokenizer();
      tokenizer.catch(() => {}); // observed where it is awaited; never an unhandled rejection
      const createdAt = Math.floor(deps.now() / 1000);
      const head: ResponseHead = {
        id: `resp_${deps.id()}`,
        messageId: `msg_${deps.id()}`,
        createdAt,
        model: MODEL,
        instructions: body.instructions ?? null,
        maxOutputTokens: maxTokens ?? null,
        metadata: body.metadata ?? {},
        previousResponseId: body.previous_response_id ?? null,
      };
      const { reply, first } = await threads.open({
        responseId: head.id,
        previousId: head.previousResponseId,
        tokens,
        prompt,
        signal: req.signal,
        holdMs: stream ? deps.keepAliveMs : Infinity,
        onAttempt: (n) => (attempts = n),
      });
      let cutter: Cutter;
      try {
        cutter = new Cutter({ stop: [], maxTokens, tokenizer: maxTokens !== undefined ? await tokenizer : undefined });
      } catch (err) {
        reply.close();
        throw err;
      }
      const ctx = { head: { id: head.id, created: createdAt, model: MODEL }, reply, first, cutter, prompt, tokenizer };
      if (!stream) {
        const { content, finish, usage } = await collectReply(ctx);
        const status = finishStatus(finish);
        const completedAt = Math.floor(deps.now() / 1000);
        const result = { ...responseObject(head, { status, text: content, usage, completedAt }), output_text: content };
        line(id, start, 200, null, attempts);
        headers["content-type"] = "application/json";
        return new Response(JSON.stringify(result), { status: 200, headers });
      }
      const metrics = deps.metrics;
      if (metrics) metrics.streamsInFlight++;
      const body$ = streamReply(ctx, responsesFormat(head, deps.now), {
        keepAliveMs: deps.keepAliveMs,
        onEnd: (o) => {
          if (metrics) metrics.streamsInFlight--;
          line(id, start, o.status, o.code, attempts);
        },
      });
      return new Response(body$, { status: 200, headers: Object.assign(headers, SSE_HEADERS) });
    } catch (err) {
      const { error, headers: extra } = edge.render(deps.auth.serverSide ? ownAccountsError(err) : err, "POST", route);
      line(id, start, error.status, error.code, attempts);
      Object.assign(headers, extra);
      headers["content-type"] = "application/json";
      return new Response(JSON.stringify(error.toJSON()), { status: error.status, headers });
    }
  };
}

const createResponseRoute = createRoute({
  method: "post",
  path: RESPONSES_PATH,
  tags: ["Responses"],
  summary: "Create a response (OpenAI Responses API)",
  operationId: "createResponse",
  description: "The Responses API, served the way chat completions are: the input becomes one prompt, the reply one " +
    "assistant message. With `stream: true` the answer is a `text/event-stream` of `ResponseStreamEvent`s. A client " +
    "that disconnects cancels the upstream request; the Emohaa conversation is deleted in every case. Nothing is " +
    "stored, so `previous_response_id` names no known response (404).",
  security: [{ bearer: [] }],
  request: {
    body: {
      required: true,
      content: {
        "application/json": {
          schema: ResponseRequestSchema,
          examples: {
            simple: { summary: "One question, whole answer as JSON", value: { model: "emohaa", input: "你好" } },
            stream: {
              summary: "Streamed, with instructions and message items",
              value: {
                model: "emohaa",
                stream: true,
                instructions: "Answer briefly.",
                input: [{ role: "user", content: [{ type: "input_text", text: "I can't sleep before exams." }] }],
              },
            },
          },
        },
      },
    },
  },
  responses: {
    200: {
      description: "The Response as JSON, or with `stream: true` an event stream: `event:` and `data:` lines per event",
      content: {
        "application/json": { schema: ResponseSchema },
        "text/event-stream": { schema: ResponseStreamEventSchema },
      },
    },
    ...errorResponses(400, 401, 429, 500, 502, 503, 504),
    ...errorResponse(404, "`previous_response_id` names no known response", {
      value: previousNotFound("resp_3f9c2b7e1d5a4c08").toJSON(),
    }),
  },
});

const NOT_STORED = "this server stores no responses (every request is treated as `store: false`)";

const getResponseRoute = createRoute({
  method: "get",
  path: `${RESPONSES_PATH}/{response_id}`,
  tags: ["Responses"],
  summary: "Retrieve a response: always 404, nothing is stored",
  operationId: "getResponse",
  description:
    "Replies are emotional-support conversations: this server keeps no message or reply text anywhere, so no " +
    "response can be retrieved and every id is a 404 (what OpenAI answers for a response created with `store: false`).",
  security: [{ bearer: [] }],
  request: { params: ResponseIdParam },
  responses: {
    200: { description: "Never: no response is stored", content: { "application/json": { schema: ResponseSchema } } },
    ...errorResponses(401),
    ...errorResponse(404, "No stored response has this id (none has)", {
      value: responseNotFound("resp_3f9c2b7e1d5a4c08", NOT_STORED).toJSON(),
    }),
  },
});

const deleteResponseRoute = createRoute({
  method: "delete",
  path: `${RESPONSES_PATH}/{response_id}`,
  tags: ["Responses"],
  summary: "Delete a response, ending its upstream conversation",
  operationId: "deleteResponse",
  description:
    "Ends the Emohaa conversation a response belongs to at once. Each response's conversation is already deleted " +
    "when its reply ends, so an id is known only while its conversation is kept; otherwise a 404.",
  security: [{ bearer: [] }],
  request: { params: ResponseIdParam },
  responses: {
    200: {
      description: "The conversation was ended",
      content: { "application/json": { schema: DeletedResponseSchema } },
    },
    ...errorResponses(401),
    ...errorResponse(404, "No response with this id has a conversation to end", {
      value: responseNotFound("resp_3f9c2b7e1d5a4c08", "no conversation is kept for it").toJSON(),
    }),
  },
});

/**
 * Adds GET and DELETE `/v1/responses/{response_id}` to the app and declares the POST route (served by
 * `responsesHandler` before the router) in its OpenAPI document.
 */
export function addResponseRoutes<E extends Env>(
  app: OpenAPIHono<E>,
  deps: Pick<CompletionsDeps, "auth">,
  threads: ResponseThreads,
): void {
  app.openAPIRegistry.registerPath(createResponseRoute);
  app.openapi(getResponseRoute, (c) => {
    deps.auth.tokensFor(c.req.header("authorization"));
    throw responseNotFound(c.req.valid("param").response_id, NOT_STORED);
  });
  app.openapi(deleteResponseRoute, async (c) => {
    const tokens = deps.auth.tokensFor(c.req.header("authorization"));
    const { response_id } = c.req.valid("param");
    if (!(await threads.end(response_id, tokens))) {
      throw responseNotFound(response_id, "no conversation is kept for it");
    }
    return c.json({ id: response_id, object: "response" as const, deleted: true as const }, 200);
  });
}
