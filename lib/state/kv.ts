// The Deno KV backend: optimistic atomic commits (read, then commit with version checks, retried on conflict) on a
// KV the caller opens (runtime/kv.ts), so lib/ never touches Deno.*. Wake-ups by `watch` plus a short poll.
import { jitter, Meter } from "./meter.ts";
import { applyHealth, firstWithRoom, healthKeepMs, HEALTHY, leaseId, type LeaseSlot, live } from "./rules.ts";
import {
  type AccountHealth,
  checkKey,
  checkPart,
  type FreedListener,
  type JournalRecord,
  type Lease,
  LEASE_TTL_MS,
  type LeaseRef,
  OWNER_DEAD_AFTER_MS,
  type StateStore,
  StoreError,
  type StoreOptions,
  type ValueKey,
} from "./store.ts";

type Key = readonly (string | number)[];

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
  list(selector: { prefix: Key }): AsyncIterable<KvEntryLike>;
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

// Deno KV's getMany reads at most 10 keys; more are read in parallel chunks (one round trip of latency).
const GET_MANY_MAX = 10;
// Deno Deploy's limit of checks in one atomic operation.
const ATOMIC_CHECKS_MAX = 100;
// A local SQLite file shared by processes answers "database is locked" while another one writes.
const LOCKED_RETRIES = 30;

/**
 * A store on Deno KV. Round trips: take, free, renew, reportHealth and cas read once and commit once (more only
 * on conflict); every other call is one read or one write. Every KV call is retried with jitter when a local
 * SQLite file answers `TypeError: database is locked`, up to a bound, then rejects `conflict`: never a crash.
 * `close()` stops this store's watcher and poll but leaves `kv` open: whoever opened it closes it.
 */
