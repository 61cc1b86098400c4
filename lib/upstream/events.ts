// Reading the upstream's event stream: pieces of the reply, `[DONE]`, error events, and the bounds on both.
import { createParser } from "eventsource-parser";
import { problemOf, UpstreamError, upstreamFailure } from "./errors.ts";
import type { PushBody } from "./http1.ts";

/** A reply's bounds, and the token its request carried (never quoted back from an error event). */
interface ReplyRules {
  maxEventChars: number;
  maxReplyChars: number;
  token?: string;
}

/** Where a reply stands: characters seen so far (against the size bound) and whether `[DONE]` arrived. */
interface ReplyState {
  total: number;
  done: boolean;
}

/**
 * The rules for one upstream event: returns the piece it carries (or "" for none), marks the end at `[DONE]`,
 * throws for an error event, an event over `maxEventChars` or a reply over `maxReplyChars`.
 */
function pieceOf(ev: { event?: string; data: string }, state: ReplyState, rules: ReplyRules): string {
  if (state.done) return "";
  // The parser's own bound sees only what an event holds while it is incomplete: an event that arrives whole in
  // one read is never held, so the bound on one event is checked here, on every event, however it arrived.
  if (ev.data.length > rules.maxEventChars) throw eventTooLarge();
  state.total += ev.data.length;
  if (state.total > rules.maxReplyChars) {
    throw new UpstreamError("protocol", 502, `Emohaa's answer exceeded ${rules.maxReplyChars} characters`, {
      code: "upstream_reply_too_large",
    });
  }
  if (ev.data === "[DONE]") {
    state.done = true;
    return "";
  }
  // Only an event that may be a problem body is parsed as JSON: pieces are plain text.
  const problem = ev.event === "error" || ev.data.charCodeAt(0) === 123 ? problemOf(ev.data) : null;
  if (ev.event === "error" || (problem && problem.status && problem.status >= 400)) {
    throw upstreamFailure(problem?.status ?? 500, "finish the answer", problem, { token: rules.token });
  }
  return ev.data;
}

function eventTooLarge(): UpstreamError {
  return new UpstreamError("protocol", 502, "Emohaa sent an event larger than this server accepts", {
    code: "upstream_event_too_large",
  });
}
const streamCut = () =>
  new UpstreamError("network", 502, "Emohaa's stream ended before the answer was complete", {
    code: "upstream_stream_cut",
  });

/** A reply being read: the pieces of each upstream read, in order. */
export interface PieceReader {
  /** The pieces of the next upstream read that held any (never an empty batch), or null after `[DONE]`. */
  read(): Promise<string[] | null>;
  /** What `read` would give without waiting for the network: pieces, null at the end, or undefined. */
  readNow(): string[] | null | undefined;
  /** Stops reading and releases the body. */
  cancel(): void;
}

/** Whether this runtime's fetch bodies are byte streams (a BYOB reader may be asked for); learned on first use. */
let byobBodies: boolean | undefined;

/** Bytes read per upstream read when the body lets us bring our own buffer. */
const READ_BUFFER_BYTES = 16 * 1024;

/**
 * Reads an event stream body straight into pieces: one decoder and one SSE parser (eventsource-parser's, with its
 * `maxBufferSize` bound on one event), instead of a chain of stream stages with a promise hand-off per event.
 * Everything a network read holds is parsed at once and handed over as one batch. The body is this project's
 * upstream client's pushed bytes (lib/upstream/http1.ts: no stream at all, each read parsed as it arrives) or a
 * fetch body stream. `token` is the one the request carried: an error event that quotes it is not passed on with it.
 */
