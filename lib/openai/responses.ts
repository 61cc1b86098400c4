// Pure translation for the Responses API: input items to chat messages, a reply to a Response and its stream events.
import { ApiError } from "../errors.ts";
import { messageText, type PromptMessage } from "./prompt.ts";
import type { FinishReason, Usage } from "./translate.ts";

/** A content part of an input message: `input_text` and `output_text` carry text, the rest is left out. */
export interface InputPart {
  type: string;
  text?: string;
}

/** An input item as validated at the edge: a message (`type` "message" or absent), or any other item. */
export interface InputItem {
  type?: string;
  role?: string;
  content?: string | null | readonly InputPart[];
  /** An `item_reference`'s id (the id of an item of an earlier response). */
  id?: unknown;
}

const TEXT_PARTS = new Set(["input_text", "output_text"]);

/** The text of one message item's content: a string as is, its text parts joined by newlines. */
function itemText(content: InputItem["content"]): string {
  if (content == null || typeof content === "string") return content ?? "";
  return messageText(content.map((p) => TEXT_PARTS.has(p.type) ? { type: "text", text: p.text } : p));
}

/**
 * The chat messages the prompt builder takes for `input` and `instructions`: a string is one user message, a
 * list keeps its message items in order (other items, such as function calls, reasoning or item references, are
 * left out), and `instructions` go first as a system message. Input without any text is a 400 naming `input`.
 */
export function inputMessages(input: string | readonly InputItem[], instructions?: string | null): PromptMessage[] {
  const messages: PromptMessage[] = [];
  if (instructions) messages.push({ role: "system", content: instructions });
  let text = false;
  const items = typeof input === "string" ? [{ role: "user", content: input }] : input;
  for (const item of items) {
    if ((item.type !== undefined && item.type !== "message") || item.role === undefined) continue;
    const content = itemText(item.content);
    if (content) text = true;
    messages.push({ role: item.role, content });
  }
  if (!text) {
    throw new ApiError(
      400,
      "Invalid request at input: no message has any text (Emohaa reads strings and input_text or output_text parts)",
      { code: "invalid_request", param: "input" },
    );
  }
  return messages;
}

/** The roles a new turn may send after the item it continues from. */
const TURN_ROLES = new Set(["user", "system", "developer"]);

/** What an input list continues from: the id of the item it references last, and the new turn after it. */
export interface AfterReference {
  /** The id of the last `item_reference` (e.g. the `msg_…` item of an earlier response). */
  id: string;
  /** The chat messages after it, `instructions` first. */
  messages: PromptMessage[];
}

/**
 * The new turn of an input list that references earlier items (the AI SDK's default with `store: true` sends
 * earlier assistant turns as `item_reference`s): the id of the last reference and the messages after it, when
 * those are all user, system or developer messages with some text. Undefined otherwise: a string, no reference,
 * nothing after it, or another item after it.
 */
export function afterReference(
  input: string | readonly InputItem[],
  instructions?: string | null,
): AfterReference | undefined {
  if (typeof input === "string") return undefined;
  let at = input.length - 1;
  while (at >= 0 && input[at]!.type !== "item_reference") at--;
  const id = at >= 0 ? input[at]!.id : undefined;
  if (typeof id !== "string" || !id) return undefined;
  const rest = input.slice(at + 1);
  const isTurn = (i: InputItem) => (i.type === undefined || i.type === "message") && TURN_ROLES.has(i.role ?? "");
  if (!rest.every(isTurn) || !rest.some((i) => itemText(i.content))) return undefined;
  return { id, messages: inputMessages(rest, instructions) };
}

/** What every Response of one request shares: ids, time and the request fields a Response repeats. */
export interface ResponseHead {
  id: string;
  /** The id of the one message item. */
  messageId: string;
  createdAt: number;
  model: string;
  instructions: string | null;
  maxOutputTokens: number | null;
  metadata: Record<string, string>;
  previousResponseId: string | null;
  /** Whether the response is kept and may be continued by its id (`store` not false, and kept conversations on). */
  store: boolean;
}

export type ResponseStatus = "in_progress" | "completed" | "incomplete" | "failed";

/** The Responses API's usage: the chat usage renamed, with the details OpenAI always sends. */
export function responseUsage(usage: Usage) {
  return {
    input_tokens: usage.prompt_tokens,
    input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
    output_tokens: usage.completion_tokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: usage.total_tokens,
  };
}

export type ResponseUsage = ReturnType<typeof responseUsage>;

/** The one output item: an assistant message with one `output_text` part. */
export function messageItem(head: ResponseHead, text: string, status: "in_progress" | "completed" | "incomplete") {
  return {
    id: head.messageId,
    type: "message" as const,
    status,
    role: "assistant" as const,
    content: status === "in_progress" && !text ? [] : [textPart(text)],
  };
}

function textPart(text: string) {
  return { type: "output_text" as const, text, annotations: [] as never[], logprobs: [] as never[] };
}

