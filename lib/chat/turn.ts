// One chat turn: continue the kept conversation the history belongs to, or start a fresh one with the merged prompt.
import { ApiError } from "../errors.ts";
import { buildPrompt, type PromptMessage } from "../openai/prompt.ts";
import { type ChatDeps, continueReply, type OpenedReply, openReply, type Reply } from "./reply.ts";
import { type Claimed, continuedDigest, splitContinuation, type Threads, transcriptDigest } from "./threads.ts";

/**
 * How a turn relates to a kept conversation (the `x-emohaa-continuation` header):
 * - `new`: a fresh conversation, kept after the reply;
 * - `continued`: only the new messages were sent, on the conversation that holds the rest;
 * - `fresh-after-busy`: the conversation's account stayed busy for the whole queue timeout;
 * - `fresh-after-error`: Emohaa refused or lost the conversation (e.g. it is gone);
 * - `fresh-after-evicted`: the conversation was deleted to keep the instance within its caps (KEPT_PER_ACCOUNT,
 *   KEPT_MAX);
 * - `off`: nothing is kept (CONTINUE_CONVERSATIONS=false).
 * The `fresh-after-…` ones send the merged prompt on a fresh conversation, kept in turn.
 */
export type Continuation =
  | "new"
  | "continued"
  | "fresh-after-busy"
  | "fresh-after-error"
  | "fresh-after-evicted"
  | "off";

export interface TurnRequest {
  tokens: readonly string[];
  /** The caller's scope (`callerScope`): conversations are found only within it. */
  scope: string;
  model: string;
  messages: readonly PromptMessage[];
  /** The client asked for a fresh conversation (`x-emohaa-new-conversation`). */
  fresh: boolean;
  /**
   * Continue this kept conversation by its handle (e.g. a Responses API `previous_response_id`): `messages` are then
   * only the new input, sent as they are. There is no history to fall back on: a conversation that is gone, not the
   * caller's, busy past the queue timeout or refused by Emohaa is an error (404 `conversation_not_found`, or the
   * failure itself), never a silent fresh start.
   */
  handle?: string;
  /**
   * With `handle`: the transcript digest the conversation must still hold (the turn the client continues is its
   * latest); a conversation that moved on since is not found.
   */
  after?: string;
  promptMaxBytes: number;
  /** The request parameter a prompt error names (default `messages`). */
  param?: string;
  signal: AbortSignal;
  holdMs: number;
  onAttempt?: (attempts: number) => void;
}

export interface Turn extends OpenedReply {
  /** The prompt sent upstream: the new messages alone, or the merged history. */
  prompt: string;
  continuation: Continuation;
  /** The kept conversation's handle (absent with `off`). */
  handle?: string;
  /**
   * Called with the whole text the client received, once it did: keeps the conversation for the next turn and
   * resolves the transcript digest it now holds. A reply cut short (max_tokens, a stop sequence) left the upstream
   * unfinished: it is deleted instead (undefined, as when it cannot be kept).
   */
  complete(content: string): Promise<string | undefined>;
  /**
   * The client has the whole reply (its last bytes went out, after `complete`): a kept conversation's idle time
   * (CONVERSATION_IDLE_MS) starts now, not while the answer was still being finished (its usage counted).
   */
  delivered(): void;
}

/**
 * Opens a turn. With `threads` (CONTINUE_CONVERSATIONS), a history that is a kept transcript plus new user
 * messages continues that conversation; anything else, or a continuation that cannot go on, starts afresh.
 */
