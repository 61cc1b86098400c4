// OpenAI responses from an upstream reply: the SSE stream and the whole completion.
import type { Reply } from "./reply.ts";
import { type ApiError, clientClosed, isAbort, toApiError } from "../errors.ts";
import { contentFramer, dataFrame, DONE_FRAME, PING_FRAME } from "../openai/sse.ts";
import {
  type ChunkHead,
  completion,
  Cutter,
  deltaChunk,
  type FinishReason,
  type Tokenizer,
  type Usage,
  usageChunk,
  usageOf,
} from "../openai/translate.ts";
import { countInTurns, nextTurn, TURN_CHARS } from "../openai/tokenizer.ts";

export interface ReplyContext {
  head: ChunkHead;
  reply: Reply;
  /** The first piece when already read (null: empty reply; undefined: still to read). */
  first: string | null | undefined;
  cutter: Cutter;
  prompt: string;
  /** Loading (in parallel with the upstream's answer) when usage must be counted; awaited only then. */
  tokenizer?: Promise<Tokenizer>;
  /**
   * Told the whole text the client receives, once the reply ended well and before the reply is closed (and the
   * stream's last frames sent): native multi-turn keeps the conversation here (lib/chat/turn.ts). Never throws.
   */
  onComplete?: (content: string) => Promise<unknown>;
  /**
   * Told the text the client received once the reply ended, well or not (a client that left got part of it), with
   * its usage when the answer counted it (so it is not counted twice): the usage of the caller's gateway key
   * (lib/chat/key-limits.ts). Called before the stream's `onEnd`.
   */
  onSent?: (content: string, usage?: Usage) => void;
  /**
   * Awaited once the reply was read whole, before the last frames (or the whole answer) go out: frees the caller's
   * gateway key's concurrency slot, so a client that has its answer finds the slot free (lib/chat/key-limits.ts).
   */
  beforeLast?: () => Promise<void>;
  /** The client has the whole answer (the stream's last frames written, or the whole answer made): `Turn.delivered`. */
  onDelivered?: () => void;
}

// A cutter that counts tokens is given a long piece a slice at a time; each push also costs a call's overhead.
const PUSH_COST = 32;

/**
 * Reads the reply through the cutter, calling `emit` for each piece of text; returns how it finished. A cutter
 * that counts tokens (max_tokens) gets the event loop a turn after every TURN_CHARS characters or so, however
 * they arrive (one huge piece, or thousands already received), so counting never holds other requests up long.
 */
async function pump(ctx: ReplyContext, emit: (text: string) => void): Promise<FinishReason> {
  const { reply, cutter } = ctx;
  let work = 0;
  let piece = ctx.first === undefined ? await reply.read() : ctx.first;
  while (piece !== null) {
    if (cutter.passThrough) {
      if (piece) emit(piece);
    } else if (!cutter.counts) {
      const r = cutter.push(piece);
      if (r.emit) emit(r.emit);
      if (r.finish) return r.finish;
    } else {
      let out = "";
      let at = 0;
      do {
        let end = Math.min(piece.length, at + TURN_CHARS);
        // Never between the two halves of a surrogate pair.
        if ((piece.charCodeAt(end) & 0xfc00) === 0xdc00) end++;
        const r = cutter.push(end - at === piece.length ? piece : piece.slice(at, end));
        out += r.emit;
        if (r.finish) {
          if (out) emit(out);
          return r.finish;
        }
        work += end - at + PUSH_COST;
        at = end;
        if (work >= TURN_CHARS) {
          work = 0;
          if (out) emit(out);
          out = "";
          await nextTurn();
        }
      } while (at < piece.length);
      if (out) emit(out);
    }
    // What has already arrived (often the end) is taken without a round through the event loop.
    const now = reply.readNow();
    piece = now === undefined ? await reply.read() : now;
  }
  const r = cutter.flush();
  if (r.emit) emit(r.emit);
  return r.finish ?? "stop";
}

/** The tokenizer as soon as it has loaded (set a microtask after), for counts that need not wait a turn. */
function whenLoaded(ctx: ReplyContext): { tokenizer?: Tokenizer } {
  const loaded: { tokenizer?: Tokenizer } = {};
  ctx.tokenizer?.then((tk) => (loaded.tokenizer = tk), () => {});
  return loaded;
}

/**
 * The usage of a reply. Short texts with the tokenizer loaded are counted at once (a reply that arrived whole
 * still leaves in one write); others a slice at a time, with turns of the event loop between.
 */
function usage(ctx: ReplyContext, loaded: { tokenizer?: Tokenizer }, content: string): Usage | Promise<Usage> {
  const tk = loaded.tokenizer;
  if (tk && ctx.prompt.length + content.length <= 2 * TURN_CHARS) {
    return usageOf(tk.count(ctx.prompt), tk.count(content));
  }
  return (async () => {
    const tk = await ctx.tokenizer!;
    return usageOf(await countInTurns(tk, ctx.prompt), await countInTurns(tk, content));
  })();
}

