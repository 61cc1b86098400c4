// The rules the memory and KV backends apply in-process (Redis applies the same ones in Lua): pure functions.
import type { AccountHealth, HealthUpdate } from "./store.ts";

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
