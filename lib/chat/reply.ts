// The chat use case: pick a token, create a conversation, stream the reply, fail over, always delete.
import type { EmohaaClient } from "../upstream/emohaa.ts";
import { UpstreamError } from "../upstream/errors.ts";
import type { PieceReader } from "../upstream/events.ts";
import { ApiError, clientClosed } from "../errors.ts";
import type { Clock } from "./clock.ts";
import type { Conversations } from "./conversations.ts";
import { within } from "./deadline.ts";
import { unexpired } from "./expiry.ts";
import type { Lease, Pool } from "./pool.ts";

export interface ChatTimeouts {
  /** Creating a conversation. */
  createMs: number;
  /** From opening the chat to its first piece. */
  firstPieceMs: number;
  /** Between two pieces. */
  idleMs: number;
  /** The whole reply. */
  totalMs: number;
}

export interface ChatDeps {
  client: EmohaaClient;
  pool: Pool;
  conversations: Conversations;
  timeouts: ChatTimeouts;
  maxAttempts: number;
  sleep: (ms: number) => Promise<void>;
  /** The clock and timers of the watchdogs, the create wait and the hold (lib/start.ts: the system's). */
  clock: Clock;
  /** Aborted when the server stops: open replies end with an error and their conversations are deleted. */
  shutdown?: AbortSignal;
  /** Told the upstream's time to the first piece, in seconds (metrics). */
  onFirstPiece?: (seconds: number) => void;
}

/** A reply being read from the upstream. */
export interface Reply {
  /**
   * The next text, or null at the end: the pieces that arrived together in one upstream read, joined (so a
   * burst costs one chunk downstream, not one per piece). Throws an ApiError on failure or timeout.
   */
  read(): Promise<string | null>;
  /** What `read` would give without waiting: text already received, null at the end, or undefined. */
  readNow(): string | null | undefined;
  /** Stops the upstream and deletes the conversation (unless kept); safe to call many times. */
  close(): void;
  /**
   * The upstream conversation and its account, once the reply was read to its end (the upstream holds the whole
   * answer); undefined before, or when it was cut short.
   */
  finishedOn(): { token: string; cid: string } | undefined;
  /** Keeps a finished conversation past `close` (native multi-turn, lib/chat/threads.ts). */
  keep(): void;
}

export interface OpenedReply {
  reply: Reply;
  /** The first piece (null: the reply is empty; undefined: not arrived within `holdMs`). */
  first: string | null | undefined;
}

type Phase = "first" | "idle" | "total" | "shutdown";

/** What a hold gives when the first piece did not come within it. */
const HOLD_EXPIRED = Symbol("hold expired");

/** Deadlines this close to now count as passed (a timer may fire a little early). */
const DUE_SLACK_MS = 2;

/** One upstream conversation: its abort controller, deadlines and cleanup. */
class Attempt {
  readonly ac = new AbortController();
  cid?: string;
  reader?: PieceReader;
  timedOut?: Phase;
  private closed = false;
  /**
   * The attempt's deadlines (Infinity: none), all kept by one timer that fires at the earliest of them and is
   * moved only when a deadline comes earlier than it: the create wait, the next piece (pushed forward by every
   * piece, lazily), the whole reply, and the hold on the first piece.
   */
  private createAt = Infinity;
  private pieceAt = Infinity;
  private totalAt = Infinity;
  private holdAt = Infinity;
  private createLate?: () => void;
  private holdOver?: () => void;
  private timer?: unknown;
  private timerAt = Infinity;
  /** Set once a piece arrived, so a later expiry is a gap, not a slow start. */
  private phaseIsIdle = false;
  /**
   * Whether a read waits on the upstream now. The piece watchdog measures the upstream's silence, so it counts only
   * then: while the gateway itself is busy between reads (the tokenizer's first load before a max_tokens cut), what
   * the upstream sent waits in the reader, and that is no gap.
   */
  private reading = false;
  /** The piece deadline passed while nobody read: the next read gets the phase's whole window, from its start. */
  private lapsed = false;
  readonly token: string;

  constructor(
    private readonly deps: ChatDeps,
    private readonly lease: Lease,
    clientSignal: AbortSignal,
  ) {
    this.token = lease.token;
    if (clientSignal.aborted) this.ac.abort(clientSignal.reason);
    else clientSignal.addEventListener("abort", () => this.clientLeft(clientSignal.reason), { once: true });
    // Shutdown ends the reply like a timeout does: the client gets an error, the conversation is deleted.
    if (deps.shutdown) (this.registry = openAttempts(deps.shutdown)).add(this);
  }

  /** The attempts open under the same shutdown signal (a set: cheaper per request than a listener each). */
  private readonly registry?: Set<Attempt>;
  /** Rejects the create wait when the client leaves during it. */
  private leaving?: (reason: unknown) => void;