/** A Response error: `code` is one of OpenAI's (429 is `rate_limit_exceeded`, anything else `server_error`). */
export function responseError(error: ApiError) {
  return { code: error.status === 429 ? "rate_limit_exceeded" : "server_error", message: error.message };
}

export interface ResponseState {
  status: ResponseStatus;
  /** The text so far (the whole reply once ended); absent: no output item yet. */
  text?: string;
  usage?: Usage;
  error?: ApiError;
  /** Unix seconds, for a completed response. */
  completedAt?: number;
}

/** The `Response` object. Fields Emohaa cannot honour say what was done instead (no tools, plain text). */
export function responseObject(head: ResponseHead, state: ResponseState) {
  const itemStatus = state.status === "completed"
    ? "completed"
    : state.status === "incomplete"
    ? "incomplete"
    : "in_progress";
  const output = state.text === undefined ? [] : [messageItem(head, state.text, itemStatus)];
  return {
    id: head.id,
    object: "response" as const,
    created_at: head.createdAt,
    status: state.status,
    completed_at: state.status === "completed" ? state.completedAt ?? head.createdAt : null,
    error: state.error ? responseError(state.error) : null,
    incomplete_details: state.status === "incomplete" ? { reason: "max_output_tokens" as const } : null,
    instructions: head.instructions,
    max_output_tokens: head.maxOutputTokens,
    model: head.model,
    output,
    parallel_tool_calls: false,
    previous_response_id: head.previousResponseId,
    reasoning: null,
    store: head.store,
    temperature: null,
    text: { format: { type: "text" as const } },
    tool_choice: "none" as const,
    tools: [] as never[],
    top_p: null,
    truncation: "disabled" as const,
    metadata: head.metadata,
    // Absent until the reply ended: the published schema has no null usage.
    ...(state.usage ? { usage: responseUsage(state.usage) } : {}),
  };
}

export type ResponseObject = ReturnType<typeof responseObject>;

/** The status a finished reply ends in: the max_output_tokens cut is `incomplete`. */
export function finishStatus(finish: FinishReason): "completed" | "incomplete" {
  return finish === "length" ? "incomplete" : "completed";
}

/** One stream event: its `type` names it (sent as the SSE `event:` too), `sequence_number` orders it. */
export type ResponseEvent = { type: string; sequence_number: number } & Record<string, unknown>;

/**
 * The stream events of one text reply, numbered in order: `opening` (created, in_progress, the message item and
 * its part added), `delta` per piece, then `done` (text, part and item done, then completed or incomplete), or
 * `failed` (an error, then the failed response) at any point after the opening.
 */
export class ResponseEvents {
  private seq = 0;
  private readonly at = { output_index: 0 };
  private readonly part = { item_id: "", output_index: 0, content_index: 0 };

  constructor(private readonly head: ResponseHead) {
    this.part.item_id = head.messageId;
  }

  private event(type: string, fields: Record<string, unknown>): ResponseEvent {
    return { type, sequence_number: this.seq++, ...fields };
  }

  /** The events before the first piece. */
  opening(): ResponseEvent[] {
    const inProgress = responseObject(this.head, { status: "in_progress" });
    return [
      this.event("response.created", { response: inProgress }),
      this.event("response.in_progress", { response: inProgress }),
      this.event("response.output_item.added", { ...this.at, item: messageItem(this.head, "", "in_progress") }),
      this.event("response.content_part.added", { ...this.part, part: textPart("") }),
    ];
  }

  /** One piece of text. */
  delta(text: string): ResponseEvent {
    return this.event("response.output_text.delta", { ...this.part, delta: text, logprobs: [] });
  }

  /** The end of a reply: `text` is all of it. */
  done(text: string, finish: FinishReason, usage: Usage, completedAt: number): ResponseEvent[] {
    const status = finishStatus(finish);
    const final = responseObject(this.head, { status, text, usage, completedAt });
    return [
      this.event("response.output_text.done", { ...this.part, text, logprobs: [] }),
      this.event("response.content_part.done", { ...this.part, part: textPart(text) }),
      this.event("response.output_item.done", { ...this.at, item: messageItem(this.head, text, status) }),
      this.event(status === "completed" ? "response.completed" : "response.incomplete", { response: final }),
    ];
  }

  /**
   * A failure after the opening: an `error` event, then the response failed (with the error, without output).
   * The error event has the published fields and also OpenAI's `error` object, which the openai SDK throws as an
   * APIError (it reads a stream's `data.error`); the AI SDK reports it once and then ignores the failed response's
   * error. Clients that only watch the response's status see `failed` last.
   */
  failed(error: ApiError): ResponseEvent[] {
    const { code, message, param } = error;
    return [
      this.event("error", { code, message, param, error: error.toJSON().error }),
      this.event("response.failed", { response: responseObject(this.head, { status: "failed", error }) }),
    ];
  }
}

/** An SSE frame of a stream event, named by its type as OpenAI sends them. */
export function eventFrame(event: ResponseEvent): string {
  return `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}
