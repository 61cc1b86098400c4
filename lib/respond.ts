// OpenAI responses from an upstream reply: the SSE stream and the whole completion.
import type { Reply } from "./chat.ts";
import { clientClosed, isAbort, toApiError } from "./errors.ts";
import { contentFramer, dataFrame, DONE_FRAME, PING_FRAME } from "./sse.ts";
import { completion, type ChunkHead, Cutter, deltaChunk, type FinishReason, type Tokenizer, usageChunk, usageOf } from "./translate.ts";

export interface ReplyContext {
  head: ChunkHead;
  reply: Reply;
  /** The first piece when already read (null: empty reply; undefined: still to read). */
  first: string | null | undefined;
  cutter: Cutter;
  prompt: string;
  /** Loaded only when usage must be counted. */
  tokenizer?: Tokenizer;
}

/** Reads the reply through the cutter, calling `emit` for each piece of text; returns how it finished. */
async function pump(ctx: ReplyContext, emit: (text: string) => void): Promise<FinishReason> {
  const { reply, cutter } = ctx;
  let piece = ctx.first === undefined ? await reply.read() : ctx.first;
  while (piece !== null) {
    if (cutter.passThrough) {
      if (piece) emit(piece);
    } else {
      const r = cutter.push(piece);
      if (r.emit) emit(r.emit);
      if (r.finish) return r.finish;
    }
    // What has already arrived (often the end) is taken without a round through the event loop.
    const now = reply.readNow();
    piece = now === undefined ? await reply.read() : now;
  }
  const r = cutter.flush();
  if (r.emit) emit(r.emit);
  return r.finish ?? "stop";
}

function usage(ctx: ReplyContext, content: string) {
  const tk = ctx.tokenizer!;
  return usageOf(tk.count(ctx.prompt), tk.count(content));
}

/** Reads the whole reply into a `chat.completion`. A failure part-way is an error, never a partial 200. */
export async function collectCompletion(ctx: ReplyContext) {
  const parts: string[] = [];
  try {
    const finish = await pump(ctx, (t) => parts.push(t));
    const content = parts.join("");
    return completion(ctx.head, content, finish, usage(ctx, content));
  } finally {
    ctx.reply.close();
  }
}

export interface StreamOptions {
  includeUsage: boolean;
  keepAliveMs: number;
  /** Called once when the stream ended: the status to log and the error code if it failed. */
  onEnd?: (outcome: { code: string | null; status: number }) => void;
}

/**
 * The event stream: role chunk, content chunks, one finish chunk, optional usage chunk, `[DONE]`.
 * A failure after the first byte becomes a `data: {"error": ...}` frame and the stream closes without [DONE].
 * Cancellation (client gone) closes the reply, which aborts the upstream and deletes the conversation.
 */
export function streamCompletion(ctx: ReplyContext, options: StreamOptions): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const frame = contentFramer(ctx.head);
  const parts: string[] | undefined = options.includeUsage ? [] : undefined;
  let ended = false;
  let lastWrite = Date.now();
  let ping: ReturnType<typeof setInterval> | undefined;

  const end = (status: number, code: string | null) => {
    if (ended) return;
    ended = true;
    clearInterval(ping);
    ctx.reply.close();
    options.onEnd?.({ status, code });
  };

  return new ReadableStream<Uint8Array>({
    start(controller) {
      // The client may be gone before `cancel` is called (Deno errors the body of a closed connection first):
      // a stream that refuses a write or the close is a client that left, never an exception.
      const write = (s: string) => {
        try {
          controller.enqueue(encoder.encode(s));
        } catch {
          end(499, "client_closed");
        }
      };
      const close = () => {
        try {
          controller.close();
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
      ping = setInterval(() => {
        if (Date.now() - lastWrite >= options.keepAliveMs * 0.9) send(PING_FRAME);
      }, options.keepAliveMs);
      corked = dataFrame(deltaChunk(ctx.head, { role: "assistant", content: "" }));
      (async () => {
        try {
          const finish = await pump(ctx, (t) => {
            parts?.push(t);
            send(frame(t));
          });
          corked ??= "";
          send(dataFrame(deltaChunk(ctx.head, {}, finish)));
          if (parts) send(dataFrame(usageChunk(ctx.head, usage(ctx, parts.join("")))));
          send(DONE_FRAME);
          uncork();
          if (!ended) close();
          end(200, null);
        } catch (err) {
          if (ended) return;
          corked ??= "";
          const e = isAbort(err) ? clientClosed() : toApiError(err);
          send(dataFrame(e.toJSON()));
          uncork();
          close();
          end(e.status, e.code);
        }
      })();
      // The pump ran up to its first wait, so the role chunk and the first text (when it was already read) go
      // together; after a microtask, so a reply that is already complete goes out whole, in one write.
      queueMicrotask(uncork);
    },
    cancel() {
      end(499, "client_closed");
    },
  });
}
