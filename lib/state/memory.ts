// The state store of one process: plain maps, no I/O, no timers. The default, and today's behaviour.
import { Meter } from "./meter.ts";
import {
  applyCounts,
  applyHealth,
  checkCounts,
  firstWithRoom,
  healthOrder,
  HEALTHY,
  leaseId,
  type LeaseSlot,
  live,
} from "./rules.ts";
import {
  type AccountHealth,
  checkKey,
  checkPart,
  type CountResult,
  type FreedListener,
  type JournalRecord,
  type Lease,
  LEASE_TTL_MS,
  type LeaseRef,
  OWNER_DEAD_AFTER_MS,
  type StateStore,
  StoreError,
  type StoreOptions,
  type TakeRequest,
  type ValueKey,
  type Versioned,
} from "./store.ts";

export interface MemoryStoreOptions extends StoreOptions {
  /** The clock, for tests. */
  now?: () => number;
}

interface Stored {
  json: string;
  version: string;
  expiresAt: number;
}

interface Counter {
  n: number;
  expiresAt: number;
}

// Counters are windows whose keys name the window, so keys nobody reads again pile up: every time the map has
// doubled since the last sweep, drop the expired ones (amortised O(1) per call, and no timer).
const SWEEP_MIN = 1_024;

/**
 * A store inside one process. Every call completes synchronously (the promise is already settled), so it costs
 * no more than the pool's own maps did; expired leases and values are dropped when next looked at.
 */