  private clientLeft(reason: unknown): void {
    this.leaving?.(reason ?? new DOMException("The client left", "AbortError"));
    this.close();
  }

  /** Called when the server shuts down. */
  shutdown(): void {
    this.expire("shutdown");
  }

  /** Creates the conversation. A create already sent is awaited even after the client left, so it can be deleted. */
  async create(clientSignal: AbortSignal): Promise<void> {
    const { client, clock, conversations, timeouts } = this.deps;
    // The request itself may run longer than the client waits (its id is still needed for deletion), within a
    // limit of its own.
    const creating = within(
      client.timesOut,
      timeouts.createMs * 4,
      "create request",
      (signal, ms) => client.createConversation(this.token, signal, ms),
      clock,
    ).then((cid) => {
      conversations.created(this.token, cid);
      if (this.closed) conversations.delete(this.token, cid);
      else this.cid = cid;
    });
    // One wait for three outcomes: created, too slow for this client, or the client left.
    await new Promise<void>((resolve, reject) => {
      const settle = (err?: unknown) => {
        this.createAt = Infinity;
        this.createLate = this.leaving = undefined;
        if (err === undefined) resolve();
        else reject(err);
      };
      this.createLate = () =>
        settle(
          new UpstreamError("timeout", 504, `Emohaa did not create a conversation within ${timeouts.createMs} ms`, {
            code: "upstream_timeout",
          }),
        );
      this.createAt = clock.now() + timeouts.createMs;
      this.due(this.createAt);
      // Observed before anything else: a create that fails after the wait ended is never an unhandled rejection.
      creating.then(() => settle(), settle);
      if (clientSignal.aborted) return settle(clientSignal.reason ?? new DOMException("The client left", "AbortError"));
      // The constructor's listener on the client signal ends this wait (see clientLeft).
      this.leaving = settle;
    });
  }

  /** Opens the chat stream and arms the first-piece and total watchdogs. */
  async chat(prompt: string): Promise<void> {
    const { timeouts } = this.deps;
    this.arm(timeouts.firstPieceMs);
    this.totalAt = this.deps.clock.now() + timeouts.totalMs;
    this.due(this.totalAt);
    try {
      this.reader = await this.deps.client.openChat(this.token, this.cid!, prompt, this.ac.signal);
    } catch (err) {
      throw this.mapError(err);
    }
    // The upstream accepted the token and opened the stream: the account is healthy.
    this.deps.pool.report(this.token, "ok");
  }

  /** Reads the next text: every piece one upstream read brought, joined. Re-arms the gap watchdog. */
  async read(): Promise<string | null> {
    this.reading = true;
    if (this.lapsed) {
      this.lapsed = false;
      this.arm(this.phaseIsIdle ? this.deps.timeouts.idleMs : this.deps.timeouts.firstPieceMs);
    }
    try {
      const pieces = await this.reader!.read();
      // A cancelled reader ends early: after a timeout or close that is a failure, not the reply's end.
      if (this.timedOut || this.closed) throw new Error("Reply stopped");
      return this.took(pieces);
    } catch (err) {
      throw this.mapError(err);
    } finally {
      this.reading = false;
    }
  }

  /** The text already received, without waiting (undefined when there is none yet). */
  readNow(): string | null | undefined {
    try {
      if (this.timedOut || this.closed) throw new Error("Reply stopped");
      const pieces = this.reader!.readNow();
      return pieces === undefined ? undefined : this.took(pieces);
    } catch (err) {
      throw this.mapError(err);
    }
  }

  private took(pieces: string[] | null): string | null {
    if (pieces === null) {
      this.finished = true;
      return null;
    }
    this.phaseIsIdle = true;
    this.lapsed = false;
    this.arm(this.deps.timeouts.idleMs);
    return pieces.length === 1 ? pieces[0]! : pieces.join("");
  }

  /** Set once the reply was read to its end: the upstream request is over, nothing to abort. */
  finished = false;
  /** Set when the conversation outlives the reply (a kept conversation): `close` does not delete it. */
  kept = false;

  /** The next piece is due within `ms`: the deadline moves forward, the timer only when it must fire earlier. */
  private arm(ms: number): void {
    this.pieceAt = this.deps.clock.now() + ms;
    this.due(this.pieceAt);
  }

  /**
   * Hands the first read back when it settles, or HOLD_EXPIRED after `ms` (the caller starts its keep-alives
   * then, and the read goes on).
   */
  hold(first: Promise<string | null>, ms: number): Promise<string | null | typeof HOLD_EXPIRED> {
    if (!Number.isFinite(ms)) return first;
    if (ms <= 0) return Promise.race([first, Promise.resolve(HOLD_EXPIRED)]);
    const over = new Promise<typeof HOLD_EXPIRED>((resolve) => (this.holdOver = () => resolve(HOLD_EXPIRED)));
    this.holdAt = this.deps.clock.now() + ms;
    this.due(this.holdAt);
    return Promise.race([first, over]).finally(() => {
      this.holdAt = Infinity;
      this.holdOver = undefined;
    });
  }

