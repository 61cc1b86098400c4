// The Deno KV backend: atomic commits with version checks on a KV the caller opens (runtime/kv.ts), so lib/ never
// touches Deno.*. The journal, heartbeats and values are here; the leases and health (one commit per take and per
// free, wake-ups by `watch` + poll) are lib/state/kv-leases.ts, the counters (one commit per call) kv-counters.ts.
import { kvCounters } from "./kv-counters.ts";
import { kvLeases } from "./kv-leases.ts";
import { jitter, Meter } from "./meter.ts";
import {
  checkKey,
  checkPart,
  type JournalRecord,
  OWNER_DEAD_AFTER_MS,
  type StateStore,
  StoreError,
  type StoreOptions,
  type ValueKey,
} from "./store.ts";

export type Key = readonly (string | number)[];

/** One entry as Deno.Kv returns it. */
export interface KvEntryLike {
  key: Key;
  value: unknown;
  versionstamp: string | null;
}

/** What this backend uses of Deno.AtomicOperation. */
export interface KvAtomicLike {
  check(...checks: { key: Key; versionstamp: string | null }[]): KvAtomicLike;
  set(key: Key, value: unknown, options?: { expireIn?: number }): KvAtomicLike;
  delete(key: Key): KvAtomicLike;
  commit(): Promise<{ ok: boolean; versionstamp?: string }>;
}

/** What this backend uses of Deno.Kv: pass `await Deno.openKv(path)` (see runtime/kv.ts). */
export interface KvLike {
  get(key: Key): Promise<KvEntryLike>;
  getMany(keys: Key[]): Promise<KvEntryLike[]>;
  set(key: Key, value: unknown, options?: { expireIn?: number }): Promise<{ ok: boolean; versionstamp: string }>;
  delete(key: Key): Promise<void>;
  list(selector: { prefix: Key }, options?: { batchSize?: number }): AsyncIterable<KvEntryLike>;
  atomic(): KvAtomicLike;
  watch(keys: Key[]): ReadableStream<KvEntryLike[]>;
  close(): void;
}

export interface KvStoreOptions extends StoreOptions {
  /**
   * How often waiters also read the wake-up key. A local SQLite KV's `watch` does not see other processes'
   * writes (measured: not within 6 s), so the poll is what wakes them there; on Deno Deploy `watch` wakes first.
   */
  pollMs?: number;
  /** Most optimistic-commit conflicts retried in one call before it rejects `conflict`. */
  maxConflicts?: number;
  /** The clock, for tests. Leases expire by each instance's own clock here: keep instances' clocks in sync. */
  now?: () => number;
}

/** What the parts of the KV store share: the KV, the meter, and its retrying ways of calling the KV. */
export interface KvBase {
  kv: KvLike;
  meter: Meter;
  now: () => number;
  prefix: string;
  pollMs: number;
  maxConflicts: number;
  /** Runs one KV call, retrying "database is locked" with jitter. */
  locked<T>(op: string, f: () => Promise<T>): Promise<T>;
  /** Reads any number of keys (Deno KV's getMany reads at most 10: more are read in parallel chunks). */
  getMany(op: string, keys: Key[]): Promise<KvEntryLike[]>;
  /** Read-modify-commit: `attempt` reads and returns an atomic operation (or a final result); retried on conflict. */
  optimistic<T>(
    op: string,
    attempt: () => Promise<{ commit: KvAtomicLike; result: T; done?: (versionstamp: string) => void } | { result: T }>,
  ): Promise<T>;
  /** Every entry under a key prefix. */
  list(op: string, prefix: Key, batchSize?: number): Promise<KvEntryLike[]>;
}

/** Deno KV's getMany reads at most 10 keys; more are read in parallel chunks (one round trip of latency). */
export const GET_MANY_MAX = 10;
/** Deno KV's most checks in one atomic operation (Deno 2, local SQLite and Deploy alike; 1000 mutations). */
export const ATOMIC_CHECKS_MAX = 100;
// A local SQLite file shared by processes answers "database is locked" while another one writes.
const LOCKED_RETRIES = 30;