export function memoryStore(options: MemoryStoreOptions = {}): StateStore {
  const now = options.now ?? Date.now;
  const meter = new Meter("memory", options.timeoutMs);
  const leases = new Map<string, LeaseSlot[]>();
  const healthOf = new Map<string, AccountHealth>();
  const journal = new Map<string, Map<string, JournalRecord>>();
  const beats = new Map<string, number>();
  const values = new Map<string, Stored>();
  const counters = new Map<string, Counter>();
  let sweepAt = SWEEP_MIN;
  const listeners = new Set<FreedListener>();
  let version = 0;

  const slots = (account: string) => {
    const s = live(leases.get(account), now());
    if (s.length) leases.set(account, s);
    else leases.delete(account);
    return s;
  };
  const value = (key: ValueKey): Stored | undefined => {
    const k = key.join("\u0000");
    const v = values.get(k);
    if (v && v.expiresAt <= now()) values.delete(k);
    return v && v.expiresAt > now() ? v : undefined;
  };
  const write = (key: ValueKey, v: unknown, expireInMs?: number): string => {
    const json = JSON.stringify(v);
    if (json === undefined) throw new StoreError("invalid", "set", "Cannot store a value that is not JSON");
    const ver = String(++version);
    values.set(key.join("\u0000"), {
      json,
      version: ver,
      expiresAt: expireInMs === undefined ? Infinity : now() + expireInMs,
    });
    return ver;
  };

  return {
    backend: "memory",

    take(req: TakeRequest) {
      return meter.runSync("take a lease", () => {
        checkPart("take a lease", "owner", req.owner);
        for (const a of req.accounts) checkPart("take a lease", "account", a);
        const t = now();
        const order = req.skipCooling
          ? healthOrder(req.accounts.map((a) => healthOf.get(a)?.coolingUntil ?? 0), t).map((i) => req.accounts[i]!)
          : req.accounts;
        const i = firstWithRoom(order.map((a) => slots(a)), req.perAccount, t);
        if (i < 0) return null;
        const account = order[i]!;
        const h = healthOf.get(account);
        const lease: Lease = {
          id: leaseId(req.owner),
          account,
          owner: req.owner,
          expiresAt: t + (req.ttlMs ?? LEASE_TTL_MS),
          ...(req.skipCooling ? { health: h ? { ...h } : null } : {}),
        };
        leases.set(account, [...slots(account), [lease.id, lease.owner, lease.expiresAt]]);
        return lease;
      });
    },

    free(lease: LeaseRef) {
      return meter.runSync("free a lease", () => {
        const s = slots(lease.account);
        const rest = s.filter((x) => x[0] !== lease.id);
        if (rest.length === s.length) return false;
        if (rest.length) leases.set(lease.account, rest);
        else leases.delete(lease.account);
        // After the caller's await, as with the other backends: a listener never runs inside `free`.
        for (const l of listeners) queueMicrotask(() => l(lease.account));
        return true;
      });
    },

    renew(owner, refs, ttlMs = LEASE_TTL_MS) {
      return meter.runSync("renew leases", () => {
        const lost: string[] = [];
        const until = now() + ttlMs;
        for (const r of refs) {
          const s = slots(r.account);
          const i = s.findIndex((x) => x[0] === r.id && x[1] === owner);
          if (i < 0) lost.push(r.id);
          else s[i] = [s[i]![0], s[i]![1], until];
        }
        return lost;
      });
    },

    inFlight(accounts) {
      return meter.runSync("count leases", () => new Map(accounts.map((a) => [a, slots(a).length])));
    },

    onFreed(listener) {
      listeners.add(listener);
      return Promise.resolve(() => void listeners.delete(listener));
    },

    reportHealth(account, update) {
      return meter.runSync("report health", () => {
        checkPart("report health", "account", account);
        const h = applyHealth(healthOf.get(account) ?? null, update, now());
        if (h) healthOf.set(account, h);
        else healthOf.delete(account);
        return { ...(h ?? HEALTHY) };
      });
    },

    readHealth(accounts) {
      return meter.runSync("read health", () => {
        const out = new Map<string, AccountHealth>();
        for (const a of accounts) {
          const h = healthOf.get(a);
          if (h) out.set(a, { ...h });
        }
        return out;
      });
    },

    journalAdd(record) {
      return meter.runSync("journal a conversation", () => {
        checkPart("journal a conversation", "owner", record.owner);
        checkPart("journal a conversation", "conversation id", record.cid);
        let m = journal.get(record.owner);
        if (!m) journal.set(record.owner, m = new Map());
        m.set(record.cid, { ...record });
        beats.set(record.owner, now());
      });
    },

    journalRemove(owner, cid) {
      return meter.runSync("remove a journal entry", () => {
        const m = journal.get(owner);
        m?.delete(cid);
        if (m && !m.size) journal.delete(owner);
      });
    },

    journalList(owner) {
      return meter.runSync("list the journal", () => {
        const maps = owner === undefined
          ? [...journal.values()]
          : [journal.get(owner) ?? new Map<string, JournalRecord>()];
        return maps.flatMap((m) => [...m.values()].map((r) => ({ ...r })));
      });
    },

    heartbeat(owner) {
      return meter.runSync("write a heartbeat", () => {
        checkPart("write a heartbeat", "owner", owner);
        beats.set(owner, now());
      });
    },

    deadOwners(deadAfterMs = OWNER_DEAD_AFTER_MS) {
      return meter.runSync(
        "find dead owners",
        () => [...journal.keys()].filter((o) => (beats.get(o) ?? -Infinity) < now() - deadAfterMs),
      );
    },

    deadAmong(owners, deadAfterMs = OWNER_DEAD_AFTER_MS) {
      return meter.runSync("check owners", () => {
        for (const o of owners) checkPart("check owners", "owner", o);
        return owners.filter((o) => (beats.get(o) ?? -Infinity) < now() - deadAfterMs);
      });
    },

    forgetOwner(owner) {
      return meter.runSync("forget an owner", () => {
        beats.delete(owner);
        journal.delete(owner);
      });
    },

    get<T>(key: ValueKey) {
      return meter.runSync("get a value", (): Versioned<T> | null => {
        checkKey("get a value", key);
        const v = value(key);
        return v ? { value: JSON.parse(v.json) as T, version: v.version } : null;
      });
    },

    set(key, v, opts) {
      return meter.runSync("set a value", () => {
        checkKey("set a value", key);
        return write(key, v, opts?.expireInMs);
      });
    },

    delete(key) {
      return meter.runSync("delete a value", () => {
        checkKey("delete a value", key);
        values.delete(key.join("\u0000"));
      });
    },

    cas(key, expected, v, opts) {
      return meter.runSync("compare and set a value", () => {
        checkKey("compare and set a value", key);
        if ((value(key)?.version ?? null) !== expected) return false;
        if (v === null) {
          values.delete(key.join("\u0000"));
          return null;
        }
        return write(key, v, opts?.expireInMs);
      });
    },

    count(ops) {
      return meter.runSync("count", (): CountResult => {
        checkCounts("count", ops);
        const t = now();
        const ids = ops.map((o) => o.key.join("\u0000"));
        const current = new Map(ids.map((id) => {
          const c = counters.get(id);
          return [id, c && c.expiresAt > t ? c.n : 0];
        }));
        const r = applyCounts("count", ops, ids, current);
        for (const [id, w] of r.writes) counters.set(id, { n: w.n, expiresAt: t + w.expireInMs });
        if (counters.size >= sweepAt) {
          for (const [id, c] of counters) if (c.expiresAt <= t) counters.delete(id);
          sweepAt = Math.max(SWEEP_MIN, counters.size * 2);
        }
        return { values: r.values, refused: r.refused };
      });
    },

    health: () => meter.health(),

    close() {
      meter.close();
      listeners.clear();
      return Promise.resolve();
    },
  };
}