  /**
   * A deadline was set at `at`: the timer fires then, unless it fires no later already (within the slack a deadline
   * is acted on early anyway: the hold, set just after the create wait, usually ends within a millisecond of it).
   */
  private due(at: number): void {
    if (this.closed || at >= this.timerAt - DUE_SLACK_MS) return;
    const { clock } = this.deps;
    clock.clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = clock.setTimeout(() => this.wake(), Math.max(0, at - clock.now()));
  }

  /**
   * The timer fired: the earliest deadline that passed acts (on ties in the order they were set in a request's
   * life: the create wait, the piece, the whole reply, the hold), and the timer is set again for what is left;
   * a second deadline that passed too acts on the next turn, after the first one's consequences ran.
   */
  private wake(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    if (this.closed) return;
    const now = this.deps.clock.now();
    const next = Math.min(this.createAt, this.pieceAt, this.totalAt, this.holdAt);
    if (next - now <= DUE_SLACK_MS) {
      if (this.createAt === next) {
        this.createAt = Infinity;
        this.createLate?.();
      } else if (this.pieceAt === next) {
        this.pieceAt = Infinity;
        // Opening the stream is waiting on the upstream too; between reads, once it is open, nobody is.
        if (this.reader && !this.reading) this.lapsed = true;
        else this.expire(this.reader && this.phaseIsIdle ? "idle" : "first");
      } else if (this.totalAt === next) {
        this.totalAt = Infinity;
        this.expire("total");
      } else {
        this.holdAt = Infinity;
        this.holdOver?.();
      }
    }
    const later = Math.min(this.createAt, this.pieceAt, this.totalAt, this.holdAt);
    if (later < Infinity) this.due(Math.max(later, now));
  }

  private expire(phase: Phase): void {
    if (this.closed) return;
    this.timedOut = phase;
    this.ac.abort();
    this.reader?.cancel();
  }

  /** Maps a failure and tells the pool what it says about the account (a client leaving says nothing). */
  fail(err: unknown): ApiError {
    const e = this.mapError(err);
    if (e instanceof UpstreamError) this.deps.pool.report(this.token, e.kind);
    return e;
  }

  mapError(err: unknown): ApiError {
    const t = this.deps.timeouts;
    if (this.timedOut === "first") {
      return new UpstreamError("timeout", 504, `Emohaa sent nothing within ${t.firstPieceMs} ms`, {
        code: "upstream_timeout",
      });
    }
    if (this.timedOut === "idle") {
      return new UpstreamError("timeout", 504, `Emohaa went silent for ${t.idleMs} ms in the middle of the answer`, {
        code: "upstream_timeout",
      });
    }
    if (this.timedOut === "shutdown") {
      return new ApiError(503, "The server is shutting down; retry the request", {
        code: "server_shutting_down",
        retryAfter: 1,
      });
    }
    if (this.timedOut === "total") {
      return new UpstreamError("timeout", 504, `Emohaa's answer took longer than ${t.totalMs} ms`, {
        code: "upstream_timeout",
      });
    }
    if (err instanceof ApiError) return err;
    if (this.ac.signal.aborted) return clientClosed();
    return new UpstreamError("network", 502, "Lost the connection to Emohaa", {
      code: "upstream_unreachable",
      cause: err,
    });
  }

