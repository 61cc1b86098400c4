// The leases and account health of the Deno KV store (lib/state/kv.ts): one key per slot, [prefix, "slot",
// account, 0 .. perAccount - 1], holding the lease and its expiry (enforced on every read, as KV drops expired keys
// late). Each instance keeps the versionstamp of its own leases and a hint of what it last saw of each account, so
// taking and freeing a lease is one commit; frees wake waiters everywhere through one key, by `watch` and a poll.
import { Recent } from "../recent.ts";
import type { Key, KvBase, KvEntryLike } from "./kv.ts";
import { jitter } from "./meter.ts";
import { applyHealth, healthKeepMs, healthOrder, HEALTHY, leaseId } from "./rules.ts";
import {
  type AccountHealth,
  checkPart,
  type FreedListener,
  type Lease,
  LEASE_TTL_MS,
  type LeaseRef,
  type LeaseStore,
  StoreError,
} from "./store.ts";

// Deno Deploy's limit of checks in one atomic operation.
const ATOMIC_CHECKS_MAX = 100;

/** The lease part of a KV store, and `stop` for its watcher and poll. */
export function kvLeases(base: KvBase): { store: LeaseStore; stop(): void } {
  const { kv, meter, now, prefix, pollMs, maxConflicts, locked, getMany, optimistic, list } = base;
  // An account's leases: one key per slot, [prefix, "slot", account, 0 .. perAccount - 1].
  const slotKey = (a: string, n: number): Key => [prefix, "slot", a, n];
  const healthKey = (a: string): Key => [prefix, "health", a];
  const freedKey: Key = [prefix, "freed"];
  const heldOf = (e: KvEntryLike | undefined): Held | null => (e?.value as Held | null) ?? null;
  const conflict = (op: string) =>
    new StoreError("conflict", op, `Cannot ${op}: ${maxConflicts} concurrent writers won in a row`);

  // This instance's own leases, by id, with the versionstamp of their last write: free and renew check that
  // version in their one commit instead of reading first.
  const mine = new Map<string, Mine>();
  // What this instance last saw of each account (its slots, its health): a take commits on it without reading,
  // and reads only when that commit's checks fail. A wrong hint costs a read, never capacity.
  // Client tokens are unbounded: the most recent 10,000-20,000 accounts' hints (lib/recent.ts).
  const hints = new Recent<string, Hint>(10_000);
  // Slots this instance's takes are committing on now (account NUL slot).
  const pending = new Set<string>();
  const isPending = (a: string, n: number) => pending.has(`${a}\u0000${n}`);
  const hint = (a: string): Hint => {
    let h = hints.get(a);
    if (!h) {
      hints.remember(a, h = { slots: [] });
    }
    return h;
  };

  /** Renews leases by reading their slots first: those not known here, or whose one-commit renewal failed. */
  const renewByReading = async (op: string, owner: string, refs: LeaseRef[], ttlMs: number): Promise<string[]> => {
    const lost: string[] = [];
    let pending = refs;
    for (let i = 0; pending.length; i++) {
      if (i > maxConflicts) throw conflict(op);
      if (i) {
        meter.retried();
        await jitter(Math.min(1 + i, 20));
      }
      const accounts = [...new Set(pending.map((r) => r.account))];
      const lists = await Promise.all(
        accounts.map((a) => list(op, [prefix, "slot", a])),
      );
      const byId = new Map(lists.flat().map((e) => [heldOf(e)?.id, e]));
      const t = now();
      const found: [LeaseRef, KvEntryLike][] = [];
      for (const r of pending) {
        const e = byId.get(r.id);
        const held = heldOf(e);
        if (e && held && held.owner === owner && held.exp > t) found.push([r, e]);
        else {
          lost.push(r.id);
          mine.delete(r.id);
        }
      }
      const failed: LeaseRef[] = [];
      await Promise.all(
        chunk(found, ATOMIC_CHECKS_MAX).map(async (part) => {
          const exp = now() + ttlMs;
          const a = kv.atomic();
          for (const [r, e] of part) {
            a.check({ key: e.key, versionstamp: e.versionstamp }).set(e.key, { id: r.id, owner, exp } satisfies Held, {
              expireIn: ttlMs,
            });
          }
          const res = await locked(op, () => a.commit());
          if (!res.ok) return void failed.push(...part.map(([r]) => r));
          for (const [r, e] of part) {
            mine.set(r.id, { key: e.key, account: r.account, owner, versionstamp: res.versionstamp!, exp });
          }
        }),
      );
      pending = failed;
    }
    return lost;
  };

  // Wake-ups: one watcher and one poll per store while anyone listens; the freed key's versionstamp says "new".
  const listeners = new Set<FreedListener>();
  let seen: string | null | undefined;
  let stopWaking: (() => void) | undefined;
  const fire = (e: KvEntryLike) => {
    if (e.versionstamp === seen) return;
    const first = seen === undefined;
    seen = e.versionstamp;
    if (first) return;
    const freed = e.value as { account?: string; slot?: number } | null;
    const account = freed?.account;
    if (account !== undefined && typeof freed?.slot === "number") hint(account).slots[freed.slot] = FREE;
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

  const store: LeaseStore = {
    take(req) {
      const op = "take a lease";
      return meter.run(op, async () => {
        checkPart(op, "owner", req.owner);
        for (const a of req.accounts) checkPart(op, "account", a);
        const ttl = req.ttlMs ?? LEASE_TTL_MS;
        const per = req.perAccount;
        const aware = !!req.skipCooling;
        // Commits a lease on slot `n` of `a` if that slot is still at `slot`'s version (null: absent) and, when
        // health-aware, the account's health still at `health`'s: null when either changed meanwhile.
        const grant = async (a: string, n: number, slot: string | null, health: HealthHint | undefined) => {
          const t = now();
          const lease: Lease = { id: leaseId(req.owner), account: a, owner: req.owner, expiresAt: t + ttl };
          const key = slotKey(a, n);
          const atomic = kv.atomic().check({ key, versionstamp: slot });
          if (health) atomic.check({ key: healthKey(a), versionstamp: health.versionstamp });
          const held: Held = { id: lease.id, owner: lease.owner, exp: lease.expiresAt };
          atomic.set(key, held, { expireIn: ttl });
          // Other takes of this instance meanwhile leave this slot alone rather than race it.
          const pend = `${a}\u0000${n}`;
          pending.add(pend);
          const r = await locked(op, () => atomic.commit()).finally(() => pending.delete(pend));
          if (!r.ok) return null;
          mine.set(lease.id, {
            key,
            account: a,
            owner: req.owner,
            versionstamp: r.versionstamp!,
            exp: lease.expiresAt,
          });
          hint(a).slots[n] = { versionstamp: r.versionstamp!, exp: lease.expiresAt };
          return health ? { ...lease, health: health.value } : lease;
        };
        const order = (t: number, view: (a: string) => Hint | undefined) =>
          aware
            ? healthOrder(req.accounts.map((a) => view(a)?.health?.value?.coolingUntil ?? 0), t).map((i) =>
              req.accounts[i]!
            )
            : req.accounts;

        // One round trip: commit on the first slot this instance believes free (unknown ones are taken as free).
        const t0 = now();
        blind: for (const a of order(t0, (x) => hints.get(x))) {
          for (let n = 0; n < per; n++) {
            const s = hints.get(a)?.slots[n];
            if ((s && s.exp > t0) || isPending(a, n)) continue;
            const health = aware ? hints.get(a)?.health ?? ABSENT : undefined;
            const got = await grant(a, n, s?.versionstamp ?? null, health);
            if (got) return got;
            break blind;
          }
        }

        // The hint was wrong, or every slot looked taken: read them all (and the health), commit on what was read.
        for (let i = 0; i <= maxConflicts; i++) {
          const keys = req.accounts.flatMap((a) => [
            ...Array.from({ length: per }, (_, n) => slotKey(a, n)),
            ...(aware ? [healthKey(a)] : []),
          ]);
          const entries = await getMany(op, keys);
          const stride = per + (aware ? 1 : 0);
          const view = new Map<string, { slots: SlotSeen[]; health?: HealthHint }>();
          req.accounts.forEach((a, j) => {
            const at = (n: number) => entries[j * stride + n]!;
            const h: { slots: SlotSeen[]; health?: HealthHint } = {
              slots: Array.from({ length: per }, (_, n) => ({
                versionstamp: at(n).versionstamp,
                exp: heldOf(at(n))?.exp ?? 0,
              })),
            };
            if (aware) {
              h.health = {
                versionstamp: at(per).versionstamp,
                value: (at(per).value as AccountHealth | null) ?? null,
              };
            }
            view.set(a, h);
            hints.remember(a, h);
          });
          const t = now();
          // First fit, leaving slots this instance is committing on to those takes; only when no other slot is
          // free, race them (one of the two commits fails and reads again).
          let a: string | undefined;
          let n = -1;
          for (const pass of [false, true]) {
            a = order(t, (x) => view.get(x)).find((x) =>
              view.get(x)!.slots.some((s, k) => s.exp <= t && (pass || !isPending(x, k)))
            );
            if (a !== undefined) {
              n = view.get(a)!.slots.findIndex((s, k) => s.exp <= t && (pass || !isPending(a!, k)));
              break;
            }
          }
          if (a === undefined) return null;
          const h = view.get(a)!;
          const got = await grant(a, n, h.slots[n]!.versionstamp, h.health);
          if (got) return got;
          meter.retried();
          await jitter(Math.min(1 + i, 20));
        }
        throw conflict(op);
      });
    },

    free(ref: LeaseRef) {
      const op = "free a lease";
      return meter.run(op, async () => {
        const drop = async (key: Key, versionstamp: string) => {
          const slot = key[3] as number;
          const freed = { account: ref.account, slot, at: now() };
          const r = await locked(
            op,
            () => kv.atomic().check({ key, versionstamp }).delete(key).set(freedKey, freed).commit(),
          );
          // Once deleted (not before: a take of this instance would commit on a slot not yet free).
          if (r.ok) hint(ref.account).slots[slot] = FREE;
          return r;
        };
        // One round trip: delete the slot if it still holds the version this instance last wrote.
        const m = mine.get(ref.id);
        if (m && m.account === ref.account && (await drop(m.key, m.versionstamp)).ok) {
          mine.delete(ref.id);
          return m.exp > now();
        }
        // Not known here, or changed since (a renewal raced this free, or it lapsed and was taken): find it by id.
        for (let i = 0; i <= maxConflicts; i++) {
          const entries = await list(op, [prefix, "slot", ref.account]);
          const e = entries.find((x) => heldOf(x)?.id === ref.id);
          if (!e) {
            mine.delete(ref.id);
            return false;
          }
          if ((await drop(e.key, e.versionstamp!)).ok) {
            mine.delete(ref.id);
            return heldOf(e)!.exp > now();
          }
          meter.retried();
          await jitter(Math.min(1 + i, 20));
        }
        throw conflict(op);
      });
    },

    renew(owner, refs, ttlMs = LEASE_TTL_MS) {
      const op = "renew leases";
      return meter.run(op, async () => {
        const t = now();
        const lost: string[] = [];
        const known: [LeaseRef, Mine][] = [];
        const slow: LeaseRef[] = [];
        for (const r of refs) {
          const m = mine.get(r.id);
          if (!m || m.account !== r.account || m.owner !== owner) slow.push(r);
          else if (m.exp <= t) {
            lost.push(r.id);
            mine.delete(r.id);
          } else known.push([r, m]);
        }
        // One round trip per 100 leases (an atomic operation's limit of checks), in parallel.
        await Promise.all(
          chunk(known, ATOMIC_CHECKS_MAX).map(async (part) => {
            const exp = now() + ttlMs;
            const a = kv.atomic();
            for (const [r, m] of part) {
              a.check({ key: m.key, versionstamp: m.versionstamp }).set(
                m.key,
                { id: r.id, owner, exp } satisfies Held,
                {
                  expireIn: ttlMs,
                },
              );
            }
            const res = await locked(op, () => a.commit());
            if (!res.ok) return void slow.push(...part.map(([r]) => r));
            for (const [, m] of part) Object.assign(m, { versionstamp: res.versionstamp!, exp });
          }),
        );
        if (slow.length) lost.push(...(await renewByReading(op, owner, slow, ttlMs)));
        return lost;
      });
    },

    inFlight(accounts) {
      const op = "count leases";
      return meter.run(op, async () => {
        // One listing of every live slot (live leases are few), rather than a read per account and slot.
        const entries = await list(op, [prefix, "slot"], 1000);
        const t = now();
        const out = new Map(accounts.map((a) => [a, 0]));
        for (const e of entries) {
          const a = String(e.key[2]);
          const n = out.get(a);
          if (n !== undefined && (heldOf(e)?.exp ?? 0) > t) out.set(a, n + 1);
        }
        return out;
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
            done: (versionstamp: string) => (hint(account).health = h ? { versionstamp, value: h } : ABSENT),
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
          hint(a).health = { versionstamp: entries[i]?.versionstamp ?? null, value: v ?? null };
        });
        return out;
      });
    },
  };
  return {
    store,
    stop() {
      listeners.clear();
      stopWaking?.();
    },
  };
}

/** A lease as its slot key holds it; `exp` (epoch ms) is enforced on every read, as KV drops expired keys late. */
interface Held {
  id: string;
  owner: string;
  exp: number;
}

/** One of this instance's leases: its slot key and the versionstamp of its last write. */
interface Mine {
  key: Key;
  account: string;
  owner: string;
  versionstamp: string;
  exp: number;
}

/** An account's health as last seen, with its versionstamp (null: no record, healthy). */
interface HealthHint {
  versionstamp: string | null;
  value: AccountHealth | null;
}

/** A slot's version and its lease's expiry (0: free). */
interface SlotSeen {
  versionstamp: string | null;
  exp: number;
}

/** What an instance last saw of an account: its slots (those it saw) and its health. */
interface Hint {
  slots: (SlotSeen | undefined)[];
  health?: HealthHint;
}

const FREE = Object.freeze({ versionstamp: null, exp: 0 });
const ABSENT: HealthHint = Object.freeze({ versionstamp: null, value: null });

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