/**
 * A store on Deno KV. Leases: one key per slot, [prefix, "slot", account, 0 .. perAccount - 1], holding the lease
 * and its expiry (enforced on every read, as KV drops expired keys late); each instance keeps the versionstamp of
 * its own leases and a hint of what it last saw of each account (slots and health).
 *
 * Round trips: `take` is one commit on the first slot the hint says is free (checking that slot's version and,
 * health-aware, the account's health version); when that check fails it reads every candidate slot (and health) in
 * one round trip of getMany calls (10 keys each, in parallel) and commits on what it read, so 3 calls in all, and
 * again on a conflict; when the hint says every slot is taken, one read answers null. `free` is one commit on the
 * version this instance wrote (a listing of the account's slots first only when that version changed, e.g. a
 * renewal from another client raced it). `renew` is one commit per 100 leases. `count` is one commit on the
 * counters' versions this instance last saw (a read and a commit when one is not known here or changed since, or
 * when the hint says refused); a `count` that only reads is one read. `reportHealth` and `cas` read once and commit
 * once; every other call is one read or one write. Every KV call is retried with jitter when a local
 * SQLite file answers `TypeError: database is locked`, up to a bound, then rejects `conflict`: never a crash.
 *
 * First fit is by the hint: a preferred account freed by another instance since this one last looked costs
 * order (a later account is taken), never capacity: every commit checks the slot it takes.
 * `close()` stops this store's watcher and poll but leaves `kv` open: whoever opened it closes it.
 */
