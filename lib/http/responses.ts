// The Responses API: POST /v1/responses (served before the router, like chat completions), GET and DELETE by id.
//
// A response is one turn of one upstream conversation, opened through `ResponseThreads`: `statelessThreads` opens
// a fresh conversation per request and knows no response ids; `keptThreads` (CONTINUE_CONVERSATIONS) keeps the
// conversation after a whole reply, as chat turns are kept (lib/chat/turn.ts), and names it by the response id, so
// `previous_response_id` continues it with only the new input. Its message item is named alike, so an input that
// references it last (`item_reference`, the AI SDK's default) continues it too. No response text is stored anywhere.
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Env } from "hono";
import type { ChatDeps } from "../chat/reply.ts";
import { collectReply, framedReply, type StreamFormat } from "../chat/respond.ts";
import type { DirectAnswer } from "./response.ts";
import type { IncomingRequest } from "./request.ts";
import { callerScope, type Threads } from "../chat/threads.ts";
import { openTurn, type Turn, type TurnRequest } from "../chat/turn.ts";
import { errorResponse, errorResponses, RATE_LIMIT_HEADERS } from "./apidoc.ts";
import {
  type CompletionsDeps,
  CONTINUATION_HEADER,
  CONVERSATION_HEADER,
  MODEL,
  NEW_CONVERSATION_HEADER,
  turnHandler,
} from "./completions.ts";
import { type Edge, isPostTo, parseRequest } from "./edge.ts";
import { ApiError } from "../errors.ts";
import {
  DeletedResponseSchema,
  ResponseIdParam,
  ResponseRequestSchema,
  ResponseSchema,
  ResponseStreamEventSchema,
} from "./responses-schemas.ts";
import type { PromptMessage } from "../openai/prompt.ts";
import {
  type AfterReference,
  afterReference,
  eventFrame,
  finishStatus,
  inputMessages,
  ResponseEvents,
  type ResponseHead,
  responseObject,
} from "../openai/responses.ts";

export const RESPONSES_PATH = "/v1/responses";

/** What opening the turn of one response needs. */
export interface ThreadRequest {
  /** The id of the response being made: a kept conversation is named by it. */
  responseId: string;
  /** The id of the response's message item: a kept conversation is named by it too (`item_reference`). */
  messageId: string;
  /** The response this one continues (`previous_response_id`), or null. */
  previousId: string | null;
  /**
   * The input's last `item_reference` and the new turn after it (`afterReference`): with no `previousId`, when it
   * names the latest message of a kept conversation of the caller, that conversation continues with that turn only.
   */
  reference?: AfterReference;
  /** `store` was not false: the conversation may be kept after the reply, and continued by this response's id. */
  store: boolean;
  tokens: readonly string[];
  /** The caller's scope (`callerScope`): a response continues only within it. */
  scope: string;
  /** The caller without its `user` field (`callerScope` of bearer and tokens): who may delete the response. */
  caller: string;
  model: string;
  /** The input as chat messages (`instructions` first). */
  messages: readonly PromptMessage[];
  /** The client asked for a fresh conversation (`x-emohaa-new-conversation`). */
  fresh: boolean;
  promptMaxBytes: number;
  signal: AbortSignal;
  /** How long to hold the status for the first piece (see openReply). */
  holdMs: number;
  onAttempt: (attempts: number) => void;
}