export function kvStore(kv: KvLike, options: KvStoreOptions = {}): StateStore {
  const meter = new Meter("kv", options.timeoutMs);
  const now = options.now ?? Date.now;
  const pollMs = options.pollMs ?? 250;
  const maxConflicts = options.maxConflicts ?? 50;
  const prefix = options.prefix ?? "emohaa";
  checkPart("open", "prefix", prefix);
  const leaseKey = (a: string): Key => [prefix, "lease", a];
  const healthKey = (a: string): Key => [prefix, "health", a];
  const journalKey = (
    o: string,
    cid?: string,
  ): Key => (cid === undefined ? [prefix, "journal", o] : [prefix, "journal", o, cid]);
  const beatKey = (o: string): Key => [prefix, "beat", o];
  const valueKey = (k: ValueKey): Key => [prefix, "value", ...k];
  const freedKey: Key = [prefix, "freed"];

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
    attempt: () => Promise<{ commit: KvAtomicLike; result: T } | { result: T }>,
  ): Promise<T> => {
    for (let i = 0; i <= maxConflicts; i++) {
      const a = await attempt();
      if (!("commit" in a)) return a.result;
      const r = await locked(op, () => a.commit.commit());
      if (r.ok) return a.result;
      meter.retried();
      await jitter(Math.min(1 + i, 20));
    }
    throw new StoreError("conflict", op, `Cannot ${op}: ${maxConflicts} concurrent writers won in a row`);
  };
  const slotsOf = (e: KvEntryLike | undefined) => (e?.value as LeaseSlot[] | null) ?? [];
  const keepFor = (slots: readonly LeaseSlot[], t: number) => Math.max(...slots.map((s) => s[2])) - t + 1_000;
  const putSlots = (
    a: KvAtomicLike,
    key: Key,
    slots: LeaseSlot[],
    t: number,
  ) => (slots.length ? a.set(key, slots, { expireIn: keepFor(slots, t) }) : a.delete(key));

  // Wake-ups: one watcher and one poll per store while anyone listens; the freed key's versionstamp says "new".
  const listeners = new Set<FreedListener>();
  let seen: string | null | undefined;
  let stopWaking: (() => void) | undefined;
  const fire = (e: KvEntryLike) => {
    if (e.versionstamp === seen) return;
    const first = seen === undefined;
    seen = e.versionstamp;
    if (first) return;
    const account = (e.value as { account?: string } | null)?.account;
    for (const l of listeners) l(account);
  };
  const startWaking = async () => {
    fire(await locked("subscribe to frees", () => kv.get(freedKey)));
    let stopped = false;
    const stream = kv.watch([freedKey]);
    const reader = stream.getReader();
    (async () => {
      while (!stopped) {
        const { value, done } = await reader.read();
        if (done) break;
        if (value?.[0]) fire(value[0]);
      }
    })().catch((err) => meter.event(`KV watch: ${err instanceof Error ? err.message : err}`));
    let polling = false;
    const timer = setInterval(() => {
      if (polling) return;
      polling = true;
      locked("poll frees", () => kv.get(freedKey))
        .then(fire, (err) => meter.event(`KV poll: ${err instanceof Error ? err.message : err}`))
        .finally(() => (polling = false));
    }, pollMs);
    stopWaking = () => {
      stopped = true;
      clearInterval(timer);
      reader.cancel().catch(() => {});
      stopWaking = undefined;
      seen = undefined;
    };
  };

  return {
    backend: "kv",

    take(req) {
      const op = "take a lease";
      return meter.run(op, () => {
        checkPart(op, "owner", req.owner);
        for (const a of req.accounts) checkPart(op, "account", a);
        const keys = req.accounts.map(leaseKey);
        return optimistic(op, async () => {
          const entries = await getMany(op, keys);
          const t = now();
          const i = firstWithRoom(entries.map(slotsOf), req.perAccount, t);
          if (i < 0) return { result: null };
          const lease: Lease = {
            id: leaseId(req.owner),
            account: req.accounts[i]!,
            owner: req.owner,
            expiresAt: t + (req.ttlMs ?? LEASE_TTL_MS),
          };
          const slots = [...live(slotsOf(entries[i]), t), [lease.id, lease.owner, lease.expiresAt] as const];
          // Only the chosen account is checked: a preferred one that freed meanwhile costs order, never capacity.
          const commit = putSlots(
            kv.atomic().check({ key: keys[i]!, versionstamp: entries[i]!.versionstamp }),
            keys[i]!,
            slots,
            t,
          );
          return { commit, result: lease };
        });
      });
    },

    free(lease: LeaseRef) {
      const op = "free a lease";
      return meter.run(op, () =>
        optimistic(op, async () => {
          const key = leaseKey(lease.account);
          const e = await locked(op, () => kv.get(key));
          const t = now();
          const slots = slotsOf(e);
          const rest = slots.filter((s) => s[0] !== lease.id);
          if (rest.length === slots.length) return { result: false };
          const wasLive = slots.some((s) => s[0] === lease.id && s[2] > t);
          const commit = putSlots(kv.atomic().check({ key, versionstamp: e.versionstamp }), key, live(rest, t), t).set(
            freedKey,
            { account: lease.account, at: t },
          );
          return { commit, result: wasLive };
        }));
    },

    renew(owner, refs, ttlMs = LEASE_TTL_MS) {
      const op = "renew leases";
      // One atomic operation checks at most 100 keys: more accounts renew in parallel commits of 100.
      const accounts = [...new Set(refs.map((r) => r.account))];
      const chunks: string[][] = [];
      for (let i = 0; i < accounts.length; i += ATOMIC_CHECKS_MAX) {
        chunks.push(accounts.slice(i, i + ATOMIC_CHECKS_MAX));
      }
      const renewChunk = (chunk: string[]) =>
        optimistic(op, async () => {
          const entries = await getMany(op, chunk.map(leaseKey));
          const t = now();
          const lost: string[] = [];
          let commit = kv.atomic();
          chunk.forEach((a, i) => {
            const e = entries[i]!;
            const slots = live(slotsOf(e), t);
            for (const r of refs.filter((r) => r.account === a)) {
              const j = slots.findIndex((s) => s[0] === r.id && s[1] === owner);
              if (j < 0) lost.push(r.id);
              else slots[j] = [r.id, owner, t + ttlMs];
            }
            commit = putSlots(commit.check({ key: e.key, versionstamp: e.versionstamp }), e.key, slots, t);
          });
          return { commit, result: lost };
        });
      return meter.run(op, async () => (await Promise.all(chunks.map(renewChunk))).flat());
    },

    inFlight(accounts) {
      const op = "count leases";
      return meter.run(op, async () => {
        const entries = await getMany(op, accounts.map(leaseKey));
        const t = now();
        return new Map(accounts.map((a, i) => [a, live(slotsOf(entries[i]), t).length]));
      });
    },

    onFreed(listener) {
      return meter.run("subscribe to frees", async () => {
        if (!stopWaking) await startWaking();
        listeners.add(listener);
        return () => {
          listeners.delete(listener);
          if (!listeners.size) stopWaking?.();
        };
      });
    },

    reportHealth(account, update) {
      const op = "report health";
      return meter.run(op, () => {
        checkPart(op, "account", account);
        const key = healthKey(account);
        return optimistic(op, async () => {
          const e = await locked(op, () => kv.get(key));
          const t = now();
          const h = applyHealth((e.value as AccountHealth | null) ?? null, update, t);
          const a = kv.atomic().check({ key, versionstamp: e.versionstamp });
          return {
            commit: h ? a.set(key, h, { expireIn: healthKeepMs(h, t) }) : a.delete(key),
            result: { ...(h ?? HEALTHY) },
          };
        });
      });
    },

    readHealth(accounts) {
      const op = "read health";
      return meter.run(op, async () => {
        const entries = await getMany(op, accounts.map(healthKey));
        const out = new Map<string, AccountHealth>();
        accounts.forEach((a, i) => {
          const v = entries[i]?.value as AccountHealth | null;
          if (v) out.set(a, v);
        });
        return out;
      });
    },

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
          locked(op, () => collect(kv.list({ prefix: owner === undefined ? [prefix, "journal"] : journalKey(owner) })))
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
        const entries = await locked(op, () => collect(kv.list({ prefix: [prefix, "journal"] })));
        const owners = [...new Set(entries.map((e) => String(e.key[2])))];
        const beats = await getMany(op, owners.map(beatKey));
        const t = now();
        return owners.filter((_, i) => ((beats[i]?.value as number | null) ?? -Infinity) < t - deadAfterMs);
      });
    },

    forgetOwner(owner) {
      const op = "forget an owner";
      return meter.run(op, async () => {
        const keys = [
          beatKey(owner),
          ...(await locked(op, () => collect(kv.list({ prefix: journalKey(owner) })))).map((e) => e.key),
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
      listeners.clear();
      stopWaking?.();
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