export function kvStore(kv: KvLike, options: KvStoreOptions = {}): StateStore {
  const meter = new Meter("kv", options.timeoutMs);
  const now = options.now ?? Date.now;
  const pollMs = options.pollMs ?? 250;
  const maxConflicts = options.maxConflicts ?? 50;
  const prefix = options.prefix ?? "emohaa";
  checkPart("open", "prefix", prefix);
  const journalKey = (
    o: string,
    cid?: string,
  ): Key => (cid === undefined ? [prefix, "journal", o] : [prefix, "journal", o, cid]);
  const beatKey = (o: string): Key => [prefix, "beat", o];
  const valueKey = (k: ValueKey): Key => [prefix, "value", ...k];

  /** Runs one KV call, retrying "database is locked" with jitter. */
  const locked = async <T>(op: string, f: () => Promise<T>): Promise<T> => {
    for (let attempt = 0;; attempt++) {
      try {
        return await f();
      } catch (err) {
        if (!isLocked(err)) throw err;
        if (attempt >= LOCKED_RETRIES) {
          throw new StoreError(
            "conflict",
            op,
            `Cannot ${op}: the KV database stayed locked after ${LOCKED_RETRIES} retries`,
            { cause: err },
          );
        }
        meter.retried();
        await jitter(Math.min(2 * 2 ** attempt, 50));
      }
    }
  };
  const getMany = async (op: string, keys: Key[]): Promise<KvEntryLike[]> => {
    const chunks: Key[][] = [];
    for (let i = 0; i < keys.length; i += GET_MANY_MAX) chunks.push(keys.slice(i, i + GET_MANY_MAX));
    return (await Promise.all(chunks.map((c) => locked(op, () => kv.getMany(c))))).flat();
  };
  /** Read-modify-commit: `attempt` reads and returns an atomic operation (or a final result); retried on conflict. */
  const optimistic = async <T>(
    op: string,
    attempt: () => Promise<{ commit: KvAtomicLike; result: T; done?: (versionstamp: string) => void } | { result: T }>,
  ): Promise<T> => {
    for (let i = 0; i <= maxConflicts; i++) {
      const a = await attempt();
      if (!("commit" in a)) return a.result;
      const r = await locked(op, () => a.commit.commit());
      if (r.ok) {
        a.done?.(r.versionstamp!);
        return a.result;
      }
      meter.retried();
      await jitter(Math.min(1 + i, 20));
    }
    throw new StoreError("conflict", op, `Cannot ${op}: ${maxConflicts} concurrent writers won in a row`);
  };
  const base: KvBase = {
    kv,
    meter,
    now,
    prefix,
    pollMs,
    maxConflicts,
    locked,
    getMany,
    optimistic,
    list: (op, keyPrefix, batchSize) =>
      locked(op, () => collect(kv.list({ prefix: keyPrefix }, batchSize ? { batchSize } : undefined))),
  };
  const leases = kvLeases(base);
  const counters = kvCounters(base);
  /** Those of `owners` whose heartbeat is older than `deadAfterMs`, or missing. */
  const staleAmong = async (op: string, owners: readonly string[], deadAfterMs: number) => {
    const beats = await getMany(op, owners.map(beatKey));
    const t = now();
    return owners.filter((_, i) => ((beats[i]?.value as number | null) ?? -Infinity) < t - deadAfterMs);
  };

  return {
    backend: "kv",
    ...leases.store,
    ...counters,

    journalAdd(record) {
      const op = "journal a conversation";
      return meter.run(op, async () => {
        checkPart(op, "owner", record.owner);
        checkPart(op, "conversation id", record.cid);
        const r: JournalRecord = { owner: record.owner, cid: record.cid, index: record.index, hash: record.hash };
        await locked(op, () => kv.atomic().set(journalKey(r.owner, r.cid), r).set(beatKey(r.owner), now()).commit());
      });
    },

    journalRemove(owner, cid) {
      const op = "remove a journal entry";
      return meter.run(op, () => locked(op, () => kv.delete(journalKey(owner, cid))));
    },

    journalList(owner) {
      const op = "list the journal";
      return meter.run(
        op,
        () =>
          base.list(op, owner === undefined ? [prefix, "journal"] : journalKey(owner))
            .then((es) => es.map((e) => e.value as JournalRecord)),
      );
    },

    heartbeat(owner) {
      const op = "write a heartbeat";
      return meter.run(op, async () => {
        checkPart(op, "owner", owner);
        await locked(op, () => kv.set(beatKey(owner), now()));
      });
    },

    deadOwners(deadAfterMs = OWNER_DEAD_AFTER_MS) {
      const op = "find dead owners";
      return meter.run(op, async () => {
        const entries = await base.list(op, [prefix, "journal"]);
        return staleAmong(op, [...new Set(entries.map((e) => String(e.key[2])))], deadAfterMs);
      });
    },

    deadAmong(owners, deadAfterMs = OWNER_DEAD_AFTER_MS) {
      const op = "check owners";
      return meter.run(op, async () => {
        for (const o of owners) checkPart(op, "owner", o);
        return staleAmong(op, owners, deadAfterMs);
      });
    },

    forgetOwner(owner) {
      const op = "forget an owner";
      return meter.run(op, async () => {
        const keys = [
          beatKey(owner),
          ...(await base.list(op, journalKey(owner))).map((e) => e.key),
        ];
        // An atomic operation holds at most 1000 mutations.
        for (let i = 0; i < keys.length; i += 1000) {
          const a = kv.atomic();
          for (const k of keys.slice(i, i + 1000)) a.delete(k);
          await locked(op, () => a.commit());
        }
      });
    },

    get(key) {
      const op = "get a value";
      return meter.run(op, async () => {
        checkKey(op, key);
        const e = await locked(op, () => kv.get(valueKey(key)));
        const v = unwrap(e, now());
        return v === undefined ? null : { value: v as never, version: e.versionstamp! };
      });
    },

    set(key, value, opts) {
      const op = "set a value";
      return meter.run(op, async () => {
        checkKey(op, key);
        const r = await locked(
          op,
          () => kv.set(valueKey(key), wrap(op, value, opts?.expireInMs, now()), expiry(opts?.expireInMs)),
        );
        return r.versionstamp;
      });
    },

    delete(key) {
      const op = "delete a value";
      return meter.run(op, async () => {
        checkKey(op, key);
        await locked(op, () => kv.delete(valueKey(key)));
      });
    },

    cas(key, expected, value, opts) {
      const op = "compare and set a value";
      return meter.run(op, async () => {
        checkKey(op, key);
        const k = valueKey(key);
        // An expired entry the KV has not dropped yet is absent: compare with what a reader would see.
        const e = await locked(op, () => kv.get(k));
        const current = unwrap(e, now()) === undefined ? null : e.versionstamp;
        if (current !== expected) return false;
        const versionstamp = e.versionstamp;
        const a = kv.atomic().check({ key: k, versionstamp });
        if (value === null) a.delete(k);
        else a.set(k, wrap(op, value, opts?.expireInMs, now()), expiry(opts?.expireInMs));
        const r = await locked(op, () => a.commit());
        if (!r.ok) return false;
        return value === null ? null : r.versionstamp!;
      });
    },

    health: () => meter.health(),

    close() {
      meter.close();
      leases.stop();
      return Promise.resolve();
    },
  };
}

/** True for the error a local SQLite KV throws while another process holds its write lock. */
export function isLocked(err: unknown): boolean {
  return err instanceof Error && /database is locked|database table is locked|SQLITE_BUSY/i.test(err.message);
}

// KV's own expiry drops keys some time after `expireIn`, so values carry their deadline and reads enforce it.
function wrap(
  op: string,
  value: unknown,
  expireInMs: number | undefined,
  t: number,
): { v: unknown; exp: number | null } {
  const s = JSON.stringify(value);
  if (s === undefined) throw new StoreError("invalid", op, `Cannot ${op}: the value is not JSON`);
  return { v: JSON.parse(s), exp: expireInMs === undefined ? null : t + expireInMs };
}

function unwrap(e: KvEntryLike, t: number): unknown {
  const w = e.value as { v: unknown; exp: number | null } | null;
  if (!w || (w.exp !== null && w.exp <= t)) return undefined;
  return w.v;
}

function expiry(ms: number | undefined): { expireIn?: number } {
  return ms === undefined ? {} : { expireIn: ms };
}

async function collect(it: AsyncIterable<KvEntryLike>): Promise<KvEntryLike[]> {
  const out: KvEntryLike[] = [];
  for await (const e of it) out.push(e);
  return out;
}
