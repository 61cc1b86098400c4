// The rules the memory and KV backends apply in-process (Redis applies the same ones in Lua): pure functions.
import {
  type AccountHealth,
  checkKey,
  type CounterOp,
  type CountResult,
  type HealthUpdate,
  StoreError,
} from "./store.ts";

/** One live lease as the memory and KV backends keep it per account: id, owner, expiry (epoch ms). */
export type LeaseSlot = readonly [id: string, owner: string, expiresAt: number];

/** The slots of an account that have not expired at `now`. */
export function live(slots: readonly LeaseSlot[] | undefined, now: number): LeaseSlot[] {
  return (slots ?? []).filter((s) => s[2] > now);
}

/** The index of the first account whose live slots number fewer than `perAccount`, or -1. */
export function firstWithRoom(
  slotsPerAccount: readonly (readonly LeaseSlot[] | undefined)[],
  perAccount: number,
  now: number,
): number {
  return slotsPerAccount.findIndex((slots) => live(slots, now).length < perAccount);
}

/**
 * The order in which a health-aware take (`TakeRequest.skipCooling`) tries accounts: those not cooling at `now` in
 * the given order, then the cooling ones, the soonest to end first (ties in the given order). Indexes into the input.
 */
export function healthOrder(coolingUntil: readonly number[], now: number): number[] {
  const idx = coolingUntil.map((_, i) => i);
  const later = idx.filter((i) => coolingUntil[i]! > now).sort((a, b) => coolingUntil[a]! - coolingUntil[b]! || a - b);
  return [...idx.filter((i) => coolingUntil[i]! <= now), ...later];
}

/** An account's health after `update` at `now`; null means healthy (nothing to keep). */
export function applyHealth(prev: AccountHealth | null, update: HealthUpdate, now: number): AccountHealth | null {
  const h: AccountHealth = prev ? { ...prev } : { coolingUntil: 0, lastError: null, fails: 0 };
  switch (update.kind) {
    case "ok":
      return null;
    case "cool":
      h.lastError = update.error;
      h.coolingUntil = now + update.cooldownMs;
      break;
    case "fail":
      h.lastError = update.error;
      h.fails++;
      if (h.fails >= update.threshold) h.coolingUntil = now + update.cooldownMs;
      break;
    case "note":
      h.lastError = update.error;
      break;
  }
  return h;
}

/** How long to keep a health record: past its cooldown, and a day at least, so idle accounts are forgotten. */
export function healthKeepMs(h: AccountHealth, now: number): number {
  return Math.max(h.coolingUntil - now, 0) + 86_400_000;
}

/** A healthy account as `reportHealth` resolves it. */
export const HEALTHY: AccountHealth = Object.freeze({ coolingUntil: 0, lastError: null, fails: 0 });

/** A new lease id: the owner's id, then a random part, so ids never collide across instances. */
export function leaseId(owner: string): string {
  return `${owner}.${crypto.randomUUID().slice(0, 13)}`;
}

/** True when the op changes its counter: a `by` other than 0, or an `atLeast`. */
export function writesCounter(o: CounterOp): boolean {
  return (o.by ?? 0) !== 0 || o.atLeast !== undefined;
}

/** Checks a `count` call's ops (keys, safe integers, an expiry on every op that writes); throws `invalid`. */
export function checkCounts(op: string, ops: readonly CounterOp[]): void {
  ops.forEach((o, i) => {
    checkKey(op, o.key);
    for (const field of ["by", "below", "atLeast"] as const) {
      const v = o[field];
      if (v !== undefined && !Number.isSafeInteger(v)) {
        throw new StoreError("invalid", op, `Cannot ${op}: op ${i} has ${field} ${v}, which is not a safe integer`);
      }
    }
    if (writesCounter(o) && !(Number.isSafeInteger(o.expireInMs) && o.expireInMs! > 0)) {
      throw new StoreError(
        "invalid",
        op,
        `Cannot ${op}: op ${i} writes its counter, so its expireInMs must be a positive integer, not ${o.expireInMs}`,
      );
    }
  });
}

/** What a `count` call decides: the result, and the new value and expiry of each counter written (by id). */
export interface CountPlan extends CountResult {
  writes: Map<string, { n: number; expireInMs: number }>;
}

/**
 * Applies checked ops (`ids[i]` names op i's counter) to the counters' values before the call (`current`, by id,
 * 0 when absent): refused, nothing written, when some op's counter is not below its `below`; else each `by` then
 * `atLeast` in op order. Throws `invalid` when a counter would leave the safe integers.
 */
export function applyCounts(
  op: string,
  ops: readonly CounterOp[],
  ids: readonly string[],
  current: ReadonlyMap<string, number>,
): CountPlan {
  const before = ids.map((id) => current.get(id) ?? 0);
  const refused = ops.findIndex((o, i) => o.below !== undefined && !(before[i]! < o.below));
  const writes: CountPlan["writes"] = new Map();
  if (refused >= 0) return { values: before, refused, writes };
  const after = new Map(current);
  ops.forEach((o, i) => {
    if (!writesCounter(o)) return;
    const id = ids[i]!;
    let n = (after.get(id) ?? 0) + (o.by ?? 0);
    if (o.atLeast !== undefined) n = Math.max(n, o.atLeast);
    if (!Number.isSafeInteger(n)) {
      throw new StoreError("invalid", op, `Cannot ${op}: op ${i} would take its counter past the safe integers`);
    }
    after.set(id, n);
    writes.set(id, { n, expireInMs: o.expireInMs! });
  });
  return { values: ids.map((id) => after.get(id) ?? 0), refused: -1, writes };
}
