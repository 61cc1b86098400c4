// Test support: a clock whose time moves only when the test advances it, for code that takes a Clock.
import { setImmediate } from "node:timers";
import type { Clock } from "../../lib/chat/clock.ts";

export interface FakeClock extends Clock {
  /**
   * Moves time forward by `ms`, firing the timers that fall due in order of their time (then of their setting),
   * and lets promises settle before each timer and at the end.
   */
  advance(ms: number): Promise<void>;
  /** Timers set and not yet fired or cleared. */
  readonly pending: number;
}

/** A turn of the event loop: every promise reaction queued so far has run. */
export const settled = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A fake clock starting at `start` milliseconds since the epoch. */
export function fakeClock(start = 1_700_000_000_000): FakeClock {
  let now = start;
  let seq = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  const due = (until: number) => {
    let first: [number, { at: number; fn: () => void }] | undefined;
    // Map order is setting order, so the first of equal times wins.
    for (const entry of timers) if (entry[1].at <= until && (!first || entry[1].at < first[1].at)) first = entry;
    return first;
  };
  return {
    now: () => now,
    setTimeout(fn, ms) {
      timers.set(++seq, { at: now + Math.max(0, ms), fn });
      return seq;
    },
    clearTimeout(handle) {
      timers.delete(handle as number);
    },
    get pending() {
      return timers.size;
    },
    async advance(ms) {
      const end = now + ms;
      await settled();
      for (let next = due(end); next; next = due(end)) {
        timers.delete(next[0]);
        now = next[1].at;
        next[1].fn();
        await settled();
      }
      now = end;
      await settled();
    },
  };
}