export function pieceReader(
  body: ReadableStream<Uint8Array> | PushBody,
  maxEventChars: number,
  maxReplyChars = Infinity,
  token?: string,
): PieceReader {
  const decoder = new TextDecoder();
  const state: ReplyState = { total: 0, done: false };
  const rules: ReplyRules = { maxEventChars, maxReplyChars, token };
  let batch: string[] = [];
  let failure: unknown;
  /** The body ended (`ended`), or failed on the way (`broken`: the transport's error, thrown once the batch is out). */
  let ended = false;
  let broken: { err: unknown } | undefined;
  const parser = createParser({
    onEvent(ev) {
      if (failure !== undefined) return;
      try {
        const piece = pieceOf(ev, state, rules);
        if (piece) batch.push(piece);
      } catch (err) {
        failure = err;
      }
    },
    // Only an event over the bound is fatal; junk lines are skipped, as EventSourceParserStream does.
    onError(err) {
      if (err.type === "max-buffer-size-exceeded") failure ??= eventTooLarge();
    },
    maxBufferSize: maxEventChars,
  });
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    transport.stop();
  };
  const readNow = (): string[] | null | undefined => {
    // Pieces parsed before a failure or the end still go out first, as they would from a stream.
    if (batch.length) {
      const out = batch;
      batch = [];
      return out;
    }
    if (failure !== undefined) {
      release();
      throw failure;
    }
    if (state.done) {
      release();
      return null;
    }
    if (broken) throw broken.err;
    if (ended) throw streamCut();
    return undefined;
  };
  // Nothing is parsed past a failure or the end: pushed bytes keep coming after them (a stream's reads stop there),
  // and the parser refuses to be fed once its bound was exceeded.
  const feed = (bytes: Uint8Array | undefined) => {
    if (!bytes) ended = true;
    if (failure !== undefined || state.done) return;
    try {
      parser.feed(bytes ? decoder.decode(bytes, { stream: true }) : decoder.decode());
    } catch (err) {
      failure = err;
    }
  };
  const core: ReaderCore = { feed, readNow, broken: (err) => (broken = { err }) };
  const transport = body instanceof ReadableStream ? streamed(body, core) : pushed(body, core);
  return { readNow, read: transport.read, cancel: release };
}

/** What both ways of reading a body share: the parser's input (bytes, the end, a failure) and its output. */
interface ReaderCore {
  feed(bytes: Uint8Array | undefined): void;
  broken(err: unknown): void;
  readNow(): string[] | null | undefined;
}

/** One way of reading a body: the next batch (as PieceReader's `read`), and the body's release. */
interface Transport {
  read(): Promise<string[] | null>;
  stop(): void;
}

/** Pushed bytes: each arrival parsed at once; a waiting read is woken when it brought something to hand over. */
function pushed(body: PushBody, core: ReaderCore): Transport {
  let waiting: { resolve(v: string[] | null): void; reject(err: unknown): void } | undefined;
  const wake = () => {
    const w = waiting;
    if (!w) return;
    try {
      const now = core.readNow();
      if (now === undefined) return;
      waiting = undefined;
      w.resolve(now);
    } catch (err) {
      waiting = undefined;
      w.reject(err);
    }
  };
  const sub = body.subscribe({
    data(bytes) {
      core.feed(bytes);
      wake();
    },
    end(err) {
      if (err === undefined) core.feed(undefined);
      else core.broken(err);
      wake();
    },
  });
  return {
    stop() {
      sub.cancel();
      // A read still waiting ends as a stream's read does when its body is cancelled: the body ended there.
      if (waiting) {
        core.feed(undefined);
        wake();
      }
    },
    read() {
      try {
        const now = core.readNow();
        if (now !== undefined) return Promise.resolve(now);
      } catch (err) {
        return Promise.reject(err);
      }
      return new Promise((resolve, reject) => (waiting = { resolve, reject }));
    },
  };
}

/** A fetch body stream: read on demand, into one reused buffer where the body is a byte stream. */
function streamed(body: ReadableStream<Uint8Array>, core: ReaderCore): Transport {
  // Where the body is a byte stream (Deno, Node) every read fills the same buffer: a default reader there gets a
  // fresh 64 KiB buffer per read, which at a thousand slow streams is hundreds of megabytes of garbage.
  // Bun's fetch body is not a byte stream: its default reader hands over the bytes it received.
  let byob: ReadableStreamBYOBReader | undefined;
  if (byobBodies !== false) {
    try {
      byob = body.getReader({ mode: "byob" });
      byobBodies = true;
    } catch {
      // Learned once per process: a runtime whose fetch bodies are not byte streams never has them.
      byobBodies ??= false;
    }
  }
  const reader: ReadableStreamDefaultReader<Uint8Array> | undefined = byob ? undefined : body.getReader();
  let buffer: Uint8Array<ArrayBuffer> | undefined = byob ? new Uint8Array(READ_BUFFER_BYTES) : undefined;
  return {
    stop: () => void (byob ?? reader)!.cancel().catch(() => {}),
    async read() {
      for (;;) {
        const now = core.readNow();
        if (now !== undefined) return now;
        const r = byob ? await byob.read(buffer!) : await reader!.read();
        if (r.done || !r.value) core.feed(undefined);
        else {
          core.feed(r.value);
          // The read handed the buffer back (transferred): the next read fills it again.
          if (byob) buffer = new Uint8Array(r.value.buffer as ArrayBuffer);
        }
      }
    },
  };
}
