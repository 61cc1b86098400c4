// The state store: what instances of the gateway share (leases, account health, wake-ups, the journal, values).
// Only the interface lives here; memory.ts, kv.ts and redis.ts implement it. No runtime globals.

/**
 * How long a lease lives without renewal. An instance that dies (kill -9, an evicted isolate) stops renewing,
 * so its accounts are free again at most this long after its last renewal.
 */
export const LEASE_TTL_MS = 15_000;

/**
 * How often an instance renews all of its live leases in one batched call. A third of the TTL, so two renewals
 * in a row may fail (a store hiccup, a long GC pause) before a live stream loses its lease.
 */
export const LEASE_RENEW_MS = 5_000;

/** How often an instance writes its journal heartbeat. */
export const HEARTBEAT_MS = 5_000;

/** A heartbeat older than this means its owner is dead: recovery may delete that owner's conversations. */
export const OWNER_DEAD_AFTER_MS = 30_000;

/** A lease held on one account: `id` names it for free and renewal; `expiresAt` is in epoch milliseconds. */
export interface Lease {
  /** Unique per lease; starts with the owner's id. */
  readonly id: string;
  /** The account's hash (never the token itself). */
  readonly account: string;
  /** The instance that holds it. */
  readonly owner: string;
  /** When it lapses unless renewed, by the store's clock (the Redis server's, else the instance's). */
  readonly expiresAt: number;
  /**
   * With `TakeRequest.skipCooling`: the taken account's health as the take read it, in the same atomic step
   * (null: healthy, no record). Absent otherwise.
   */
  readonly health?: AccountHealth | null;
}

/** What `free` and `renew` need of a lease. */
export type LeaseRef = Pick<Lease, "id" | "account">;

/** A request for a lease on the first account, in preference order, that has room. */
export interface TakeRequest {
  /** The instance asking; it renews and frees what it gets. */
  owner: string;
  /** Account hashes, most preferred first. The store takes the first with fewer than `perAccount` live leases. */
  accounts: readonly string[];
  /** Most live leases per account across all instances (TOKEN_CONCURRENCY). */
  perAccount: number;
  /** Lease lifetime without renewal; defaults to LEASE_TTL_MS. */
  ttlMs?: number;
  /**
   * Health-aware: the store reads the accounts' health in the same round trip and atomic step as the take, tries
   * the accounts not cooling first (in the given order), then the cooling ones, the soonest to end first, and
   * returns the taken account's health in `Lease.health`. A cooldown written by any instance before the take is
   * honoured by it: the caller needs no `readHealth` first.
   */
  skipCooling?: boolean;
}

/** What the pool knows of an account's health, shared by every instance. Absent means healthy. */
export interface AccountHealth {
  /** Epoch milliseconds until which the account is skipped while another is usable; 0 when not cooling. */
  coolingUntil: number;
  /** The last failure's kind (an upstream failure kind, e.g. "auth"), or null after a success. */
  lastError: string | null;
  /** Consecutive transient failures since the last success. */
  fails: number;
}

/**
 * A change to an account's health, applied atomically (two instances counting failures at once both count):
 * - `ok`: a success clears failures, cooldown and last error;
 * - `cool`: cool down now for `cooldownMs` (the upstream rejected the account);
 * - `fail`: count a transient failure; at `threshold` consecutive ones, cool down for `cooldownMs`;
 * - `note`: remember `error` as the last error only (it says nothing about the account's health).
 */
export type HealthUpdate =
  | { kind: "ok" }
  | { kind: "cool"; error: string; cooldownMs: number }
  | { kind: "fail"; error: string; threshold: number; cooldownMs: number }
  | { kind: "note"; error: string };

/** One conversation to delete after its owner died, as the journal keeps it (see lib/journal.ts). */
export interface JournalRecord {
  /** The instance that created the conversation. */
  owner: string;
  /** The upstream conversation id. */
  cid: string;
  /** The server-side token's position in the token list. */
  index: number;
  /** SHA-256 of that token. */
  hash: string;
}

/** A stored value with the version that `cas` compares. */
export interface Versioned<T> {
  value: T;
  /** Opaque; changes at every write of the key. */
  version: string;
}

/** A key of the value API: short parts of letters, digits and `_.:-` (hashes and ids, never tokens or text). */
export type ValueKey = readonly string[];

/** Called when some instance freed a lease: `account` when the backend knows which one (a hint only). */
export type FreedListener = (account?: string) => void;

/** Latency of store calls, as a histogram: `buckets[i]` counts calls that took at most `bucketBoundsMs[i]`. */
export interface LatencySnapshot {
  count: number;
  sumMs: number;
  maxMs: number;
  bucketBoundsMs: readonly number[];
  /** Cumulative, as Prometheus histograms are; the last bucket is +Inf (equals `count`). */
  buckets: readonly number[];
}

