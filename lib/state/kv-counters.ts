// The counters of the Deno KV store (lib/state/kv.ts): one entry per counter, [prefix, "count", ...key], holding its
// value and deadline (enforced on every read, as KV drops expired keys late). Each client keeps a hint of what it
// last saw of each counter, so a call that writes is one commit checking those versions, and reads only when a
// check fails or a counter is not known here.
import { ATOMIC_CHECKS_MAX, GET_MANY_MAX, type Key, type KvAtomicLike, type KvBase, type KvEntryLike } from "./kv.ts";
import { applyCounts, checkCounts, writesCounter } from "./rules.ts";
import { type CounterOp, type CounterStore, type CountResult, StoreError, type ValueKey } from "./store.ts";

const OP = "count";
// Hints are per counter and counters are per window: keep the most recently used, drop the oldest.
const HINTS_MAX = 10_000;

/** A counter as its entry holds it; `exp` (epoch ms) is enforced on every read. */
interface Stored {
  n: number;
  exp: number;
}

/** A counter as last seen: its entry's versionstamp (null: absent) and what it held. */
interface Seen {
  versionstamp: string | null;
  stored: Stored | null;
}

/** A decided call: its result, and how to build the commit that makes it true. */
interface Decided {
  result: CountResult;
  build(): { commit: KvAtomicLike; done: (versionstamp: string) => void };
}

/** The counters of a KV store. */
export function kvCounters(base: KvBase): CounterStore {
  const { kv, meter, now, prefix, locked, getMany, optimistic } = base;
  const hints = new Map<string, Seen>();
  const remember = (id: string, seen: Seen) => {
    hints.delete(id); // re-inserted last: the map's order is the order of use
    hints.set(id, seen);
    if (hints.size > HINTS_MAX) hints.delete(hints.keys().next().value!);
  };

  /**
   * Decides the call on `seen` (one per distinct counter, in the order of `keys`). Its commit checks every counter
   * the decision read, `below`-only ones included, so it lands only if those values are still the current ones.
   */
  const decide = (ops: readonly CounterOp[], ids: string[], keys: Map<string, Key>, seen: Seen[]): Decided => {
    const t = now();
    const distinct = [...keys];
    const current = new Map(distinct.map(([id], j) => {
      const s = seen[j]!.stored;
      return [id, s && s.exp > t ? s.n : 0];
    }));
    const plan = applyCounts(OP, ops, ids, current);
    return {
      result: { values: plan.values, refused: plan.refused },
      build() {
        const commit = kv.atomic().check(
          ...distinct.map(([, key], j) => ({ key, versionstamp: seen[j]!.versionstamp })),
        );
        const written: [string, Stored][] = [];
        for (const [id, w] of plan.writes) {
          const stored: Stored = { n: w.n, exp: t + w.expireInMs };
          commit.set(keys.get(id)!, stored, { expireIn: w.expireInMs });
          written.push([id, stored]);
        }
        return {
          commit,
          done: (versionstamp) => {
            for (const [id, stored] of written) remember(id, { versionstamp, stored });
          },
        };
      },
    };
  };

  /** Reads the counters (getMany, 10 keys a call, in parallel) and remembers what it saw. */
  const read = async (keys: Map<string, Key>): Promise<Seen[]> => {
    const entries = await getMany(OP, [...keys.values()]);
    const seen = entries.map(seenOf);
    [...keys.keys()].forEach((id, j) => remember(id, seen[j]!));
    return seen;
  };

  return {
    count(ops) {
      return meter.run(OP, async (): Promise<CountResult> => {
        checkCounts(OP, ops);
        const ids = ops.map((o) => o.key.join("\u0000"));
        const keys = new Map(ops.map((o, i) => [ids[i]!, counterKey(prefix, o.key)]));
        // Only reads: one round trip of getMany calls, nothing to commit.
        if (!ops.some(writesCounter)) return decide(ops, ids, keys, await read(keys)).result;
        if (keys.size > ATOMIC_CHECKS_MAX) {
          throw new StoreError(
            "invalid",
            OP,
            `Cannot ${OP}: a call that writes may name at most ${ATOMIC_CHECKS_MAX} counters on Deno KV, not ${keys.size}`,
          );
        }
        // One round trip: commit on what this client last saw of every counter. A refusal decided on hints alone
        // could be stale (another client may have given back since), so it is decided again on a read.
        const hinted = [...keys.keys()].map((id) => hints.get(id));
        if (hinted.every((h) => h !== undefined)) {
          const d = decide(ops, ids, keys, hinted as Seen[]);
          if (d.result.refused < 0) {
            const { commit, done } = d.build();
            const r = await locked(OP, () => commit.commit());
            if (r.ok) {
              done(r.versionstamp!);
              return d.result;
            }
          }
        }
        // A counter not known here, a stale hint or a refusal: read, then commit on what was read.
        return optimistic(OP, async () => {
          const d = decide(ops, ids, keys, await read(keys));
          if (d.result.refused < 0) return { result: d.result, ...d.build() };
          // Refused, so nothing to write. One getMany is a snapshot: its values were current together. Values read
          // in several getMany calls were not, and a commit of the checks alone confirms them.
          return keys.size <= GET_MANY_MAX ? { result: d.result } : { result: d.result, commit: d.build().commit };
        });
      });
    },
  };
}

function counterKey(prefix: string, key: ValueKey): Key {
  return [prefix, "count", ...key];
}

function seenOf(e: KvEntryLike): Seen {
  const v = e.value as Stored | null;
  return { versionstamp: e.versionstamp, stored: v && typeof v.n === "number" ? v : null };
}