/** A whole reply: its text, how it ended and its usage. */
export interface CollectedReply {
  content: string;
  finish: FinishReason;
  usage: Usage;
}

/** Reads the whole reply. A failure part-way is an error, never a partial answer. */
export async function collectReply(ctx: ReplyContext): Promise<CollectedReply> {
  const loaded = whenLoaded(ctx);
  const parts: string[] = [];
  let finish: FinishReason;
  try {
    finish = await pump(ctx, (t) => parts.push(t));
    await ctx.onComplete?.(parts.join(""));
    await ctx.beforeLast?.();
  } catch (err) {
    ctx.reply.close();
    ctx.onSent?.(parts.join(""));
    throw err;
  }
  ctx.reply.close();
  const content = parts.join("");
  const counted = await usage(ctx, loaded, content);
  ctx.onSent?.(content, counted);
  ctx.onDelivered?.();
  return { content, finish, usage: counted };
}

/** Reads the whole reply into a `chat.completion`. A failure part-way is an error, never a partial 200. */
export async function collectCompletion(ctx: ReplyContext) {
  const { content, finish, usage } = await collectReply(ctx);
  return completion(ctx.head, content, finish, usage);
}

/** How a reply is framed on the wire: chat completion chunks, or the Responses API's events. */
export interface StreamFormat {
  /** The frames before the first piece. */
  opening(): string;
  /** The frame of one piece of text. */
  piece(text: string): string;
  /** Whether `end` needs the whole text and its usage (counted after the reply, so only when asked). */
  readonly whole: boolean;
  /** The frames after the last piece. */
  end(finish: FinishReason, text: string | undefined, usage: Usage | undefined): string;
  /** The frame of a failure after the first byte. */
  fail(error: ApiError): string;
}

/** Chat completion chunks: role chunk, content chunks, one finish chunk, optional usage chunk, `[DONE]`. */
export function chatFormat(head: ChunkHead, includeUsage: boolean): StreamFormat {
  return {
    opening: () => dataFrame(deltaChunk(head, { role: "assistant", content: "" })),
    piece: contentFramer(head),
    whole: includeUsage,
    end: (finish, _text, counted) =>
      dataFrame(deltaChunk(head, {}, finish)) + (counted ? dataFrame(usageChunk(head, counted)) : "") + DONE_FRAME,
    // A `data: {"error": ...}` frame: the SDKs throw it as an APIError.
    fail: (e) => dataFrame(e.toJSON()),
  };
}

export interface StreamOptions {
  includeUsage: boolean;
  keepAliveMs: number;
  /** Called once when the stream ended: the status to log and the error code if it failed. */
  onEnd?: (outcome: { code: string | null; status: number }) => void;
}

/** Where a reply's frames go as text, without a stream: lib/http/server.ts's direct answers (lib/http/response.ts). */
export interface TextSink {
  /** Writes text; may throw when the client is gone (a closed stream does). */
  write(text: string): void;
  /** The last frames were written. */
  end(): void;
}

/** A reply's frames, ready to go out either way: as a stream (any Response), or pushed to a TextSink. */
export interface FramedReply {
  stream(): ReadableStream<Uint8Array>;
  /** Starts the frames into `out`; `cancel` is the client leaving. */
  push(out: TextSink): { cancel(): void };
}

/**
 * The chat completion event stream (see chatFormat). A failure after the first byte becomes a
 * `data: {"error": ...}` frame and the stream closes without [DONE].
 */
export function streamCompletion(ctx: ReplyContext, options: StreamOptions): ReadableStream<Uint8Array> {
  return completionFrames(ctx, options).stream();
}

/** The chat completion frames (see chatFormat), either way (FramedReply). */
export function completionFrames(ctx: ReplyContext, options: StreamOptions): FramedReply {
  return framedReply(ctx, chatFormat(ctx.head, options.includeUsage), options);
}

/** A reply as an event stream in the given format (see pushReply). */
export function streamReply(
  ctx: ReplyContext,
  format: StreamFormat,
  options: Omit<StreamOptions, "includeUsage">,
): ReadableStream<Uint8Array> {
  return framedReply(ctx, format, options).stream();
}

/** A reply's frames in the given format, as a stream or pushed (see pushReply). Either is taken once. */
export function framedReply(
  ctx: ReplyContext,
  format: StreamFormat,
  options: Omit<StreamOptions, "includeUsage">,
): FramedReply {
  return {
    push: (out) => pushReply(ctx, format, options, out),
    stream() {
      const encoder = new TextEncoder();
      let run: { cancel(): void } | undefined;
      return new ReadableStream<Uint8Array>({
        start(controller) {
          run = pushReply(ctx, format, options, {
            write: (s) => controller.enqueue(encoder.encode(s)),
            end: () => controller.close(),
          });
        },
        cancel() {
          run?.cancel();
        },
      });
    },
  };
}

