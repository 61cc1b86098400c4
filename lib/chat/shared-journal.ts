// The crash journal on the shared state store (STATE=kv or redis): each instance journals its own conversations
// under its id with a heartbeat, and any instance deletes the conversations of an owner whose heartbeat stopped.
import { HEARTBEAT_MS, OWNER_DEAD_AFTER_MS, type OwnerStore, type ValueStore } from "../state/store.ts";
import type { ConversationJournal } from "./conversations.ts";
import { resolveEntries } from "./journal.ts";
import { tokenHash } from "./pool.ts";

/**
 * How long an instance holds its claim on a dead owner's conversations. Only the claimant deletes them, so two
 * survivors never delete one conversation twice; a claimant that dies, or that could not delete everything, leaves
 * the rest to whoever claims after this (the natural backoff for an upstream that refuses deletes).
 */
export const RECOVERY_CLAIM_MS = 120_000;

export interface SharedJournalOptions {
  store: OwnerStore & ValueStore;
  /** This instance's id: its entries and heartbeat are kept under it. */
  owner: string;
  /** The server-side tokens: only conversations under these are journalled, and recovery finds tokens here. */
  tokens: () => readonly string[];
  /** Deletes one conversation left behind; resolves true once deleted (`Conversations.deleteLeftover`). */
  deleteLeftover(token: string, cid: string): Promise<boolean>;
  /** A heartbeat older than this means its owner is dead (OWNER_DEAD_AFTER_MS by default). */
  deadAfterMs?: number;
  /** A failed store call: the caller logs it (once) and counts it; it never reaches a request. */
  onError(err: unknown): void;
  /** What one recovery of a dead owner did: conversations deleted, and those left for a later pass. */
  onRecovered?(report: { owner: string; deleted: number; left: number }): void;
  /** For tests: jitter of the recovery timer (default Math.random). */
  random?: () => number;
}

/** The journal's parts: the hooks Conversations calls, and the timers start() runs until stop(). */
export interface SharedJournal {
  /** The Conversations hooks: journal this instance's conversations under its own id. */
  readonly hooks: ConversationJournal;
  /** How often this instance writes its heartbeat, and how often it looks for dead owners. */
  readonly heartbeatMs: number;
  readonly recoverEveryMs: number;
  /**
   * One recovery pass: deletes the conversations of every dead owner this instance can claim; resolves how many
   * were deleted. Never rejects (store failures go to `onError`); a pass already running is joined, not doubled.
   */
  recover(): Promise<number>;
  /** Starts the heartbeat and periodic recovery (a first pass at once); resolves the first pass's count. */
  start(): Promise<number>;
  /**
   * Stops the timers (shutdown). When every conversation this instance journalled was deleted, its heartbeat goes
   * too; otherwise the heartbeat lapses and another instance deletes what is left after `deadAfterMs`.
   */
  stop(): Promise<void>;
}

/**
 * The crash journal for instances sharing a store. Entries are owned: an instance only ever deletes conversations
 * of owners whose heartbeat is older than `deadAfterMs`, never those of a live instance, which is what lets a new
 * instance start while others stream. A client's own token is not in `tokens()`, so nothing of it is written.
 *
 * Store calls: one write per conversation created and one per deletion, a heartbeat every `heartbeatMs` (always,
 * even when idle: an entry whose removal failed must still belong to a live owner), and one `deadOwners` read per
 * recovery pass (every `deadAfterMs / 2`, jittered).
 */
export function sharedJournal(options: SharedJournalOptions): SharedJournal {
  const { store, owner, tokens, onError } = options;
  const deadAfterMs = options.deadAfterMs ?? OWNER_DEAD_AFTER_MS;
  // At least six beats per window, so a few failed writes in a row never make a live owner look dead.
  const heartbeatMs = Math.min(HEARTBEAT_MS, Math.floor(deadAfterMs / 6));
  const recoverEveryMs = Math.floor(deadAfterMs / 2);
  const random = options.random ?? Math.random;
  // This instance's journalled conversations, each with its add still in flight or done: a remove waits for its add,
  // so a backend that does not keep one caller's writes in order (Deno KV commits) never leaves a stale entry.
  const mine = new Map<string, Promise<void>>();
  const guard = (p: Promise<unknown>) => p.then(() => {}, onError);

  const hooks: ConversationJournal = {
    created(token, cid) {
      const index = tokens().indexOf(token);
      if (index < 0) return;
      mine.set(cid, guard(store.journalAdd({ owner, cid, index, hash: tokenHash(token) })));
    },
    deleted(_token, cid) {
      // Only this instance's own entries: a dead owner's leftover is removed by `recoverOwner`.
      const added = mine.get(cid);
      if (!added) return;
      mine.delete(cid);
      void added.then(() => guard(store.journalRemove(owner, cid)));
    },
  };

  async function recoverOwner(dead: string): Promise<number> {
    const claimKey = ["journal-claim", dead];
    if ((await store.cas(claimKey, null, owner, { expireInMs: RECOVERY_CLAIM_MS })) === false) return 0;
    const { found, orphaned } = resolveEntries(await store.journalList(dead), tokens());
    const results = await Promise.all(
      found.map(async (f) => ({ cid: f.cid, deleted: await options.deleteLeftover(f.token, f.cid) })),
    );
    const deleted = results.filter((r) => r.deleted);
    const left = results.length - deleted.length;
    if (left === 0) {
      // Entries whose token no instance here holds (a token removed from the list) cannot be deleted by anyone
      // sharing this list: they go with the owner, as the file journal drops them.
      await store.forgetOwner(dead);
      await store.delete(claimKey);
    } else {
      // The claim stays until it lapses: the rest is tried again after RECOVERY_CLAIM_MS, by whoever claims then.
      for (const r of [...deleted, ...orphaned]) await store.journalRemove(dead, r.cid);
    }
    options.onRecovered?.({ owner: dead, deleted: deleted.length, left });
    return deleted.length;
  }

  let running: Promise<number> | undefined;
  const recover = () => (running ??= (async () => {
    let total = 0;
    try {
      const dead = (await store.deadOwners(deadAfterMs)).filter((o) => o !== owner);
      for (const o of dead) total += await recoverOwner(o);
    } catch (err) {
      onError(err);
    }
    return total;
  })().finally(() => (running = undefined)));

  let beat: ReturnType<typeof setInterval> | undefined;
  let next: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const unref = (t: unknown) => (t as { unref?: () => void } | undefined)?.unref?.();
  const schedule = () => {
    if (stopped) return;
    // Jittered, so instances started together do not all read the store at once.
    next = setTimeout(() => void recover().then(schedule), recoverEveryMs * (0.75 + random() / 2));
    unref(next);
  };

  return {
    hooks,
    heartbeatMs,
    recoverEveryMs,
    recover,
    start() {
      void guard(store.heartbeat(owner));
      beat = setInterval(() => void guard(store.heartbeat(owner)), heartbeatMs);
      unref(beat);
      return recover().finally(schedule);
    },
    async stop() {
      stopped = true;
      clearInterval(beat);
      clearTimeout(next);
      // A recovery pass still running is not waited for: what it leaves keeps its claim and is retried after it.
      // `mine` holds only conversations not yet deleted: the hooks drop one when its deletion succeeds.
      if (mine.size) return;
      await guard(store.forgetOwner(owner));
    },
  };
}