/** A snapshot of a store's health for /metrics and the status page. */
export interface StoreHealth {
  backend: "memory" | "kv" | "redis";
  /** False after a failed call, true again after a successful one. */
  ok: boolean;
  calls: number;
  /** Calls that rejected, timeouts included. */
  failures: number;
  timeouts: number;
  /** Optimistic-commit conflicts (KV) and "database is locked" answers that were retried. */
  retries: number;
  lastError: string | null;
  /** Epoch milliseconds of the last failure, or null. */
  lastErrorAt: number | null;
  latency: LatencySnapshot;
}

/** Why a store call failed. */
export type StoreErrorCode =
  /** No answer within the call's timeout. */
  | "timeout"
  /** The store cannot be reached or refused the call (connection down, closed store). */
  | "unavailable"
  /** Too many concurrent writers: optimistic retries ran out. */
  | "conflict"
  /** The caller passed something the store refuses (a malformed key, a value that is not JSON). */
  | "invalid";

/** The one error a store call rejects with; `op` names the call, `cause` keeps the backend's error. */
export class StoreError extends Error {
  override name = "StoreError";
  constructor(
    readonly code: StoreErrorCode,
    readonly op: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Options every backend takes. */
export interface StoreOptions {
  /** Longest time any call may take before it rejects with a `timeout` StoreError. */
  timeoutMs?: number;
  /** Key namespace, so several deployments can share one store. */
  prefix?: string;
}

/**
 * The state several gateway instances share. Every method may reject with a StoreError and never waits longer
 * than the store's timeout. Keys are built from hashes and ids only: callers never pass raw tokens or text.
 *
 * Round trips (see each backend's header): Redis does every call in one (a Lua script where it checks). Deno KV
 * has no server-side scripts but needs one for the lease path too: a lease lives in a key per slot, so `take` is
 * one commit that checks the slot (and, health-aware, the account's health) is still as this instance last saw
 * it, `free` one commit on the version it wrote, `renew` one commit per 100 leases; only when a check fails (the
 * hint was stale: another instance took the slot, an expired lease KV has not dropped yet) does it read and commit
 * again. Health updates and `cas` read then commit; `count` commits on the versions this instance last saw (one round
 * trip; a read and a commit again when another instance wrote meanwhile); every other call is one read or one write.
 */
export interface StateStore extends LeaseStore, OwnerStore, ValueStore, CounterStore {
  /** Which backend this is. */
  readonly backend: StoreHealth["backend"];

  /** The store's own health: counters and latency of this client's calls (for /metrics). Never calls the store. */
  health(): StoreHealth;

  /** Stops timers and subscriptions and closes connections; later calls reject `unavailable`. */
  close(): Promise<void>;
}

/** What the shared token pool needs (lib/chat/shared-pool.ts): leases across instances, and account health. */
export interface LeaseStore {
  /**
   * Takes a lease on the first of `accounts` with fewer than `perAccount` live leases, atomically across all
   * instances (expired leases do not count). Resolves null when every account is full.
   */
  take(request: TakeRequest): Promise<Lease | null>;

  /** Frees a lease and wakes waiters everywhere. Resolves false when it was no longer held (expired or freed). */
  free(lease: LeaseRef): Promise<boolean>;

  /**
   * Extends all of `owner`'s given leases to `ttlMs` from now in one batched call. Resolves the ids of those that
   * were already lost (expired and possibly given to another instance): their streams run over capacity.
   */
  renew(owner: string, leases: readonly LeaseRef[], ttlMs?: number): Promise<string[]>;

  /** Live leases per account, as all instances hold them (for the status page). */
  inFlight(accounts: readonly string[]): Promise<Map<string, number>>;

  /**
   * Calls `listener` whenever some instance frees a lease, until the returned function is called. Resolves once
   * the subscription is live, so a waiter subscribes, retries `take` once, then waits: no free is missed between.
   * Every listener of every instance is called (wake all); fairness within an instance is the caller's FIFO.
   * Expiries of a dead instance's leases are not announced: waiters also retry on a timer (e.g. every second).
   */
  onFreed(listener: FreedListener): Promise<() => void>;

  /** Applies a health change to an account atomically and resolves the account's health after it. */
  reportHealth(account: string, update: HealthUpdate): Promise<AccountHealth>;

  /** The health of the given accounts; accounts never reported (or healthy again) are absent. */
  readHealth(accounts: readonly string[]): Promise<Map<string, AccountHealth>>;
}

/**
 * What the crash journal and the sweeps need (lib/chat/shared-journal.ts, orphans.ts): each instance's
 * conversations, its heartbeat, and which owners are dead.
 */
export interface OwnerStore {
  /** Journals a conversation of `record.owner` and refreshes that owner's heartbeat in the same write. */
  journalAdd(record: JournalRecord): Promise<void>;

  /** Removes a conversation from the journal (it was deleted upstream). */
  journalRemove(owner: string, cid: string): Promise<void>;

  /** The journalled conversations: of one owner, or of every owner. */
  journalList(owner?: string): Promise<JournalRecord[]>;

  /** Records that `owner` is alive now. Call every HEARTBEAT_MS. */
  heartbeat(owner: string): Promise<void>;

  /**
   * Owners with journalled conversations whose heartbeat is older than `deadAfterMs` (OWNER_DEAD_AFTER_MS by
   * default) or missing. Recovery deletes only these owners' conversations, then calls `forgetOwner`.
   */
  deadOwners(deadAfterMs?: number): Promise<string[]>;

  /**
   * Those of `owners` whose heartbeat is older than `deadAfterMs` (OWNER_DEAD_AFTER_MS by default) or missing,
   * journalled or not: the holders of kept conversations that a sweep may delete (lib/chat/threads.ts).
   */
  deadAmong(owners: readonly string[], deadAfterMs?: number): Promise<string[]>;

  /** Drops an owner's heartbeat and any journal records left (after recovery, or at a clean shutdown). */
  forgetOwner(owner: string): Promise<void>;
}

/** Plain values by key, with versions (kept conversations, shared token lists, locks). */
export interface ValueStore {
  /** A value by key, with its version; null when absent or expired. */
  get<T = unknown>(key: ValueKey): Promise<Versioned<T> | null>;

  /** Writes a JSON value, expiring after `expireInMs` when given; resolves its new version. */
  set<T = unknown>(key: ValueKey, value: T, options?: { expireInMs?: number }): Promise<string>;

  /** Deletes a value (absent is fine). */
  delete(key: ValueKey): Promise<void>;

  /**
   * Compare-and-set: writes `value` (or deletes the key when `value` is null) only when the key's version is
   * still `expected` (null: only when the key is absent). Resolves the new version (null after a delete), or
   * false when someone wrote the key in between.
   */
  cas<T = unknown>(
    key: ValueKey,
    expected: string | null,
    value: T | null,
    options?: { expireInMs?: number },
  ): Promise<string | null | false>;
}

/**
 * One counter of a `count` call. A counter is an integer under a value key (absent counts as 0), kept apart from
 * `get`/`set` values: the same key must not be used by both.
 */
export interface CounterOp {
  key: ValueKey;
  /** Added to the counter (negative gives back); 0 or absent: the counter is only read (or checked). */
  by?: number;
  /**
   * A limit check: the whole call writes nothing unless this counter's value before the call is below `below`
   * (e.g. requests this minute below the key's rpm).
   */
  below?: number;
  /** Raises the counter to at least this, after `by` (e.g. a last-use time in epoch milliseconds). */
  atLeast?: number;
  /**
   * An op with a `by` other than 0 or an `atLeast` writes its counter (even when `atLeast` did not raise it), and
   * then needs this: the counter is dropped this long after the call, every write setting it again. Counters are
   * windows (a minute's requests, a day's tokens) whose keys name the window, so nothing is left behind.
   */
  expireInMs?: number;
}

/** What a `count` call did. */
export interface CountResult {
  /** Each op's counter after the call (before it, when refused); 0 for an absent counter. */
  values: number[];
  /** The index of the first op whose `below` check failed, when nothing was written; -1 when the call applied. */
  refused: number;
}

/** Counters shared by every instance: rate limits and usage (gateway keys, lib/chat/keys.ts). */
export interface CounterStore {
  /**
   * Checks and changes counters in one atomic step across all instances: when every op's `below` holds, adds each
   * `by`, applies each `atLeast` and sets the expiry of each counter written; otherwise writes nothing and names
   * the first failed op. Values and `by` are safe integers (anything else rejects `invalid`). A call that only
   * reads (no `by`, no `atLeast`) writes nothing. A key named twice in one call reports its value after the whole
   * call. At most 100 distinct counters per writing call (Deno KV's checks per commit; more rejects `invalid`);
   * a read-only call has no bound.
   */
  count(ops: readonly CounterOp[]): Promise<CountResult>;
}

const KEY_PART = /^[A-Za-z0-9_.:-]{1,128}$/;

/** Checks one id that becomes part of a key (an account hash, an owner, a conversation id); throws `invalid`. */
export function checkPart(op: string, what: string, value: string): void {
  if (!KEY_PART.test(value)) {
    throw new StoreError(
      "invalid",
      op,
      `Cannot use ${what} ${JSON.stringify(value.slice(0, 40))}: it must be 1-128 characters of A-Z a-z 0-9 _ . : -`,
    );
  }
}

/**
 * Checks a value key: 1 to 8 parts of at most 128 characters of letters, digits and `_.:-`. Text with spaces or
 * other characters is refused, which keeps message text out of keys; tokens must be hashed by the caller.
 */
export function checkKey(op: string, key: ValueKey): void {
  if (key.length < 1 || key.length > 8 || !key.every((p) => KEY_PART.test(p))) {
    throw new StoreError(
      "invalid",
      op,
      `Cannot use key ${JSON.stringify(key).slice(0, 80)}: parts must be 1-128 characters of A-Z a-z 0-9 _ . : -`,
    );
  }
}