/** The streams open at each keep-alive interval, checked by one interval timer per interval. */
const keepAlives = new Map<number, Set<() => void>>();

/** Whether a keep-alive timer runs for this interval (streams open with it, or one ended under half an interval ago). */
export const keepAliveRunning = (ms: number): boolean => keepAlives.has(ms);

/**
 * Calls `check` every half `ms` until the returned stop is called: one interval timer for all the streams open with
 * the same `ms`, not one per stream. A check pings a stream silent for 0.9 `ms`: the first ping comes 0.9 to 1.4
 * `ms` into a silence (a timer of its own, checking every `ms` from the stream's start, gave 1), then one every `ms`.
 * The timer stops at a tick that finds no stream left, not at each stream's end: streams that follow one another
 * (one client's requests in turn) do not make and clear a timer each (measured: 1.8 KB less allocated per
 * completion, `npm run bench:alloc`).
 */
function keepAlive(ms: number, check: () => void): () => void {
  let checks = keepAlives.get(ms);
  if (!checks) {
    const group = (checks = new Set());
    keepAlives.set(ms, group);
    const timer = setInterval(() => {
      if (group.size === 0) {
        clearInterval(timer);
        keepAlives.delete(ms);
      } else group.forEach((c) => c());
    }, ms / 2);
    // It outlives the last stream by half an interval at most, and never holds the process open (Bun, Node and
    // Deno 2 give timers an unref).
    (timer as { unref?: () => void }).unref?.();
  }
  const group = checks;
  group.add(check);
  return () => void group.delete(check);
}

/**
 * A reply's frames in the given format, pushed to `out`, with keep-alive comments while the upstream is silent. A
 * failure after the first byte becomes the format's failure frame and the frames end without a normal end.
 * Cancellation (client gone) closes the reply, which aborts the upstream and deletes the conversation.
 */
export function pushReply(
  ctx: ReplyContext,
  format: StreamFormat,
  options: Omit<StreamOptions, "includeUsage">,
  out: TextSink,
): { cancel(): void } {
  const frame = format.piece;
  const parts: string[] | undefined = format.whole || ctx.onComplete || ctx.onSent ? [] : undefined;
  const loaded = whenLoaded(ctx);
  let ended = false;
  /** The answer's usage, when its last frames carried it. */
  let sentUsage: Usage | undefined;
  let lastWrite = Date.now();

  const end = (status: number, code: string | null) => {
    if (ended) return;
    ended = true;
    stopPing();
    ctx.reply.close();
    if (ctx.onSent) ctx.onSent(parts!.join(""), sentUsage);
    options.onEnd?.({ status, code });
  };

  // The client may be gone before `cancel` is called (Deno errors the body of a closed connection first):
  // a sink that refuses a write or the end is a client that left, never an exception.
  const write = (s: string) => {
    try {
      out.write(s);
    } catch {
      end(499, "client_closed");
    }
  };
  const close = () => {
    try {
      out.end();
    } catch {
      // Cancelled or errored by the runtime already.
    }
  };
  // Frames sent in one turn of the event loop go out as one chunk: one encode, one write.
  let corked: string | undefined;
  const send = (s: string) => {
    if (ended) return;
    lastWrite = Date.now();
    if (corked !== undefined) corked += s;
    else write(s);
  };
  const uncork = () => {
    const s = corked;
    corked = undefined;
    if (s && !ended) write(s);
  };
  const stopPing = keepAlive(options.keepAliveMs, () => {
    if (Date.now() - lastWrite >= options.keepAliveMs * 0.9) send(PING_FRAME);
  });
  corked = format.opening();
  (async () => {
    try {
      const finish = await pump(ctx, (t) => {
        parts?.push(t);
        send(frame(t));
      });
      // Before the last frames: a client that sends its next turn at once finds this one kept.
      if (ctx.onComplete) await ctx.onComplete(parts!.join(""));
      ctx.reply.close();
      const text = parts?.join("");
      const counting = format.whole ? usage(ctx, loaded, text!) : undefined;
      const counted = counting instanceof Promise ? await counting : counting;
      if (ctx.beforeLast) await ctx.beforeLast();
      sentUsage = counted;
      corked ??= "";
      send(format.end(finish, text, counted));
      uncork();
      if (!ended) close();
      ctx.onDelivered?.();
      end(200, null);
    } catch (err) {
      if (ended) return;
      corked ??= "";
      const e = isAbort(err) ? clientClosed() : toApiError(err);
      send(format.fail(e));
      uncork();
      close();
      end(e.status, e.code);
    }
  })();
  // The pump ran up to its first wait, so the role chunk and the first text (when it was already read) go
  // together; after a microtask, so a reply that is already complete goes out whole, in one write.
  queueMicrotask(uncork);
  return { cancel: () => end(499, "client_closed") };
}
