// Pure translation: reply pieces to OpenAI chunks and completions, and stop / max_tokens cutting.

/** Why a reply ended: its end, or the `max_tokens` cut (lib/http/schemas.ts's wire schema is built from this list). */
export const FINISH_REASONS = ["stop", "length"] as const;
export type FinishReason = (typeof FINISH_REASONS)[number];

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/**
 * The token counting the cutter and usage need (a real tokenizer in production, anything in tests). Every
 * method costs a bounded amount per character, whatever the text (see lib/openai/tokenizer.ts).
 */
export interface Tokenizer {
  encode(text: string): number[];
  decode(tokens: number[]): string;
  /** Never more than the UTF-8 length of `text` (true of any tokenizer over bytes). */
  count(text: string): number;
  /**
   * The last index of `text` (0 if none) where it may be split so that the parts count to the same as the
   * whole, for a `text` that starts at such a place: lets a long text be counted a piece at a time.
   */
  boundary(text: string): number;
}

export interface CutOptions {
  stop: readonly string[];
  maxTokens?: number;
  tokenizer?: Tokenizer;
}

export interface CutResult {
  /** Text that may go to the client now. */
  emit: string;
  /** Set once the reply is cut: stop reading the upstream. */
  finish?: FinishReason;
}

/** Bytes of `text` in UTF-8: no tokenizer that works on bytes gives more tokens than that. */
function utf8Bytes(text: string): number {
  let n = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80) n += c < 0x800 || (c & 0xfc00) === 0xd800 || (c & 0xfc00) === 0xdc00 ? 1 : 2;
  }
  return n;
}

/**
 * Cuts a reply at the first stop sequence (even one split across pieces) or at `maxTokens` tokens.
 * Text that could be the start of a stop sequence is held back until the next piece decides it.
 */
export class Cutter {
  private readonly stop: readonly string[];
  private readonly maxTokens?: number;
  private readonly tokenizer?: Tokenizer;
  private held = "";
  /** Tokens of the text sent before `open`, counted exactly, piece by piece. */
  private closedTokens = 0;
  /** The text sent since the last boundary (see Tokenizer.boundary), not yet counted. */
  private open = "";
  private finished = false;

  constructor(options: CutOptions) {
    this.stop = options.stop.filter((s) => s.length > 0);
    this.maxTokens = options.maxTokens;
    this.tokenizer = options.tokenizer;
    if (this.maxTokens !== undefined && !this.tokenizer) {
      throw new Error("Cannot cut at max_tokens without a tokenizer");
    }
  }

  /** True when neither stop nor max_tokens applies: pieces pass through untouched. */
  get passThrough(): boolean {
    return this.stop.length === 0 && this.maxTokens === undefined;
  }

  /** True when pieces are counted (max_tokens): each costs tokenizer work in proportion to its length. */
  get counts(): boolean {
    return this.maxTokens !== undefined;
  }

  /** Feeds one upstream piece. */
  push(piece: string): CutResult {
    if (this.finished) return { emit: "" };
    if (this.maxTokens === 0) return this.end("", "length");
    let text = this.held + piece;
    this.held = "";
    let finish: FinishReason | undefined;
    if (this.stop.length) {
      let at = -1;
      for (const s of this.stop) {
        const i = text.indexOf(s);
        if (i >= 0 && (at < 0 || i < at)) at = i;
      }
      if (at >= 0) {
        text = text.slice(0, at);
        finish = "stop";
      } else {
        const keep = this.heldSuffix(text);
        this.held = text.slice(text.length - keep);
        text = text.slice(0, text.length - keep);
      }
    }
    if (this.maxTokens !== undefined && text) {
      const cut = this.cutAtTokens(text);
      if (cut !== null) return this.end(cut, "length");
    }
    if (finish) return this.end(text, finish);
    return { emit: text };
  }

  /** The end of the upstream stream: releases held-back text (still subject to max_tokens). */
  flush(): CutResult {
    if (this.finished || !this.held) return { emit: "" };
    const text = this.held;
    this.held = "";
    if (this.maxTokens !== undefined) {
      const cut = this.cutAtTokens(text);
      if (cut !== null) return this.end(cut, "length");
    }
    return { emit: text };
  }

  private end(emit: string, finish: FinishReason): CutResult {
    this.finished = true;
    this.held = "";
    return { emit, finish };
  }

  /** Longest suffix of `text` that is a proper prefix of some stop sequence. */
  private heldSuffix(text: string): number {
    let best = 0;
    for (const s of this.stop) {
      for (let n = Math.min(s.length - 1, text.length); n > best; n--) {
        if (text.endsWith(s.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }

  /**
   * Returns the part of `text` that still fits in max_tokens if the reply would exceed it, else null (and takes
   * `text` as sent). The text up to the last boundary (see Tokenizer.boundary) is counted once, exactly; the
   * rest (short: a part of a word) is bounded by its UTF-8 length until it is counted, so each character is
   * counted once however the reply is split into pieces. Only when the bound crosses the limit is the text since
   * the last boundary encoded, to cut it exactly.
   */
  private cutAtTokens(text: string): string | null {
    const tk = this.tokenizer!;
    const room = this.maxTokens! - this.closedTokens;
    const open = this.open + text;
    const at = tk.boundary(open);
    const closed = at > 0 ? tk.count(open.slice(0, at)) : 0;
    const rest = at > 0 ? open.slice(at) : open;
    if (closed + utf8Bytes(rest) > room) {
      const tokens = tk.encode(open);
      if (tokens.length > room) {
        // A cut may end inside a multi-byte character: drop the replacement character it decodes to.
        const prefix = tk.decode(tokens.slice(0, Math.max(0, room))).replace(/\uFFFD+$/, "");
        return prefix.length > this.open.length && open.startsWith(prefix) ? prefix.slice(this.open.length) : "";
      }
    }
    this.closedTokens += closed;
    this.open = rest;
    return null;
  }
}

/** The fields every chunk of one response shares. */
export interface ChunkHead {
  id: string;
  created: number;
  model: string;
}

/** The OpenAI `chat.completion.chunk` for a delta. */
export function deltaChunk(
  head: ChunkHead,
  delta: { role?: "assistant"; content?: string },
  finish: FinishReason | null = null,
) {
  return {
    id: head.id,
    object: "chat.completion.chunk" as const,
    created: head.created,
    model: head.model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  };
}

/** The `include_usage` chunk: empty choices and the usage. */
export function usageChunk(head: ChunkHead, usage: Usage) {
  return {
    id: head.id,
    object: "chat.completion.chunk" as const,
    created: head.created,
    model: head.model,
    choices: [],
    usage,
  };
}

/** The OpenAI `chat.completion` for a whole reply. */
export function completion(head: ChunkHead, content: string, finish: FinishReason, usage: Usage) {
  return {
    id: head.id,
    object: "chat.completion" as const,
    created: head.created,
    model: head.model,
    choices: [{
      index: 0,
      message: { role: "assistant" as const, content, refusal: null },
      logprobs: null,
      finish_reason: finish,
    }],
    usage,
  };
}

/** Usage from two counts. */
export function usageOf(promptTokens: number, completionTokens: number): Usage {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
}