export async function openTurn(deps: ChatDeps, threads: Threads | undefined, req: TurnRequest): Promise<Turn> {
  // Built first: a last message too long for Emohaa is a 400 whatever happens next.
  const merged = buildPrompt(req.messages, req.promptMaxBytes, req.param).prompt;
  if (!threads) {
    const opened = await openReply(deps, req.tokens, merged, req.signal, req.holdMs, req.onAttempt);
    return { ...opened, prompt: merged, continuation: "off", complete: async () => undefined, delivered: () => {} };
  }
  if (req.handle !== undefined) return await continueHandle(deps, threads, req, req.handle, merged);
  let continuation: Continuation = "new";
  const split = req.fresh ? undefined : splitContinuation(req.messages);
  const found = split && (await threads.claim(req.scope, req.tokens, transcriptDigest(req.model, split.transcript)));
  if (found === "evicted") continuation = "fresh-after-evicted";
  const claimed = found === "evicted" ? undefined : found;
  if (split && claimed) {
    const prompt = buildPrompt(split.added, req.promptMaxBytes, req.param).prompt;
    try {
      req.onAttempt?.(1);
      const opened = await continueReply(deps, claimed, prompt, req.signal, req.holdMs);
      return turnOf(threads, req, opened, prompt, "continued", claimed.handle, claimed);
    } catch (err) {
      const busy = err instanceof ApiError && err.code === "accounts_busy";
      // Busy: the conversation was never touched, so it is deleted here; a failed chat deleted it already.
      threads.forget(claimed.handle, busy);
      if (req.signal.aborted) throw err;
      continuation = busy ? "fresh-after-busy" : "fresh-after-error";
    }
  }
  const handle = threads.newHandle();
  const opened = await openReply(deps, req.tokens, merged, req.signal, req.holdMs, req.onAttempt);
  return turnOf(threads, req, opened, merged, continuation, handle);
}

/** A turn on a conversation named by its handle (see `TurnRequest.handle`). */
async function continueHandle(
  deps: ChatDeps,
  threads: Threads,
  req: TurnRequest,
  handle: string,
  prompt: string,
): Promise<Turn> {
  const claimed = await threads.claimHandle(handle, req.tokens, { scope: req.scope, digest: req.after });
  if (!claimed) {
    throw new ApiError(404, `No conversation ${handle} to continue: it ended, or it is answering another turn`, {
      code: "conversation_not_found",
    });
  }
  try {
    req.onAttempt?.(1);
    const opened = await continueReply(deps, claimed, prompt, req.signal, req.holdMs);
    return turnOf(threads, req, opened, prompt, "continued", handle, claimed);
  } catch (err) {
    threads.forget(handle, err instanceof ApiError && err.code === "accounts_busy");
    throw err;
  }
}

function turnOf(
  threads: Threads,
  req: TurnRequest,
  opened: OpenedReply,
  prompt: string,
  continuation: Continuation,
  handle: string,
  claimed?: Claimed,
): Turn {
  const inner = opened.reply;
  // The reply is open: now, in the background, the accounts' conversations whose holder died (client tokens).
  void threads.sweep(req.tokens);
  let kept = false;
  const reply: Reply = {
    read: () => inner.read(),
    readNow: () => inner.readNow(),
    finishedOn: () => inner.finishedOn(),
    keep: () => inner.keep(),
    close() {
      inner.close();
      // A continued turn that ended badly: its conversation was deleted with the reply; the claim goes too.
      if (claimed && !kept) threads.forget(handle, false);
    },
  };
  return {
    reply,
    first: opened.first,
    prompt,
    continuation,
    handle,
    async complete(content) {
      const on = inner.finishedOn();
      if (!on) return undefined;
      const { cid, token } = on;
      const turn = [...req.messages, { role: "assistant" as const, content }];
      // Continued by handle, the messages are only this turn's: the digest chains on the one the conversation held.
      const digest = req.handle !== undefined && claimed
        ? continuedDigest(claimed.digest, req.model, turn)
        : transcriptDigest(req.model, turn);
      kept = await threads.keep({ scope: req.scope, tokens: req.tokens, handle, token, cid, digest, claimed });
      if (kept) inner.keep();
      return kept ? digest : undefined;
    },
    delivered() {
      if (kept) threads.touch(handle);
    },
  };
}