/** Where the conversations of responses come from, and how one ends early. */
export interface ResponseThreads {
  /** Whether a response with `store` not false is kept and may be continued (the Response's `store`). */
  readonly keeps: boolean;
  /**
   * Opens the turn: a new conversation (or one its whole history continues), or with `previousId` the conversation
   * of that response. An unknown, ended or older `previousId` is OpenAI's 404 naming `previous_response_id` (see
   * `previousNotFound`), before any upstream call. Without it, a `reference` to the latest message of a kept
   * conversation of the caller continues that one alike; any other reference is left out, as `inputMessages` does.
   * The turn's `complete` keeps and names the conversation.
   */
  open(request: ThreadRequest): Promise<Turn>;
  /** Ends the conversation of response `id` at once; false when `caller` (see ThreadRequest) knows no such response. */
  end(id: string, tokens: readonly string[], caller: string): Promise<boolean>;
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

function turnRequest(r: ThreadRequest): TurnRequest {
  const { tokens, scope, model, messages, fresh, promptMaxBytes, signal, holdMs, onAttempt } = r;
  return { tokens, scope, model, messages, fresh, promptMaxBytes, signal, holdMs, onAttempt, param: "input" };
}

/** A new upstream conversation per response, deleted after its reply; no response id is ever known. */
export function statelessThreads(chat: ChatDeps): ResponseThreads {
  return {
    keeps: false,
    async open(r) {
      if (r.previousId !== null) throw previousNotFound(r.previousId);
      return await openTurn(chat, undefined, turnRequest(r));
    },
    end: async () => false,
  };
}

/**
 * Responses on kept conversations (lib/chat/threads.ts): a response with `store` not false keeps its conversation
 * after a whole reply, named by the response id until its next turn; `previous_response_id` continues it with only
 * the new input. Its message item is named alike: an input whose last `item_reference` names it continues it with
 * only the messages after that reference. `store: false` keeps nothing: its conversation is deleted after the reply
 * (a conversation it continued too).
 */
export function keptThreads(chat: ChatDeps, threads: Threads): ResponseThreads {
  return {
    keeps: true,
    async open(r) {
      // The latest message of a kept conversation, referenced last: as its response's id would (not with
      // x-emohaa-new-conversation). Any other reference is left out and the input goes as it does without one.
      const reference = r.previousId === null && !r.fresh ? r.reference : undefined;
      let turn = reference && (await continueNamed(chat, threads, r, itemName(reference.id), reference.messages));
      if (!turn) {
        if (r.previousId !== null) {
          turn = await continueNamed(chat, threads, r, r.previousId, r.messages);
          if (!turn) throw previousNotFound(r.previousId);
        } else if (!r.store) return await openTurn(chat, undefined, turnRequest(r));
        else turn = await openTurn(chat, threads, turnRequest(r));
      }
      if (!r.store) return { ...turn, complete: async () => undefined };
      const kept = turn;
      return {
        ...kept,
        async complete(content) {
          const digest = await kept.complete(content);
          if (digest !== undefined) {
            const named = { handle: kept.handle!, digest, caller: r.caller };
            await Promise.all([threads.name(r.responseId, named), threads.name(itemName(r.messageId), named)]);
          }
          return digest;
        },
      };
    },
    async end(id, tokens, caller) {
      const named = await threads.named(id);
      return named !== undefined && named.caller === caller && (await threads.end(named.handle, tokens));
    },
  };
}

/**
 * The name of a kept conversation by its latest message item's id: apart from response ids, so that a message id
 * is neither a `previous_response_id` nor a response to DELETE.
 */
const itemName = (id: string) => `item:${id}`;

/**
 * Continues the kept conversation `name` (a response id, or `itemName` of a message id) names with only `messages`. Named by the
 * digest it held then: a conversation that moved on (an older response) is not found, as continuing it from there
 * would be a branch Emohaa cannot make. Undefined, before any upstream call, when the name is unknown, lapsed,
 * older, another caller's or its turn is running; a failure once claimed (busy past the queue timeout, refused by
 * Emohaa) is the request's error.
 */
async function continueNamed(
  chat: ChatDeps,
  threads: Threads,
  r: ThreadRequest,
  name: string,
  messages: readonly PromptMessage[],
): Promise<Turn | undefined> {
  const named = await threads.named(name);
  if (!named) return undefined;
  try {
    return await openTurn(chat, threads, { ...turnRequest(r), messages, handle: named.handle, after: named.digest });
  } catch (err) {
    if (err instanceof ApiError && err.code === "conversation_not_found") return undefined;
    throw err;
  }
}

/** Whether a request is one for the POST handler. */
export function isResponsesRequest(req: IncomingRequest): boolean {
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
): (req: IncomingRequest, info?: { direct?: true }) => Promise<Response | DirectAnswer> {
  return turnHandler(deps, edge, RESPONSES_PATH, async (req, x) => {
    const tokens = x.tokens;
    const body = await parseRequest(req, deps.maxBodyBytes, ResponseRequestSchema);
    const messages = inputMessages(body.input ?? [], body.instructions);
    const maxTokens = body.max_output_tokens ?? undefined;
    const stream = body.stream === true;
    // Usage is always part of a Response; the tokenizer loads while the upstream answers.
    const tokenizer = deps.tokenizer();
    tokenizer.catch(() => {}); // observed where it is awaited; never an unhandled rejection
    const createdAt = Math.floor(deps.now() / 1000);
    const store = body.store !== false;
    const bearer = req.headers.get("authorization") ?? "";
    const head: ResponseHead = {
      id: `resp_${deps.id()}`,
      messageId: `msg_${deps.id()}`,
      createdAt,
      model: MODEL,
      instructions: body.instructions ?? null,
      maxOutputTokens: maxTokens ?? null,
      metadata: body.metadata ?? {},
      previousResponseId: body.previous_response_id ?? null,
      store: store && threads.keeps,
    };
    const turn = await threads.open({
      responseId: head.id,
      messageId: head.messageId,
      previousId: head.previousResponseId,
      reference: afterReference(body.input ?? [], body.instructions),
      store,
      tokens,
      scope: threads.keeps ? callerScope(bearer, tokens, body.user ?? undefined) : "",
      caller: threads.keeps ? callerScope(bearer, tokens) : "",
      model: body.model ?? MODEL,
      messages,
      ...x.turnRequest(stream),
    });
    const cutter = await x.opened(turn, { stop: [], maxTokens, tokenizer });
    const { reply, first, prompt } = turn;
    const onComplete = turn.continuation === "off" ? undefined : turn.complete;
    const ctx = {
      head: { id: head.id, created: createdAt, model: MODEL },
      reply,
      first,
      cutter,
      prompt,
      tokenizer,
      onComplete,
      onDelivered: onComplete && turn.delivered,
      onSent: x.sent(prompt),
      beforeLast: x.release(),
    };
    if (!stream) {
      const { content, finish, usage } = await collectReply(ctx);
      const status = finishStatus(finish);
      const completedAt = Math.floor(deps.now() / 1000);
      return x.json({ ...responseObject(head, { status, text: content, usage, completedAt }), output_text: content });
    }
    return x.stream((onEnd) =>
      framedReply(ctx, responsesFormat(head, deps.now), { keepAliveMs: deps.keepAliveMs, onEnd })
    );
  });
}

const createResponseRoute = createRoute({
  method: "post",
  path: RESPONSES_PATH,
  tags: ["Responses"],
  summary: "Create a response (OpenAI Responses API)",
  operationId: "createResponse",
  description: "The Responses API, served the way chat completions are: the input becomes one prompt, the reply one " +
    "assistant message. With `stream: true` the answer is a `text/event-stream` of `ResponseStreamEvent`s. A client " +
    "that disconnects cancels the upstream request. With kept conversations (CONTINUE_CONVERSATIONS) and `store` " +
    "not false, the conversation is kept after a whole reply and `previous_response_id` (the id of its latest " +
    "response) continues it with only the new input; the `x-emohaa-conversation` and `x-emohaa-continuation` " +
    "headers say which conversation and how, as for chat. Otherwise the conversation is deleted after the reply. " +
    "No response text is stored anywhere.",
  security: [{ bearer: [] }],
  request: {
    headers: z.object({
      [NEW_CONVERSATION_HEADER]: z.enum(["1", "true"]).optional().openapi({
        description: "Start a fresh Emohaa conversation, even when the input list continues a kept one",
      }),
    }),
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
      headers: {
        ...RATE_LIMIT_HEADERS,
        [CONVERSATION_HEADER]: {
          description: "The kept Emohaa conversation this response belongs to (`DELETE /v1/responses/{id}` or " +
            "`DELETE /v1/conversations/{handle}` ends it)",
          schema: { type: "string", example: "conv-3f2a9c0d1e7b4a6f8c5d2e1f0a9b8c7d" },
        },
        [CONTINUATION_HEADER]: {
          description: "`continued`: only this input was sent, on the kept conversation; `new`: a fresh one; " +
            "`fresh-after-busy` / `fresh-after-error` / `fresh-after-evicted`: as for chat (an input list only); " +
            "`off`: nothing is kept (`store: false`, or CONTINUE_CONVERSATIONS=false)",
          schema: {
            type: "string",
            enum: ["new", "continued", "fresh-after-busy", "fresh-after-error", "fresh-after-evicted", "off"],
          },
        },
      },
      description: "The Response as JSON, or with `stream: true` an event stream: `event:` and `data:` lines per event",
      content: {
        "application/json": { schema: ResponseSchema },
        "text/event-stream": { schema: ResponseStreamEventSchema },
      },
    },
    ...errorResponses(400, 401, 429, 500, 502, 503, 504),
    ...errorResponse(404, "`previous_response_id` names no kept response, or not the latest of its conversation", {
      value: previousNotFound("resp_3f9c2b7e1d5a4c08").toJSON(),
    }),
  },
});

const NOT_STORED = "this server stores no responses (no reply text is kept anywhere)";

const getResponseRoute = createRoute({
  method: "get",
  path: `${RESPONSES_PATH}/{response_id}`,
  tags: ["Responses"],
  summary: "Retrieve a response: always 404, nothing is stored",
  operationId: "getResponse",
  description:
    "Replies are emotional-support conversations: this server keeps no message or reply text anywhere (a kept " +
    "conversation is known by a digest only), so no response can be retrieved and every id is a 404, even one " +
    "whose conversation `previous_response_id` can still continue.",
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
    "Ends the Emohaa conversation a response belongs to at once (any response of it: the conversation holds them " +
    "all), with the bearer (and accounts) that made it. A 404 when no conversation is kept for it: `store: false`, " +
    "already ended or idle, or CONTINUE_CONVERSATIONS=false.",
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
    const bearer = c.req.header("authorization") ?? "";
    const tokens = deps.auth.tokensFor(bearer);
    const { response_id } = c.req.valid("param");
    if (!(await threads.end(response_id, tokens, callerScope(bearer, tokens)))) {
      throw responseNotFound(response_id, "no conversation is kept for it");
    }
    return c.json({ id: response_id, object: "response" as const, deleted: true as const }, 200);
  });
}
