// A Deno KV wrapper that counts calls to the database, for tests and bench/state.ts: each commit, read, listing or
// write is one call; calls made while another is in flight share its round trip (getMany reads 10 keys per call).
import type { KvAtomicLike, KvLike } from "../../lib/state/kv.ts";

export interface CountingKv {
  kv: KvLike;
  /** Every call, in order: "commit", "get", "getMany", "list", "set", "delete". */
  calls: string[];
  /** Round trips of latency: calls that started while none was in flight. */
  trips(): number;
}

export function countingKv(kv: KvLike): CountingKv {
  const calls: string[] = [];
  let inFlight = 0;
  let trips = 0;
  const count = <T>(name: string, f: () => Promise<T>): Promise<T> => {
    calls.push(name);
    if (!inFlight++) trips++;
    return f().finally(() => inFlight--);
  };
  const atomic = (a: KvAtomicLike): KvAtomicLike => ({
    check: (...c) => atomic(a.check(...c)),
    set: (k, v, o) => atomic(a.set(k, v, o)),
    delete: (k) => atomic(a.delete(k)),
    commit: () => count("commit", () => a.commit()),
  });
  return {
    calls,
    trips: () => trips,
    kv: {
      get: (k) => count("get", () => kv.get(k)),
      getMany: (k) => count("getMany", () => kv.getMany(k)),
      set: (k, v, o) => count("set", () => kv.set(k, v, o)),
      delete: (k) => count("delete", () => kv.delete(k)),
      // A listing counts once: the lease path lists at most one account's slots (fewer than a page).
      list: (s, o) => (calls.push("list"), inFlight || trips++, kv.list(s, o)),
      atomic: () => atomic(kv.atomic()),
      watch: (k) => kv.watch(k),
      close: () => kv.close(),
    },
  };
}