  /** Aborts the upstream, deletes the conversation, frees the token. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.registry?.delete(this);
    this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
    if (!this.finished) {
      this.ac.abort();
      this.reader?.cancel();
    }
    if (this.cid && !this.kept) this.deps.conversations.delete(this.token, this.cid);
    this.lease.release();
  }
}

const registries = new WeakMap<AbortSignal, Set<Attempt>>();

/** The open attempts under a shutdown signal, which ends them all when it fires. */
function openAttempts(shutdown: AbortSignal): Set<Attempt> {
  let set = registries.get(shutdown);
  if (!set) {
    const attempts = (set = new Set());
    registries.set(shutdown, attempts);
    const end = () => {
      for (const a of [...attempts]) a.shutdown();
    };
    if (shutdown.aborted) queueMicrotask(end);
    else shutdown.addEventListener("abort", end, { once: true });
  }
  return set;
}

/** Whether a failure on one token is worth another attempt, and with which token. */
function nextStep(err: ApiError): "other-token" | "same-or-other" | "stop" {
  if (!(err instanceof UpstreamError)) return "stop";
  switch (err.kind) {
    case "auth":
    case "busy":
    case "rate":
    case "protocol":
      return "other-token";
    default:
      return "same-or-other";
  }
}

/**
 * Opens a reply, failing over between tokens until the first piece arrives (nothing has reached the client
 * yet, so another attempt is invisible to it). After `holdMs` without a piece the reply is handed over anyway,
 * so the caller can start its keep-alives; from then on there is no failover.
 */
export async function openReply(
  deps: ChatDeps,
  tokens: readonly string[],
  prompt: string,
  signal: AbortSignal,
  holdMs: number,
  /** Told the attempt count as it grows, so a failed request can report it too. */
  onAttempt?: (attempts: number) => void,
): Promise<OpenedReply> {
  const { clock } = deps;
  const started = clock.now();
  // A token whose JWT `exp` has passed is skipped without an upstream call; when none is left, a fast 401.
  tokens = unexpired(tokens, started);
  const tried = new Set<string>();
  let lastError: ApiError | undefined;
  let attempts = 0;
  while (attempts < deps.maxAttempts) {
    let lease = await deps.pool.acquire(tokens, tried, signal);
    if (!lease) {
      // Every token was tried: only transient failures are worth the same tokens again, after a short pause.
      if (!lastError || nextStep(lastError) !== "same-or-other") break;
      tried.clear();
      await deps.sleep(150 * attempts);
      lease = await deps.pool.acquire(tokens, tried, signal);
      if (!lease) break;
    }
    if (signal.aborted) {
      lease.release();
      break;
    }
    attempts++;
    onAttempt?.(attempts);
    const attempt = new Attempt(deps, lease, signal);
    try {
      await attempt.create(signal);
      await attempt.chat(prompt);
      const wait = holdMs - (clock.now() - started);
      const opened = clock.now();
      const firstRead = attempt.read();
      if (deps.onFirstPiece) {
        firstRead.then((p) => p !== null && deps.onFirstPiece!((clock.now() - opened) / 1000), () => {});
      }
      firstRead.catch(() => {}); // observed by whoever reads it; never an unhandled rejection
      const first = await attempt.hold(firstRead, wait);
      const reply = makeReply(attempt, first === HOLD_EXPIRED ? firstRead : undefined);
      return { reply, first: first === HOLD_EXPIRED ? undefined : first };
    } catch (err) {
      attempt.close();
      if (signal.aborted) throw clientClosed();
      lastError = attempt.fail(err);
      tried.add(lease.token);
      if (nextStep(lastError) === "stop") break;
    }
  }
  if (signal.aborted) throw clientClosed();
  throw lastError ?? new ApiError(502, "No upstream attempt could be made", { code: "upstream_error" });
}

/**
 * Opens a reply on a conversation kept from an earlier turn (lib/chat/threads.ts): waits for that one account like
 * any request (a 429 after the queue timeout), and makes one attempt, no failover: another account does not hold
 * this conversation. A failure deletes the conversation (it may hold half a turn); the caller starts afresh.
 */
export async function continueReply(
  deps: ChatDeps,
  kept: { token: string; cid: string },
  prompt: string,
  signal: AbortSignal,
  holdMs: number,
): Promise<OpenedReply> {
  const { clock } = deps;
  const started = clock.now();
  const lease = await deps.pool.acquire([kept.token], new Set(), signal);
  if (!lease) throw new ApiError(429, "The conversation's account is not usable", { code: "accounts_busy" });
  const attempt = new Attempt(deps, lease, signal);
  attempt.cid = kept.cid;
  try {
    if (signal.aborted) throw clientClosed();
    await attempt.chat(prompt);
    const firstRead = attempt.read();
    firstRead.catch(() => {});
    const first = await attempt.hold(firstRead, holdMs - (clock.now() - started));
    const reply = makeReply(attempt, first === HOLD_EXPIRED ? firstRead : undefined);
    return { reply, first: first === HOLD_EXPIRED ? undefined : first };
  } catch (err) {
    attempt.close();
    if (signal.aborted) throw clientClosed();
    throw attempt.fail(err);
  }
}

function makeReply(attempt: Attempt, pending: Promise<string | null> | undefined): Reply {
  let next = pending;
  return {
    async read() {
      const p = next ?? attempt.read();
      next = undefined;
      try {
        return await p;
      } catch (err) {
        throw attempt.fail(err);
      }
    },
    readNow() {
      // The first read is still out: only it can say what comes next.
      if (next) return undefined;
      try {
        return attempt.readNow();
      } catch (err) {
        throw attempt.fail(err);
      }
    },
    close: () => attempt.close(),
    finishedOn: () => (attempt.finished && attempt.cid ? { token: attempt.token, cid: attempt.cid } : undefined),
    keep() {
      attempt.kept = attempt.finished && attempt.cid !== undefined;
    },
  };
}
